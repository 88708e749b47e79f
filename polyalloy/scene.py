"""The declarative Scene: what a scene script builds and a Simulation runs.

A scene script (``scenes/*.py`` or any file on disk) defines ``build(quality="preview", ...)``
returning a ``Scene``; extra keyword parameters of ``build`` are scene options that
``--set name=value`` can change (``dim=2``). Everything else a user may change is a field
of ``Scene`` (``--set cfl=0.3``, ``--set gravity=-3.7``) or of a named material
(``--set materials.water.viscosity=0.5``); unknown keys are errors that list the known ones.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

import numpy as np

from polyalloy.body import Template, Walk
from polyalloy.errors import ConfigError
from polyalloy.events import AIR, SHATTER_MIN_SPACINGS, ControlChange, Emitter, Grenade, Gunshot, HeatSource, Retemper
from polyalloy.materials import POLYALLOY, Material
from polyalloy.shapes import Shape, _vec
from polyalloy.kernels.sdf import SURFACE_NAMES
from polyalloy.kernels.shade import MAX_LIGHTS

QUALITIES = ("preview", "film")

DEFAULT_COLORS = {0: (0.35, 0.6, 0.95), 1: (0.9, 0.45, 0.3), 2: (0.85, 0.85, 0.8)}


@dataclass
class Body:
    """A shape filled with particles of one material: ``velocity`` (m/s) at t = 0,
    ``temperature`` (K) at t = 0, ``color`` (linear RGB in [0, 1]: the renderer's base colour, a
    metal's reflectance at normal incidence; None: by material kind).

    Mimetic control (polyalloy only): ``template`` (a ``polyalloy.body.Template``, e.g. a
    ``Humanoid``) is the shape the controller holds the body to; the body's particles get home
    points in it by an optimal-transport-like matching, so ``shape`` may differ (a blob that
    reforms into a man) or be the template itself. ``walk`` moves the template's pose along a
    path; ``earlier`` is the shape a ``glitch`` drifts parts toward, or a sequence of shapes
    that the glitch cycles through, one per pulse (``Control.glitch_rate``). ``follow``: the
    template's root rides on the body's centre of mass instead of standing where it was put
    (or walking), so the controller holds his shape wherever he goes (is knocked, falls) rather
    than dragging him back to a place. ``stands``: the controller holds the body up only while
    what it holds stands on something (``polyalloy.control``, point 5): when the gripped part
    comes apart from everything that rests on a collider (his frozen legs snapped off under
    him), the shape rides on its centre of mass instead and he falls."""

    name: str
    shape: Shape
    material: str
    velocity: Sequence[float] = (0.0, 0.0, 0.0)
    color: Sequence[float] | None = None
    temperature: float = 293.15
    template: Template | None = None
    walk: Walk | None = None
    earlier: Template | Sequence[Template] | None = None
    follow: bool = False
    stands: bool = False

    def __post_init__(self):
        _vec(self.velocity, 2, f"body {self.name!r} velocity")
        self.velocity = tuple(np.asarray(self.velocity, float).reshape(-1).tolist())
        if not (isinstance(self.temperature, (int, float)) and 0 < self.temperature < 1e5):
            raise ConfigError(f"body {self.name!r}: temperature must be in (0, 1e5) K, got {self.temperature!r}")
        if self.template is not None and not isinstance(self.template, Template):
            raise ConfigError(f"body {self.name!r}: template must be a polyalloy.body Template, "
                              f"got {type(self.template).__name__}")
        if (self.walk is not None or self.earlier is not None or self.follow or self.stands) and self.template is None:
            raise ConfigError(f"body {self.name!r}: walk, earlier, follow and stands need a template")
        if self.walk is not None and self.follow:
            raise ConfigError(f"body {self.name!r}: a template either walks or follows the body, not both")
        if self.earlier is not None and (not self.earlier_shapes()
                                         or not all(isinstance(e, Template) for e in self.earlier_shapes())):
            raise ConfigError(f"body {self.name!r}: earlier must be a polyalloy.body Template or a non-empty "
                              f"sequence of them")

    def earlier_shapes(self) -> tuple:
        """The earlier shapes as a tuple (empty when there is none), in the order the glitch cycles."""
        if self.earlier is None:
            return ()
        return (self.earlier,) if isinstance(self.earlier, Template) else tuple(self.earlier)


@dataclass
class Texture:
    """A surface pattern that mimicking polyalloy copies: ``kind`` "stripes" (bands across the
    shape's local y axis) or "checker", two linear-RGB ``colors``, ``period`` (m)."""

    kind: str = "stripes"
    colors: Sequence[Sequence[float]] = ((0.9, 0.85, 0.1), (0.08, 0.08, 0.08))
    period: float = 0.1

    def __post_init__(self):
        from polyalloy.kernels.control import TEXTURE_NAMES

        if self.kind not in TEXTURE_NAMES:
            raise ConfigError(f"texture kind must be one of {', '.join(TEXTURE_NAMES)}, got {self.kind!r}")
        if not (math.isfinite(self.period) and self.period > 0):
            raise ConfigError(f"texture period must be > 0 m, got {self.period}")
        if len(self.colors) != 2 or any(len(c) != 3 for c in self.colors):
            raise ConfigError("texture colors must be two RGB triples")

    def row(self) -> dict:
        from polyalloy.kernels.control import TEXTURE_NAMES

        return dict(texture=TEXTURE_NAMES[self.kind], tex_a=tuple(self.colors[0]), tex_b=tuple(self.colors[1]),
                    tex_period=self.period)


@dataclass
class Control:
    """The mimetic controller's live settings (``kernels.control``), shared by every controlled
    body; ``--set control.NAME=value`` changes them. ``gain`` (0 off .. 1 full, may exceed 1),
    ``frequency`` (Hz) and ``damping`` (ratio) of the pull toward home, ``hold`` (fraction of
    the gripped weight the controller carries), ``max_accel`` (m/s^2 cap), ``grip_fade`` (K
    below the melting point over which the grip fades out), ``glitch`` (0..1: parts drift
    toward the body's ``earlier`` shape, in pulses of ``glitch_rate`` Hz, each part's pulse
    out of step with the others' by up to ``glitch_spread`` of a period; with several earlier
    shapes each pulse goes to the next one), ``mimic_decay`` (s: a copied colour's return to
    chrome), ``volume_relax`` (s: gripped material forgets volume changes, so fragments
    fuse), ``fine`` (1/s: rate at which a particle closes the part of its home error that the
    grid's average misses, so cracks between fragments close), ``reassign_distance`` (in template heights: a gripped particle farther than this
    from home gets a new home among the free ones), ``reassign_every`` (s of simulated time)."""

    gain: float = 1.0
    frequency: float = 3.0
    damping: float = 1.0
    hold: float = 1.0
    max_accel: float = 60.0
    grip_fade: float = 150.0
    glitch: float = 0.0
    glitch_rate: float = 0.4
    glitch_spread: float = 1.0
    mimic_decay: float = 1.5
    volume_relax: float = 0.1
    fine: float = 5.0
    reassign_distance: float = 0.06
    reassign_every: float = 0.1

    RANGES = {"gain": (0.0, 100.0), "frequency": (0.01, 100.0), "damping": (0.0, 100.0), "hold": (0.0, 2.0),
              "max_accel": (0.0, 1e5), "grip_fade": (1e-3, 1e4), "glitch": (0.0, 1.0),
              "glitch_rate": (0.01, 20.0), "glitch_spread": (0.0, 1.0), "mimic_decay": (1e-3, 1e4), "volume_relax": (1e-3, 1e4), "fine": (0.0, 1e3),
              "reassign_distance": (1e-3, 100.0), "reassign_every": (1e-3, 100.0)}

    def __post_init__(self):
        for key, (lo, hi) in self.RANGES.items():
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise ConfigError(f"control.{key} = {value!r} is out of range [{lo:g}, {hi:g}]")

    def spring_dt(self) -> float:
        """Explicit limit (s) of the pull toward home (``kernels.control.control_accel``): its spring,
        of stiffness gain omega^2 per unit mass, is integrated by symplectic Euler, stable for
        dt < 2 / (omega sqrt(gain)) without damping (the implicit damping only widens that); half of it."""
        if self.gain <= 0:
            return math.inf
        return 1.0 / (2 * math.pi * self.frequency * math.sqrt(self.gain))


@dataclass
class Collider:
    """An analytic obstacle: ``surface`` is ``sticky`` (takes the collider's velocity), ``slip``
    (no normal motion) or ``separate`` (may leave it; Coulomb ``friction`` while in contact).
    A moving collider has ``velocity`` set on its shape. ``temperature`` (K; None: adiabatic)
    holds the grid nodes inside it at that temperature (a cold floor, a hot crucible; ``Scene.retemper``
    changes it on the timeline); frozen polyalloy sticks to a collider colder than its brittle point. ``texture`` (a ``Texture``)
    is what mimicking polyalloy that touches it copies."""

    name: str
    shape: Shape
    surface: str = "separate"
    friction: float = 0.0
    color: Sequence[float] = (0.55, 0.55, 0.58)
    temperature: float | None = None
    texture: Texture | None = None

    def __post_init__(self):
        if self.temperature is not None and not (isinstance(self.temperature, (int, float))
                                                 and 0 < self.temperature < 1e5):
            raise ConfigError(f"collider {self.name!r}: temperature must be in (0, 1e5) K or None, "
                              f"got {self.temperature!r}")
        if self.surface not in SURFACE_NAMES:
            raise ConfigError(f"collider {self.name!r}: surface must be one of {', '.join(SURFACE_NAMES)}, "
                              f"got {self.surface!r}")
        if not (math.isfinite(self.friction) and 0 <= self.friction <= 10):
            raise ConfigError(f"collider {self.name!r}: friction must be in [0, 10], got {self.friction}")


def _finite_vec(value, n: int, name: str) -> np.ndarray:
    """``value`` as a float array of ``n`` finite numbers, or a one-line ConfigError."""
    try:
        a = np.asarray(value, float).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} needs {n} numbers, got {value!r}") from None
    if a.size != n or not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} needs {n} finite numbers, got {value!r}")
    return a


