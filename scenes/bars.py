"""Bars: the metal man walks into a row of vertical bars, pours through the gaps and reforms.

The first beat of the film. A 1.8 m mimetic polyalloy man (``polyalloy.body.Humanoid``,
held by the controller) walks at ``speed`` m/s along x into seven striped bars of radius
3 cm with ``gap`` metres between them, narrower than his shoulders: the bars cut him, the
metal flows round them and through the gaps like gelatine, and he reforms on the other side;
touched metal takes the bars' stripes for a moment (mimicry) and fades back to chrome. The set
is a cell block (walls, floor, the bars' rail); the camera, in the corridor at an angle to the
row so the gaps show, follows him out of the cell.
``dim=2`` is a top view (x along the walk, y across the row, no gravity): the bars are discs
and the man his cross-section at the shoulders, a capsule 0.68 m wide, that flows through.
Claims (``polyalloy check bars`` and ``polyalloy render bars --check``; preview, 3D, gap 0.1 m,
0.6 m/s, 10,720 particles, 135 frames): 100% of the body past the bars at 4.5 s; shape error
0.00015 and coverage 0.995 there; no particle more than 1 um inside a bar at any of the 136
frames; mass exact at every frame; every particle that touched a bar and left it was striped on
leaving, and 1 s and more after leaving the median colour had faded to 0.18 of itself.
Options: ``gap`` (m), ``speed`` (m/s), ``dim`` (3, or 2 for the top view).
"""
import numpy as np

from polyalloy.body import Humanoid, ShapeTemplate, Walk
from polyalloy.errors import ConfigError
from polyalloy.materials import Polyalloy
from polyalloy.scene import Camera, Environment, Scene, Texture
from polyalloy.shapes import Box, Capsule, Cylinder, Plane, Sphere

BAR_RADIUS = 0.03  # m
BARS_AT = 1.5  # m: x of the row of bars
FLOOR = 0.05  # m
ROW_CENTRE = 0.5  # m: z of the middle of the row (y in the 2D top view)
BARS = tuple(f"bar{i}" for i in range(7))
STRIPES = Texture("stripes", colors=((0.95, 0.75, 0.1), (0.1, 0.1, 0.1)), period=0.08)
START_X = 0.6  # m: where he stands at t = 0
END_X = 2.4  # m: where his walk ends


def build(quality: str = "preview", gap: float = 0.1, speed: float = 0.6, dim: int = 3) -> Scene:
    if not 0.04 <= gap <= 0.6:
        raise ConfigError(f"bars: gap must be in [0.04, 0.6] m, got {gap}")
    if not 0.1 <= speed <= 3.0:
        raise ConfigError(f"bars: speed must be in [0.1, 3] m/s, got {speed}")
    if dim not in (2, 3):
        raise ConfigError(f"bars: dim must be 2 or 3, got {dim}")
    pitch = gap + 2 * BAR_RADIUS
    across = [ROW_CENTRE + (k + 0.5) * pitch for k in range(-3, 4)]  # z of each bar (y in 2D)
    if dim == 2:
        return _top_view(quality, speed, across)
    dx = {"preview": 0.04, "film": 0.02}[quality]
    scene = Scene(name="bars", dim=3, domain=((0, 0, 0), (3.0, 2.2, 1.0)), dx=dx, duration=4.5, fps=30,
                  camera=CAMERA, environment=Environment(horizon=(0.16, 0.16, 0.17), ground=(0.03, 0.03, 0.03)))
    scene.add_material("polyalloy", Polyalloy())
    scene.add_collider("floor", Plane(point=(0, FLOOR, 0), normal=(0, 1, 0)), friction=0.5, color=(0.1, 0.1, 0.1))
    for name, z in zip(BARS, across):
        scene.add_collider(name, Cylinder(centre=(BARS_AT, 1.1, z), radius=BAR_RADIUS, half_height=1.1),
                           color=(0.6, 0.58, 0.5), texture=STRIPES)
    _cell_block(scene, across)
    man = Humanoid(position=(START_X, FLOOR, ROW_CENTRE))
    scene.add_body("man", man, "polyalloy", template=man,
                   walk=Walk(path=[(START_X, 0, ROW_CENTRE), (END_X, 0, ROW_CENTRE)], speed=speed, start=0.2))
    return scene


