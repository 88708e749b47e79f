"""Deterministic mode: two processes with the same seed produce bit-identical particles; another
seed samples the bodies differently. Each run is its own process, since ``polyalloy.init`` runs
once per process. These runs use the optimised build (the rest of the suite compiles with
Taichi's advanced optimisation off, see conftest.py), so that build is tested too.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from polyalloy.scenes import dam_break
from polyalloy.simulation import Simulation

# A small 2D dam break in deterministic mode; prints the particle count and SHA-256 hashes of
# the initial and the final positions (x.tobytes()) as the last line of stdout.
RUN = """
import hashlib, sys
import polyalloy
seed, frames = int(sys.argv[1]), int(sys.argv[2])
polyalloy.init(arch="cpu", deterministic=True, seed=seed)
from polyalloy.scenes import dam_break
from polyalloy.simulation import Simulation
scene = dam_break.build(dim=2)
scene.set("dx", 1 / 48)
scene.seed = seed
sim = Simulation(scene)
x0 = sim.particles()["x"]
for _ in range(frames):
    sim.step_frame()
x = sim.particles()["x"]
print(len(x), hashlib.sha256(x0.tobytes()).hexdigest(), hashlib.sha256(x.tobytes()).hexdigest())
"""


def run_in_subprocesses(*args) -> list[tuple[int, str, str]]:
    """Run ``RUN`` once per (seed, frames) pair, side by side, and parse each last line."""
    env = dict(os.environ, ENABLE_TAICHI_HEADER_PRINT="0", POLYALLOY_FAST_COMPILE="0")  # the optimised build
    procs = [subprocess.Popen([sys.executable, "-c", RUN, str(seed), str(frames)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for seed, frames in args]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        n, initial, final = stdout.strip().splitlines()[-1].split()
        out.append((int(n), initial, final))
    return out


def test_deterministic_runs_are_bit_identical_and_the_seed_matters():
    a, b, other = run_in_subprocesses((3, 4), (3, 4), (4, 0))
    assert a == b  # same particle count, same initial and final bytes
    assert a[1] != a[2]  # the runs did move the particles
    assert other[1] != a[1]  # another seed samples the column differently


# The same dam break in the default mode on a fixed number of P2G lanes (``POLYALLOY_P2G_LANES``),
# with a gunshot into the water at 0.1 s: the threads are the variable ``POLYALLOY_THREADS``.
RUN_THREADS = """
import hashlib, sys
import polyalloy
polyalloy.init(arch="cpu", seed=0)
from polyalloy.scenes import dam_break
from polyalloy.simulation import Simulation
scene = dam_break.build(dim=2)
scene.set("dx", 1 / 48)
scene.gunshot(0.1, (0.2, 0.2, 0.5), (1, 0.2, 0), impulse=2.0, radius=0.1)
sim = Simulation(scene)
for _ in range(int(sys.argv[1])):
    sim.step_frame()
