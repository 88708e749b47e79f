"""What Taichi's CPU runtime charges for a loop with nothing to do: launches of an empty kernel, of
one and of five empty parallel loops (``for i in range(0)``), and of five serialised ones
(``ti.loop_config(serialize=True)``), microseconds a launch.

    python tools/dispatch_cost.py [THREADS]        (default: all of the machine's)

A parallel loop is handed to Taichi's thread pool: the calling thread wakes the workers and
sleeps until they are done, whatever the loop's size; a serialised one runs on the calling
thread. Started as ``polyalloy.init`` starts Taichi, so a launch's Python side is
``polyalloy.launch``'s (the empty kernel's line). On this project's 2-core VM a parallel loop cost
about 100-130 us this way (docs/benchmark.md, "Small simulations on one thread").
"""
import statistics
import sys
import time

import taichi as ti

import polyalloy


def main(threads: int | None = None) -> None:
    polyalloy.init(arch="cpu", threads=threads)  # with its launch path (polyalloy.launch): the runtime's part shows
    x = ti.field(ti.f32, 16)

    @ti.kernel
    def empty():
        pass

    @ti.kernel
    def one_loop():
        for i in range(0):
            x[i] = 1.0

    @ti.kernel
    def five_loops():
        for k in ti.static(range(5)):  # unrolled: five top-level loops, five tasks
            for i in range(0):
                x[i] = k

    @ti.kernel
    def five_serial():
        for k in ti.static(range(5)):
            ti.loop_config(serialize=True)
            for i in range(0):
                x[i] = k

    def per_launch(kernel, n: int = 3000) -> float:
        kernel()
        ti.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            kernel()
        ti.sync()
        return 1e6 * (time.perf_counter() - t0) / n

    for kernel in (empty, one_loop, five_loops, five_serial):
        rounds = [per_launch(kernel) for _ in range(5)]
        print(f"{kernel.__name__:>12}: {statistics.median(rounds):6.1f} us a launch "
              f"(rounds {min(rounds):.1f}-{max(rounds):.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