@dataclass
class Camera:
    """A pinhole camera (metres, degrees). 2D scenes are drawn as a side view of the domain.

    ``keys`` makes a tracking shot: ``[(t, position, look_at), ...]`` with times (s) strictly
    increasing; position and look-at follow a cubic Hermite spline through the keys with
    Catmull-Rom tangents (C1, no overshoot at the ends: the camera eases in and out of the first
    and last key) and hold before the first and after the last. Without keys the camera stays at
    ``position`` looking at ``look_at``.
    """

    position: Sequence[float] = (0.5, 0.6, 2.2)
    look_at: Sequence[float] = (0.5, 0.3, 0.5)
    fov: float = 40.0
    up: Sequence[float] = (0.0, 1.0, 0.0)
    keys: Sequence = ()

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise a one-line ConfigError for a bad fov, up vector or key list."""
        if not (isinstance(self.fov, (int, float)) and math.isfinite(self.fov) and 1.0 <= self.fov <= 170.0):
            raise ConfigError(f"camera fov must be in [1, 170] degrees, got {self.fov!r}")
        _finite_vec(self.up, 3, "camera up")
        self._check_pair(self.position, self.look_at, "camera")
        last = -math.inf
        for k, key in enumerate(self.keys):
            if not (isinstance(key, (tuple, list)) and len(key) == 3):
                raise ConfigError(f"camera key {k} must be (t, position, look_at), got {key!r}")
            t = key[0]
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t > last):
                raise ConfigError(f"camera key {k}: times must be finite and strictly increasing, got t = {t!r}")
            last = t
            self._check_pair(key[1], key[2], f"camera key {k}")

    @staticmethod
    def _check_pair(position, look_at, name: str) -> None:
        eye, target = _finite_vec(position, 3, f"{name} position"), _finite_vec(look_at, 3, f"{name} look_at")
        if np.linalg.norm(target - eye) < 1e-9:
            raise ConfigError(f"{name} position and look_at must differ, both are {tuple(eye)}")

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Position and look-at point (m) at time ``t`` (s)."""
        if not self.keys:
            return np.asarray(self.position, float), np.asarray(self.look_at, float)
        times = np.array([k[0] for k in self.keys], float)
        pts = np.array([np.concatenate([np.asarray(k[1], float), np.asarray(k[2], float)]) for k in self.keys])
        if t <= times[0] or len(times) == 1:
            return pts[0, :3], pts[0, 3:]
        if t >= times[-1]:
            return pts[-1, :3], pts[-1, 3:]
        i = int(np.searchsorted(times, t, side="right")) - 1

        def tangent(k):  # Catmull-Rom slope (per second) at key k; zero at the ends
            if k == 0 or k == len(times) - 1:
                return np.zeros(6)
            return (pts[k + 1] - pts[k - 1]) / (times[k + 1] - times[k - 1])

        h = times[i + 1] - times[i]
        s = (t - times[i]) / h
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        p = h00 * pts[i] + h10 * h * tangent(i) + h01 * pts[i + 1] + h11 * h * tangent(i + 1)
        return p[:3], p[3:]