x = sim.particles()["x"]
print(len(x), "-", hashlib.sha256(x.tobytes()).hexdigest(), "lanes", sim.grid.lanes)
"""


@pytest.mark.parametrize("lanes", ["2", ""])
def test_a_run_on_fixed_lanes_is_the_same_on_one_thread_or_two(lanes):
    """Outside --deterministic the CPU P2G adds in a fixed number of lanes, so the motion does not
    depend on the thread count (a sweep runs its jobs on fewer threads than a lone command): every
    sum that feeds the motion is in a fixed order, the mass a gunshot shares its impulse over
    included (``kernels.events.mass_in_sphere``: a parallel sum of it gave the 2D freeze beat
    other pieces' speeds on one thread than on two from the shot on). With two lanes asked for
    (``POLYALLOY_P2G_LANES``), the parallel passes on one thread and on two; with none asked for,
    this small dam break runs every loop on the calling thread (``simulation.serial_lanes``)
    whatever the threads. With two lanes, also two threads left to the scheduler
    (``POLYALLOY_PIN_THREADS=0``; pinned one to a core by default, ``polyalloy.affinity``)."""
    env = dict(os.environ, ENABLE_TAICHI_HEADER_PRINT="0", POLYALLOY_P2G_LANES=lanes)
    runs = [("1", "1"), ("2", "1")] + ([("2", "0")] if lanes else [])
    procs = [subprocess.Popen([sys.executable, "-c", RUN_THREADS, "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(env, POLYALLOY_THREADS=t, POLYALLOY_PIN_THREADS=pin))
             for t, pin in runs]
    finals = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        finals.append(stdout.strip().splitlines()[-1])
    assert len(set(finals)) == 1
    assert finals[0].endswith(f"lanes {lanes or 1}")


def test_the_same_seed_samples_the_same_particles_in_process():
    def initial(seed):
        scene = dam_break.build(dim=2)
        scene.set("dx", 1 / 32)
        scene.seed = seed
        return Simulation(scene).particles()["x"]

    first, again, other = initial(7), initial(7), initial(8)
    np.testing.assert_array_equal(first, again)
    assert len(first) == len(other) and not np.array_equal(first, other)
    # the jitter stays within a quarter of the particle spacing, so the column keeps its shape
    assert np.abs(first - other).max() <= 0.5 * (1 / 32) / 2 + 1e-6


# The 2D freeze beat's first half second on two P2G lanes: the heat exchanged with the air and the
# colliders, which the boundary account (``Knobs.boundary_energy``) counts; then the 2D drop's first
# second, whose ball G2P's push-out catches in the floor (``Knobs.push_impulse``).
RUN_HEAT = """
import hashlib, sys
import polyalloy
polyalloy.init(arch="cpu", seed=0)
from polyalloy.scenes import freeze
from polyalloy.simulation import Simulation
sim = Simulation(freeze.build(dim=2))
while sim.t < 0.5:
    sim.step_frame()
x = sim.particles()["x"]
from polyalloy.scenes import drop
ball = Simulation(drop.build(dim=2))  # a ball dropped on the floor: G2P's push-out catches some of it
while ball.t < 1.0:
    ball.step_frame()
print(hashlib.sha256(x.tobytes()).hexdigest(), repr(sim.boundary_energy), repr(float(ball.knobs.push_impulse[None])),
      "lanes", sim.grid.lanes, ball.grid.lanes)
"""


def test_the_boundary_heat_account_repeats_to_the_bit_on_any_thread_count():
    """The heat that enters through colliders and the air is a sum over the grid's nodes
    (``kernels.heat.conduct_pass``): summed node by node in the block list's order on one thread,
    it is the same f64 to the last bit on one thread, two pinned and two free, as the particles
    are. (Each thread adding its own partial sum, as before, gave the 3D freeze's account other
    last digits from run to run: -9141853.2267 and -9141853.2033 J at 0.8 s.) So is the momentum
    G2P's push-out took (``Knobs.push_impulse``): its lanes add whole quanta on a CPU, which sum
    to the same bits in whatever order two threads add them."""
    env = dict(os.environ, ENABLE_TAICHI_HEADER_PRINT="0", POLYALLOY_P2G_LANES="2")
    procs = [subprocess.Popen([sys.executable, "-c", RUN_HEAT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(env, POLYALLOY_THREADS=t, POLYALLOY_PIN_THREADS=pin))
             for t, pin in (("1", "1"), ("2", "1"), ("2", "0"))]
    finals = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        finals.append(stdout.strip().splitlines()[-1])
    assert len(set(finals)) == 1, finals
    _, energy, push, _, lanes, ball_lanes = finals[0].split()
    # something to repeat: 1,674 J per metre of depth had come in through the air and colliders by 0.5 s
    assert lanes == ball_lanes == "2" and abs(float(energy)) > 100.0, finals[0]
    assert float(push) > 1.0, finals[0]  # and the push-out had taken 21.9 N s per metre from the ball
