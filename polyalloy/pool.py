"""A pool of field containers, so that simulations of one layout share their compiled kernels.

Taichi compiles a kernel once per set of ``ti.template()`` arguments: a new ``Particles`` or
``Grid`` object means new instantiations of every kernel that takes it, and (as the SNodes are
new too) a miss in the offline cache. A process that builds many simulations (the test suite,
a live session's reset, a notebook, a parameter sweep) would compile the substep again for each.
So a ``Simulation`` does not allocate its containers: it asks this pool for a ``Kit`` of a
``Layout``, and gives it back when it closes. The next simulation of the same layout gets the
same objects, zeroed, with their kernels already compiled.

Sizes are rounded up so that nearby sizes share a layout (``bucket``): particle slots and table
rows to a power of two (at least ``MIN_ROWS`` rows; above 65,536 slots to an eighth of an octave, at most 12.5% spare), at
least ``MIN_PARTICLES`` slots; small grids to one power-of-two cube of at least ``MIN_SIDE``
nodes a side, large ones to a multiple of 32 nodes per axis (``grid_alloc``). So the small
scenes of a test suite or a notebook share a handful of layouts (by dimension, heat, control
and the material kinds: a water scene's kernels carry no solid code, ``MaterialTable.kinds``). The geometry of a
simulation (dx, the grid's origin and extent) lives in the grid's 0-D fields, so one grid serves
any spacing. Free kits are kept up to ``MAX_FREE_BYTES``; older ones are destroyed.
"""
from __future__ import annotations

import dataclasses
import gc
from collections import OrderedDict

MAX_FREE_BYTES = 1 << 30  # free kits kept for reuse; the oldest beyond this are destroyed
SMALL_GRID_NODES = {2: 1 << 18, 3: 1 << 18}  # up to this many nodes, a grid is a power-of-two cube
MIN_SIDE = {2: 256, 3: 32}  # nodes per axis of the smallest grid (4 MiB in 2D, 2.4 MiB in 3D with heat)
MIN_PARTICLES = 4096  # slots of the smallest particle store (under 1 MiB)
MIN_ROWS = 32  # rows of the smallest shape table (colliders, bodies, template parts): a few KiB