@dataclass
class Light:
    """A bright area light of the environment, seen in reflections: ``direction`` (towards the
    light, world axes), ``color`` (linear RGB radiance, may exceed 1), ``size`` (angular radius,
    degrees). The first light of a scene is the key light: it casts the shadows."""

    direction: Sequence[float] = (-0.4, 1.0, 0.5)
    color: Sequence[float] = (6.0, 6.0, 6.0)
    size: float = 8.0

    def __post_init__(self):
        d = _finite_vec(self.direction, 3, "light direction")
        if np.linalg.norm(d) < 1e-9:
            raise ConfigError("light direction must be non-zero")
        c = _finite_vec(self.color, 3, "light color")
        if np.any(c < 0) or np.any(c > 1e4):
            raise ConfigError(f"light color must be in [0, 1e4], got {tuple(c)}")
        if not (isinstance(self.size, (int, float)) and 0.5 <= self.size <= 60.0):
            raise ConfigError(f"light size must be in [0.5, 60] degrees, got {self.size!r}")


def _studio_lights() -> list:
    return [Light((-0.45, 1.0, 0.55), (9.0, 8.8, 8.4), 9.0),  # key softbox, above front left: casts shadows
            Light((0.9, 0.35, 0.6), (2.6, 2.8, 3.2), 14.0),  # cool fill from the right
            Light((0.1, 0.45, -1.0), (5.0, 4.6, 4.2), 6.0)]  # rim light behind the subject


