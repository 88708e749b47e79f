"""Freeze: a nitrogen spill freezes the metal man, his legs snap, a shot shatters him, molten steel thaws the pieces and he reforms.

The second beat of the film, composed of the engine's physics (timeline, with the default
options; ``T_*`` below):

1. The mimetic man walks along the hall floor at ``speed`` m/s (``WALK_SPEED``: 0.6 in 2D, 0.8 in
   3D) past a nitrogen tanker (3D: a
   cylinder on its side beside his path, at 77 K) under a nitrogen line (a pipe across the hall
   above his head, at 77 K). Part of the floor is a steel plate (``plate``).
2. The tanker splits: liquid nitrogen floods the plate (a pour, ``flood``), and the plate, drenched,
   is at 77 K from ``T_COLD`` on.
3. He walks into the flood: the nitrogen, the cold plate and the cold vapour over the spill
   (the air, retempered to 77 K) freeze him from the feet up (frost); frozen metal has no grip,
   so the controller cannot move what froze.
4. His feet freeze while planted on the cold plate (it reaches back under his first steps into
   the flood) and stick to it; his upper body, still mimetic, walks on and the frozen legs snap
   and stay behind as a piece of their own.
5. He reaches up (3D: the walk cycle raises his left arm as he nears the line; 2D: he walks with
   it raised, see ``ReachingMan``) and his arm meets the cold line (2D: ``LINE_2D``, lower and
   nearer than in 3D, so that the raised arm hooks over it): the frozen arm sticks to the 77 K
   line. He ``stands`` (``polyalloy.control``, point 5): with his legs gone he stays up only while
   his frozen arm is stuck to the line (a collider: it counts as footing). In 2D his legs go about
   as his arm reaches the line (he loses his footing at 1.92-2.04 s on five seeds of eight, at
   2.71 s on the others): either he hangs from the line, the controller walking on and pulling at
   the arm, until a piece of it snaps, or he falls past it and his frozen arm, caught on the cold
   line, snaps under his weight (a piece off 0.2-0.5 s after it stuck on seeds 0-7 but seed 5's
   1.0 s); he lands on his snapped legs. In 3D the arm comes off first and he falls by the tanker
   when his legs go. Then (``T_DRENCH``) the line bursts over him where he lies (a second pour,
   ``drench``, falling from above the line): the drench and the vapour freeze the rest of him.
6. A gunshot at ``T_SHOT`` shatters the frozen body into many pieces, which come to rest on the
   cold plate (those that slid past its end, toward the crucible, on the floor). The shot is
   aimed at him (``aim``): it hits his largest piece, the frozen torso, where it lies nearest the
   shot's point (the fall is chaotic: on another seed or walk the torso lies a few cm elsewhere,
   where a fixed 8 cm shot hit nothing or a splinter), and its cracks run through every frozen
   piece it touches: a network of
   cracks around random flaws cuts it into fragments ``shatter`` m across (``SHATTER``, 15 cm;
   ``Simulation.shatter``); the blow throws off what it hits, and the fragments frozen to the
   cold plate stay where they lay, a crack apart. ``shatter=0`` leaves the blow alone, which
   grinds the compact 3D torso into grains instead (below).
7. The line runs empty (adiabatic at ``T_EMPTY``) and a crucible tips (at ``T_STEEL``; in 3D this
   and all that follows come ``SETTLE_3D`` = 1.5 s later, ``settle_delay``, so that the pieces are
   at rest when the steel comes):
   molten steel (1800 K) overflows onto the floor next to the plate. Heat path of the thaw: the
   steel runs under the plate's edge and heats the plate (contact through the floor): from
   ``T_HOT`` the plate is held at ``PLATE_HOT`` K (art-directed: a thick plate under a thin
   overflow warms far below the steel's 1800 K), so the pieces lying on it warm above the brittle
   point and become mimetic again, and none can melt (the plate is ~550 K below the melting
   point). The glowing overflow also heats the air over the spill to ``AIR_HOT`` K (``GLOW``):
   that reaches the pieces beyond the plate's end. ``steel_heat=0`` removes both: the plate
   only stops being cold and the air stays at room temperature.
8. The thawed pieces are gripped again: they crawl together, coalesce into one blob and the blob
   rises into the man (the controller's healing and reform), standing at the end of his walk.

Options: ``dim`` (2: a side view, no tanker; 3), ``speed`` (m/s; 0, the default: the staging's,
``WALK_SPEED``), ``steel_heat`` (1 on, 0 off), ``shatter`` (m: the shot's fragment size; 0: no
crack network), ``shot_dx`` (m: moves the shot's point along the hall; the shot still finds the
torso nearest that point), ``stands`` (1, the default: he ``stands``, step 5; 0: the controller
holds him up wherever he is, so once his legs are gone his legless torso walks on in the air
until the drench: the 2D default until 2026-12-06, docs/freeze.md, "A body that stands").
The claims (``claims``) check each step with numbers and report the time each was met.

The 3D preview (``dim=3``, ``quality="preview"``) is sized to run ``polyalloy check freeze`` in
15 minutes of CPU on two cores. What a substep costs: g2p, then p2g and the grid heat step, all
per live particle (measured at dx = 4 cm with 52,000 live particles: 0.036 s of CPU a substep,
g2p half of it); what sets dt: the frozen metal's elastic wave, sqrt((lambda + 2 mu)/rho) = 31 m/s,
from the moment the 77 K vapour frosts his surface (0.55 s) to the thaw, dt = 0.4 dx / (31 m/s +
the fastest particle); it stays there after the thaw, while 0.1-0.3% of him is still frozen. So the
choices, each 3D only but the drench's (2D keeps its values; film keeps its dx and flood, and shares the 3D walk and shot):

* ``dx`` stays 4 cm (the man ~10,700 particles; 24,600-26,500 substeps for the 12.5 s beat, seeds 0-7). ``--set
  dx=0.05`` runs in half the CPU (5,462 particles, 18,537 substeps) and holds 16 of the 17 claims,
  not ``shattered``: with 2.5 cm particles the shot grinds the frozen body into grains rather than
  pieces of >= 8 particles (measured: docs/freeze.md). The claims' counts (limbs >= 50 particles,
  the arm >= 30, pieces >= 8) are the issue's at either dx.
* The flood pours 0.3-0.5 s (``FLOOD_END_3D``; 2D: to 0.7 s): three fills of nitrogen instead
  of five (the full flood was 41,000 of the 52,000 live particles at dx = 4 cm, and the substep's
  cost is per live particle).
  It still runs over the plate under his path, a few cm deep, and the plate (77 K) and the
  vapour do the freezing as in 2D.
* The walk is 0.8 m/s (2D: 0.6, ``WALK_SPEED``). At 0.6 m/s the body pulled the frozen arm off the
  line only after it burst (3.3 s) on two seeds of four (``arm_off`` failed); at 0.8 m/s it comes
  off at 2.8-3.0 s on all four. The faster walk lays the frozen body 0.25 m further back and 0.2 m
  higher, where the shot's fixed 8 cm sphere hit nothing; hence the aimed shot (``aim``, step 6).
  In 2D 0.8 m/s failed ``arm_off`` on three seeds of four and 0.6 m/s held on all four (measured
  on the held torso's staging, 2026-12-05; the standing 2D staging holds ``arm_off`` at 0.6 m/s on
  seeds 0-7).
* The shot (``SHOT_3D``) is aimed where the frozen body lies in 3D at 5 s (x 2.5-3.2 m, against
  the crucible; the 2D aim, x 2.35 m, hits only his head and shins there). The frozen metal
  breaks into rubble wherever the shot strains it past the fracture strain, so a wide or heavy
  shot only grinds the body into grains, which are not pieces; measured from the saved 5 s
  state at dx = 5 cm (pieces of >= 8 particles 1 s on; before the shot there are 8): the 2D kind of shot
  (200 N s over 0.15 m, damage 1) 8; 125-600 N s over 0.15-0.25 m, no damage, 8; 800 N s over
  0.15 m at damage 0.5 or 0, 10; 800 N s over 0.05 or 0.08 m with no damage of its own (the
  fracture does it) 11, the most, at rest by 6 s: 0.08 m is ``SHOT_3D``. Without the crack
  network (``shatter=0``) the shot alone makes 12-14 pieces of >= 8 particles at dx = 4 cm (15
  asked): at 5 s the torso is one compact frozen block of ~4,700 particles glued to the 77 K
  plate, and a shot grinds into grains all the metal its stress wave strains past the fracture
  strain (about where the wave's particle speed exceeds ~1-1.5 m/s), so a heavier or wider shot
  grinds more and splits nothing; lighter ones only dent it (every shot tried: docs/freeze.md).
  With the network (15 cm) the torso breaks into fragments: 23-27 pieces in the 3D check on seeds
  0-3, 17-33 in 2D (seeds 0-7). The 3D blow is 200 N s (800 before the faster walk): the network cuts the
  fragments, and a harder blow set those high on the 0.8 m/s walk's taller heap sliding (1 s after
  a 400 N s shot up to 0.16 m/s; after 200 N s 0.006-0.060 m/s; docs/freeze.md).
* The line bursts at ``T_DRENCH`` = 3.3 s, in 2D too since he stands there (it burst at 3.0 s): the
  3D arm comes off the line at 2.96-3.00 s, which left ``arm_off`` (its window ends when the line
  bursts) no margin at 3.0 s. Measured from a state saved at 3.0 s: the later drench leaves the
  fall and the pieces where they were (within a few cm at 4.9 s).
* The steel comes 1.5 s later (``SETTLE_3D``: ``T_STEEL``, ``T_EMPTY``, ``T_HOT`` and the end,
  12.5 s; ``at_rest`` is judged when the steel comes, 2.5 s after the shot; 2D: 1 s). The 3D
  pieces take up to ~2.5 s to settle: the fall piles the frozen body into a heap of rubble and
  fragments up to 0.6 m high that can sink for 1.4 s, pieces on its top can slide down it 1-2 s
  after the shot, and a chunk the shot throws against the back wall can rock there for 1.9 s
  (measured from states saved before the shot; docs/freeze.md). Every change of the beat's bits
  deals the chaotic fall again: with the steel 1 s later, the heat at its own step left two
  seeds of eight failing ``at_rest`` (0.26 and 0.24 m/s; 1.5 s: one, 0.105); with the steel
  at 2 s after the shot that held on all eight (0.036 at worst), until the controller's pull at
  the heat's step dealt seed 5 a slide of two pieces down the heap that peaked at 0.30 m/s 1.5 s
  after the shot and was at 0.106 at 2 s, 0.036 at 2.5 s (seed 3: a shard sliding, 0.090 and 0.041).
* Not changed: the frozen stiffness (a softer one would lengthen dt, but the standing frozen
  column already strains ~1.4% under its weight against a 3.5-6.5% fracture strain) and every
  threshold; the rest of the timeline is 2D's.
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from polyalloy.body import Humanoid, Walk
from polyalloy.errors import ConfigError
from polyalloy.materials import LiquidNitrogen, MoltenSteel, Polyalloy
from polyalloy.scene import Camera, Scene
from polyalloy.shapes import Box, Capsule, Cylinder, Plane, Sphere, rotation_matrix

FLOOR = 0.05  # m
START, END = 0.5, 2.6  # m: x where the walk starts and ends
PLATE = (0.8, 2.75)  # m: x extent of the floor plate the nitrogen floods (his feet freeze onto its start)
LINE = (2.0, 1.96, 0.09)  # m: x, y and radius of the nitrogen line across the hall (3D)
# 2D: lower and 15 cm nearer, so that his raised arm hooks over it and is held there (see the
# docstring). At y 1.90 m (the held torso's staging) a standing man fell before his arm reached it
# on one seed of four and nothing pulled the arm off; at 1.82 m it is on the line by 2.04-2.08 s on
# seeds 0-7, while he hangs from it or as he falls past it, and a piece of it comes off before the
# burst (docs/freeze.md)
LINE_2D = (1.85, 1.82, 0.09)
LN2_T, PLATE_HOT, AIR_HOT = 77.4, 650.0, 450.0  # K
VAPOUR = 1.0e5  # W/(m^2 K): heat transfer from the metal's surface to the cold vapour
GLOW = 3.0e4  # W/(m^2 K): from the air the glowing steel heats to the metal's surface (thaws a 10 cm piece in ~2 s)
# s. The line bursts at T_DRENCH, 2D and 3D. The 3D arm comes off the line at 2.96-3.00 s (measured),
# so a burst at 3.0 s left its claim (``arm_off``: before the line bursts) no margin; the later drench
# leaves the frozen fall and where the pieces lie unchanged (measured from a state saved at 3.0 s:
# docs/freeze.md). The 2D man, standing, hangs from the line on three seeds of eight, and on one of
# them his arm came off it at 3.12 s (2026-12-06)
T_WALK, T_COLD, T_DRENCH, T_SHOT, T_EMPTY, T_STEEL, T_HOT = 0.2, 0.55, 3.3, 5.0, 6.2, 6.0, 6.6
T_FLOOD = 0.3  # s: the flood starts
# m/s: the walk, 2D and 3D. In 3D at 0.6 m/s the frozen arm came off the line after it burst (3.3 s) on
# two seeds of four; at 0.8 m/s the body pulls it off at 2.8-3.0 s on all four; in 2D 0.8 m/s failed
# the arm on three of four seeds and 0.6 m/s held on all four (the held torso's staging, 2026-12-05;
# the standing man's holds it at 0.6 m/s on seeds 0-7; docs/freeze.md)
WALK_SPEED = (0.6, 0.8)
DURATION = 11.0  # s
# 3D: the steel comes (and with it the line's emptying, the hot plate, the end) this much later
# than in 2D, and the pieces are judged at rest (``at_rest``) when it comes: 2.5 s after the shot in
# 3D (1 s in 2D). The 3D pieces take longer to settle (measured from states saved before the shot;
# docs/freeze.md): the fall piles the frozen body into a heap of rubble and fragments up to 0.6 m
# high that can sink for 1.4 s after the shot (its top pieces at 0.26, 0.11 and 0.024 m/s 1.0,
# 1.375 and 1.5 s after it), pieces on its top can slide down it 1-2 s after the shot (seed 5: two
# pieces at 0.30, 0.106 and 0.036 m/s 1.5, 2.0 and 2.5 s after it), and a chunk the shot throws
# against the hall's back wall can rock there for 1.9 s (0.24, 0.105 and 0.036 m/s 1.0, 1.5 and 2.0
# s after it)
SETTLE_3D = 1.5  # s
# 2D: x, y (m), impulse (N s per metre of depth), radius (m); aimed at the frozen torso where it lies
# at 5 s (x 2.4-3.0 m: the old aim, x 2.35 m, ground the snapped legs into grains)
SHOT = (2.7, 0.35, 800.0, 0.15)
# 3D: x, y (m), impulse (N s), radius (m), damage. The point is where the frozen body lies at 5 s in 3D (x 2.5-3.2
# m: the 2D aim, x 2.35 m, hits its head and shins only); the shot hits his torso nearest it (``aim``). A small
# core; 200 N s: the crack network does the shattering, and a harder blow set the fragments high on the heap
# sliding (400 N s: the fastest piece 1 s on at 0.16 m/s on one seed of four, 0.1 asked; see the docstring)
SHOT_3D = (2.85, 0.3, 200.0, 0.08, 0.0)
SHATTER = 0.15  # m: the size of the fragments the shot's cracks cut the frozen body into (Simulation.shatter)
FLOOD = (1.85, 0.45, 0.55, 0.06, -1.5)  # 2D flood emitter: centre x, y, half sizes x, y (m), falling speed (m/s)
DRENCH = (-0.1, 0.2, 0.15, 0.04, -1.2, 0.6)  # from the line: dx, dy, half sizes x, y (m), falling speed (m/s), duration (s)
SHOT_DAMAGE = 0.5  # 2D: the shot's damage where it hits (1: the hit metal turns to loose grains)
FLOOD_END_3D = 0.5  # s: the 3D preview's flood stops sooner (half the nitrogen: see the docstring)
REACH = (0.85, 0.3, 170.0)  # the raised arm: from metres walked, over metres, to degrees at the shoulder


@dataclass
class ReachingMan(Humanoid):
    """The man of the beat: walks like a ``Humanoid`` and, from ``REACH[0]`` metres along his
    walk, raises his left arm straight up toward the nitrogen line (over ``REACH[1]`` metres).
    ``raised``: the left arm is raised (``REACH[2]`` degrees at the shoulder) from the start, in
    his rest shape. The 2D side view needs it: there an arm hanging at his side lies on his
    torso, one continuum with it, and the controller cannot lift it out (measured: a handful of
    its particles tore out, the rest stayed in the torso)."""

    raised: bool = False

    def _joints(self):
        j = super()._joints()
        if self.raised:
            pivot = j["shoulder_l"][1]
            for name in ("elbow_l", "wrist_l"):
                j[name] = (j[name][0], _raise(j[name][1], pivot))
        return j

    def _parts(self, dim=3):
        parts = super()._parts(dim)
        if not self.raised:
            return parts
        pivot = super()._joints()["shoulder_l"][1]
        return [(name, joint, [_raised(sh, pivot) for sh in shapes] if name in ARM else shapes)
                for name, joint, shapes in parts]

    def gait(self, s, stride, dim=3):
        out = super().gait(s, stride, dim)
        if self.raised:
            return out
        u = min(max((s - REACH[0]) / REACH[1], 0.0), 1.0)
        out["shoulder_l"] = (1.0 - u) * out.get("shoulder_l", 0.0) + u * REACH[2]
        out["elbow_l"] = (1.0 - u) * out.get("elbow_l", 0.0)
        return out


def _raise(point, pivot):
    """``point`` (rest coordinates) turned by ``REACH[2]`` degrees about ``pivot`` in the x-y plane."""
    q, c = np.asarray(point, float), np.asarray(pivot, float)
    return tuple(rotation_matrix((0.0, 0.0, REACH[2]), 3) @ (q - c) + c)


def _raised(shape, pivot):
    """A capsule or sphere of the arm turned like ``_raise``."""
    if isinstance(shape, Capsule):
        return dataclasses.replace(shape, a=_raise(shape.a, pivot), b=_raise(shape.b, pivot))
    return dataclasses.replace(shape, centre=_raise(shape.centre, pivot))


def build(quality: str = "preview", dim: int = 3, speed: float = 0.0, steel_heat: int = 1,
          shatter: float = SHATTER, shot_dx: float = 0.0, stands: int = 1) -> Scene:
    if dim not in (2, 3):
        raise ConfigError(f"freeze: dim must be 2 or 3, got {dim}")
    if speed == 0:
        speed = WALK_SPEED[dim == 3]
    elif not 0.3 <= speed <= 1.5:
        raise ConfigError(f"freeze: speed must be 0 (the staging's walk: {WALK_SPEED[0]:g} m/s in 2D, "
                          f"{WALK_SPEED[1]:g} in 3D) or in [0.3, 1.5] m/s, got {speed}")
    if not 0.0 <= shatter <= 1.0:
        raise ConfigError(f"freeze: shatter must be 0 (no crack network) or a fragment size in (0, 1] m, got {shatter}")
    if not -1.0 <= shot_dx <= 1.0:
        raise ConfigError(f"freeze: shot_dx must be in [-1, 1] m, got {shot_dx}")
    if stands not in (0, 1):
        raise ConfigError(f"freeze: stands must be 1 (the default: he falls when his legs are gone) or 0 (the "
                          f"controller holds him up wherever he is), got {stands}")
    if steel_heat not in (0, 1):
        raise ConfigError(f"freeze: steel_heat must be 1 (the steel heats the plate) or 0, got {steel_heat}")
    late = settle_delay(dim)
    t_empty, t_steel, t_hot = T_EMPTY + late, T_STEEL + late, T_HOT + late
    dx = {(2, "preview"): 0.025, (2, "film"): 0.0125, (3, "preview"): 0.04, (3, "film"): 0.02}[dim, quality]
    zc = 1.0  # m: z of the man's path (3D)
    scene = Scene(name="freeze", dim=dim, domain=((0, 0, 0), (3.6, 2.4, 1.6)), dx=dx, duration=DURATION + late, fps=24,
                  camera=Camera(position=(1.6, 1.5, 5.4), look_at=(1.9, 0.8, zc), fov=42))
    scene.add_material("polyalloy", Polyalloy())
    # art-directed like the metal's: the violent boiling at a warm surface moves heat as fast as
    # the metal conducts it (the material's own default is 1500 W/(m K))
    scene.add_material("nitrogen", LiquidNitrogen(conductivity=3.0e4))
    scene.add_material("steel", MoltenSteel())
    scene.add_collider("floor", Plane(point=(0, FLOOR, 0), normal=(0, 1, 0)), friction=0.5)
    # the plate is flush with the floor: its top face is the floor there
    half = (PLATE[1] - PLATE[0]) / 2
    scene.add_collider("plate", Box(centre=(PLATE[0] + half, FLOOR - 0.02, zc), half_size=(half, 0.0201, 0.55)),
                       friction=0.5, color=(0.5, 0.55, 0.62))
    scene.retemper(T_COLD, "plate", LN2_T)
    # the boiling spill fills the hall with nitrogen vapour at 77 K that cools every free surface
    # (art-directed film boiling, W/(m^2 K)); it clears when the steel comes
    scene.retemper(T_COLD, "air", LN2_T, VAPOUR)
    scene.retemper(t_steel, "air", scene.air_temperature, scene.air_coefficient)
    scene.retemper(t_hot, "plate", PLATE_HOT if steel_heat else None)
    # the glowing overflow heats the air over the spill: it reaches the pieces beyond the plate
    scene.retemper(t_hot, "air", AIR_HOT if steel_heat else scene.air_temperature,
                   GLOW if steel_heat else scene.air_coefficient)
    lx, ly, lr = LINE if dim == 3 else LINE_2D
    line = (Cylinder(centre=(lx, ly, 0.8), radius=lr, half_height=0.8, rotation=(90.0, 0.0, 0.0)) if dim == 3
            else Sphere(centre=(lx, ly, zc), radius=lr))
    scene.add_collider("line", line, color=(0.75, 0.78, 0.82), temperature=LN2_T)
    scene.retemper(t_empty, "line", None)
    # a crucible beyond the plate, tipped toward it
    scene.add_collider("crucible", Box(centre=(3.25, 0.42, zc), half_size=(0.14, 0.12, 0.14), rotation=(0, 0, 25.0)),
                       color=(0.25, 0.22, 0.2))
    if dim == 3:
        scene.add_collider("tanker", Cylinder(centre=(1.9, FLOOR + 0.36, 0.34), radius=0.32, half_height=0.95,
                                              rotation=(0.0, 0.0, 90.0)),
                           color=(0.7, 0.72, 0.75), temperature=LN2_T)
    man = ReachingMan(position=(START, FLOOR, zc), raised=dim == 2)
    scene.add_body("man", man, "polyalloy", template=man, stands=bool(stands),
                   walk=Walk(path=[(START, 0, zc), (END, 0, zc)], speed=speed, start=T_WALK))
    # the flood: slabs of nitrogen dropped on the plate ahead of him (3D: out of the tanker's split side)
    fz = 0.75 if dim == 3 else zc
    fx, fy, fhx, fhy, fv = FLOOD
    _pour(scene, "flood", (fx, fy, fz), (fhx, fhy, 0.25), (0.0, fv, 0.9 if dim == 3 else 0.0), "nitrogen",
          LN2_T, T_FLOOD, 0.7 if dim == 2 or quality == "film" else FLOOD_END_3D)
    # the drench: the burst line pours over his raised arm and then over him
    ddx, ddy, dhx, dhy, dv, dt = DRENCH
    t_drench = drench_time(dim)
    _pour(scene, "drench", (lx + ddx, ly + ddy, zc), (dhx, dhy, 0.15), (0.0, dv, 0.0), "nitrogen", LN2_T,
          t_drench, t_drench + dt)
    # the overflow: molten steel from the crucible's lip onto the floor beside the plate
    _pour(scene, "overflow", (3.06, 0.5, zc), (0.04, 0.05, 0.1), (-1.0, -0.3, 0.0), "steel", 1800.0,
          t_steel, t_steel + 0.8)
    # the shot: from above into the frozen body lying on the plate
    sx, sy, impulse, radius, damage = (*SHOT, SHOT_DAMAGE) if dim == 2 else SHOT_3D
    scene.gunshot(T_SHOT, point=(sx + shot_dx, sy, zc), direction=(0.3, -1.0, 0.0), impulse=impulse, radius=radius,
                  damage=damage, shatter=shatter, aim="man")
    return scene


def settle_delay(dim: int) -> float:
    """How much later than ``T_STEEL``, ``T_EMPTY``, ``T_HOT`` and ``DURATION`` say the steel,
    the line's emptying, the hot plate and the end come (s): 0 in 2D, ``SETTLE_3D`` in 3D."""
    return 0.0 if dim == 2 else SETTLE_3D


