"""The transfer to the grid (clear, P2G, block list: ``polyalloy.bench.time_p2g``) of a bench
workload in three ways, alternating round by round in one process from one state: the serial P2G
on the calling thread, P2G in the runtime's lanes with Taichi's workers left to the scheduler, and
the same with them pinned one to a core (``polyalloy.affinity``; the runtime pinned them at start).

    python tools/pin_ab.py [WORKLOAD] [--rounds N]      (default polyalloy_block, 30 rounds)

Prints each way's median and best wall ms and median CPU ms a transfer, and the medians of the
round-by-round ratios (the serial over each laned way; free over pinned). Needs a runtime whose
workers were pinned (as many threads as cores, ``POLYALLOY_PIN_THREADS`` not 0).
"""
import argparse
import os
import statistics
import sys

from polyalloy import bench, runtime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", nargs="?", default="polyalloy_block")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--n-grid", type=int, default=64)
    args = ap.parse_args()
    bench._start_runtime("cpu")
    info = runtime.info()
    if not info.cores or info.p2g_lanes < 2:
        return f"error: nothing to compare: workers pinned to {info.cores or 'no cores'}, {info.p2g_lanes} lane(s)"
    cores = sorted(os.sched_getaffinity(0))
    workers = sorted(int(t) for t in os.listdir("/proc/self/task") if len(os.sched_getaffinity(int(t))) == 1)
    works = {w.name: w for w in bench.WORKLOADS}
    if args.workload not in works:
        return f"error: unknown workload {args.workload!r}; one of {', '.join(works)}"
    laned = bench._warm_up(works[args.workload].build(args.n_grid, 1e-4))
    laned.start = laned.save()
    with runtime.p2g_lanes_of(1):
        serial = works[args.workload].build(args.n_grid, 1e-4)
    serial.load(laned.start)

    def pin(on: bool) -> None:
        for worker, core in zip(workers, cores):
            os.sched_setaffinity(worker, {core} if on else set(cores))

    bench.time_p2g(laned.sim, 1)
    bench.time_p2g(serial.sim, 1)
    got = {"serial": [], "lanes, free": [], "lanes, pinned": []}
    for _ in range(args.rounds):
        got["serial"].append(bench.time_p2g(serial.sim))
        pin(False)
        got["lanes, free"].append(bench.time_p2g(laned.sim))
        pin(True)
        got["lanes, pinned"].append(bench.time_p2g(laned.sim))
    print(f"{args.workload}: {info.p2g_lanes} lanes, workers {workers} on cores {cores}; {args.rounds} rounds "
          f"of {bench.P2G_REPEATS} transfers")
    for name, times in got.items():
        print(f"  {name:14s} wall median {statistics.median(w for w, _ in times):6.2f} ms, best "
              f"{min(w for w, _ in times):6.2f}; CPU median {statistics.median(c for _, c in times):6.2f} ms")

    def ratio(a, b):
        r = [x[0] / y[0] for x, y in zip(got[a], got[b])]
        q = statistics.quantiles(r, n=4)
        return f"{statistics.median(r):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})"

    print(f"  serial over lanes, free:   {ratio('serial', 'lanes, free')}")
    print(f"  serial over lanes, pinned: {ratio('serial', 'lanes, pinned')}")
    print(f"  free over pinned:          {ratio('lanes, free', 'lanes, pinned')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
