"""Body templates, poses and walks: the target shapes the mimetic controller holds a body to.

A ``Template`` is a ``Shape`` made of named parts. Each part is a union of primitives
(``polyalloy.shapes``) in the template's *rest* coordinates and hangs from a joint; a
``Pose`` (root position, heading, joint angles) maps every part rigidly to the world. So the
controller needs one affine map per part, and a particle's home point is stored once, in
rest coordinates, with the index of its part (``kernels.control``).

- ``Humanoid``: a man about ``height`` metres tall built from capsules, spheres and boxes,
  feet on the ground at ``position``, facing +x; parts head, torso, upper/fore arms, hands,
  thighs, shins, feet (left and right); joints neck, spine, shoulders, elbows, wrists, hips,
  knees, ankles, all bending in the sagittal (x-y) plane. ``blades=True`` turns the hands
  into long flat blades. In 2D it is the side view (x forward, y up).
- ``ShapeTemplate``: any ``Shape`` (a sphere, a blob, a ``Union`` of primitives written by a
  user) as a one-part template that can be moved and turned.
- ``Walk``: the root follows a polyline ``path`` on the ground at ``speed`` (m/s) with a walk
  cycle of ``stride`` metres (two steps): hips swing +-25 degrees, knees bend, arms swing.

Angles are degrees; lengths metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.shapes import Box, Capsule, Shape, Sphere, _vec, rotation_matrix


POSES_REMEMBERED = 8  # per template: a substep asks for the poses at t - h, t, t + h and the root's


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass
class Pose:
    """Where a template stands: ``position`` of its rest origin (the point between the feet,
    on the ground, for a humanoid), ``heading`` (degrees about +y; in 2D only its sign of
    cos matters: facing +x or mirrored to face -x) and ``joints`` (degrees, by joint name;
    missing joints stay at rest)."""

    position: Sequence[float] = (0.0, 0.0, 0.0)
    heading: float = 0.0
    joints: dict = field(default_factory=dict)


@dataclass
class Walk:
    """Walk the root along ``path`` (points on the ground, m; the template's own height is
    kept) at ``speed`` (m/s) from ``start`` (s); ``stride`` (m) is one full gait cycle. At the
    end of the path the figure stands still."""

    path: Sequence[Sequence[float]]
    speed: float = 1.0
    start: float = 0.0
    stride: float = 1.4

    def __post_init__(self):
        if not isinstance(self.path, (list, tuple)) or len(self.path) < 2:
            raise ConfigError(f"a walk path needs a list of at least two points, got {self.path!r}")
        for p in self.path:
            _vec(p, 2, "walk path point")
        if not (_is_number(self.speed) and math.isfinite(self.speed) and 0 < self.speed <= 20):
            raise ConfigError(f"walk speed must be in (0, 20] m/s, got {self.speed!r}")
        if not (_is_number(self.stride) and math.isfinite(self.stride) and self.stride > 0):
            raise ConfigError(f"walk stride must be > 0 m, got {self.stride!r}")
        if not (_is_number(self.start) and math.isfinite(self.start)):
            raise ConfigError(f"walk start must be a finite time in s, got {self.start!r}")

    def at(self, t: float, dim: int):
        """Distance walked (m), the ground point reached and the unit direction there."""
        pts, seg, lengths, ends = self._legs(dim)
        s = min(max(t - self.start, 0.0) * self.speed, ends[-1])
        k = min(int(np.searchsorted(ends, s, side="right")), len(seg) - 1)
        before = ends[k - 1] if k else 0.0
        u = seg[k] / lengths[k]
        return s, pts[k] + u * (s - before), u, s < ends[-1] and t >= self.start

    def _legs(self, dim: int):
        """The path's ground points, legs, leg lengths and their running sums, made once per
        path (the controller asks for the walk's place several times a substep)."""
        key = (dim, tuple(tuple(np.ravel(p)) for p in self.path))
        cache = self.__dict__.setdefault("_legs_of", {})
        if key not in cache:
            pts = np.array([_vec(p, dim, "walk path point") for p in self.path], float)
            pts[:, 1] = 0.0
            seg = np.diff(pts, axis=0)
            lengths = np.linalg.norm(seg, axis=1)
            if np.any(lengths == 0):
                raise ConfigError("walk path points must be distinct")
            cache.clear()
            cache[key] = (pts, seg, lengths, np.cumsum(lengths))
        return cache[key]


class Template(Shape):
    """Base of controllable shapes: named parts on a joint tree, posed by a ``Pose``.

    Subclasses define ``_parts(dim)`` -> list of (part name, joint name, [Shape, ...]) and
    ``_joints()`` -> {joint: (parent joint or None, pivot (3,))} in rest coordinates (3D;
    2D drops z), ``height`` and ``rest_pose``.
    """

    height = 1.0

    def _parts(self, dim: int = 3):
        raise NotImplementedError

    def _joints(self):
        return {}

    @property
    def rest_pose(self) -> Pose:
        return Pose(position=tuple(self.position), heading=self.heading)

    def part_names(self) -> list[str]:
        return [name for name, _, _ in self._parts()]

    def part_rows(self, dim: int) -> list[dict]:
        """Rows of every part's primitives at rest (owner = part index), placed at ``position``."""
        rows = []
        root = self._root(self.rest_pose, dim)
        for k, (_, _, shapes) in enumerate(self._parts(dim)):
            for sh in shapes:
                for r in sh.rows(dim):
                    rows.append(_transform_row(r, *root, owner=k))
        return rows

    def rows(self, dim):
        return self.part_rows(dim)

    def bounds(self, dim):
        los, his = [], []
        for r in self.part_rows(dim):
            ext = float(np.sum(np.abs(r["params"])))  # >= the reach of a sphere, capsule, box or cylinder
            los.append(r["centre"] - ext)
            his.append(r["centre"] + ext)
        return np.min(los, axis=0), np.max(his, axis=0)

    def _root(self, pose: Pose, dim: int):
        """Rest-origin-relative -> world: rotation about y by the heading, then the position."""
        pos = _vec(pose.position, dim, "pose position")
        if dim == 3:
            R = rotation_matrix((0.0, pose.heading, 0.0), 3)
        else:
            R = np.diag([1.0 if math.cos(math.radians(pose.heading)) >= 0 else -1.0, 1.0])
        return R, pos

    def _skeleton(self, dim: int) -> tuple[dict, list]:
        """The joints (``_joints``) and the joint of each part, made once per height and dim: the
        controller asks for the transforms several times a substep, and building the parts'
        shapes each time cost more than the substep's kernels."""
        cache = self.__dict__.setdefault("_skeletons", {})
        key = (self.height, dim)
        if key not in cache:
            cache[key] = (self._joints(), [joint for _, joint, _ in self._parts(dim)])
        return cache[key]

    def transforms(self, pose: Pose, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Per part, the affine map (A, b) from rest world coordinates (the template placed at
        its own ``position`` and ``heading``) to the posed world. The last few poses are
        remembered: a figure that stands still asks for the same one every substep."""
        key = (dim, tuple(float(v) for v in pose.position), float(pose.heading),
               tuple(sorted((name, float(angle)) for name, angle in pose.joints.items())))
        memo = self.__dict__.setdefault("_posed", {})
        if key not in memo:
            if len(memo) >= POSES_REMEMBERED:
                memo.pop(next(iter(memo)))
            memo[key] = self._transforms(pose, dim)
        A, b = memo[key]
        return A.copy(), b.copy()

    def _transforms(self, pose: Pose, dim: int) -> tuple[np.ndarray, np.ndarray]:
        joints, part_joints = self._skeleton(dim)
        for name in pose.joints:
            if name not in joints:
                raise ConfigError(f"unknown joint {name!r}; the template has {', '.join(joints) or 'none'}")
        R0, p0 = self._root(self.rest_pose, dim)
        R1, p1 = self._root(pose, dim)
        # Every joint turns about the rest-origin z axis (2D: in the plane), so a joint chain
        # x -> M x + c is a turn by the chain's summed angle and a shift in the xy plane: the
        # chain in scalars (the controller asks for four sets of maps every substep, and 3x3
        # numpy products per joint cost more than the substep's kernels in 2D), the parts'
        # products batched.
        cache = {None: (0.0, 0.0, 0.0)}

        def local(j):  # -> (angle in radians, c_x, c_y)
            if j not in cache:
                parent, pivot = joints[j]
                th, cx, cy = local(parent)
                a = math.radians(pose.joints.get(j, 0.0))
                qx, qy = float(pivot[0]), float(pivot[1])
                ca, sa = math.cos(a), math.sin(a)
                dx, dy = qx - (ca * qx - sa * qy), qy - (sa * qx + ca * qy)  # q - R_j q
                ct, st = math.cos(th), math.sin(th)
                cache[j] = (th + a, ct * dx - st * dy + cx, st * dx + ct * dy + cy)
            return cache[j]

        chain = np.array([local(j) for j in part_joints], float).reshape(-1, 3)
        k = len(chain)
        cos, sin = np.cos(chain[:, 0]), np.sin(chain[:, 0])
        M = np.zeros((k, dim, dim))
        M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1] = cos, -sin, sin, cos
        c = np.zeros((k, dim))
        c[:, :2] = chain[:, 1:]
        if dim == 3:
            M[:, 2, 2] = 1.0
        # world_rest -> rest-origin coords -> joint chain -> posed world
        A = R1 @ M @ R0.T
        b = c @ R1.T + p1 - A @ p0
        return A, b

    def posed_rows(self, pose: Pose, dim: int) -> list[dict]:
        """Rows of every primitive in ``pose`` (owner = part index): the posed shape."""
        A, b = self.transforms(pose, dim)
        return [_transform_row(r, A[r["owner"]], b[r["owner"]], owner=r["owner"]) for r in self.part_rows(dim)]

    def pose_at(self, t: float, dim: int, walk: Walk | None = None) -> Pose:
        """The pose at time ``t`` (s): the rest pose, or the walk's when there is one."""
        if walk is None:
            return self.rest_pose
        s, ground, u, moving = walk.at(t, dim)
        pos = ground.copy()
        pos[1] = self.position[1]
        heading = math.degrees(math.atan2(-u[2], u[0])) if dim == 3 else (0.0 if u[0] >= 0 else 180.0)
        return Pose(position=tuple(pos), heading=heading, joints=self.gait(s, walk.stride, dim) if moving else {})

    def gait(self, s: float, stride: float, dim: int = 3) -> dict:
        """Joint angles (degrees) after walking ``s`` metres: none for a rigid template."""
        return {}


def _transform_row(r: dict, A: np.ndarray, b: np.ndarray, owner: int) -> dict:
    """A primitive row moved by the rigid map x -> A x + b (A a rotation or a mirror)."""
    return dict(r, centre=A @ np.asarray(r["centre"], float) + b, rot=A @ np.asarray(r["rot"], float), owner=owner)


@dataclass
class Humanoid(Template):
    """A man ``height`` (m) tall, feet at ``position`` (the point on the ground between his
    feet), facing ``heading`` (degrees about +y; 0 faces +x). ``blades``: hands are blades."""

    position: Sequence[float] = (0.0, 0.0, 0.0)
    height: float = 1.8
    heading: float = 0.0
    blades: bool = False

    def __post_init__(self):
        if not (_is_number(self.height) and math.isfinite(self.height) and 0.05 <= self.height <= 100):
            raise ConfigError(f"humanoid height must be in [0.05, 100] m, got {self.height!r}")
        if not (_is_number(self.heading) and math.isfinite(self.heading)):
            raise ConfigError(f"humanoid heading must be a finite angle in degrees, got {self.heading!r}")
        _vec(self.position, 2, "humanoid position")

    def _s(self, *p):
        return tuple(self.height / 1.8 * np.asarray(p, float))

    def _joints(self):
        s = self._s
        j = {"spine": (None, s(0, 0.98, 0)), "neck": ("spine", s(0, 1.48, 0))}
        for side, z in (("l", 0.21), ("r", -0.21)):
            j[f"shoulder_{side}"] = ("spine", s(0, 1.42, z))
            j[f"elbow_{side}"] = (f"shoulder_{side}", s(0, 1.14, z))
            j[f"wrist_{side}"] = (f"elbow_{side}", s(0, 0.88, z))
        for side, z in (("l", 0.1), ("r", -0.1)):
            j[f"hip_{side}"] = (None, s(0, 0.94, z))
            j[f"knee_{side}"] = (f"hip_{side}", s(0, 0.5, z))
            j[f"ankle_{side}"] = (f"knee_{side}", s(0, 0.1, z))
        return j

    def _parts(self, dim=3):
        s, h = self._s, self.height / 1.8
        # a 2D side view sees both legs in one plane: each is drawn half as thick and a little
        # apart, so that the figure's area stays the same when the legs swing apart
        leg, gap = (1.0, 0.0) if dim == 3 else (0.55, 0.034)
        parts = [("head", "neck", [Sphere(centre=s(0.01, 1.67, 0), radius=0.115 * h),
                                   Capsule(a=s(0, 1.44, 0), b=s(0, 1.56, 0), radius=0.055 * h)]),
                 ("torso", "spine", [Capsule(a=s(0, 1.02, 0.06), b=s(0, 1.36, 0.07), radius=0.12 * h),
                                     Capsule(a=s(0, 1.02, -0.06), b=s(0, 1.36, -0.07), radius=0.12 * h),
                                     Box(centre=s(0, 0.98, 0), half_size=s(0.1, 0.09, 0.17))])]
        for side, z in (("l", 1), ("r", -1)):
            parts.append((f"upper_arm_{side}", f"shoulder_{side}",
                          [Capsule(a=s(0, 1.42, 0.21 * z), b=s(0, 1.14, 0.22 * z), radius=0.055 * h)]))
            parts.append((f"forearm_{side}", f"elbow_{side}",
                          [Capsule(a=s(0, 1.14, 0.22 * z), b=s(0, 0.88, 0.22 * z), radius=0.045 * h)]))
            hand = (Box(centre=s(0, 0.6, 0.22 * z), half_size=s(0.045, 0.3, 0.012)) if self.blades
                    else Sphere(centre=s(0, 0.82, 0.22 * z), radius=0.05 * h))
            parts.append((f"hand_{side}", f"wrist_{side}", [hand]))
        for side, z in (("l", 1), ("r", -1)):
            dx = gap * z
            parts.append((f"thigh_{side}", f"hip_{side}",
                          [Capsule(a=s(dx, 0.92, 0.1 * z), b=s(dx, 0.5, 0.1 * z), radius=0.075 * h * leg)]))
            parts.append((f"shin_{side}", f"knee_{side}",
                          [Capsule(a=s(dx, 0.5, 0.1 * z), b=s(dx, 0.1, 0.1 * z), radius=0.058 * h * leg)]))
            parts.append((f"foot_{side}", f"ankle_{side}",
                          [Box(centre=s(0.05 + dx, 0.045, 0.1 * z), half_size=s(0.12, 0.045 * leg, 0.05))]))
        return parts

    def gait(self, s, stride, dim=3):
        """3D: hips swing +-25 degrees in opposition, a knee bends while its leg swings forward,
        the arms swing against the legs. 2D side view: see below; the arms stay still."""
        phi = 2 * math.pi * s / stride
        out = {}
        for side, sign in (("l", 1.0), ("r", -1.0)):
            if dim == 3:
                swing = math.sin(phi) * sign
                out[f"hip_{side}"] = 25.0 * swing
                out[f"knee_{side}"] = -5.0 - 40.0 * max(0.0, math.cos(phi) * sign)
                out[f"shoulder_{side}"] = -20.0 * swing
                out[f"elbow_{side}"] = 15.0
            else:
                # in one plane a continuum's legs cannot pass through each other: the front leg
                # stays in front, both swing together (a gallop)
                out[f"hip_{side}"] = 12.0 * sign + 14.0 * math.sin(phi)
                out[f"knee_{side}"] = -5.0 - 30.0 * max(0.0, math.cos(phi + (0.0 if sign > 0 else math.pi / 2)))
        return out


@dataclass
class ShapeTemplate(Template):
    """Any ``Shape`` (a sphere, a blob, a user's union of primitives) as a one-part template;
    ``height`` (m) is its vertical extent, ``position`` the point the shape is moved with."""

    shape: Shape = None
    position: Sequence[float] = (0.0, 0.0, 0.0)
    heading: float = 0.0

    def __post_init__(self):
        if not isinstance(self.shape, Shape):
            raise ConfigError("ShapeTemplate needs a shape")
        _vec(self.position, 2, "template position")
        if not (_is_number(self.heading) and math.isfinite(self.heading)):
            raise ConfigError(f"template heading must be a finite angle in degrees, got {self.heading!r}")

    @property
    def height(self):
        lo, hi = self.shape.bounds(3)
        return float(hi[1] - lo[1])

    def _parts(self, dim=3):
        return [("body", None, [self.shape])]

    def part_rows(self, dim):
        # the shape is already in world coordinates at rest
        return [dict(r, owner=0) for r in self.shape.rows(dim)]


TEMPLATES = {"humanoid": Humanoid, "shape": ShapeTemplate}