def drench_time(dim: int) -> float:
    """When the line bursts (s): ``T_DRENCH``, in 2D and 3D."""
    return T_DRENCH


def _pour(scene, name, centre, half, velocity, material, temperature, start, end):
    """A pour of ``material`` from a box (``centre``, ``half`` size) at ``velocity``: its rate is
    the box's cross-section across y times the falling speed |v_y| (m^dim/s), so that each fill
    lands where the one before it left."""
    h = np.asarray(half, float)[: scene.dim]
    rate = float(np.prod(np.delete(2 * h, 1))) * abs(velocity[1])
    scene.pour(name, Box(centre=centre, half_size=half), material, rate=rate, temperature=temperature,
               velocity=velocity, start=start, end=end)


# --- claims ----------------------------------------------------------------------------------
WALKED_ON = 0.15  # m: how far the body moves on while the frozen feet stay put
# cells: the layer of a body that rests on a collider. MPM contact holds a particle about a cell
# off the surface (measured at dx = 2.5 cm: a standing foot's lowest particles 0.020 m up, a foot
# frozen onto the cold plate 0.033 m: its nodes stick within a cell of the plate before it settles)
CONTACT = 2
LEGS = ("thigh_l", "thigh_r", "shin_l", "shin_r", "foot_l", "foot_r")
ARM = ("upper_arm_l", "forearm_l", "hand_l")


