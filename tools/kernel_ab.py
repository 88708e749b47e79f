"""Time this tree's MLS-MPM kernels against another version of ``kernels/mpm.py``, substep by
substep in one process on the same fields, so that the machine's drift (this project's shared
2-core machines move by 20% from minute to minute) falls on both alike:

    git show REV:kernels/mpm.py > /tmp/mpm_old.py
    python tools/kernel_ab.py /tmp/mpm_old.py polyalloy_block [--n-grid 64] [--pairs 60]

It builds a ``polyalloy bench`` workload, then runs ``2 x pairs`` substeps, the even ones with
this tree's ``mpm`` kernels and the odd ones with the other file's (loaded as a module of its own;
it imports the rest of the kernels from this tree), each launch timed as ``polyalloy bench``'s
kernel breakdown times it (``bench._TimedKernels``: bracketed by ``ti.sync()``).
Prints one JSON line: per kernel (``p2g``, ``g2p``, ...) and for their sum (``substep``), the
median ms of each and the median and quartiles of this / other over the pairs (above 1: this
tree's kernel is slower; with the old file as ``other``, new / old). The state moves on through
both, so both time the same physics a substep apart. Each substep's ``clear_grid`` clears the
blocks the other version listed a substep before: where a variant lists other blocks, compare
``substep``, not the grid passes one by one."""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("other", help="another version of kernels/mpm.py")
ap.add_argument("workload")
ap.add_argument("--n-grid", type=int, default=64, help="grid cells per metre (the bench's size: 64)")
ap.add_argument("--pairs", type=int, default=60)
args = ap.parse_args()
os.environ.setdefault("TI_OFFLINE_CACHE_FILE_PATH", os.path.join(tempfile.gettempdir(), "polyalloy-kernel-ab"))

import polyalloy.simulation as simulation  # noqa: E402
from polyalloy import bench  # noqa: E402

spec = importlib.util.spec_from_file_location("polyalloy.kernels.mpm_other", args.other)
other = importlib.util.module_from_spec(spec)
spec.loader.exec_module(other)
this = simulation.mpm
bench._start_runtime("cpu")
works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
case = works[args.workload].build(args.n_grid, bench.BASE_DT / args.n_grid)
case.sim.fused = False  # a launch per pass, so that P2G and G2P are timed apart
for module in (this, other):  # compile both files' per-pass kernels before the timing
    simulation.mpm = module
    for _ in range(3):
        case.step()
times = {"this": {}, "other": {}}
try:
    for k in range(2 * args.pairs):
        which = "this" if k % 2 == 0 else "other"
        totals = defaultdict(float)  # seconds per kernel, each launch bracketed by ti.sync()
        simulation.mpm = bench._TimedKernels(this if which == "this" else other, totals)
        case.step()
        for name, seconds in totals.items():
            times[which].setdefault(name, []).append(1e3 * seconds)
finally:
    simulation.mpm = this
out = {"workload": args.workload, "pairs": args.pairs}
for which in ("this", "other"):  # the substep: every kernel of it summed
    times[which]["substep"] = [sum(ms) for ms in zip(*times[which].values())]
for name in times["this"]:
    a, b = times["this"][name], times["other"][name]
    q = statistics.quantiles([x / y for x, y in zip(a, b)], n=4)
    out[name] = dict(this_ms=round(statistics.median(a), 3), other_ms=round(statistics.median(b), 3),
                     this_over_other=round(q[1], 3), quartiles=[round(q[0], 3), round(q[2], 3)])
print(json.dumps(out))
