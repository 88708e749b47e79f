"""Time a kernel hot reload the way a user meets it: from the save to the end of the first frame
that ran the new kernels (the live panel's figure, ``Reload.seconds``).

    python tools/reload_bench.py stand g2p --arch cpu [--repeats 3] [--fast-compile]

It writes a copy of the kernels (``polyalloy live --export-kernels``) to a scratch folder, starts
a ``LiveSession`` on that copy, and edits one spot ``--repeats`` times, a different constant each
time so that every edit is code the offline cache has not seen:

- ``gravity``: the gravity line of ``update_grid`` in ``mpm.py`` (a small kernel; reloads ``mpm``);
- ``relax``: ``RELAX`` in ``heat.py`` (reloads ``heat`` and every kernel module importing it);
- ``g2p``: the affine matrix's factor in G2P's gather (``gather_stencil`` in ``mpm.py``, inlined into
  ``g2p``, the largest kernel).

Prints each reload's seconds and the median and range. The edits change the physics a little
(that is the point of a reload); the scratch copy is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

EDITS = {
    # name: (module, function(source, k) -> edited source, k = 1, 2, ...)
    "gravity": ("mpm", lambda s, k: s.replace("dt * knobs.gravity[None]",
                                              f"dt * {1 - 0.1 * k} * knobs.gravity[None]")),
    "relax": ("heat", lambda s, k: re.sub(r"^RELAX = ([0-9.e+-]+)", lambda m: f"RELAX = {m.group(1)} * {1 + 0.01 * k}",
                                          s, count=1, flags=re.M)),
    "g2p": ("mpm", lambda s, k: s.replace("new_C = (4.0 * grid.inv_spacing",
                                          f"new_C = ({4.0 * (1 - 0.01 * k)} * grid.inv_spacing")),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scene", help="a scene name or path, as for `polyalloy live`")
    ap.add_argument("edit", choices=sorted(EDITS), help="which kernel code to edit")
    ap.add_argument("--arch", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fast-compile", action="store_true", default=None,
                    help="Taichi's advanced optimisation off (as `polyalloy --fast-compile`)")
    args = ap.parse_args(argv)

    import polyalloy
    from polyalloy.live import LiveSession
    from polyalloy.reload import export_kernels

    polyalloy.init(arch=args.arch, fast_compile=args.fast_compile)
    module, edit = EDITS[args.edit]
    scratch = tempfile.mkdtemp(prefix="polyalloy-reload-")
    try:
        export_kernels(scratch)
        session = LiveSession(args.scene, size=(320, 184), kernels=scratch)
        session.step(2)
        session.render()
        path = os.path.join(scratch, module + ".py")
        with open(path) as f:
            source = f.read()
        seconds = []
        for k in range(1, args.repeats + 1):
            new = edit(source, k)
            if new == source:
                print(f"reload_bench: the {args.edit} edit found nothing to change in {module}.py", file=sys.stderr)
                return 2
            time.sleep(1.1)  # a new mtime even on a file system with 1 s resolution
            with open(path, "w") as f:
                f.write(new)
            rec = session.poll()
            if rec is None or rec.error:
                print(f"reload_bench: reload failed: {rec and rec.error}", file=sys.stderr)
                return 1
            session.step(1)
            session.render()
            seconds.append(rec.seconds)
            print(f"{args.scene} {args.edit}: reloaded {', '.join(rec.modules)} in {rec.seconds:.2f} s", flush=True)
        print(f"{args.scene} {args.edit}: median {statistics.median(seconds):.2f} s, "
              f"range {min(seconds):.2f}-{max(seconds):.2f} s over {len(seconds)} reloads")
        session.close()
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