def _parts(sim, names) -> np.ndarray:
    """Which live particles of the man have their home (now) in one of the parts ``names``."""
    def compute():
        s = sim.particles()
        tpl = sim.scene.bodies[0].template
        ids = [tpl.part_names().index(n) for n in names]
        return np.isin(s["part"][s["body"] == 0], ids)

    return sim.read_once(("freeze.parts", tuple(names)), compute)  # once a frame for the judge's measures


def _frozen(sim) -> np.ndarray:
    s = sim.particles()
    return s["phase"][s["body"] == 0] == 0


class _Origin:
    """The man's particles homed at frame 0 in the parts of each group (``feet``, ``torso``): the
    feet he walks into the flood on, whatever homes the controller gives them later."""

    GROUPS = {"feet": ("foot_l", "foot_r"), "torso": ("torso",)}

    def __init__(self):
        self.masks = None

    def observe(self, sim) -> None:
        if self.masks is None:
            self.masks = {k: _parts(sim, names) for k, names in self.GROUPS.items()}

    def cold(self, sim, group: str) -> float:
        """Fraction of the group's particles below the brittle point."""
        self.observe(sim)
        s = sim.particles()
        T = s["T"][s["body"] == 0][self.masks[group]]
        return float((T < sim.scene.materials["polyalloy"].brittle_point).mean())


