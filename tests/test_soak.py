"""Soak: a small 2D scene runs for well over 2,000 substeps with events all along (gunshots, a
grenade, heating and chilling, a cold floor that freezes the metal) the way a render runs it
(each frame with blow-up retries and a full state copy, as for a checkpoint). Mass stays exact,
no state turns NaN, and the resident memory stays flat after the warm-up (kernels compiled, every
event kind seen once): at most 5% growth.

Not in the default run: ``python -m pytest -m soak -s tests/test_soak.py`` (a few minutes on a
2-core CPU) prints the figures.
"""
import os

import numpy as np
import pytest

from conftest import make_scene
from polyalloy.materials import Elastic, Polyalloy
from polyalloy.shapes import Box, Plane, Sphere
from polyalloy.simulation import Simulation

SUBSTEPS = 2000
WARM_UP = 0.25  # the first quarter of the frames: every kernel and every event kind has run once
MAX_GROWTH = 0.05


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def soak_scene():
    s = make_scene(2, name="soak", dx=0.04, fps=30)
    s.add_material("metal", Polyalloy())
    s.add_material("rubber", Elastic(youngs_modulus=2e5))
    s.add_collider("cold floor", Plane(point=(0, 0.1, 0), normal=(0, 1, 0)), surface="sticky", temperature=90.0)
    s.add_collider("ledge", Box(centre=(0.8, 0.35, 0), half_size=(0.1, 0.03, 0)))
    s.add_body("blob", Sphere(centre=(0.35, 0.35, 0), radius=0.12), "metal")
    s.add_body("ball", Sphere(centre=(0.75, 0.6, 0), radius=0.08), "rubber", velocity=(-0.5, 0, 0))
    for k in range(12):  # events all through the run, not only during the warm-up
        t = 0.05 + 0.2 * k
        s.gunshot(t, point=(0.35, 0.3, 0), direction=(1, 0.3, 0), impulse=0.5, radius=0.08)
        s.heat(Sphere(centre=(0.35, 0.25, 0), radius=0.15), power=2e4, start=t + 0.05, end=t + 0.1)
        s.chill(Sphere(centre=(0.35, 0.25, 0), radius=0.15), power=2e4, start=t + 0.1, end=t + 0.15)
    s.grenade(0.4, point=(0.35, 0.2, 0), impulse=0.3, heat=50.0, radius=0.1)
    return s


@pytest.mark.soak
def test_a_long_run_keeps_mass_finite_state_and_flat_memory():
    with Simulation(soak_scene()) as sim:
        mass0 = sim.total_mass()
        rss, fired, retries = [], [], 0
        while sim.substeps < SUBSTEPS:
            retries += len(sim.step_frame_retrying())
            state = sim.state_dict()  # what a checkpoint copies every preview frame
            s = sim.particles()
            assert sim.total_mass() == mass0, f"mass changed at frame {sim.frame}"
            for key in ("x", "v", "T", "H"):
                assert np.all(np.isfinite(s[key])), f"{key} is not finite at frame {sim.frame}"
            del state
            rss.append(resident_bytes())
            fired.append(sim._next_impulse)
        w = int(len(rss) * WARM_UP)
        warm = rss[w]
        growth = (max(rss[w:]) - warm) / warm
        print(f"\nsoak: {sim.substeps} substeps, {sim.frame} frames, t = {sim.t:.3f} s, {sim.n_particles} particles, "
              f"{fired[-1]} impulses fired, {sim.events_energy:.1f} J net from heating, chilling and the grenade, "
              f"retries {retries}, mass {mass0:.6g} kg exact, "
              f"resident {warm / 2**20:.1f} MiB after warm-up -> {rss[-1] / 2**20:.1f} MiB at the end "
              f"(peak growth {100 * growth:.2f}%)")
        assert sim.substeps >= SUBSTEPS and 0 < fired[w] < fired[-1]  # events before and after the warm-up
        assert growth <= MAX_GROWTH
