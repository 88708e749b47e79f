"""Time the bench's flowing workload (``polyalloy_flow``) on its fast and its plain path, interleaved
in one process, and print one JSON line.

    python tools/flow_bench.py [N_GRID] [TAG]      (default 64: 65,536 particles, as in the bench)

The fast path is what ``polyalloy bench`` times; the plain path (``knobs.plain``) takes the SVD
for every solid particle, so the ratio fast / plain, measured in the same process, is steady on a
loaded machine where the wall time is not. To compare two versions of the code, run this on each
in turn (a checkout of each, or ``git stash``), alternating, three times or more, and compare the
CPU milliseconds and the ratio. Rounds: 4 of each path, 20 substeps each, every one from the same
saved state; the best of each is reported, with every round, the CPU time (all threads), the
yielding share at the start and the end, how far the fast path's checksum lies from the plain
path's (``polyalloy.bench.checksum_error``), the per-kernel breakdown of the fast path and the load.
"""
import json
import os
import sys
import time

import polyalloy
from polyalloy import bench

ROUNDS, SUBSTEPS = 4, 20


def main(n_grid: int = bench.FULL_GRID, tag: str = "") -> dict:
    import taichi as ti

    polyalloy.init(arch="cpu")
    dt = bench.BASE_DT / n_grid
    t0 = time.perf_counter()
    case = bench._flow_case(n_grid, dt)
    build_s = time.perf_counter() - t0
    case.start = case.save()
    yielding_start = case.yielding()
    wall, cpu, last = {0: [], 1: []}, {0: [], 1: []}, {}
    for _ in range(ROUNDS):
        for plain in (0, 1):
            case.load(case.start)
            case.plain(plain)
            ti.sync()
            w, c = time.perf_counter(), time.process_time()
            for _ in range(SUBSTEPS):
                case.step()
            ti.sync()
            wall[plain].append(1e3 * (time.perf_counter() - w) / SUBSTEPS)
            cpu[plain].append(1e3 * (time.process_time() - c) / SUBSTEPS)
            case.plain(0)
            last[plain] = case.checksum()
    yielding_end = case.yielding()
    kernels = bench.kernel_breakdown(case.sim, dt, SUBSTEPS, 2, restore=lambda: case.load(case.start))
    out = dict(tag=tag, n_grid=n_grid, particles=case.particles, compile_s=case.compile_s, build_s=build_s,
               yielding=[yielding_start, yielding_end], fast_ms=wall[0], plain_ms=wall[1], fast_cpu_ms=cpu[0],
               plain_cpu_ms=cpu[1], fast_over_plain=min(wall[0]) / min(wall[1]),
               fast_over_plain_cpu=min(cpu[0]) / min(cpu[1]),
               checksum_error=bench.checksum_error(last[0], last[1], case.sim.scene.dx, case.sim.total_mass()),
               kernel_ms=kernels, load=list(os.getloadavg()))
    case.sim.close()
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(int(args[0]) if args else bench.FULL_GRID, args[1] if len(args) > 1 else "")))