class _Stuck:
    """The stuck feet. On the first frame on which 90% of the feet (``_Origin``) are below the
    brittle point (``since``), the frozen foot particles within ``CONTACT`` cells of the floor are
    the planted feet; from then until the man's centre of mass has moved on ``WALKED_ON`` m along x (or the
    shot): the largest median speed (m/s) of the planted feet, their highest median height above
    the floor (m), and how far the centre moved (m)."""

    def __init__(self, origin: _Origin, until: float):
        self.origin, self.until, self.since, self.x0, self.seen = origin, until, None, None, None
        self.planted = None
        self.speed, self.height, self.moved = 0.0, 0.0, 0.0

    def view(self, name: str):
        """A measure reading attribute ``name`` (observing this once per frame)."""
        return _View(self, name)

    def observe(self, sim) -> None:
        if sim.t > self.until + 1e-9 or self.seen == sim.t:
            return
        self.seen = sim.t
        if self.since is None:
            if self.origin.cold(sim, "feet") < 0.9:
                return
            self.since = sim.t
            self.x0 = _com(sim)
            s = sim.particles()
            low = s["x"][s["body"] == 0][:, 1] < FLOOR + CONTACT * sim.scene.dx
            self.planted = self.origin.masks["feet"] & _frozen(sim) & low
        if self.moved >= WALKED_ON:
            return  # the body has moved on: what the feet do later (the legs snap) is another claim
        s = sim.particles()
        man = s["body"] == 0
        feet = self.planted
        if not feet.any():  # no foot froze onto the floor: nothing stuck
            self.speed = self.height = math.inf
        else:
            self.speed = max(self.speed, float(np.median(np.linalg.norm(s["v"][man][feet], axis=1))))
            self.height = max(self.height, float(np.median(s["x"][man][feet][:, 1])) - FLOOR)
        self.moved = max(self.moved, _com(sim) - self.x0)


