"""How much work a Taichi CPU parallel loop needs before a second thread joins in: times a plain
parallel loop (20 sines per element) over 8k to 512k elements, wall against process CPU time.

    python tools/thread_wake.py [THREADS]        (default: all of the machine's)

Where the CPU time equals the wall time the loop ran on one thread. On this project's 2-core VM
the second vCPU joined only from ~28 ms of work (docs/benchmark.md, "P2G in lanes").
"""
import sys
import time

import taichi as ti


def main(threads: int | None = None) -> None:
    ti.init(arch=ti.cpu, log_level=ti.ERROR, **({"cpu_max_num_threads": threads} if threads else {}))
    x = ti.field(ti.f32, shape=1 << 19)

    @ti.kernel
    def work(n: ti.i32):
        for p in range(n):
            v = x[p]
            for _ in range(20):
                v = ti.sin(v) + 1.0
            x[p] = v

    for n in (1 << 13, 1 << 15, 1 << 17, 1 << 19):
        work(n)
        ti.sync()
        w, c = time.perf_counter(), time.process_time()
        for _ in range(20):
            work(n)
        ti.sync()
        print(f"{n:>7,} elements: {1e3 * (time.perf_counter() - w) / 20:7.2f} ms wall, "
              f"{1e3 * (time.process_time() - c) / 20:7.2f} ms CPU")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
