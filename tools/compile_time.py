"""Cold compile time of one ``polyalloy bench`` workload, in a fresh process with an empty
offline kernel cache: ``python tools/compile_time.py WORKLOAD [--n-grid N] [--warm]``.

Prints one JSON line: the workload, its ``compile_s`` (the first substep's excess over a steady
one, as the bench measures it) and the process's CPU seconds. ``--warm`` keeps the cache
directory of an earlier run (``--cache DIR``) to time a warm start instead. The bench builds
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
args = ap.parse_args()

if "TI_OFFLINE_CACHE_FILE_PATH" not in os.environ:
    cache = args.cache or tempfile.mkdtemp(prefix="polyalloy-compile-")
    os.environ["TI_OFFLINE_CACHE_FILE_PATH"] = cache
    if args.warm:
        import subprocess
        subprocess.run([sys.executable, __file__, args.workload, "--n-grid", str(args.n_grid)], check=True,
                       stdout=subprocess.DEVNULL, env=os.environ)
    os.execv(sys.executable, [sys.executable, __file__, args.workload, "--n-grid", str(args.n_grid)])

t0 = time.perf_counter()
from polyalloy import bench  # noqa: E402

bench._start_runtime("cpu")
works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
case = works[args.workload].build(args.n_grid, bench.BASE_DT / args.n_grid)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(workload=args.workload, compile_s=round(case.compile_s, 2),
                      process_s=round(time.perf_counter() - t0, 2), cpu_s=round(ru.ru_utime + ru.ru_stime, 2),
                      cache=os.environ["TI_OFFLINE_CACHE_FILE_PATH"])))