@dataclass
class Environment:
    """What the metal reflects and stands on (linear RGB): a sky from ``horizon`` to ``zenith``,
    ``ground`` far below the horizon, a floor at the bottom of the domain chequered in ``floor``
    and ``floor_alt`` tiles of ``tile`` m, up to MAX_LIGHTS ``lights`` (the first casts the
    shadows), and ``exposure`` (a multiplier before tone mapping)."""

    zenith: Sequence[float] = (0.015, 0.02, 0.03)
    horizon: Sequence[float] = (0.4, 0.42, 0.46)
    ground: Sequence[float] = (0.03, 0.03, 0.032)
    floor: Sequence[float] = (0.075, 0.075, 0.08)
    floor_alt: Sequence[float] = (0.055, 0.055, 0.06)
    tile: float = 0.25
    lights: list = field(default_factory=_studio_lights)
    exposure: float = 1.0

    def __post_init__(self):
        for name in ("zenith", "horizon", "ground", "floor", "floor_alt"):
            c = _finite_vec(getattr(self, name), 3, f"environment {name}")
            if np.any(c < 0) or np.any(c > 100):
                raise ConfigError(f"environment {name} must be in [0, 100], got {tuple(c)}")
        if not (isinstance(self.tile, (int, float)) and 1e-3 <= self.tile <= 100):
            raise ConfigError(f"environment tile must be in [0.001, 100] m, got {self.tile!r}")
        if not (isinstance(self.exposure, (int, float)) and 0.01 <= self.exposure <= 100):
            raise ConfigError(f"environment exposure must be in [0.01, 100], got {self.exposure!r}")
        if len(self.lights) > MAX_LIGHTS or not all(isinstance(li, Light) for li in self.lights):
            raise ConfigError(f"environment lights must be at most {MAX_LIGHTS} Light objects, got {self.lights!r}")


