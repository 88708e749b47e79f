"""The foundry beat: its claims pass on the tiny 2D variant and fail with a cold pool; the
glitch cycles through a sequence of earlier shapes; the controller's settings change on the
timeline."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from polyalloy.body import Humanoid, ShapeTemplate
from polyalloy.errors import ConfigError
from polyalloy.materials import Polyalloy
from polyalloy.scene import Scene
from polyalloy.shapes import Plane, Sphere
from polyalloy.simulation import Simulation


def _check(*extra):
    cmd = [sys.executable, "-m", "polyalloy.cli", "check", "foundry", "--arch", "cpu", "--set", "dim=2", "--json", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.fixture(scope="module")
def runs():
    # the hot and the cold pool run side by side (two processes, two cores)
    procs = {"hot": _check(), "cold": _check("--set", "pool_temperature=600")}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=900)
        out[name] = (p.returncode, stdout, stderr)
    return out


def _claims(run):
    rc, stdout, stderr = run
    assert stdout.strip(), stderr[-2000:]
    return rc, {c["name"]: c for c in json.loads(stdout)["claims"]}


def test_check_foundry_2d_passes(runs):
    rc, claims = _claims(runs["hot"])
    failed = {n: (c["value"], c["status"]) for n, c in claims.items() if c["status"] != "pass"}
    assert rc == 0 and not failed, failed
    assert {"torso_opens", "into_pool", "thrash_0", "thrash_1", "thrash_2", "molten", "grip", "dissolved",
            "sunk", "energy", "mass", "metal"} <= set(claims)


def test_check_foundry_fails_with_a_cold_pool(runs):
    rc, claims = _claims(runs["cold"])
    assert rc == 1
    # a pool below his melting point cannot melt him nor take the controller's grip, and a man
    # who does not melt does not mix: his metal still holds his shape
    assert claims["molten"]["status"] == "FAIL" and claims["grip"]["status"] == "FAIL"
    assert claims["dissolved"]["status"] == "FAIL"


# --- the glitch's cycle through earlier shapes ----------------------------------------------
def _cycling_scene(earlier, rate=2.0):
    sc = Scene(name="cycle", dim=2, domain=((0, 0, 0), (2.0, 2.2, 1.0)), dx=0.05)
    sc.control = type(sc.control)(glitch_rate=rate, glitch_spread=0.0)
    sc.add_material("pa", Polyalloy())
    sc.add_collider("floor", Plane(point=(0, 0.05, 0), normal=(0, 1, 0)), friction=0.5)
    man = Humanoid(position=(1.0, 0.05, 0.5))
    sc.add_body("man", man, "pa", template=man, earlier=earlier)
    return sc


def test_the_glitch_cycles_through_the_earlier_shapes():
    blob = ShapeTemplate(shape=Sphere(centre=(1.0, 0.4, 0.5), radius=0.3))
    shapes = [blob, Humanoid(position=(1.0, 0.05, 0.5), blades=True), Humanoid(position=(1.0, 0.05, 0.5), height=1.4)]
    with Simulation(_cycling_scene(shapes)) as sim:
        ctl = sim.controller
        _, _, alts = ctl.slots[0]
        assert alts.shape[0] == 3
        seen = []
        # pulse k (k = floor(rate t + 1/4)) goes to shape k mod 3: at 2 Hz, t = 0, 0.5, 1.0, 1.5 -> 0, 1, 2, 0
        for t in (0.0, 0.5, 1.0, 1.5):
            ctl.maybe_cycle(t)
            seen.append(int(ctl.cycle[0]))
            n = sim.n_particles
            alt = sim.particles_fields.home_alt.to_numpy()[:n]
            assert np.allclose(alt, alts[seen[-1]][ctl.slot_of[0]], atol=1e-5)
        assert seen == [0, 1, 2, 0]
        # the three targets differ: the blob's homes are nowhere near the bladed man's
        assert np.abs(alts[0] - alts[1]).max() > 0.3 and np.abs(alts[1] - alts[2]).max() > 0.1


def test_one_earlier_shape_works_as_before():
    blob = ShapeTemplate(shape=Sphere(centre=(1.0, 0.4, 0.5), radius=0.3))
    sc = _cycling_scene(blob)
    assert sc.bodies[0].earlier is blob and sc.bodies[0].earlier_shapes() == (blob,)
    with Simulation(sc) as sim:
        before = sim.particles_fields.home_alt.to_numpy().copy()
        for t in (0.0, 0.5, 1.0):
            sim.controller.maybe_cycle(t)
            assert sim.controller.cycle[0] == 0
        assert np.array_equal(before, sim.particles_fields.home_alt.to_numpy())
    with pytest.raises(ConfigError, match="earlier must be"):
        _cycling_scene([])
    with pytest.raises(ConfigError, match="earlier must be"):
        _cycling_scene([blob, "a sphere"])


def test_control_changes_on_the_timeline():
    sc = _cycling_scene(ShapeTemplate(shape=Sphere(centre=(1.0, 0.4, 0.5), radius=0.3)))
    sc.control_at(0.05, glitch=1.0, hold=0.5)
    with pytest.raises(ConfigError, match="unknown control setting"):
        sc.control_at(0.1, grip=0.0)
    with pytest.raises(ConfigError, match="out of range"):
        sc.control_at(0.1, glitch=2.0)
    with Simulation(sc) as sim:
        assert sim.knobs.glitch[None] == 0.0
        sim.step_frame()  # to t = 1/30 s
        assert sim.knobs.glitch[None] == 0.0
        sim.step_frame()  # past 0.05 s
        assert sim.knobs.glitch[None] == 1.0 and sim.knobs.ctrl_hold[None] == 0.5
