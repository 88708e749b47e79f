"""Per-substep wall and CPU time of ``step_frame`` on a small 2D scene, where the fixed costs of
a substep (launches, device reads) weigh most (issue 15, target 5).

    python tools/frame_bench.py SCENE FRAMES [DX]

CPU, default threads; two warm-up frames, then 3 rounds of FRAMES frames, each from the same
saved state; prints every round's wall and CPU (process) ms per substep and the best. Public
APIs only: it runs on older checkouts too (``bench`` times ``Simulation.substep`` at a fixed
dt, which never chose a step, so it cannot see the time step's reads).
"""
import sys, time, importlib
import polyalloy
polyalloy.init(arch="cpu", seed=0)
from polyalloy.simulation import Simulation
name, frames = sys.argv[1], int(sys.argv[2])
scene = importlib.import_module(f"polyalloy.scenes.{name}").build(dim=2)
if len(sys.argv) > 3:
    scene.set("dx", float(sys.argv[3]))
sim = Simulation(scene)
sim.step_frame(); sim.step_frame()  # compile, warm
start = sim.state_dict()
res = []
for r in range(3):
    sim.load_state_dict(start)
    s0 = sim.substeps
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(frames):
        sim.step_frame()
    w1, c1 = time.perf_counter(), time.process_time()
    n = sim.substeps - s0
    res.append((1e3 * (w1 - w0) / n, 1e3 * (c1 - c0) / n))
print(f"RESULT {name} n={sim.n_particles} substeps/round={n} wall_ms=" + ",".join(f"{w:.4f}" for w, _ in res)
      + " cpu_ms=" + ",".join(f"{c:.4f}" for _, c in res) + f" best_wall={min(w for w, _ in res):.4f} best_cpu={min(c for _, c in res):.4f}")
