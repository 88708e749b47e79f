"""Timeline events and emitters of a Scene (host descriptions; the kernels are in kernels/events.py).

- ``Gunshot``: at ``time`` (s), the particles within ``radius`` (m) of ``point`` share an
  ``impulse`` (N s) along ``direction`` and take ``damage`` (a frozen body cracks there).
  With ``shatter`` > 0 (m) the shot also shatters the brittle metal it hits: a network of cracks
  (``crack_network``) cuts the frozen pieces it touches into fragments ``shatter`` m across.
  With ``aim`` (a body's name) the shot tracks that body: when it fires, its sphere is centred
  on the particle of the body's largest piece nearest ``point`` (a gunman aims at the man,
  wherever his fall put him; ``Simulation.aim``).
- ``Grenade``: a radial ``impulse`` (N s, the sum of |m dv|) and ``heat`` (J) shared by
  the particles within ``radius`` of ``point``.
- ``HeatSource``: from ``start`` to ``end`` (s), ``power`` (W; negative chills) shared by
  the particles inside ``region`` (a Shape), by mass.
- ``Retemper`` (``Scene.retemper``): at ``time`` (s), the collider named ``collider`` takes
  ``temperature`` (K; None: adiabatic from then on): a floor chilled by a spill, a pipe that runs
  empty, a plate that hot metal runs onto. ``collider="air"`` changes the air instead: its
  temperature and, when given, its ``coefficient`` (W/(m^2 K)): cold vapour over a spill.
- ``ControlChange`` (``Scene.control_at``): at ``time`` (s), new controller settings
  (``values``: ``polyalloy.scene.Control`` names), e.g. a stunned controller or a glitch.
- ``Emitter`` (``Scene.pour``): from ``start`` to ``end``, a fresh fill of ``shape`` with
  ``material`` at ``temperature`` (K) and ``velocity`` (m/s) every ``shape volume / rate``
  seconds (``rate`` in m^3/s). Its particles are allocated with the simulation (a pool) and
  switched on when due, so nothing is reallocated mid-run. A fill goes in only once the
  emitter holds no live particle (the last fill has left it), so fills never overlap: a
  ``rate`` above the emitter's cross-section times the speed pours at that lower rate, and a
  pour that backs up into its emitter waits (later fills of every emitter wait behind it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.shapes import Shape


def _finite(name, *values):
    for v in values:
        try:
            ok = all(math.isfinite(float(c)) for c in np.atleast_1d(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{name}: values must be finite numbers, got {v!r}")


@dataclass
class Gunshot:
    time: float
    point: Sequence[float]
    direction: Sequence[float]
    impulse: float
    radius: float
    damage: float = 1.0
    shatter: float = 0.0
    aim: str = ""

    def __post_init__(self):
        _finite("gunshot", self.time, self.point, self.direction, self.impulse, self.radius, self.shatter)
        if self.radius <= 0 or self.impulse < 0 or not 0 <= self.damage <= 1 or self.time < 0 or self.shatter < 0:
            raise ConfigError("gunshot: needs time >= 0, radius > 0, impulse >= 0, damage in [0, 1] and shatter >= 0")
        if np.linalg.norm(self.direction) == 0:
            raise ConfigError("gunshot: direction must not be zero")
        if not isinstance(self.aim, str):
            raise ConfigError(f"gunshot: aim must be a body's name (or empty), got {self.aim!r}")


@dataclass
class Grenade:
    time: float
    point: Sequence[float]
    impulse: float
    heat: float
    radius: float

    def __post_init__(self):
        _finite("grenade", self.time, self.point, self.impulse, self.heat, self.radius)
        if self.radius <= 0 or self.impulse < 0 or self.time < 0:
            raise ConfigError("grenade: needs time >= 0, radius > 0 and impulse >= 0")


@dataclass
class ControlChange:
    time: float
    values: dict

    def __post_init__(self):
        _finite("control change", self.time)
        if self.time < 0:
            raise ConfigError(f"control change: needs time >= 0, got {self.time}")


@dataclass
class HeatSource:
    start: float
    end: float
    region: Shape
    power: float

    def __post_init__(self):
        _finite("heat source", self.start, self.end, self.power)
        if not 0 <= self.start < self.end:
            raise ConfigError(f"heat source: needs 0 <= start < end, got {self.start}, {self.end}")


AIR = "air"  # the name Retemper gives the air around the scene


@dataclass
class Retemper:
    time: float
    collider: str
    temperature: float | None
    coefficient: float | None = None

    def __post_init__(self):
        _finite("retemper", self.time)
        if self.time < 0:
            raise ConfigError(f"retemper {self.collider!r}: needs time >= 0, got {self.time}")
        if self.collider == AIR and self.temperature is None:
            raise ConfigError("retemper air: needs a temperature")
        if self.coefficient is not None and not (isinstance(self.coefficient, (int, float))
                                                 and 0 <= self.coefficient <= 1e6):
            raise ConfigError(f"retemper {self.collider!r}: coefficient must be in [0, 1e6] W/(m^2 K), "
                              f"got {self.coefficient!r}")
        if self.temperature is not None and not (isinstance(self.temperature, (int, float))
                                                 and 0 < self.temperature < 1e5):
            raise ConfigError(f"retemper {self.collider!r}: temperature must be in (0, 1e5) K or None, "
                              f"got {self.temperature!r}")


@dataclass
class Emitter:
    name: str
    shape: Shape
    material: str
    rate: float
    temperature: float = 293.15
    velocity: Sequence[float] = (0.0, 0.0, 0.0)
    start: float = 0.0
    end: float = 1.0
    color: Sequence[float] | None = None

    def __post_init__(self):
        _finite(f"emitter {self.name!r}", self.rate, self.temperature, self.velocity, self.start, self.end)
        if self.rate <= 0 or not 0 < self.temperature < 1e5 or not 0 <= self.start < self.end:
            raise ConfigError(f"emitter {self.name!r}: needs rate > 0, temperature in (0, 1e5) K and "
                              f"0 <= start < end")

    def fill_times(self, volume: float) -> list[float]:
        """Times (s) of the fills: every volume / rate seconds from ``start`` while before ``end``."""
        period = volume / self.rate
        count = int(math.floor((self.end - self.start) / period + 1e-9)) + 1
        return [self.start + k * period for k in range(count) if self.start + k * period < self.end]


SHATTER_MIN_SPACINGS = 3  # a crack network finer than this many particle spacings leaves no fragment whole


def crack_network(x: np.ndarray, size: float, width: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The cracks of a brittle piece (its particles at ``x``, (n, dim)) that shatters into
    fragments about ``size`` m across: the faces of the Voronoi cells of random flaws (seeds among
    the points, none closer than ``size`` to another, drawn from ``rng``), each ``width`` m wide.
    Returns whether each point lies on a crack (within ``width`` / 2 of the plane halfway between
    its nearest flaw and one of the next three) and the index of its nearest flaw (its cell)."""
    from scipy.spatial import cKDTree

    x = np.asarray(x, np.float64)
    seeds = []
    for i in rng.permutation(len(x)):  # random sequential adding: flaws no closer than size
        if not seeds or np.min(np.sum((x[seeds] - x[i]) ** 2, axis=1)) >= size * size:
            seeds.append(i)
    if len(seeds) < 2:
        return np.zeros(len(x), bool), np.zeros(len(x), np.int64)
    s = x[seeds]
    k = min(4, len(s))
    d, j = cKDTree(s).query(x, k=k)
    gap = np.full(len(x), np.inf)
    for m in range(1, k):  # the distance to the plane between the nearest flaw and the m-th
        gap = np.minimum(gap, (d[:, m] ** 2 - d[:, 0] ** 2) / (2.0 * np.linalg.norm(s[j[:, m]] - s[j[:, 0]], axis=1)))
    return gap < width / 2, j[:, 0]
