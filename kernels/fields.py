"""Field layouts: particles (constant data apart from per-substep state), the sparse grid,
the material table and the runtime knobs.

Every container is ``@ti.data_oriented`` so that kernels take it as one ``ti.template()``
argument and read its fields as attributes; python-number attributes (``dim``, ``dx``,
``origin``) are compile-time constants of that simulation.
"""
import taichi as ti

MATERIAL_KEYS = ("density", "mu", "lam", "bulk", "viscosity", "theta_c", "theta_s", "hardening")


@ti.data_oriented
class Particles:
    """Up to ``capacity`` particles in ``dim`` dimensions (structure of arrays); ``n[None]`` are live.

    Constant per particle: ``material`` (id into the material table), ``mass`` (kg),
    ``vol0`` (initial volume, m^dim), ``body`` (index of the body it was sampled from).
    State rewritten every substep: ``x`` (dim, position, m), ``v`` (dim, velocity, m/s),
    ``C`` (dim x dim, APIC affine velocity matrix, 1/s), ``F`` (dim x dim, deformation
    gradient), ``Jp`` (plastic volume ratio, -).
    """

    def __init__(self, dim: int, capacity: int, dtype):
        self.dim = dim
        self.capacity = capacity
        self.material = ti.field(ti.i32, shape=capacity)
        self.body = ti.field(ti.i32, shape=capacity)
        self.mass = ti.field(dtype, shape=capacity)
        self.vol0 = ti.field(dtype, shape=capacity)
        self.x = ti.Vector.field(dim, dtype, shape=capacity)
        self.v = ti.Vector.field(dim, dtype, shape=capacity)
        self.C = ti.Matrix.field(dim, dim, dtype, shape=capacity)
        self.F = ti.Matrix.field(dim, dim, dtype, shape=capacity)
        self.Jp = ti.field(dtype, shape=capacity)
        self.n = ti.field(ti.i32, shape=())

    def bytes_per_particle(self) -> int:
        d = self.dim
        real = 8 if self.x.dtype == ti.f64 else 4
        return 3 * 4 + real * (3 + 2 * d + 2 * d * d)


@ti.data_oriented
class Grid:
    """A sparse grid of ``res`` nodes per axis, spacing ``dx`` (m), node 0 at ``origin`` (m).

    Nodes live in blocks of ``block``^dim under a bitmasked level, so the work follows the
    particles: P2G activates the blocks it touches, every grid loop visits only active blocks
    and ``clear_grid`` zeroes and deactivates them. (A pointer level would also make memory
    follow the particles, but Taichi 1.7's CPU backend corrupts its heap after ~100 pointer
    trees are created in one process; node memory is 4 * (dim + 1) bytes per node of the box.)
    ``v`` (dim, momentum after P2G, then velocity, m/s) and ``m`` (mass, kg) per node.
    """

    def __init__(self, dim: int, res, dx: float, origin, dtype, block: int = 4):
        self.dim = dim
        self.res = tuple(int(r) for r in res)
        self.dx = float(dx)
        self.inv_dx = 1.0 / float(dx)
        self.origin = tuple(float(o) for o in origin)
        self.block = block
        self.v = ti.Vector.field(dim, dtype)
        self.m = ti.field(dtype)
        indices = ti.ij if dim == 2 else ti.ijk
        self.blocks = ti.root.bitmasked(indices, tuple(-(-r // block) for r in self.res))
        self.blocks.dense(indices, block).place(self.v, self.m)

    def bytes_per_block(self) -> int:
        real = 8 if self.m.dtype == ti.f64 else 4
        return real * (self.dim + 1) * self.block ** self.dim


@ti.data_oriented
class MaterialTable:
    """One row per material: ``kind`` (FLUID/ELASTIC/PLASTIC of ``polyalloy.materials``) and the
    parameters of ``MATERIAL_KEYS`` (SI units, see ``polyalloy.materials``)."""

    def __init__(self, capacity: int, dtype):
        self.capacity = max(1, capacity)
        self.kind = ti.field(ti.i32, shape=self.capacity)
        for key in MATERIAL_KEYS:
            setattr(self, key, ti.field(dtype, shape=self.capacity))

    def upload(self, rows):
        for i, r in enumerate(rows):
            self.kind[i] = int(r["kind"])
            for key in MATERIAL_KEYS:
                getattr(self, key)[i] = float(r[key])


@ti.data_oriented
class Knobs:
    """Runtime-tweakable values as 0-D fields (changing them never recompiles):
    ``gravity`` (dim, m/s^2). ``max_speed`` and ``bad`` are written by kernels: the largest
    particle speed of the last G2P (m/s) and the count of non-finite particles."""

    def __init__(self, dim: int, dtype):
        self.gravity = ti.Vector.field(dim, dtype, shape=())
        self.max_speed = ti.field(dtype, shape=())
        self.bad = ti.field(ti.i32, shape=())
