"""Cold compile time of one ``polyalloy bench`` workload, in a fresh process with an empty
offline kernel cache: ``python tools/compile_time.py WORKLOAD [--n-grid N] [--warm] [--rounds R]
[--kernels]``.

Prints one JSON line: the workload, its ``compile_s`` (the first substep's excess over a steady
one, as the bench measures it) and the process's CPU seconds. ``--warm`` fills a cache in a
first process and times a second one's start from it; ``--cache DIR`` uses (and keeps) DIR.
``--rounds R``: then time R rounds of 20 substeps from the warmed-up state and give each
round's ms per substep, fastest first (to weigh a compile setting against its run time; use
``--n-grid 64``, the bench's size). ``--kernels``: also each kernel's first call (its compile,
the launch bracketed by ``ti.sync()``), seconds, longest first, in ``first_call_s``. The bench builds
every workload in one process, so a kernel that one workload compiled is cached for the next;
this tool times each alone, as a user's first run of that scene meets it.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("workload")
ap.add_argument("--n-grid", type=int, default=16, help="grid cells per metre (compile does not depend on it)")
ap.add_argument("--cache", help="offline cache directory (default: a new empty one)")
ap.add_argument("--warm", action="store_true", help="run once to fill --cache, then time a second process")
ap.add_argument("--rounds", type=int, default=0, help="then time this many rounds of 20 substeps")
ap.add_argument("--kernels", action="store_true", help="also time each kernel's first call (its compile)")
args = ap.parse_args()
forward = [args.workload, "--n-grid", str(args.n_grid), "--rounds", str(args.rounds)] + ["--kernels"] * args.kernels

if "TI_OFFLINE_CACHE_FILE_PATH" not in os.environ:
    cache = args.cache or tempfile.mkdtemp(prefix="polyalloy-compile-")
    os.environ["TI_OFFLINE_CACHE_FILE_PATH"] = cache
    if args.warm:
        import subprocess
        subprocess.run([sys.executable, __file__, args.workload, "--n-grid", str(args.n_grid)], check=True,
                       stdout=subprocess.DEVNULL, env=os.environ)
    os.execv(sys.executable, [sys.executable, __file__] + forward)

t0 = time.perf_counter()
first_call = {}
if args.kernels:
    import taichi as ti
    from taichi.lang import kernel_impl

    launch = kernel_impl.Kernel.__call__

    def _first_call_timed(kernel, *a, **k):
        name = kernel.func.__name__
        if name in first_call:
            return launch(kernel, *a, **k)
        ti.sync()
        t = time.perf_counter()
        out = launch(kernel, *a, **k)
        ti.sync()
        first_call[name] = time.perf_counter() - t
        return out

    kernel_impl.Kernel.__call__ = _first_call_timed
from polyalloy import bench  # noqa: E402

bench._start_runtime("cpu")
works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
case = works[args.workload].build(args.n_grid, bench.BASE_DT / args.n_grid)
ru = resource.getrusage(resource.RUSAGE_SELF)
out = dict(workload=args.workload, compile_s=round(case.compile_s, 2), process_s=round(time.perf_counter() - t0, 2),
           cpu_s=round(ru.ru_utime + ru.ru_stime, 2), cfg_optimization=os.environ.get("TI_CFG_OPTIMIZATION", "0"),
           cache=os.environ["TI_OFFLINE_CACHE_FILE_PATH"])
if args.kernels:
    out["first_call_s"] = {k: round(v, 2) for k, v in sorted(first_call.items(), key=lambda kv: -kv[1]) if v >= 0.05}
if args.rounds:
    start, ms = case.save(), []
    for _ in range(args.rounds):
        case.load(start)
        ms.append(round(bench.substep_ms(case), 2))
    out["ms_per_substep"] = sorted(ms)
print(json.dumps(out))
