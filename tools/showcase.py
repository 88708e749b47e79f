"""Make a beat's showcase from a finished render: a strip of labelled frames (PNG) and a small
looping GIF, both read from the render's ``frames.json`` and PNG frames.

    python tools/showcase.py renders/freeze --times 0.5 1.4 2.2 4.5 \\
        --labels "walks in" "feet freeze" "legs snap" "frozen fall" \\
        --crop 66,10,574,346 --png renders/showcase_freeze.png --gif renders/showcase_freeze.gif

Each time picks the frame nearest to it (the label says the frame's own time). ``--crop`` cuts
the same box (left, top, right, bottom in pixels) out of every frame; ``--columns`` sets the
strip's layout; the GIF takes every ``--gif-every``-th frame at ``--gif-width`` pixels wide.
Nothing is simulated: run ``polyalloy render SCENE --format png`` first.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def nearest_frames(manifest: dict, times) -> list:
    """The manifest entries of the written frames nearest to each of ``times``."""
    frames = [f for f in manifest["frames"] if "png" in f.get("files", {})]
    if not frames:
        raise SystemExit("showcase: the render has no PNG frames (render with --format png)")
    return [min(frames, key=lambda f: abs(f["time"] - t)) for t in times]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("render", help="a folder written by `polyalloy render` (with frames.json)")
    ap.add_argument("--times", type=float, nargs="+", required=True, help="scene times (s) of the strip's frames")
    ap.add_argument("--labels", nargs="*", default=None, help="one caption per time")
    ap.add_argument("--crop", default=None, help="left,top,right,bottom in pixels, cut from every frame")
    ap.add_argument("--columns", type=int, default=4)
    ap.add_argument("--scale", type=float, default=0.6, help="the strip's tiles, as a fraction of the (cropped) frame")
    ap.add_argument("--png", required=True, help="the strip to write")
    ap.add_argument("--gif", default=None, help="the GIF to write (optional)")
    ap.add_argument("--gif-every", type=int, default=5)
    ap.add_argument("--gif-width", type=int, default=288)
    args = ap.parse_args(argv)

    path = os.path.join(args.render, "frames.json")
    if not os.path.isfile(path):
        print(f"showcase: {path} not found: give a folder written by `polyalloy render`", file=sys.stderr)
        return 2
    with open(path) as f:
        manifest = json.load(f)
    if args.labels is not None and len(args.labels) != len(args.times):
        print(f"showcase: {len(args.times)} times but {len(args.labels)} labels", file=sys.stderr)
        return 2
    crop = tuple(int(v) for v in args.crop.split(",")) if args.crop else None

    from polyalloy.export import label_grid

    chosen = nearest_frames(manifest, args.times)
    tiles = [(os.path.join(args.render, entry["files"]["png"]),
              f"{entry['time']:.1f} s" + (f"  {args.labels[k]}" if args.labels else "")) for k, entry in enumerate(chosen)]
    label_grid(tiles, args.png, columns=args.columns, scale=args.scale, crop=crop)
    from PIL import Image

    with Image.open(args.png) as strip:
        print(f"wrote {args.png} ({strip.width}x{strip.height}, {len(tiles)} frames)")

    if args.gif:
        from polyalloy.export import write_gif

        frames = [os.path.join(args.render, f["files"]["png"]) for f in manifest["frames"] if "png" in f.get("files", {})]
        write_gif(frames, args.gif, float(manifest.get("fps") or 24), stride=args.gif_every,
                  max_width=args.gif_width, crop=crop, colors=48)
        print(f"wrote {args.gif} ({len(frames[::args.gif_every])} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
