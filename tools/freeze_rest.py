"""The freeze beat around its shot, replayed from a state saved before it: which pieces still move
a second after the shot, and what `at_rest` measures (docs/freeze.md, "Why `at_rest` is the thin
margin in 3D"). With a sweep job's settings the replay repeats the check's values to the digit:

    export POLYALLOY_P2G_LANES=2 POLYALLOY_THREADS=1        # what `polyalloy sweep` gives a job
    python tools/freeze_rest.py save --seed 4 /tmp/pre_s4.npz            # ~5 min (3D preview)
    python tools/freeze_rest.py replay --seed 4 /tmp/pre_s4.npz [--impulse 100] [--set KEY=VALUE]

``save`` runs the beat (``--set`` options as for ``polyalloy check``) to ``--before`` frames before
the shot's frame and writes ``Simulation.state_dict()``. ``replay`` builds the same scene (the
shot's ``--impulse`` or ``--radius`` changed if asked), loads the state, takes the scene's own
materials (so ``--set materials.polyalloy.rubble_friction_angle=70`` applies from the saved moment)
and runs to ``--after`` seconds (default 1) after the shot: every 3 frames the two fastest pieces of the man (particles, centre-of-mass speed and
velocity, centre), at the end the six fastest, the fastest one's phases, damage and temperatures,
its particles' speed by height (a rocking piece: speed growing with height), the fastest drift of
a piece's centre over the last 0.25 s (a rocking piece drifts slowly), the most pieces of
the claim's size seen after the shot and ``at_rest`` as the check computes it. A state saved by
an older version whose material table lacked a key takes this version's value for it."""
import argparse
import dataclasses
import sys
import time

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("what", choices=("save", "replay"))
ap.add_argument("state", help="the .npz state file (written by save, read by replay)")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a scene option (repeatable)")
ap.add_argument("--before", type=int, default=2, help="save: frames before the shot's frame (default 2)")
ap.add_argument("--impulse", type=float, help="replay: the shot's impulse (N s)")
ap.add_argument("--radius", type=float, help="replay: the shot's radius (m)")
ap.add_argument("--after", type=float, default=1.0, help="replay: run to this many seconds after the shot (default 1)")
args = ap.parse_args()

import polyalloy  # noqa: E402
from polyalloy import metrics  # noqa: E402
from polyalloy.errors import PolyalloyError  # noqa: E402
from polyalloy.events import Gunshot  # noqa: E402
from polyalloy.scene import load_scene  # noqa: E402
from polyalloy.simulation import Simulation  # noqa: E402

try:
    overrides = dict(item.split("=", 1) for item in args.set)
except ValueError:
    sys.exit("error: --set takes KEY=VALUE")
try:
    polyalloy.init(arch="cpu", seed=args.seed)
    scene = load_scene("freeze", overrides=overrides)
    scene.seed = args.seed
    shots = [e for e in scene.events if isinstance(e, Gunshot)]
    if len(shots) != 1:
        sys.exit(f"error: the scene has {len(shots)} shots, one expected")
    change = {k: v for k, v in (("impulse", args.impulse), ("radius", args.radius)) if v is not None}
    if change and args.what == "save":
        sys.exit("error: --impulse and --radius change the replay, not the saved state")
    scene.events = [dataclasses.replace(e, **change) if isinstance(e, Gunshot) else e for e in scene.events]
    shot = shots[0]
    sim = Simulation(scene)
except PolyalloyError as e:
    sys.exit(f"error: {e}")
fps = scene.fps
min_particles = 8 if scene.dim == 3 else 4  # the claims' grain (scenes/freeze.py: claims)
t0 = time.time()

if args.what == "save":
    last = int(round(shot.time * fps)) - args.before
    while sim.frame < last:
        sim.step_frame()
    np.savez(args.state, **sim.state_dict())
    print(f"saved t = {sim.t:.4f} s (frame {sim.frame}) to {args.state} in {time.time() - t0:.0f} s")
    sys.exit(0)


def pieces():
    """Per piece of the man (``metrics.piece_moments``): the particles, labels, counts,
    centre-of-mass velocities and centres."""
    return metrics.piece_moments(sim, "man")


def report(k: int):
    _, _, count, v, c = pieces()
    speed = np.linalg.norm(v, axis=1)
    big = np.flatnonzero(count >= min_particles)
    top = big[np.argsort(-speed[big])][:k]
    print(f"t {sim.t:.3f} pieces {len(big)}: " + "; ".join(
        f"{count[j]} particles at {speed[j]:.3f} m/s v {v[j].round(3)} centre {c[j].round(2)}" for j in top), flush=True)


try:
    state = dict(np.load(args.state))
except (OSError, ValueError) as e:
    sys.exit(f"error: cannot read the state {args.state}: {e}")
own = sim.state_dict()
state.update({k: v for k, v in own.items() if k not in state and k.startswith("field/materials/")})
try:
    sim.load_state_dict(state)
except PolyalloyError as e:
    sys.exit(f"error: {e}")
# the materials of the scene built here, not the saved ones: a --set of a material key (a rubble
# friction, say) acts from the saved moment on; without one the rows are the saved ones to the bit
sim.upload_materials()
sim.update_limits()
end = int(round((shot.time + args.after) * fps))
most = 0
window = int(round(0.25 * fps))  # frames: the last quarter second, over which pieces' drift is measured
x_before = None
while sim.frame < end:
    sim.step_frame()
    if sim.frame == end - window:
        x_before = metrics._select(sim, body="man")["x"].astype(np.float64)
    if sim.t > shot.time + 0.5 / fps:
        most = max(most, len(metrics.fragments(sim, body="man", min_particles=min_particles)))
        if sim.frame % 3 == 0 and sim.frame < end:
            report(2)
report(6)
s, labels, count, v, _ = pieces()
speed = np.linalg.norm(v, axis=1)
big = np.flatnonzero(count >= min_particles)
j = big[np.argmax(speed[big])]
mine = labels == j
print(f"the fastest piece: {mine.sum()} particles, phases {np.unique(s['phase'][mine]).tolist()}, damage "
      f"{s['damage'][mine].min():g}-{s['damage'][mine].max():g}, T {s['T'][mine].min():.1f}-{s['T'][mine].max():.1f} K")
y = s["x"][mine, 1]
ps = np.linalg.norm(s["v"][mine], axis=1)
edges = np.quantile(y, [0, 0.25, 0.5, 0.75, 1.0])
print("its particles' speed by height (quarters, low to high): " + ", ".join(
    f"y {lo:.2f}-{hi:.2f} m: {np.median(ps[(y >= lo) & (y <= hi)]):.3f} m/s" for lo, hi in zip(edges[:-1], edges[1:])))
if x_before is not None and len(x_before) == len(s["x"]):  # the man's particles keep their order
    m = s["mass"].astype(np.float64)
    shift = s["x"].astype(np.float64) - x_before
    drift = np.stack([np.bincount(labels, m * shift[:, d]) for d in range(sim.dim)], 1) / np.bincount(labels, m)[:, None]
    rate = np.linalg.norm(drift, axis=1) / (window / fps)
    print(f"the fastest drift over the last {window / fps:.2f} s (centre-of-mass displacement / time, pieces of "
          f">= {min_particles}): {rate[big].max():.4f} m/s (the piece of {count[big[np.argmax(rate[big])]]} particles)")
print(f"most pieces of >= {min_particles} particles after the shot: {most}; at_rest "
      f"{float(metrics.piece_speeds(sim, 'man', min_particles)[:1].sum()):.4f} m/s; {time.time() - t0:.0f} s wall")
