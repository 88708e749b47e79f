"""Host descriptions of shapes: small dataclasses that become rows of ``kernels.sdf.ShapeTable``.

A shape is written once here and evaluated on the device by ``kernels.sdf.shape_sdf``;
colliders, bodies and the renderer share it. Units are metres; rotations are Euler angles
in degrees (``rotation=(rx, ry, rz)`` applied x then y then z in 3D, a single angle
about z in 2D). A 2D scene uses the first two coordinates: x right, y up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.kernels import sdf as _k

Vec = Sequence[float]


def rotation_matrix(rotation, dim: int) -> np.ndarray:
    """Local-to-world rotation from Euler angles in degrees."""
    if dim == 2:
        a = np.radians(rotation if np.isscalar(rotation) else (list(rotation) + [0, 0, 0])[2])
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rx, ry, rz = np.radians(np.broadcast_to(np.asarray(rotation, float), (3,)) if not np.isscalar(rotation)
                            else (0.0, 0.0, rotation))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def _align_y(axis: np.ndarray) -> np.ndarray:
    """A rotation whose local y axis points along ``axis`` (any dimension)."""
    dim = len(axis)
    y = axis / np.linalg.norm(axis)
    if dim == 2:
        return np.array([[y[1], y[0]], [-y[0], y[1]]])
    helper = np.array([1.0, 0, 0]) if abs(y[0]) < 0.9 else np.array([0, 0, 1.0])
    x = np.cross(y, helper)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def _vec(v, dim: int, name: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} needs {dim} numbers, got {v!r}") from None
    if a.size < dim:
        raise ConfigError(f"{name} needs {dim} coordinates, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} must be finite, got {list(a)}")
    return a[:dim]


def _positive(x: float, name: str) -> float:
    if not (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and np.isfinite(x) and x > 0):
        raise ConfigError(f"{name} must be a number > 0, got {x!r}")
    return float(x)


def _rotation(r, name: str) -> None:
    """Euler angles: one number (about z) or up to three finite numbers (degrees)."""
    if isinstance(r, bool) or not (np.isscalar(r) or 1 <= np.size(_vec(r, 1, name)) <= 3):
        raise ConfigError(f"{name} must be an angle or up to three angles in degrees, got {r!r}")
    _vec(r, 1, name)


def _check_fields(shape, vectors=(), lengths=(), rotation: bool = False) -> None:
    """Validate a shape on construction: ``vectors`` (field names: at least two finite numbers each),
    ``lengths`` (> 0) and its ``rotation``; the dimension-specific checks follow in ``rows``."""
    kind = type(shape).__name__.lower()
    for name in ("velocity", *vectors):
        _vec(getattr(shape, name), 2, f"{kind} {name}")
    for name in lengths:
        _positive(getattr(shape, name), f"{kind} {name}")
    if rotation:
        _rotation(shape.rotation, f"{kind} rotation")


@dataclass
class Shape:
    """Base of all shapes: ``velocity`` (m/s) moves the shape rigidly with time."""

    def rows(self, dim: int) -> list[dict]:
        raise NotImplementedError

    def bounds(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """An axis-aligned box (lo, hi) that contains the shape at t = 0."""
        raise NotImplementedError

    def __or__(self, other: "Shape") -> "Union":
        return Union([self, other])


def _row(kind, params, centre, rot, velocity, dim):
    return dict(kind=kind, params=list(params), centre=np.asarray(centre, float)[:dim],
                rot=np.asarray(rot, float), vel=_vec(velocity, dim, "velocity"))


@dataclass
class Plane(Shape):
    """The half-space behind a plane through ``point`` with outward ``normal`` (a floor, a wall)."""

    point: Vec = (0.0, 0.0, 0.0)
    normal: Vec = (0.0, 1.0, 0.0)
    velocity: Vec = (0.0, 0.0, 0.0)

    def __post_init__(self):
        _check_fields(self, ("point", "normal"))

    def rows(self, dim):
        n = _vec(self.normal, dim, "plane normal")
        if np.linalg.norm(n) == 0:
            raise ConfigError("plane normal must be non-zero")
        return [_row(_k.PLANE, [], _vec(self.point, dim, "plane point"), _align_y(n), self.velocity, dim)]

    def bounds(self, dim):
        return np.full(dim, -np.inf), np.full(dim, np.inf)


@dataclass
class Box(Shape):
    """A box with ``half_size`` (m) about ``centre``, rotated by ``rotation`` (degrees)."""

    centre: Vec = (0.0, 0.0, 0.0)
    half_size: Vec = (0.5, 0.5, 0.5)
    rotation: Vec | float = (0.0, 0.0, 0.0)
    velocity: Vec = (0.0, 0.0, 0.0)

    def __post_init__(self):
        _check_fields(self, ("centre", "half_size"), rotation=True)

    def rows(self, dim):
        h = _vec(self.half_size, dim, "box half_size")
        for v in h:
            _positive(v, "box half_size")
        return [_row(_k.BOX, h, _vec(self.centre, dim, "box centre"), rotation_matrix(self.rotation, dim),
                     self.velocity, dim)]

    def bounds(self, dim):
        c = _vec(self.centre, dim, "box centre")
        r = np.abs(rotation_matrix(self.rotation, dim)) @ _vec(self.half_size, dim, "box half_size")
        return c - r, c + r


@dataclass
class Sphere(Shape):
    """A ball (a disc in 2D) of ``radius`` (m) about ``centre``."""

    centre: Vec = (0.0, 0.0, 0.0)
    radius: float = 0.5
    velocity: Vec = (0.0, 0.0, 0.0)

    def __post_init__(self):
        _check_fields(self, ("centre",), ("radius",))

    def rows(self, dim):
        return [_row(_k.SPHERE, [_positive(self.radius, "sphere radius")], _vec(self.centre, dim, "sphere centre"),
                     np.eye(dim), self.velocity, dim)]

    def bounds(self, dim):
        c = _vec(self.centre, dim, "sphere centre")
        return c - self.radius, c + self.radius


@dataclass
class Capsule(Shape):
    """The points within ``radius`` (m) of the segment from ``a`` to ``b``."""

    a: Vec = (0.0, 0.0, 0.0)
    b: Vec = (0.0, 1.0, 0.0)
    radius: float = 0.1
    velocity: Vec = (0.0, 0.0, 0.0)

    def __post_init__(self):
        _check_fields(self, ("a", "b"), ("radius",))

    def rows(self, dim):
        a, b = _vec(self.a, dim, "capsule a"), _vec(self.b, dim, "capsule b")
        axis = b - a
        length = np.linalg.norm(axis)
        rot = _align_y(axis) if length > 0 else np.eye(dim)
        return [_row(_k.CAPSULE, [length / 2, _positive(self.radius, "capsule radius")], (a + b) / 2, rot,
                     self.velocity, dim)]

    def bounds(self, dim):
        a, b = _vec(self.a, dim, "capsule a"), _vec(self.b, dim, "capsule b")
        return np.minimum(a, b) - self.radius, np.maximum(a, b) + self.radius


@dataclass
class Cylinder(Shape):
    """A solid cylinder of ``radius`` and ``half_height`` (m) about ``centre``; its axis is the
    local y axis (vertical unless rotated). In 2D it is the rectangle of its side view."""

    centre: Vec = (0.0, 0.0, 0.0)
    radius: float = 0.1
    half_height: float = 0.5
    rotation: Vec | float = (0.0, 0.0, 0.0)
    velocity: Vec = (0.0, 0.0, 0.0)

    def __post_init__(self):
        _check_fields(self, ("centre",), ("radius", "half_height"), rotation=True)

    def rows(self, dim):
        return [_row(_k.CYLINDER, [_positive(self.radius, "cylinder radius"),
                                   _positive(self.half_height, "cylinder half_height")],
                     _vec(self.centre, dim, "cylinder centre"), rotation_matrix(self.rotation, dim),
                     self.velocity, dim)]

    def bounds(self, dim):
        c = _vec(self.centre, dim, "cylinder centre")
        h = np.full(dim, self.radius)
        h[1] = self.half_height
        r = np.abs(rotation_matrix(self.rotation, dim)) @ h if dim == 2 else np.full(dim, np.hypot(self.radius, self.half_height))
        return c - r, c + r


@dataclass
class Union(Shape):
    """The union of several shapes (the minimum of their distances)."""

    parts: list = field(default_factory=list)

    def __post_init__(self):
        if not (isinstance(self.parts, (list, tuple)) and self.parts and all(isinstance(p, Shape) for p in self.parts)):
            raise ConfigError(f"a union needs a list of one or more shapes, got {self.parts!r}")

    def rows(self, dim):
        if not self.parts:
            raise ConfigError("a union needs at least one shape")
        return [r for s in self.parts for r in s.rows(dim)]

    def bounds(self, dim):
        los, his = zip(*(s.bounds(dim) for s in self.parts))
        return np.min(los, axis=0), np.max(his, axis=0)

    def __or__(self, other):
        return Union(self.parts + [other])


SHAPES = {"plane": Plane, "box": Box, "sphere": Sphere, "capsule": Capsule, "cylinder": Cylinder, "union": Union}