# Scene fields that --set may change, with their allowed ranges (inclusive).
TUNABLE = {
    "dx": (1e-4, 1.0),
    "particles_per_cell": (1, 4),
    "cfl": (0.01, 1.0),
    "dt_max": (1e-7, 0.1),
    "gravity": (-1000.0, 1000.0),
    "fps": (1, 240),
    "duration": (0.0, 3600.0),
    "max_particles": (1, 200_000_000),
    "air_temperature": (1.0, 1e4),
    "air_coefficient": (0.0, 1e6),
    "heat_substeps": (0, 100_000),
}


@dataclass
class Scene:
    """Everything a simulation needs, in SI units.

    dim: 2 or 3. domain: (lo, hi) corners of the box the particles live in (m).
    dx: grid spacing (m); particles_per_cell: particles per cell along each axis.
    cfl: fraction of a cell a particle or an elastic wave may cross per substep.
    dt_max: the largest substep (s). gravity: acceleration along y (m/s^2).
    fps, duration: frame rate of the output and the default length (s).
    camera, environment: what the renderer sees (``Camera``, ``Environment``); quality: the
    preset the scene was built at (``load_scene`` sets it), which the renderer follows.
    claims: the scene script's ``claims(scene) -> list[polyalloy.claims.Claim]`` (``load_scene``
    sets it from the script; None: the scene makes no claims), what ``polyalloy check`` measures.
    max_particles: refuse to build a scene with more particles than this. max_memory: bytes the
    simulation may take (None: the memory available when it starts; ``polyalloy.preflight``).
    air_temperature (K) and air_coefficient h (W/(m^2 K)): Newton cooling of free surfaces,
    flux h (T_air - T) per m^2 of surface (~10 for still air; 0 insulates the scene).
    heat_substeps: the most substeps one heat step may span (0: as many as the heat's explicit
    step allows, ``kernels.heat`` "Multirate"; 1: a heat step every substep, slower, the same
    result to a fraction of a kelvin). The controller's pull acts on the heat step's substeps
    (``kernels.control`` "Multirate"), so 1 also pulls every substep.
    """

    name: str
    dim: int = 3
    domain: tuple = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    dx: float = 1.0 / 64
    particles_per_cell: int = 2
    cfl: float = 0.4
    dt_max: float = 2e-3
    gravity: float = -9.81
    fps: int = 30
    duration: float = 2.0
    max_particles: int = 20_000_000
    air_temperature: float = 293.15
    air_coefficient: float = 10.0
    heat_substeps: int = 0
    seed: int = 0
    max_memory: int | None = None
    materials: dict = field(default_factory=dict)
    bodies: list = field(default_factory=list)
    colliders: list = field(default_factory=list)
    events: list = field(default_factory=list)
    emitters: list = field(default_factory=list)
    camera: Camera = field(default_factory=Camera)
    control: Control = field(default_factory=Control)
    environment: Environment = field(default_factory=Environment)
    quality: str = "preview"
    claims: Callable | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if type(self.dim) is not int or self.dim not in (2, 3):
            raise ConfigError(f"scene dim must be 2 or 3, got {self.dim!r}")
        try:
            lo, hi = (np.asarray(c, float).reshape(-1)[: self.dim] for c in self.domain)
        except (TypeError, ValueError):
            raise ConfigError(f"scene domain must be two {self.dim}-D corners (lo, hi), got {self.domain!r}") from None
        if lo.size != self.dim or hi.size != self.dim or not np.all(np.isfinite(lo) & np.isfinite(hi) & (hi > lo)):
            raise ConfigError(f"scene domain must be two {self.dim}-D corners with hi > lo, got {self.domain}")
        self.domain = (tuple(lo), tuple(hi))
        if not isinstance(self.camera, Camera) or not isinstance(self.environment, Environment):
            raise ConfigError("scene camera must be a Camera and environment an Environment")
        if self.quality not in QUALITIES:
            raise ConfigError(f"unknown quality {self.quality!r}; choose {' or '.join(QUALITIES)}")
        for key in TUNABLE:
            self._check(key, getattr(self, key))
        if self.max_memory is not None and not (isinstance(self.max_memory, int) and self.max_memory > 0):
            raise ConfigError(f"scene max_memory must be a positive number of bytes or None, got {self.max_memory!r}")

    @property
    def spacing(self) -> float:
        """The particle spacing (m): dx / particles_per_cell."""
        return self.dx / self.particles_per_cell

    def _check(self, key, value):
        lo, hi = TUNABLE[key]
        if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
            raise ConfigError(f"{key} = {value!r} is out of range [{lo:g}, {hi:g}]")

    # --- building -----------------------------------------------------------------------
    def add_material(self, name: str, material: Material) -> "Scene":
        self.materials[name] = material
        return self

    def add_body(self, name: str, shape: Shape, material: str, velocity=(0.0, 0.0, 0.0), color=None,
                 temperature: float = 293.15, template: Template | None = None, walk: Walk | None = None,
                 earlier=None, follow: bool = False, stands: bool = False) -> "Scene":
        """Fill ``shape`` with ``material``; ``template`` (and ``walk``, ``earlier``, ``follow``,
        ``stands``) put it under the mimetic controller, see ``Body``. ``shape`` may be the
        template itself."""
        if material not in self.materials:
            raise ConfigError(f"body {name!r}: unknown material {material!r}; add it with add_material first "
                              f"(known: {', '.join(self.materials) or 'none'})")
        if template is not None and self.materials[material].kind != POLYALLOY:
            raise ConfigError(f"body {name!r}: only polyalloy can be controlled, not {material!r}")
        self.bodies.append(Body(name, shape, material, velocity, color, temperature, template, walk, earlier,
                                follow, stands))
        return self

    def add_collider(self, name: str, shape: Shape, surface: str = "separate", friction: float = 0.0,
                     color=(0.55, 0.55, 0.58), temperature: float | None = None,
                     texture: Texture | None = None) -> "Scene":
        self.colliders.append(Collider(name, shape, surface, friction, tuple(color), temperature, texture))
        return self

    # --- timeline (polyalloy.events) -----------------------------------------------------
    def gunshot(self, time: float, point, direction, impulse: float, radius: float, damage: float = 1.0,
                shatter: float = 0.0, aim: str = "") -> "Scene":
        """At ``time`` (s): ``impulse`` (N s) along ``direction`` and ``damage`` within ``radius`` (m) of ``point``;
        ``shatter`` > 0 (m): the frozen pieces it hits shatter into fragments that size (``Simulation.shatter``);
        ``aim`` (a body's name): the shot tracks that body, centred when it fires on the particle of
        the body's largest piece nearest ``point`` (``Simulation.aim``)."""
        if 0 < shatter < SHATTER_MIN_SPACINGS * self.spacing:
            raise ConfigError(f"gunshot: shatter ({shatter:g} m) must be 0 or at least {SHATTER_MIN_SPACINGS} particle "
                              f"spacings ({SHATTER_MIN_SPACINGS * self.spacing:g} m)")
        self.events.append(Gunshot(time, point, direction, impulse, radius, damage, shatter, aim))
        return self

    def grenade(self, time: float, point, impulse: float, heat: float, radius: float) -> "Scene":
        """At ``time`` (s): a radial ``impulse`` (N s) and ``heat`` (J) within ``radius`` (m) of ``point``."""
        self.events.append(Grenade(time, point, impulse, heat, radius))
        return self

    def control_at(self, time: float, **values) -> "Scene":
        """At ``time`` (s): change the controller's settings (``Control`` names: ``gain=0.2``,
        ``glitch=1``), as ``Simulation.set_control`` does; later changes build on earlier ones."""
        for key, value in values.items():
            if key not in Control.RANGES:
                raise ConfigError(f"control_at: unknown control setting {key!r}; known: {', '.join(Control.RANGES)}")
            dataclasses.replace(self.control, **{key: value})  # validates the value
        self.events.append(ControlChange(time, dict(values)))
        return self

    def heat(self, region: Shape, power: float, start: float = 0.0, end: float = 1e9) -> "Scene":
        """Add ``power`` (W) to the particles inside ``region`` from ``start`` to ``end`` (s)."""
        self.events.append(HeatSource(start, end, region, power))
        return self

    def retemper(self, time: float, collider: str, temperature: float | None,
                 coefficient: float | None = None) -> "Scene":
        """At ``time`` (s) collider ``collider`` (by name) takes ``temperature`` (K; None: adiabatic);
        ``collider="air"``: the air takes ``temperature`` and, if given, ``coefficient`` (W/(m^2 K))."""
        names = [c.name for c in self.colliders]
        if collider not in names + [AIR]:
            raise ConfigError(f"retemper: unknown collider {collider!r}; the scene has "
                              f"{', '.join(names + [AIR])}")
        self.events.append(Retemper(time, collider, temperature, coefficient))
        return self

    def chill(self, region: Shape, power: float, start: float = 0.0, end: float = 1e9) -> "Scene":
        """Take ``power`` (W) from the particles inside ``region`` from ``start`` to ``end`` (s)."""
        return self.heat(region, -abs(power), start, end)

    def pour(self, name: str, shape: Shape, material: str, rate: float, temperature: float = 293.15,
             velocity=(0.0, 0.0, 0.0), start: float = 0.0, end: float = 1.0, color=None) -> "Scene":
        """Spawn ``material`` from ``shape`` at ``rate`` (m^3/s), see ``polyalloy.events.Emitter``."""
        if material not in self.materials:
            raise ConfigError(f"emitter {name!r}: unknown material {material!r}")
        self.emitters.append(Emitter(name, shape, material, rate, temperature, velocity, start, end, color))
        return self

    # --- the user's overrides -------------------------------------------------------------
    def settable_keys(self) -> list[str]:
        keys = list(TUNABLE)
        for mname, mat in self.materials.items():
            keys += [f"materials.{mname}.{f.name}" for f in fields(mat)]
        keys += [f"control.{k}" for k in Control.RANGES]
        return keys

    def set(self, key: str, value) -> None:
        """Apply one ``--set key=value``; an unknown key or a bad value raises ConfigError."""
        if key in TUNABLE:
            lo, hi = TUNABLE[key]
            value = _as_number(key, value, integer=isinstance(lo, int) and isinstance(hi, int))
            self._check(key, value)
            setattr(self, key, value)
            return
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "materials" and parts[1] in self.materials:
            mat = self.materials[parts[1]]
            self.materials[parts[1]] = mat.replace(**{parts[2]: _as_number(key, value)})
            return
        if len(parts) == 2 and parts[0] == "control" and parts[1] in Control.RANGES:
            self.control = dataclasses.replace(self.control, **{parts[1]: _as_number(key, value)})
            return
        raise ConfigError(f"unknown key {key!r} for scene {self.name!r}; known keys: "
                          f"{', '.join(self.settable_keys())}")

    def duration_frames(self, seconds: float | None = None) -> int:
        return max(1, int(round((self.duration if seconds is None else seconds) * self.fps)))


