"""How much work a Taichi CPU parallel loop needs before a second thread joins in: times a plain
parallel loop (20 sines per element) over 4k to 128k elements, wall against process CPU time,
with Taichi's workers left to the scheduler and pinned one to a core (``polyalloy.affinity``),
the two alternating in one process.

    python tools/thread_wake.py [THREADS]        (default: all of the machine's)

Where the CPU time equals the wall time the loop ran on one thread. On this project's 2-core VM,
unpinned, the second worker joined a loop only after a few ms (docs/benchmark.md, "Taichi's
workers, one to a core").
"""
import os
import statistics
import sys
import time

import taichi as ti

from polyalloy import affinity


def main(threads: int | None = None) -> None:
    before = set(affinity.thread_times())
    ti.init(arch=ti.cpu, log_level=ti.ERROR, **({"cpu_max_num_threads": threads} if threads else {}))
    threads = threads or os.cpu_count() or 1
    started = set(affinity.thread_times()) - before
    cores = sorted(os.sched_getaffinity(0))
    workers = affinity.pool_workers(started, threads)
    if len(workers) != threads or len(cores) < threads:
        sys.exit(f"found {len(workers)} of Taichi's {threads} workers on {len(cores)} cores: nothing to compare")
    x = ti.field(ti.f32, shape=1 << 19)

    @ti.kernel
    def work(n: ti.i32):
        for p in range(n):
            v = x[p]
            for _ in range(20):
                v = ti.sin(v) + 1.0
            x[p] = v

    def pin(on: bool) -> None:
        for worker, core in zip(workers, cores):
            os.sched_setaffinity(worker, {core} if on else set(cores))

    print(f"{threads} workers {workers} on cores {cores}; median of 7 rounds of 20 loops, ms a loop")
    for n in (1 << 12, 1 << 13, 1 << 15, 1 << 17):
        work(n)
        ti.sync()
        got = {False: [], True: []}
        for _ in range(7):
            for on in (False, True):
                pin(on)
                w, c = time.perf_counter(), time.process_time()
                for _ in range(20):
                    work(n)
                ti.sync()
                got[on].append((1e3 * (time.perf_counter() - w) / 20, 1e3 * (time.process_time() - c) / 20))
        print(f"{n:>7,} elements: " + "; ".join(
            f"{'pinned' if on else 'free  '} {statistics.median(w for w, _ in r):6.2f} wall, "
            f"{statistics.median(c for _, c in r):6.2f} CPU" for on, r in got.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
