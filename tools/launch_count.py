"""Launches and device reads per substep of ``step_frame`` on a 2D scene (issue 15, target 5).

    python tools/launch_count.py SCENE FRAMES [DX]

Deterministic CPU run: one warm-up frame, then FRAMES frames counted. Counts every Python-side
Taichi kernel launch (``Kernel.__call__``, by kernel), every ``field[...]`` read and write (each
one a small reader/writer kernel and, for a read, a wait for the device) and every ``to_numpy``.
Prints the particle-state hash, t, last_dt and the energy accounts, so that two versions of the
code can be compared bit for bit (run it in each checkout). Uses only public APIs, so it runs on
the code before the device clock too. The timing it prints includes the counting hooks.
"""
import hashlib, sys, time, collections
import numpy as np
import polyalloy
polyalloy.init(arch="cpu", deterministic=True, seed=0)
import taichi as ti
from taichi.lang import kernel_impl
import sys as _s; import taichi.lang.field; tfield = _s.modules["taichi.lang.field"]
import taichi.lang.matrix; tmatrix = _s.modules["taichi.lang.matrix"]
counts = collections.Counter()
on = [False]
orig_call = kernel_impl.Kernel.__call__
def call(self, *a, **k):
    if on[0]:
        counts["launch:" + self.func.__name__] += 1
    return orig_call(self, *a, **k)
kernel_impl.Kernel.__call__ = call
for cls in (tfield.ScalarField, tmatrix.MatrixField):
    g, s = cls.__getitem__, cls.__setitem__
    def mk(g, s, cname):
        def gi(self, key):
            if on[0]: counts["read:field[]"] += 1
            return g(self, key)
        def si(self, key, v):
            if on[0]: counts["write:field[]"] += 1
            return s(self, key, v)
        return gi, si
    cls.__getitem__, cls.__setitem__ = mk(g, s, cls.__name__)
tn = tfield.Field.to_numpy
def to_numpy(self, *a, **k):
    if on[0]: counts["read:to_numpy"] += 1
    return tn(self, *a, **k)
tfield.Field.to_numpy = to_numpy
ScalarField_tn = tfield.ScalarField.to_numpy
def sf_tn(self, *a, **k):
    if on[0]: counts["read:to_numpy"] += 1
    return ScalarField_tn(self, *a, **k)
tfield.ScalarField.to_numpy = sf_tn
from polyalloy.simulation import Simulation
import importlib
name, frames = sys.argv[1], int(sys.argv[2])
mod = importlib.import_module(f"polyalloy.scenes.{name}")
scene = mod.build(dim=2)
if len(sys.argv) > 3:
    scene.set("dx", float(sys.argv[3]))
sim = Simulation(scene)
sim.step_frame()  # compile + warm
s0 = sim.substeps
on[0] = True
c0 = time.process_time(); w0 = time.perf_counter()
for _ in range(frames):
    sim.step_frame()
w1 = time.perf_counter(); c1 = time.process_time()
on[0] = False
n = sim.substeps - s0
p = sim.particles(retired=True)
h = hashlib.sha256(b"".join(np.ascontiguousarray(p[k]).tobytes() for k in sorted(p))).hexdigest()[:16]
acc = sim.energy_accounts()
print(f"scene {name} frames {frames} substeps {n} t {sim.t!r} last_dt {sim.last_dt!r} hash {h}")
print(f"boundary {acc['boundary_in']!r} events {acc['events_in']!r} push {float(sim.knobs.push_impulse[None])!r}")
print(f"wall ms/substep {1e3*(w1-w0)/n:.4f} cpu ms/substep {1e3*(c1-c0)/n:.4f}")
tot_l = sum(v for k, v in counts.items() if k.startswith("launch:"))
print(f"per substep: python kernel launches {tot_l/n:.3f}, field[] reads {counts['read:field[]']/n:.3f}, "
      f"field[] writes {counts['write:field[]']/n:.3f}, to_numpy {counts['read:to_numpy']/n:.3f}")
print("launches:", {k[7:]: round(v / n, 3) for k, v in sorted(counts.items()) if k.startswith("launch:")})
