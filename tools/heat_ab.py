"""Time a ``polyalloy bench`` workload with the heat stepped every substep against the multirate
heat (one heat step over as many substeps as fit in its cap, ``kernels.heat`` "Multirate"), in one
process on the same fields, blocks of 10 substeps alternating, so that this shared machine's drift
falls on both alike:

    python tools/heat_ab.py polyalloy_block [--n-grid 64] [--pairs 40]

Each block starts a fresh heat step (``heat_acc`` 0), so both count the same heat steps wherever
the block falls. Prints one JSON line: the median ms per substep of each and the median and
quartiles of every-substep / multirate over the pairs (above 1: the multirate heat is faster),
with the substeps a heat step spans here."""
import argparse
import json
import statistics
import sys

from polyalloy import bench

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("workload", help="a polyalloy bench workload with heat (polyalloy_block, polyalloy_flow, ...)")
ap.add_argument("--n-grid", type=int, default=64, help="grid cells per metre (the bench's size: 64)")
ap.add_argument("--pairs", type=int, default=40)
args = ap.parse_args()
works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
if args.pairs < 2:
    sys.exit("error: --pairs must be at least 2")
bench._start_runtime("cpu")
dt = bench.BASE_DT / args.n_grid
case = works[args.workload].build(args.n_grid, dt)
sim = case.sim
if not sim.thermal:
    sys.exit(f"error: {args.workload} has no heat to step")
knobs = sim.knobs


def block(group: int) -> float:
    knobs.heat_group[None] = group
    knobs.heat_acc[None] = 0.0
    knobs.heat_count[None] = 0
    return bench.substep_ms(case, 10)


for group in (1, 0, 1, 0):  # compiled and warm
    block(group)
every, multi = [], []
for _ in range(args.pairs):
    every.append(block(1))
    multi.append(block(0))
q = statistics.quantiles([a / b for a, b in zip(every, multi)], n=4)
span = 1
while (span + 1) * dt <= sim.heat_dt:  # kernels.mpm.choose_heat at a fixed step
    span += 1
print(json.dumps(dict(workload=args.workload, pairs=args.pairs, dt=dt, heat_cap=sim.heat_dt, substeps_per_heat_step=span,
                      every_ms=round(statistics.median(every), 3), multirate_ms=round(statistics.median(multi), 3),
                      every_over_multirate=round(q[1], 3), quartiles=[round(q[0], 3), round(q[2], 3)])))