class _View:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def observe(self, sim) -> None:
        self.owner.observe(sim)

    def __call__(self, sim=None) -> float:
        return getattr(self.owner, self.name)


def _com(sim) -> float:
    """x (m) of the man's centre of mass."""
    s = sim.particles()
    man = s["body"] == 0
    return float(np.average(s["x"][man][:, 0], weights=s["mass"][man]))


def _pieces_of(sim, names, min_particles: int) -> int:
    """Fragments of the man of at least ``min_particles`` whose particles are 90% or more homed in
    the parts ``names`` and frozen: the limbs that came off."""
    from polyalloy import metrics

    labels = metrics.fragment_labels(sim, body="man")
    mine = _parts(sim, names) & _frozen(sim)
    size = np.bincount(labels)
    share = np.bincount(labels, mine) / np.maximum(size, 1)
    return int(np.count_nonzero((size >= min_particles) & (share >= 0.9)))


def _on_line(sim) -> int:
    """How many frozen particles of the man's left arm (``ARM``) lie within ``CONTACT`` cells of the
    cold line: the arm frozen against it."""
    from polyalloy import metrics

    near = metrics.collider_distance(sim, ["line"], body="man") < CONTACT * sim.scene.dx
    return int(np.count_nonzero(near & _parts(sim, ARM) & _frozen(sim)))