def bucket(n: int, least: int = 8) -> int:
    """``n`` rounded up: a power of two up to 65,536, above that a multiple of 1/8 of the octave."""
    n = max(int(n), least)
    p = 1 << (n - 1).bit_length()
    if p <= 1 << 16:
        return p
    step = p // 16  # p/2 < n <= p: steps of (p/2)/8
    return -(-n // step) * step


def grid_alloc(dim: int, res, block: int) -> tuple[int, ...]:
    """Nodes per axis to allocate for a grid of ``res``: small grids become one power-of-two cube
    (so that boxes of different shapes share it), large ones are rounded up per axis to a
    multiple of 8 blocks."""
    res = [int(r) for r in res]
    side = max(1 << (max(res) - 1).bit_length(), MIN_SIDE[dim])
    if side ** dim <= SMALL_GRID_NODES[dim]:
        return (side,) * dim
    unit = 8 * block
    return tuple(-(-r // unit) * unit for r in res)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Everything that fixes the shape of a simulation's fields and the code of its kernels."""
    dim: int
    real: str  # "f32" or "f64"
    particles: int  # slots
    grid: tuple  # nodes per axis, allocated
    block: int
    thermal: bool
    control: bool
    lanes: int  # P2G lanes (``kernels.fields.Grid``)
    kinds: tuple  # the material kinds the kernels are compiled for (``MaterialTable.kinds``), sorted
    parts: int  # control table rows
    sources: int  # bodies + emitters
    materials: int
    colliders: int  # collider primitive rows
    regions: int  # heat-source primitive rows
    body_rows: int  # body-shape primitive rows
    part_rows: int  # the controller's part primitives (0: no controller)
    template_rows: int  # the controller's per-body template primitives
    earlier_rows: int  # the controller's earlier-shape primitives
    mixing: bool = False  # P2G adds the liquids' mixing sums (``kernels.fields.Grid``)
    serial: bool = False  # every loop of a substep on the calling thread (``kernels.fields.Grid.serial``)

    def nbytes(self) -> int:
        from polyalloy.kernels import fields as kf

        real = 8 if self.real == "f64" else 4
        nodes = 1
        for r in self.grid:
            nodes *= r
        return (self.particles * kf.particle_bytes(self.dim, real)
                + nodes * kf.grid_node_bytes(self.dim, real, self.thermal, self.control, self.lanes, self.mixing))


class Kit:
    """The field containers of one layout: ``particles``, ``grid``, ``control_table``,
    ``materials``, ``colliders``, ``regions``, ``knobs``, ``body_shapes`` and, for a controlled
    layout, ``part_shapes``, ``template_shapes``, ``earlier_shapes`` (``ShapeTable``s).
    ``reused`` counts the simulations that held it before the current one."""

    def __init__(self, layout: Layout):
        import taichi as ti

        from polyalloy.kernels import fields as kf
        from polyalloy.kernels.sdf import ShapeTable

        L, real = layout, (ti.f64 if layout.real == "f64" else ti.f32)
        self.layout = layout
        self.reused = 0
        fb = ti.FieldsBuilder()
        self.particles = kf.Particles(L.dim, L.particles, real, builder=fb, serial=L.serial)
        self.grid = kf.Grid(L.dim, L.grid, real, block=L.block, thermal=L.thermal, lanes=L.lanes,
                            control=L.control, mixing=L.mixing, builder=fb, serial=L.serial)
        self.control_table = kf.ControlTable(L.dim, L.parts, L.sources, real, builder=fb)
        self.materials = kf.MaterialTable(L.materials, real, builder=fb, kinds=L.kinds)
        self.colliders = ShapeTable(L.dim, L.colliders, real, fb)
        self.regions = ShapeTable(L.dim, L.regions, real, fb)
        self.body_shapes = ShapeTable(L.dim, L.body_rows, real, fb)
        self.knobs = kf.Knobs(L.dim, real, builder=fb, fixed_push=L.lanes >= 1)  # a CPU: push-out in quanta
        if L.part_rows:
            self.part_shapes = ShapeTable(L.dim, L.part_rows, real, fb)
            self.template_shapes = ShapeTable(L.dim, L.template_rows, real, fb)
            self.earlier_shapes = ShapeTable(L.dim, L.earlier_rows, real, fb)
        self.tree = fb.finalize()

    def containers(self) -> list:
        return [v for v in vars(self).values() if hasattr(v, "__dict__") and _fields(v)]

    def zero(self) -> None:
        """Every field to zero (a kit taken back from an earlier simulation starts clean)."""
        from polyalloy.kernels import fieldio

        for c in self.containers():
            fieldio.group(c).zero()  # one kernel per container (``fill`` compiles one per field)

    def destroy(self) -> None:
        try:
            self.tree.destroy()
        except Exception:  # the runtime may already be gone at interpreter exit
            pass


def _fields(container) -> list:
    import taichi as ti

    return [v for _, v in sorted(vars(container).items()) if isinstance(v, ti.Field)]


_free: OrderedDict = OrderedDict()  # id(kit) -> kit, oldest first
_made = 0  # kits built in this process (for the tests and the benchmark)
_taken = 0  # kits handed out (built or reused)


def acquire(layout: Layout) -> Kit:
    """A kit of ``layout``: a free one (zeroed) if there is one, else a new one."""
    global _made, _taken
    _taken += 1
    for attempt in range(2):
        for key, kit in _free.items():
            if kit.layout == layout:
                del _free[key]
                kit.reused += 1
                kit.zero()
                return kit
        if attempt == 0:  # a simulation in a reference cycle gives its kit back when collected
            gc.collect()
    _made += 1
    return Kit(layout)


def release(kit: Kit) -> None:
    """Give ``kit`` back for the next simulation of its layout; the oldest free kits beyond
    ``MAX_FREE_BYTES`` are destroyed."""
    _free[id(kit)] = kit
    total = sum(k.layout.nbytes() for k in _free.values())
    while total > MAX_FREE_BYTES and len(_free) > 1:
        _, old = _free.popitem(last=False)
        total -= old.layout.nbytes()
        old.destroy()


def clear() -> None:
    """Destroy every free kit (their memory returns; their kernels compile again on next use)."""
    while _free:
        _free.popitem(last=False)[1].destroy()


def stats() -> dict:
    """``made``: kits built in this process; ``taken``: kits handed out (built or reused);
    ``free``: kits waiting for reuse."""
    return dict(made=_made, taken=_taken, free=len(_free))


_free_tables: dict = {}  # (dim, real, rows) -> [(ShapeTable, tree)]


def acquire_table(dim: int, rows: int):
    """A ``ShapeTable`` of at least ``rows`` rows for a short job (sampling a template): from
    the pool when one of its size is free. Give it back with ``release_table``."""
    import taichi as ti

    from polyalloy import runtime
    from polyalloy.kernels.sdf import ShapeTable

    key = (dim, runtime.info().precision, bucket(rows, MIN_ROWS))
    free = _free_tables.setdefault(key, [])
    if free:
        return free.pop()
    fb = ti.FieldsBuilder()
    table = ShapeTable(dim, key[2], runtime.real_dtype(), fb)
    table.pool_key, table.tree = key, fb.finalize()
    return table


def release_table(table) -> None:
    _free_tables.setdefault(table.pool_key, []).append(table)
