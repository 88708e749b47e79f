"""Signed distance functions: one table of primitives, one ``@ti.func`` that reads it.

Every shape in polyalloy (colliders, body templates, the renderer's scene geometry,
emitters) is described once on the host (``polyalloy.shapes``) and evaluated here. A row
of the table is a primitive: ``kind`` + ``params`` + a rigid transform (centre, rotation)
+ a linear velocity, so that a moving collider is ``centre + vel * t``. The formulas are
the standard ones (Quilez, "distance functions"), written for any dimension so that the
same row serves 2D and 3D scenes. Negative inside, positive outside, metres.
"""
import numpy as np
import taichi as ti

PLANE, BOX, SPHERE, CAPSULE, CYLINDER = 0, 1, 2, 3, 4
KIND_NAMES = {PLANE: "plane", BOX: "box", SPHERE: "sphere", CAPSULE: "capsule", CYLINDER: "cylinder"}
N_PARAMS = 4

STICKY, SLIP, SEPARATE = 0, 1, 2
SURFACE_NAMES = {"sticky": STICKY, "slip": SLIP, "separate": SEPARATE}


def new_field(builder, dtype, shape, n=None, m=None):
    """A scalar (``n`` None), vector (``n``) or matrix (``n`` x ``m``) field of ``shape`` (an int
    or ``()``) placed in ``builder``: a ``ti.FieldsBuilder`` whose tree the owner can destroy,
    or ``ti.root``."""
    f = ti.field(dtype) if n is None else ti.Vector.field(n, dtype) if m is None else ti.Matrix.field(n, m, dtype)
    if shape == ():
        builder.place(f)
    else:
        builder.dense(ti.i, shape).place(f)
    return f


class ShapeTable:
    """Device table of up to ``capacity`` primitives in ``dim`` dimensions.

    Per row: ``kind`` (PLANE..CYLINDER), ``params`` (kind-specific sizes, m), ``centre``
    (m, at t = 0), ``rot`` (local-to-world rotation), ``vel`` (m/s), ``owner`` (index of
    the collider/body the row belongs to), ``surface`` (STICKY/SLIP/SEPARATE) and
    ``friction`` (Coulomb coefficient, used with SEPARATE) and ``temperature`` (K of a
    collider that exchanges heat; 0: adiabatic). Mimicry: ``texture`` (NO_TEXTURE, STRIPES,
    CHECKER of ``kernels.control``), ``tex_a``, ``tex_b`` (linear RGB) and ``tex_period`` (m).
    ``count`` rows are live.
    """

    def __init__(self, dim: int, capacity: int, dtype, builder=None):
        self._fb = ti.root if builder is None else builder
        self.dim = dim
        self.capacity = max(1, capacity)
        self.kind = new_field(self._fb, ti.i32, self.capacity)
        self.params = new_field(self._fb, dtype, self.capacity, N_PARAMS)
        self.centre = new_field(self._fb, dtype, self.capacity, dim)
        self.rot = new_field(self._fb, dtype, self.capacity, dim, dim)
        self.vel = new_field(self._fb, dtype, self.capacity, dim)
        self.owner = new_field(self._fb, ti.i32, self.capacity)
        self.surface = new_field(self._fb, ti.i32, self.capacity)
        self.friction = new_field(self._fb, dtype, self.capacity)
        self.temperature = new_field(self._fb, dtype, self.capacity)
        self.texture = new_field(self._fb, ti.i32, self.capacity)
        self.tex_a = new_field(self._fb, dtype, self.capacity, 3)
        self.tex_b = new_field(self._fb, dtype, self.capacity, 3)
        self.tex_period = new_field(self._fb, dtype, self.capacity)
        self.count = new_field(self._fb, ti.i32, ())

    def upload(self, rows):
        """Write host rows (dicts from ``polyalloy.shapes``) into the table."""
        import numpy as np

        n = len(rows)
        if n > self.capacity:
            raise ValueError(f"{n} primitives do not fit a table of {self.capacity}")
        d = self.dim
        kind = np.zeros(self.capacity, np.int32)
        params = np.zeros((self.capacity, N_PARAMS))
        centre = np.zeros((self.capacity, d))
        rot = np.tile(np.eye(d), (self.capacity, 1, 1))
        vel = np.zeros((self.capacity, d))
        owner = np.zeros(self.capacity, np.int32)
        surface = np.zeros(self.capacity, np.int32)
        friction = np.zeros(self.capacity)
        temperature = np.zeros(self.capacity)
        texture = np.zeros(self.capacity, np.int32)
        tex_a = np.zeros((self.capacity, 3))
        tex_b = np.zeros((self.capacity, 3))
        tex_period = np.ones(self.capacity)
        for i, r in enumerate(rows):
            kind[i] = r["kind"]
            params[i, : len(r["params"])] = r["params"]
            centre[i] = r["centre"]
            rot[i] = r["rot"]
            vel[i] = r.get("vel", np.zeros(d))
            owner[i] = r.get("owner", 0)
            surface[i] = r.get("surface", SEPARATE)
            friction[i] = r.get("friction", 0.0)
            temperature[i] = r.get("temperature", 0.0)
            texture[i] = r.get("texture", 0)
            tex_a[i] = r.get("tex_a", (0.0, 0.0, 0.0))
            tex_b[i] = r.get("tex_b", (0.0, 0.0, 0.0))
            tex_period[i] = r.get("tex_period", 1.0)
        from polyalloy.kernels import fieldio

        # one kernel launch for the whole table (fieldio: Taichi's from_numpy compiles one per field)
        fieldio.group(self).write(dict(
            kind=kind, params=params, centre=centre, rot=rot, vel=vel, owner=owner, surface=surface,
            friction=friction, temperature=temperature, texture=texture, tex_a=tex_a, tex_b=tex_b,
            tex_period=tex_period, count=n))


