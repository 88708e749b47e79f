"""A shipped scene run to a time, timed and hashed: how to tell that a change kept the bits and
what it saved (run it in two checkouts, one after the other, on a quiet machine).

    python tools/hash_run.py SCENE DIM UNTIL [KEY=VALUE ...]

Builds the preview scene with ``dim=DIM`` and the ``--set``-style overrides, steps one frame
(compilation), then ``step_frame`` until ``UNTIL`` s, timed (wall and process CPU). Prints the
substeps, the particles, the SHA-256 of every particle array (``Simulation.particles``) and of
every other table's fields but the grid (knobs, the pose table, ...: ``state_dict``). Code
before 2026-12-06 (fourteenth session) summed ``knobs/boundary_energy`` in the heat's threads'
order, so its last bits differ from run to run there: compare ``particles_sha`` with it; code
before the fifteenth session summed G2P's push-out (``knobs/push_impulse``) in floats, and its
tables hash otherwise than later code's (the particles the same). Default threads and lanes, the
build ``POLYALLOY_FAST_COMPILE`` asks for; public APIs only.
"""
import hashlib
import sys
import time

import numpy as np

import polyalloy

polyalloy.init(arch="cpu", seed=0)
from polyalloy.scene import load_scene  # noqa: E402
from polyalloy.simulation import Simulation  # noqa: E402

name, dim, until = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
overrides = dict(a.split("=", 1) for a in sys.argv[4:])
sim = Simulation(load_scene(name, "preview", dict({"dim": dim}, **overrides)))
sim.step_frame()
wall, cpu = time.perf_counter(), time.process_time()
while sim.t < until - 1e-9:
    sim.step_frame()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
particles, tables = hashlib.sha256(), hashlib.sha256()
state = sim.particles()
for key in sorted(state):
    particles.update(key.encode())
    particles.update(np.ascontiguousarray(state[key]).tobytes())
for key, value in sorted(sim.state_dict().items()):
    if key.startswith("field/") and not key.startswith(("field/particles_fields/", "field/grid/")):
        tables.update(key.encode())
        tables.update(np.ascontiguousarray(value).tobytes())
print(f"RESULT {name} dim={dim} t={sim.t:.3f} substeps={sim.substeps} particles={sim.n_particles} "
      f"wall={wall:.1f}s cpu={cpu:.1f}s particles_sha={particles.hexdigest()[:16]} tables_sha={tables.hexdigest()[:16]}")
