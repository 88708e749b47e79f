"""Time the transfer to the grid (``clear_grid``, ``p2g``, ``collect_blocks``) of this tree's
``kernels/mpm.py`` against other versions of it, on one fixed state of a ``polyalloy bench``
workload, in one process:

    python tools/p2g_ab.py /tmp/mpm_variant.py [/tmp/mpm_other.py ...] [--workload polyalloy_block]

P2G changes no particle, so every version transfers the very same state: after one untimed
transfer each, ``--rounds`` rounds alternate the versions, each round ``--repeats`` transfers
back to back with one sync at the end. Prints per version the best and median ms of a transfer
and the median over the rounds of its time over this tree's (below 1: the variant is faster).
``POLYALLOY_THREADS=1`` times the serial P2G; the default, the runtime's lanes."""
import argparse
import importlib.util
import os
import statistics
import sys
import tempfile

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("others", nargs="+", help="other versions of kernels/mpm.py")
ap.add_argument("--workload", default="polyalloy_block")
ap.add_argument("--n-grid", type=int, default=64, help="grid cells per metre (the bench's size: 64)")
ap.add_argument("--rounds", type=int, default=15)
ap.add_argument("--repeats", type=int, default=10)
args = ap.parse_args()
os.environ.setdefault("TI_OFFLINE_CACHE_FILE_PATH", os.path.join(tempfile.gettempdir(), "polyalloy-kernel-ab"))

import polyalloy.simulation as simulation  # noqa: E402
from polyalloy import bench  # noqa: E402

bench._start_runtime("cpu")
versions = [("this tree", simulation.mpm)]
for i, path in enumerate(args.others):
    spec = importlib.util.spec_from_file_location(f"polyalloy.kernels.mpm_other{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    versions.append((path, module))
works = {w.name: w for w in bench.WORKLOADS}
if args.workload not in works:
    sys.exit(f"error: unknown workload {args.workload!r}; one of {', '.join(works)}")
case = works[args.workload].build(args.n_grid, bench.BASE_DT / args.n_grid)
sim = case.sim


def transfer(mpm, repeats: int) -> float:
    return bench.time_p2g(sim, repeats, mpm)[0]


for _, mpm in versions:
    transfer(mpm, 1)  # compile
times = {name: [] for name, _ in versions}
for _ in range(args.rounds):
    for name, mpm in versions:
        times[name].append(transfer(mpm, args.repeats))
base = times["this tree"]
for name, t in times.items():
    ratio = statistics.median(a / b for a, b in zip(t, base))
    print(f"{name}: best {min(t):.3f} ms, median {statistics.median(t):.3f} ms, over this tree's {ratio:.3f}")