def _as_number(key: str, value, integer: bool = False):
    if isinstance(value, bool):
        raise ConfigError(f"{key!r} needs a number, got {value!r}")
    if isinstance(value, (int, float)):
        if integer and value != int(value):
            raise ConfigError(f"{key!r} needs a whole number, got {value!r}")
        return int(value) if integer else value
    try:
        return int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key!r} needs a {'whole ' if integer else ''}number, got {value!r}") from None


# --- finding and loading scene scripts ------------------------------------------------------
def list_scenes() -> dict[str, str]:
    """Shipped scenes (``polyalloy.scenes``) and the first line of each banner docstring."""
    import importlib
    import pkgutil

    import polyalloy.scenes as pkg

    out = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"polyalloy.scenes.{info.name}")
        out[info.name] = ((mod.__doc__ or "").strip().splitlines() or [""])[0]
    return out


def _load_module(name_or_path: str):
    import importlib
    import importlib.util
    import os

    if name_or_path.endswith(".py") or os.sep in name_or_path:
        _check_script_path(name_or_path)
        mod_name = "polyalloy_user_scene_" + os.path.splitext(os.path.basename(name_or_path))[0]
        spec = importlib.util.spec_from_file_location(mod_name, name_or_path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # a script's own bug, even sys.exit(), is one line, not a crash
            raise ConfigError(f"scene script {name_or_path} failed on import: {_script_error(exc)}") from exc
        return module
    known = list_scenes()
    if name_or_path not in known:
        raise ConfigError(f"unknown scene {name_or_path!r}; available: {', '.join(known)} (or a path to a .py file)")
    return importlib.import_module(f"polyalloy.scenes.{name_or_path}")


def _check_script_path(path: str) -> None:
    """ConfigError unless ``path`` is a readable file named ``*.py`` (what Python can import)."""
    import os

    if os.path.isdir(path):
        raise ConfigError(f"scene path {path!r} is a folder; give a scene script (.py) or a shipped scene name")
    if not os.path.exists(path):
        raise ConfigError(f"scene file {path!r} does not exist")
    if not os.path.isfile(path):
        raise ConfigError(f"scene path {path!r} is not a regular file; give a scene script (.py)")
    if not path.endswith(".py"):
        raise ConfigError(f"scene file {path!r} is not a Python script: a scene script is a .py file with a "
                          f"build(quality) function")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"scene file {path!r} cannot be read: {exc.strerror or exc}") from None