# the film's shot: from the corridor, at 20-45 degrees to the walk (so the gaps between the bars show), he
# walks out of the cell through the bars towards the camera, which pans and swings round to follow him
CAMERA = Camera(position=(4.3, 1.3, -0.9), look_at=(1.3, 0.95, 0.5), fov=42,
                keys=[(0.0, (4.3, 1.3, -0.9), (1.3, 0.95, 0.5)),
                      (1.6, (4.4, 1.3, -1.0), (1.55, 0.95, 0.5)),
                      (3.4, (4.6, 1.25, -1.6), (2.35, 0.92, 0.5))])


def _cell_block(scene: Scene, across) -> None:
    """The set, drawn by the renderer as colliders where the metal never reaches: the cell's back
    wall and the corridor's far wall outside the box, and the rail that holds the bars at the top,
    above his head."""
    wall = Texture("checker", colors=((0.2, 0.19, 0.17), (0.16, 0.155, 0.14)), period=0.4)
    scene.add_collider("back_wall", Plane(point=(-0.4, 0, 0), normal=(1, 0, 0)), texture=wall)
    scene.add_collider("far_wall", Plane(point=(0, 0, across[-1] + 0.25), normal=(0, 0, -1)), texture=wall)
    scene.add_collider("rail", Box(centre=(BARS_AT, 2.12, 0.5 * (across[0] + across[-1])),
                                   half_size=(0.05, 0.06, 0.5 * (across[-1] - across[0]) + 0.1)),
                       color=(0.3, 0.29, 0.26))


def _top_view(quality: str, speed: float, across) -> Scene:
    """The 2D variant: the row seen from above (x along the walk, y across the row), no gravity."""
    dx = {"preview": 0.02, "film": 0.005}[quality]
    scene = Scene(name="bars", dim=2, domain=((0, 0), (3.0, 1.0)), dx=dx, duration=4.5, fps=30, gravity=0.0)
    scene.add_material("polyalloy", Polyalloy())
    for name, y in zip(BARS, across):
        scene.add_collider(name, Sphere(centre=(BARS_AT, y), radius=BAR_RADIUS), color=(0.6, 0.58, 0.5),
                           texture=STRIPES)
    # his cross-section at the shoulders: 0.68 m from shoulder to shoulder, 0.24 m from chest to back
    man = ShapeTemplate(shape=Capsule(a=(START_X, ROW_CENTRE - 0.22, 0), b=(START_X, ROW_CENTRE + 0.22, 0),
                                                 radius=0.12),
                        position=(START_X, ROW_CENTRE))
    scene.add_body("man", man, "polyalloy", template=man,
                   walk=Walk(path=[(START_X, 0), (END_X, 0)], speed=speed, start=0.2))
    return scene


