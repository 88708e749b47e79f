"""Do this machine's two vCPUs run two jobs at once at full speed? The same one-thread job in two
processes, one pinned to each core: timed alone (its twin paused) and side by side, the two ways
alternating, so a noisy hour slows both alike.

    python tools/corun.py [JOB] [--pairs N]

JOBs: ``p2g`` (the serial transfer to the grid of ``polyalloy_block``: clear, P2G and block list,
``polyalloy.bench.time_p2g`` on one thread), ``p2g_fluid`` (the same for ``fluid_block``),
``fma`` (numpy matrix products on one BLAS thread, 192x192 float32: register- and
FMA-bound, fits a core's L2) and ``stream`` (numpy adds over 64 MB arrays: memory-bound).

Prints, for the job on core 0, the median wall ms of a round alone and beside its twin, and the
slowdown (beside over alone) with its quartiles over the pairs. Two independent cores give ~1.0;
two hyperthreads of one core (a cloud vCPU pair often is; the hypervisor may not say so) slow an
FMA-bound job toward 2x. The speed of P2G on two lanes can at best be 2 / slowdown(p2g) times the
serial one: the cap the hardware sets, whatever the P2G does.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

JOBS = ("p2g", "p2g_fluid", "fma", "stream")


def _job(name: str):
    """A callable that runs one round of ``name`` and returns its wall ms."""
    if name in ("p2g", "p2g_fluid"):
        os.environ["POLYALLOY_THREADS"] = "1"
        from polyalloy import bench

        bench._start_runtime("cpu")
        work = {w.name: w for w in bench.WORKLOADS}["polyalloy_block" if name == "p2g" else "fluid_block"]
        case = bench._warm_up(work.build(64, 1e-4))
        bench.time_p2g(case.sim, 1)
        return lambda: bench.time_p2g(case.sim)[0]
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy as np

    if name == "fma":
        a = np.random.default_rng(0).random((192, 192), dtype=np.float32)
        b = a.copy()

        def fma():
            t0 = time.perf_counter()
            for _ in range(200):
                a @ b
            return (time.perf_counter() - t0) * 1e3
        return fma
    x = np.ones(16 << 20, np.float32)
    y = np.ones(16 << 20, np.float32)
    z = np.empty_like(x)

    def stream():
        t0 = time.perf_counter()
        for _ in range(4):
            np.add(x, y, out=z)
        return (time.perf_counter() - t0) * 1e3
    return stream


def child(name: str, core: int) -> None:
    """Pinned to ``core``: read a number of rounds per line, run them, print their wall ms."""
    os.sched_setaffinity(0, {core})
    run = _job(name)
    run()
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        print(" ".join(f"{run():.4f}" for _ in range(n)), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", nargs="?", default="p2g", choices=JOBS)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=5, help="rounds a turn")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.job, args.child)
        return 0
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return "error: needs two cores"
    kids = [subprocess.Popen([sys.executable, __file__, args.job, "--child", str(c)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE) for c in cores[:2]]
    for k in kids:  # Taichi's banner comes first on stdout
        for line in k.stdout:
            if line.strip() == "ready":
                break
        else:
            return "error: a child failed to start"

    def turn(both: bool) -> float:
        # The twin runs one round more than the job so that it is busy for all of the job's rounds.
        if both:
            kids[1].stdin.write(f"{args.rounds + 1}\n")
            kids[1].stdin.flush()
        kids[0].stdin.write(f"{args.rounds}\n")
        kids[0].stdin.flush()
        times = [float(t) for t in kids[0].stdout.readline().split()]
        if both:
            kids[1].stdout.readline()
        return statistics.median(times)

    alone, beside = [], []
    for i in range(args.pairs):
        for both in ((False, True) if i % 2 == 0 else (True, False)):
            (beside if both else alone).append(turn(both))
    for k in kids:
        k.stdin.close()
        k.wait()
    ratios = sorted(b / a for a, b in zip(alone, beside))
    q = statistics.quantiles(ratios, n=4)
    print(f"{args.job}: cores {cores[:2]}, {args.pairs} pairs of {args.rounds} rounds; alone "
          f"{statistics.median(alone):.3f} ms, beside its twin {statistics.median(beside):.3f} ms; "
          f"slowdown {statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