def _script_error(exc: BaseException) -> str:
    """What went wrong in a user's script, in one line: the exception, and its line for a syntax error."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}{f' at line {exc.lineno}' if exc.lineno else ''}: {exc.msg}"
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_scene(name_or_path: str, quality: str = "preview", overrides: dict | None = None) -> Scene:
    """Build a shipped scene by name, or a user's scene script by path, and apply ``overrides``
    (``--set``): keys that name a keyword parameter of ``build`` go to it, the rest to ``Scene.set``."""
    import inspect

    if quality not in QUALITIES:
        raise ConfigError(f"unknown quality {quality!r}; choose {' or '.join(QUALITIES)}")
    module = _load_module(name_or_path)
    build = getattr(module, "build", None)
    if not callable(build):
        raise ConfigError(f"scene script {name_or_path} has no build(quality) function")
    overrides = dict(overrides or {})
    try:
        params = inspect.signature(build).parameters
    except (TypeError, ValueError):
        raise ConfigError(f"scene script {name_or_path}: build is not a Python function") from None
    options = {}
    for key in list(overrides):
        if key in params and key != "quality":
            default = params[key].default
            value = overrides.pop(key)
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                value = _as_number(key, value, integer=isinstance(default, int))
            options[key] = value
    try:
        scene = build(quality=quality, **options)
    except ConfigError:
        raise
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"scene script {name_or_path} failed in build(): {_script_error(exc)}") from exc
    if not isinstance(scene, Scene):
        raise ConfigError(f"scene script {name_or_path}: build() returned {type(scene).__name__}, not a Scene")
    scene.quality = quality
    if scene.claims is None and callable(getattr(module, "claims", None)):
        scene.claims = module.claims
    try:
        for key, value in overrides.items():
            scene.set(key, value)
    except ConfigError as exc:
        if "unknown key" in str(exc):
            extra = [k for k in params if k != "quality"]
            if extra:
                raise ConfigError(f"{exc}; scene options: {', '.join(extra)}") from None
        raise
    return scene
