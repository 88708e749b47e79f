"""Time a substep in two launches (``kernels.substep``) against the same substep launched pass by
pass (``Simulation.fused`` off), alternating in one process on the same fields, so that the
machine's drift falls on both alike:

    python tools/launch_ab.py fluid_block_2d [--n-grid 64] [--pairs 60] [--block 5] [--arch cpu]

It builds a ``polyalloy bench`` workload, compiles both paths, then runs ``pairs`` pairs of
``block`` substeps each, two launches and pass by pass in turn (which goes first alternates), each
block timed whole (``ti.sync()`` before and after). The state moves on through both: the two
paths give the same state to the bit (``tests/test_mpm.py``), so both time the same physics a
few substeps apart. Prints one JSON line: the median ms per substep of each path, and the median
and quartiles of fused / per-pass over the pairs (below 1: two launches are faster)."""
import argparse
import json
import statistics
import sys

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("workload")
ap.add_argument("--n-grid", type=int, default=64, help="grid cells per metre (the bench's size: 64)")
ap.add_argument("--pairs", type=int, default=60)
ap.add_argument("--block", type=int, default=5, help="substeps timed together")
ap.add_argument("--arch", default="cpu", help="cpu, cuda, ... (polyalloy.init's arch; tools/gpu_bench.sh runs it on the GPU)")
args = ap.parse_args()

from polyalloy import bench  # noqa: E402

bench._start_runtime(args.arch)

works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
case = works[args.workload].build(args.n_grid, bench.BASE_DT / args.n_grid)
sim = case.sim


def block(fused: bool) -> float:
    sim.fused = fused
    return bench.substep_ms(case, args.block)


for fused in (True, False, True, False):  # compile both, then one more of each
    block(fused)
ms = {True: [], False: []}
for k in range(args.pairs):
    order = (True, False) if k % 2 == 0 else (False, True)
    for fused in order:
        ms[fused].append(block(fused))
ratios = [a / b for a, b in zip(ms[True], ms[False])]
q = statistics.quantiles(ratios, n=4)
print(json.dumps(dict(workload=args.workload, arch=args.arch, n_grid=args.n_grid, particles=case.particles, pairs=args.pairs,
                      block=args.block, fused_ms=round(statistics.median(ms[True]), 4),
                      per_pass_ms=round(statistics.median(ms[False]), 4),
                      fused_over_per_pass=round(statistics.median(ratios), 4),
                      quartiles=[round(q[0], 4), round(q[2], 4)])))
