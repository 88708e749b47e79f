"""P2G against the CPU threads: one process per lane count, each on as many threads as lanes, times
the P2G of a bench workload (``polyalloy.bench.time_p2g``) and its whole substep; one JSON line.

    python tools/p2g_scaling.py [--workloads polyalloy_block,fluid_block] [--lanes 1,2,4,8,16]
                                [--n-grid 64] [--rounds 7]

Lanes 1 is the serial P2G on one thread (the whole process on one thread: the "1-thread speed");
lanes L runs P2G in L lanes on L threads (``kernels.fields.Grid.lanes``, ``POLYALLOY_P2G_LANES``).
Each process reports the best and the median of ``rounds`` rounds (``bench.P2G_REPEATS`` P2Gs
each) and of as many rounds of 20 substeps, all from the workload's warmed-up state, and the
grid mass after P2G (equal to rounding across lane counts). The parent adds each count's
speedup over lanes 1. A lane count above the machine's threads is skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import time

CHILD = """
import json, os, sys
import numpy as np
import polyalloy
from polyalloy import bench
from polyalloy.kernels import mpm
name, n_grid, lanes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
info = polyalloy.init(arch="cpu", threads=lanes)
dt = bench.BASE_DT / n_grid
case = {w.name: w.build for w in bench.WORKLOADS}[name](n_grid, dt)
start = case.save()
p2g, substep = [], []
for _ in range(rounds):
    case.load(start)
    p2g.append(bench.time_p2g(case.sim)[0])
    case.load(start)
    substep.append(bench.substep_ms(case))
case.load(start)
bench.time_p2g(case.sim, 1)
print(json.dumps(dict(workload=name, lanes=case.sim.grid.lanes, threads=info.threads, particles=case.particles,
                      p2g_ms=min(p2g), p2g_median_ms=float(np.median(p2g)), substep_ms=min(substep),
                      substep_median_ms=float(np.median(substep)), compile_s=case.compile_s,
                      grid_mass=float(mpm.grid_mass(case.sim.grid)))))
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="polyalloy_block,fluid_block")
    ap.add_argument("--lanes", default="1,2,4,8,16")
    ap.add_argument("--n-grid", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per process")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    out = dict(cpu_count=cores, n_grid=args.n_grid, rounds=args.rounds, runs=[], skipped=[])
    for name in args.workloads.split(","):
        base = None
        for lanes in (int(s) for s in args.lanes.split(",")):
            if lanes > cores:
                out["skipped"].append(dict(workload=name, lanes=lanes, reason=f"{cores} threads on this machine"))
                continue
            env = dict(os.environ, POLYALLOY_P2G_LANES=str(lanes), ENABLE_TAICHI_HEADER_PRINT="0")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, name, str(args.n_grid), str(lanes), str(args.rounds)],
                                  capture_output=True, text=True, env=env, timeout=args.timeout)
            if proc.returncode != 0:
                out["runs"].append(dict(workload=name, lanes=lanes, error=proc.stderr.strip().splitlines()[-1:]))
                continue
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run["wall_s"] = time.perf_counter() - t0
            if lanes == 1:
                base = run
            if base is not None:
                run["p2g_speedup"] = base["p2g_ms"] / run["p2g_ms"]
                run["substep_speedup"] = base["substep_ms"] / run["substep_ms"]
                run["grid_mass_vs_serial"] = run["grid_mass"] / base["grid_mass"] - 1.0
            out["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
