"""What a kernel launch costs on the host, through Taichi's own Python path and through
``polyalloy.launch``'s memo: the substep's two kernels (``kernels.substep``) of a shipped 2D scene,
launched with the device clock stopped (a frame's end: every pass has nothing to do), so that the
time is the launch's alone: Python's part and Taichi's runtime dispatching the kernel's tasks.

    python tools/launch_memo.py [SCENE] [--launches 2000] [--rounds 5]

Rounds alternate the two paths; prints the microseconds a launch of each, per round and the
median, and their difference (what the memo saves a launch). Then the same for two calls of the
host's that launch a kernel with numpy arrays (``ti.types.ndarray``): a read of the particles
(``Simulation.particles``, the field I/O's one launch) and, where the scene has a moving
controller, the pose's upload (``Controller.upload_pose``), a call at a time with
``Kernel.__call__`` set to each path.
"""
import argparse
import statistics
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("scene", nargs="?", default="bars")
ap.add_argument("--launches", type=int, default=2000, help="pairs of launches a round")
ap.add_argument("--rounds", type=int, default=5)
args = ap.parse_args()

import polyalloy  # noqa: E402

polyalloy.init(arch="cpu", seed=0)
import taichi as ti  # noqa: E402
from taichi.lang import kernel_impl  # noqa: E402

from polyalloy import launch  # noqa: E402
from polyalloy.kernels import substep as ks  # noqa: E402
from polyalloy.scene import load_scene  # noqa: E402
from polyalloy.simulation import Simulation  # noqa: E402

if not launch.installed():
    raise SystemExit("error: the launch memo is off (POLYALLOY_LAUNCH_MEMO=0, or another Taichi)")
sim = Simulation(load_scene(args.scene, "preview", {"dim": 2}))
sim.step_frame()  # compiles; the clock stops at the frame's end
scatter = (sim.particles_fields, sim.grid, sim.materials, sim.colliders, sim.control_table, sim.knobs, sim.mixes)
gather = (sim.particles_fields, sim.grid, sim.materials, sim.colliders, sim.control_table, sim.knobs, sim.textured,
          sim.scene.dx)
paths = {"taichi": kernel_impl.Kernel.__call__.__wrapped__, "memo": kernel_impl.Kernel.__call__}


def per_launch(call) -> float:
    ti.sync()
    t0 = time.perf_counter()
    for _ in range(args.launches):
        call(ks.scatter_step._primal, *scatter)
        call(ks.gather_step._primal, *gather)
    ti.sync()
    return 1e6 * (time.perf_counter() - t0) / (2 * args.launches)


times = {name: [] for name in paths}
for r in range(args.rounds):
    for name in (("taichi", "memo") if r % 2 == 0 else ("memo", "taichi")):
        times[name].append(per_launch(paths[name]))
for name, t in times.items():
    print(f"{name}: {statistics.median(t):.1f} us a launch (rounds: {', '.join(f'{x:.1f}' for x in t)})")
print(f"saved: {statistics.median(a - b for a, b in zip(times['taichi'], times['memo'])):.1f} us a launch (median of the rounds)")


def per_call(fn, path, calls: int) -> float:
    saved = kernel_impl.Kernel.__call__
    kernel_impl.Kernel.__call__ = path
    try:
        fn()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return 1e6 * (time.perf_counter() - t0) / calls
    finally:
        kernel_impl.Kernel.__call__ = saved


calls = {"Simulation.particles()": sim.particles}
if sim.controller is not None and sim.controller.moving:
    calls["Controller.upload_pose(t)"] = lambda: sim.controller.upload_pose(sim.t)
for label, fn in calls.items():
    times = {name: [] for name in paths}
    for r in range(args.rounds):
        for name in (("taichi", "memo") if r % 2 == 0 else ("memo", "taichi")):
            times[name].append(per_call(fn, paths[name], max(1, args.launches // 10)))
    print(f"{label}: " + ", ".join(f"{name} {statistics.median(t):.0f} us" for name, t in times.items())
          + f" a call (medians of {args.rounds} rounds of {max(1, args.launches // 10)})")
