"""Where a command's wall time goes, from py-spy's raw samples: each function's share of the
samples that have it on their stack (inclusive), and of those that end in it (its own time).

    pip install py-spy   # a sampling profiler (not a project dependency)
    py-spy record -r 200 -f raw -o spy.txt -- polyalloy check freeze --set dim=2 --arch cpu --no-progress
    python tools/spy_summary.py spy.txt [--top 40] [--match NAME]

A sample is the whole stack at an instant, so the shares are of wall time as the process spent it
(cProfile, which times every call, inflates Python's small calls: a 52 s check took 83 s under it).
``--match`` lists the callers (four frames up) of the first frame whose name contains NAME.
"""
import argparse
import collections


def frame_name(frame: str) -> str:
    """``function file`` of a py-spy frame ``function (path/file.py:line)``."""
    function, _, where = frame.partition(" (")
    return f"{function} {where.rsplit('/', 1)[-1].split(':')[0]}".strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw", help="py-spy record -f raw output")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--match", help="list the callers of the first frame whose name contains this")
    args = ap.parse_args()
    total, inclusive, own, callers = 0, collections.Counter(), collections.Counter(), collections.Counter()
    with open(args.raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [frame_name(fr) for fr in stack.split(";")]
            for name in set(frames):
                inclusive[name] += n
            own[frames[-1]] += n
            if args.match:
                at = next((i for i, name in enumerate(frames) if args.match in name), None)
                if at is not None:
                    callers[" <- ".join(frames[max(0, at - 4):at][::-1]) or "(top)"] += n
    if not total:
        raise SystemExit(f"error: no samples in {args.raw}")
    print(f"{total} samples")
    print("inclusive (on the stack):")
    for name, n in inclusive.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("own (at the top of the stack):")
    for name, n in own.most_common(min(args.top, 15)):
        print(f"  {100 * n / total:5.1f}%  {name}")
    if args.match:
        print(f"callers of {args.match!r}:")
        for chain, n in callers.most_common(15):
            print(f"  {100 * n / total:5.1f}%  {chain}")


if __name__ == "__main__":
    main()