@ti.func
def primitive_sdf(kind: ti.i32, prm, q):
    """Signed distance of local point ``q`` to a primitive at the origin (Quilez' formulas).

    plane: the half-space local y <= 0. box: half extents prm[0..dim). sphere: radius
    prm[0]. capsule: segment along local y of half length prm[0], radius prm[1].
    cylinder: axis local y, radius prm[0], half height prm[1] (a rectangle in 2D).
    """
    dim = ti.static(q.n)
    d = 0.0
    if kind == PLANE:
        d = q[1]
    elif kind == BOX:
        h = ti.Vector([prm[i] for i in ti.static(range(dim))])
        e = ti.abs(q) - h
        d = ti.max(e, 0.0).norm() + ti.min(e.max(), 0.0)
    elif kind == SPHERE:
        d = q.norm() - prm[0]
    elif kind == CAPSULE:
        a = q
        a[1] -= ti.min(ti.max(q[1], -prm[0]), prm[0])
        d = a.norm() - prm[1]
    else:  # CYLINDER
        radial = 0.0
        for i in ti.static(range(dim)):
            if ti.static(i != 1):
                radial += q[i] * q[i]
        e = ti.Vector([ti.sqrt(radial) - prm[0], ti.abs(q[1]) - prm[1]])
        d = ti.max(e, 0.0).norm() + ti.min(e.max(), 0.0)
    return d


@ti.func
def shape_sdf(table: ti.template(), i: ti.i32, p, t):
    """Signed distance (m) of world point ``p`` to row ``i`` of ``table`` at time ``t`` (s)."""
    c = table.centre[i] + table.vel[i] * t
    q = table.rot[i].transpose() @ (p - c)
    return primitive_sdf(table.kind[i], table.params[i], q)


@ti.func
def shape_normal(table: ti.template(), i: ti.i32, p, t, h):
    """Outward unit normal of row ``i`` at ``p``: central differences of ``shape_sdf`` (step h).
    A run-time loop over the 2 dim probes, so the SDF is inlined once, not 2 dim times (each
    copy is compile time in every kernel that asks for a normal)."""
    dim = ti.static(p.n)
    g = ti.Vector.zero(float, dim)
    for k in range(2 * dim):
        axis = k // 2
        sign = 1.0 - 2.0 * (k % 2)
        e = ti.Vector.zero(float, dim)
        e[axis] = sign * h
        g[axis] += sign * shape_sdf(table, i, p + e, t)
    return g.normalized(1e-12)


@ti.func
def union_sdf(table: ti.template(), p, t):
    """Distance to the union of every live row, and the index of the nearest row."""
    best = 1e30
    arg = -1
    for i in range(table.count[None]):
        d = shape_sdf(table, i, p, t)
        if d < best:
            best = d
            arg = i
    return best, arg


@ti.kernel
def evaluate_sdf(table: ti.template(), owner: ti.i32, points: ti.types.ndarray(), out: ti.types.ndarray(), t: float):
    """``out[k]`` = distance of ``points[k]`` (m) to the union of the rows owned by ``owner``
    (every row when ``owner`` < 0) at time ``t`` (s)."""
    for k in range(points.shape[0]):
        p = ti.Vector([points[k, j] for j in ti.static(range(table.dim))], dt=float)
        best = 1e30
        for i in range(table.count[None]):
            if owner < 0 or table.owner[i] == owner:
                best = ti.min(best, shape_sdf(table, i, p, t))
        out[k] = best


def host_sdf(rows, points, t: float = 0.0):
    """Numpy twin of ``evaluate_sdf`` over ``rows`` (``polyalloy.shapes`` row dicts): the distance (m)
    of each of ``points`` (k, dim) to their union at time ``t``, for checks that must run before
    any kernel compiles. The formulas are those of ``primitive_sdf``; change both together."""
    p = np.asarray(points, float)
    best = np.full(len(p), 1e30)
    for r in rows:
        q = (p - (np.asarray(r["centre"], float) + np.asarray(r["vel"], float) * t)) @ np.asarray(r["rot"], float)
        prm, kind = list(r["params"]) + [0.0] * N_PARAMS, r["kind"]
        if kind == PLANE:
            d = q[:, 1]
        elif kind == BOX:
            e = np.abs(q) - np.asarray(prm[: q.shape[1]])
            d = np.linalg.norm(np.maximum(e, 0.0), axis=1) + np.minimum(e.max(axis=1), 0.0)
        elif kind == SPHERE:
            d = np.linalg.norm(q, axis=1) - prm[0]
        elif kind == CAPSULE:
            a = q.copy()
            a[:, 1] -= np.clip(q[:, 1], -prm[0], prm[0])
            d = np.linalg.norm(a, axis=1) - prm[1]
        else:  # CYLINDER
            radial = np.sqrt(np.sum(np.delete(q, 1, axis=1) ** 2, axis=1))
            e = np.stack([radial - prm[0], np.abs(q[:, 1]) - prm[1]], axis=1)
            d = np.linalg.norm(np.maximum(e, 0.0), axis=1) + np.minimum(e.max(axis=1), 0.0)
        best = np.minimum(best, d)
    return best