def claims(scene):
    from polyalloy import metrics
    from polyalloy.claims import Before, Claim, FirstTime, RelativeChange

    film = scene.quality == "film"
    # counts scale with the particles of a limb: a 3D preview man has ~10,700 particles (dx 4 cm), a 2D one ~2,000
    if scene.dim == 3:
        limb, arm, grain, shards = 50, 30, 8, 50 if film else 15
    else:
        limb, arm, grain, shards = 30, 15, 4, 12
    T_b = scene.materials["polyalloy"].brittle_point
    burst = drench_time(scene.dim)  # the arm must be off the line before it bursts
    steel = T_STEEL + settle_delay(scene.dim)  # the pieces must be at rest when the steel comes
    hot = T_HOT + settle_delay(scene.dim)
    origin = _Origin()
    feet = FirstTime(lambda sim: origin.cold(sim, "feet") >= 0.9)
    torso = FirstTime(lambda sim: origin.cold(sim, "torso") >= 0.9)
    stuck = _Stuck(origin, T_SHOT)
    after_shot = T_SHOT + 0.5 / scene.fps  # the first frame after the shot (the one at T_SHOT is judged before it)
    stuck_arm = FirstTime(lambda sim: _on_line(sim) >= grain)
    arm_piece = FirstTime(lambda sim: _pieces_of(sim, ARM, arm) >= 1)
    return [
        Claim("feet_frozen", "share of his feet below the brittle point", lambda sim: origin.cold(sim, "feet"),
              ">=", 0.9, when="ever", until=T_SHOT),
        Claim("feet_first", "his feet froze before his torso (s between)", Before(feet, torso), ">", 0.0, unit="s"),
        Claim("frozen_at_shot", "mass fraction below the brittle point when the shot hits",
              lambda sim: metrics.below_fraction(sim, T_b, body="man"), ">=", 0.95, when=T_SHOT),
        Claim("feet_stuck", "frozen feet: fastest median speed while the body moved on", stuck.view("speed"),
              "<=", 0.05, when=T_SHOT, unit="m/s"),
        Claim("feet_on_floor", "frozen feet: highest median height above the floor meanwhile",
              stuck.view("height"), "<=", 0.1, when=T_SHOT, unit="m"),
        Claim("walked_on", "his centre of mass moved on past his stuck feet", stuck.view("moved"),
              ">=", WALKED_ON, when="ever", until=T_SHOT, unit="m"),
        Claim("legs_off", f"frozen leg pieces of >= {limb} particles, apart from the body",
              lambda sim: _pieces_of(sim, LEGS, limb), ">=", 2 if scene.dim == 3 else 1, when="ever", until=T_SHOT),
        Claim("arm_stuck", "frozen particles of his left arm against the cold line", lambda sim: _on_line(sim),
              ">=", grain, when="ever", until=burst),
        Claim("arm_off", f"frozen pieces of the left arm of >= {arm} particles, apart from the body, before the line "
              "bursts", lambda sim: _pieces_of(sim, ARM, arm), ">=", 1, when="ever", until=burst),
        Claim("arm_pulled_off", "his arm came off after it stuck to the line (s between)", Before(stuck_arm, arm_piece),
              ">", 0.0, unit="s"),
        Claim("shattered", f"pieces of >= {grain} particles after the shot", lambda sim: len(
            metrics.fragments(sim, body="man", min_particles=grain)), ">=", shards, when="ever", start=after_shot,
              until=T_SHOT + 1.0),
        Claim("at_rest", "fastest piece when the steel comes", lambda sim: float(
            metrics.piece_speeds(sim, "man", grain)[:1].sum()), "<=", 0.1, when=steel, unit="m/s"),
        Claim("thawed", "mimetic mass fraction after the steel heats the plate",
              lambda sim: metrics.phase_fractions(sim, body="man")["mimetic"], ">=", 0.95, when="ever", start=hot),
        Claim("not_molten", "molten mass fraction while the plate is hot",
              lambda sim: metrics.phase_fractions(sim, body="man")["molten"], "<=", 0.05, when="always",
              start=hot),
        Claim("coalesced", "share of the man in his largest piece", lambda sim: metrics.largest_piece_fraction(sim, "man"),
              ">=", 0.95, when="ever", start=hot),
        Claim("shape_error", "shape error at the end", lambda sim: metrics.shape_error(sim, "man"), "<=", 0.02),
        Claim("coverage", "template coverage at the end", lambda sim: metrics.coverage(sim, "man"), ">=", 0.9),
        Claim("mass", "the man's mass is conserved exactly", RelativeChange(lambda sim: metrics.body_mass(sim, "man")),
              "==", 0.0, when="always"),
        Claim("energy", "energy budget (thermal + latent + vapour - boundary - events - spawned), relative",
              lambda sim: metrics.energy_budget(sim)["relative_imbalance"], "<=", 0.005, when="always",
              start=T_FLOOD),  # from the flood on: before it no heat moves, only rounding (< 1 J of 3e8 J)
    ]