class _Stripes:
    """Follows every particle of the man, by index, through its contacts with the bars.

    A particle touches a bar while it is within ``scene.dx`` of one (the reach within which
    ``kernels.control.mimic`` copies a texture); it leaves at the first frame it is out of reach
    again. On leaving it is *striped* when its colour is nearer one of the stripe colours than
    chrome, and its colour's distance from chrome is kept, to see it fade. A re-touch starts over.
    ``carried`` and ``faded`` are two claims' measures on this one record; ``observe`` runs once
    per frame however many claims share it.
    """

    FADE_AFTER = 1.0  # s: ``faded`` looks at particles that left at least this long ago

    def __init__(self, scene):
        self.reach = scene.dx
        self.stripes = np.array(STRIPES.colors, float)
        self.t = None
        self.touching = None

    def observe(self, sim) -> None:
        from polyalloy.metrics import collider_distance

        if self.t == sim.t:
            return
        self.t = float(sim.t)
        s = sim.particles(retired=True)
        mine = s["alive"] & (s["body"] == 0)
        near = mine & (collider_distance(sim, BARS, points=s["x"]) < self.reach)
        color = s["color"].astype(float)
        if self.touching is None:
            n = len(near)
            self.chrome = sim.source_colors()[0].astype(float)
            self.touched = np.zeros(n, bool)
            self.left_at = np.full(n, np.nan)  # time of the last leaving, nan while touching or never
            self.left_amount = np.zeros(n)  # |colour - chrome| on leaving
            self.striped = np.zeros(n, bool)  # striped on leaving
            self.touching = np.zeros(n, bool)
        leaving = self.touching & ~near
        off_chrome = np.linalg.norm(color - self.chrome, axis=1)
        to_stripe = np.linalg.norm(color[:, None, :] - self.stripes[None], axis=2).min(axis=1)
        self.left_at[leaving] = self.t
        self.left_amount[leaving] = off_chrome[leaving]
        self.striped[leaving] = to_stripe[leaving] < off_chrome[leaving]
        self.left_at[near] = np.nan
        self.touched |= near
        self.touching = near
        self._off_chrome = off_chrome

    def carried(self, sim=None) -> float:
        """Fraction of the particles that touched a bar and left it that were striped on leaving."""
        left = ~np.isnan(self.left_at)
        return float(self.striped[left].mean()) if left.any() else 0.0

    def faded(self, sim=None) -> float:
        """Median, over striped particles that left ``FADE_AFTER`` s ago or more, of their colour's
        distance from chrome now over that on leaving (1: no fading; inf when there are none)."""
        old = ~np.isnan(self.left_at) & (self.left_at <= self.t - self.FADE_AFTER) & self.striped
        if not old.any():
            return float("inf")
        return float(np.median(self._off_chrome[old] / np.maximum(self.left_amount[old], 1e-9)))


class _View:
    """One claim's measure on a shared stateful record: observing it observes the record."""

    def __init__(self, record, measure):
        self.record, self.measure = record, measure

    def observe(self, sim) -> None:
        self.record.observe(sim)

    def __call__(self, sim) -> float:
        return self.measure(sim)


def claims(scene):
    from polyalloy import metrics
    from polyalloy.claims import Claim, RelativeChange

    stripes = _Stripes(scene)
    decay = scene.control.mimic_decay
    return [
        # the walk ends 0.9 m past the bars; whatever stays behind is metal caught on them
        Claim("past_bars", "the body's mass past the row of bars",
              lambda sim: metrics.mass_fraction_beyond(sim, 0, BARS_AT + BAR_RADIUS, body="man"), ">=", 0.98),
        # the bar for a reformed man; measured 0.00015 (3D preview) and 0.0018 (2D top view)
        Claim("shape_error", "after reforming, the mean distance outside the template / its height",
              lambda sim: metrics.shape_error(sim, "man"), "<=", 0.02),
        Claim("coverage", "after reforming, the fraction of the template's volume the metal fills",
              lambda sim: metrics.coverage(sim, "man"), ">=", 0.9),
        # G2P puts a particle that ends in a bar back on its surface, up to float32 rounding: measured
        # 6e-8 m deep at most (2D); 1 um is 17x that and 1/20,000 of a cell
        Claim("inside_bars", "particles more than 1 um inside a bar (the bars' SDF)",
              lambda sim: metrics.particles_inside(sim, BARS, body="man", depth=1e-6), "==", 0, when="always"),
        Claim("mass", "the body's mass is conserved exactly", RelativeChange(lambda sim: sim.total_mass()), "==",
              0.0, when="always"),
        # on leaving, a particle's colour has relaxed for less than a frame (1/30 s of a 1.5 s decay)
        Claim("stripes", "of the particles that touched a bar and left it, the fraction striped on leaving",
              _View(stripes, stripes.carried), ">=", 0.5),
        # the copied colour relaxes as exp(-t / mimic_decay): <= exp(-1 s / 1.5 s) = 0.51 a second after
        # leaving, 0.26 at the 2 s most particles have had by the end; above 0.75 it is not fading
        Claim("stripes_fade", f"the stripe colour left {_Stripes.FADE_AFTER:g} s+ after leaving, over that on "
              f"leaving (mimic_decay {decay:g} s)", _View(stripes, stripes.faded), "<=", 0.75),
    ]
