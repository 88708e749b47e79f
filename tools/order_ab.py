"""What particle order costs: the same state twice in one process, once in its own order and once
with the particles reordered (every particle field permuted alike), substeps timed alternating.

    python tools/order_ab.py workload polyalloy_block [--order random|sorted|blocks] [--pairs 30]
    python tools/order_ab.py scene dam_break --at 2.0 [--set dim=2] [--order sorted|blocks]

``workload``: a ``polyalloy bench`` workload at ``--n-grid`` cells/m (64), as sampled (lattice order) against
``--order random`` (shuffled) or ``sorted`` (by grid block of 4 cells). ``scene``: the scene run to
``--at`` seconds, as it stands then against sorted by block. ``--order blocks``: the slots stay as
they are (``--shuffled``: both shuffled alike first, as in a scene long in motion) and the second
run's P2G visits them in block order, sorted again every ``--every`` substeps (``kernels.order``,
``POLYALLOY_SORT_EVERY``; and at each reload of the state, every 25 substeps: on average every
12.5 at the default 16): what the lever buys. ``--arch cuda`` on a GPU (``tools/gpu_bench.sh``,
``ORDER_AB``). Prints one JSON line: the median ms a substep of each, the median and quartiles of
reordered / as-is over the pairs, and the share of consecutive particles (in P2G's visiting
order) in different blocks before and after.
"""
import argparse
import json
import statistics
import sys
import types

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("kind", choices=("workload", "scene"))
ap.add_argument("name")
ap.add_argument("--order", default="sorted", choices=("random", "sorted", "blocks"))
ap.add_argument("--every", type=int, default=16, help="blocks: substeps between two sorts")
ap.add_argument("--shuffled", action="store_true", help="blocks: shuffle both runs' slots first")
ap.add_argument("--arch", default="cpu")
ap.add_argument("--n-grid", type=int, default=64, help="workload: cells per metre")
ap.add_argument("--at", type=float, default=2.0, help="scene: seconds to run before timing")
ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
ap.add_argument("--pairs", type=int, default=30)
args = ap.parse_args()

from polyalloy import bench  # noqa: E402

bench._start_runtime(args.arch)
if args.kind == "workload":
    works = {w.name: w for w in bench.WORKLOADS}
    if args.name not in works:
        sys.exit(f"error: unknown workload {args.name!r}; one of {', '.join(works)}")
    a, b = (works[args.name].build(args.n_grid, bench.BASE_DT / args.n_grid) for _ in range(2))
    sims, state = (a.sim, b.sim), a.save()

    def block(k):
        return bench.substep_ms((a, b)[k], 5)
else:
    from polyalloy.scene import load_scene
    from polyalloy.simulation import Simulation

    over = dict(s.split("=", 1) for s in args.set)
    sims = tuple(Simulation(load_scene(args.name, overrides=dict(over))) for _ in range(2))
    sims[0].advance_to(args.at)
    state, dt = sims[0].state_dict(), 0.8 * sims[0].stable_dt()

    steppers = tuple(types.SimpleNamespace(step=lambda s=s: s.substep(dt)) for s in sims)  # bench.substep_ms's case

    def block(k):
        return bench.substep_ms(steppers[k], 5)

n = sims[0].n_particles
grid = sims[0].grid
x = state["field/particles_fields/x"][:n]
# the block of each stencil's lower corner, as kernels.order keys it
base = np.floor((x - np.array(grid.host_origin)) / grid.host_dx - 0.5).astype(np.int64)
blocks = np.clip(base, 0, np.array(grid.host_res) - 3) // grid.block
key = blocks[:, 0]
for d in range(1, blocks.shape[1]):
    key = key * grid.n_blocks[d] + blocks[:, d]


def permuted(state, perm):
    out = {}
    for name, v in state.items():
        if name.startswith("field/particles_fields/") and v.ndim >= 1 and v.shape[0] >= n:
            v = v.copy()
            v[:n] = v[perm]
        out[name] = v
    return out


if args.order == "blocks":
    if args.shuffled:
        shuffle = np.random.default_rng(0).permutation(n)
        state, key = permuted(state, shuffle), key[shuffle]
    perm = np.argsort(key, kind="stable")  # the order the sort gives (a block's slots in slot order)
    states = (state, state)
    sims[0].sort_every, sims[1].sort_every = 0, args.every
elif args.kind == "workload" and args.order == "random":
    perm = np.random.default_rng(0).permutation(n)
    states = (state, permuted(state, perm))
else:
    perm = np.argsort(key, kind="stable")
    states = (state, permuted(state, perm))


def load(k):
    sims[k].load_state_dict(states[k])
    sims[k].since_sort = 0  # a sort on the next substep (the blocks' run)


for k in (0, 1, 0, 1):
    load(k)
    block(k)
ms = ([], [])
for i in range(args.pairs):
    if i % 5 == 0:  # back to the start now and then: both time the same stretch of the run
        load(0)
        load(1)
    for k in ((0, 1) if i % 2 == 0 else (1, 0)):
        ms[k].append(block(k))
r = [y / x for x, y in zip(*ms)]
q = statistics.quantiles(r, n=4)
print(json.dumps(dict(kind=args.kind, name=args.name, order=args.order if args.kind == "workload" or args.order == "blocks"
                      else "sorted", every=args.every if args.order == "blocks" else None, shuffled=args.shuffled,
                      arch=args.arch,
                      particles=n, as_is_ms=round(statistics.median(ms[0]), 3),
                      reordered_ms=round(statistics.median(ms[1]), 3),
                      reordered_over_as_is=round(statistics.median(r), 4), quartiles=[round(q[0], 4), round(q[2], 4)],
                      block_changes=[round(float(np.mean(key[1:] != key[:-1])), 4),
                                     round(float(np.mean(key[perm][1:] != key[perm][:-1])), 4)])))
