"""Medians and ranges of several ``polyalloy bench --json`` runs: the form the docs report figures in.

    for i in 1 2 3; do polyalloy bench --arch cpu --json > /tmp/bench$i.json; done
    python tools/bench_median.py /tmp/bench1.json /tmp/bench2.json /tmp/bench3.json

Prints, per workload, ms/substep and million particle-steps/s (median, then the range), the
compile time of each run, and the share yielding at the start and end of the timed substeps where
the workload reports it; then every ratio of the JSON (those all the runs have), how steady each
run's reference was (its slowest round over its fastest), P2G's lanes against its serial loop
(best round each) and the scaling exponent.
"""
from __future__ import annotations

import json
import statistics
import sys


def median_range(values, fmt: str = "{:.2f}") -> str:
    v = sorted(values)
    return f"{fmt.format(statistics.median(v))} ({fmt.format(v[0])}-{fmt.format(v[-1])})"


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    runs = [json.load(open(p)) for p in paths]
    print(f"{len(runs)} runs; {runs[0].get('device')}, {runs[0].get('threads')} threads")
    for name in runs[0]["workloads"]:
        w = [r["workloads"][name] for r in runs]
        line = (f"{name:18s} ms/substep {median_range([x['ms_per_substep'] for x in w])}  "
                f"M p-steps/s {median_range([x['particle_steps_per_s'] / 1e6 for x in w], '{:.3f}')}  "
                "compile (s) " + ", ".join(f"{x['compile_s']:.1f}" for x in w))
        if "yielding" in w[0]:
            line += f"  yielding {w[0].get('yielding_start', 0):.0%} -> {w[0]['yielding']:.0%}"
        print(line)
    for key in runs[0]["ratios"]:
        if all(key in r["ratios"] for r in runs):  # runs of older code lack the newer ratios
            print(f"{key}: {median_range([r['ratios'][key] for r in runs], '{:.3f}')}")
    spreads = [r["workloads"]["reference_mpm3d"].get("round_spread") for r in runs]
    if None not in spreads:
        print("reference_mpm3d's slowest round over its fastest, per run: " + ", ".join(f"{s:.2f}" for s in spreads))
    if all("p2g_lanes" in r for r in runs):
        lanes = runs[0]["p2g_lanes"]
        for name in ("polyalloy_block", "fluid_block"):
            if all(name in r["p2g_lanes"] for r in runs):
                print(f"P2G alone, {lanes['lanes']} lanes vs the serial loop, {name}: "
                      f"{median_range([r['p2g_lanes'][name]['speedup'] for r in runs], '{:.3f}')}")
    if all("scaling" in r for r in runs):
        print(f"scaling exponent: {median_range([r['scaling']['exponent'] for r in runs])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
