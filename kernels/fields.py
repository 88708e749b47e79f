"""Field layouts: particles (constant data apart from per-substep state), the sparse grid,
the material table and the runtime knobs.

Kernels take each container as one ``ti.template()`` argument and read its fields as
attributes; python-number attributes (``dim``, ``dx``, ``origin``) are compile-time constants of
that simulation. The containers (and ``sdf.ShapeTable``) are plain classes, not
``@ti.data_oriented``: they have no kernel methods, and Taichi routes every attribute access of a
data-oriented object through a Python hook, which doubled a launch's host cost (measured: 46
against 21 us for a kernel of two container arguments) with ~10 launches of 3-6 containers
each per substep.
"""
import taichi as ti

from polyalloy.kernels import fieldio
from polyalloy.kernels.kinds import ALL_KINDS
from polyalloy.kernels.sdf import new_field

MATERIAL_KEYS = ("density", "mu", "lam", "bulk", "viscosity", "theta_c", "theta_s", "hardening",
                 "mu_f", "lam_f", "yield_strain", "fracture_strain", "rubble_alpha", "T_b", "band", "hysteresis",
                 "c_s", "c_l", "conductivity", "T_m", "latent", "T_ref", "h_solidus", "boils", "mixing")


GRID_BLOCK = 4  # nodes per axis of a grid block (the unit of the active-block list)
SORT_CHUNK = 64  # bins a thread sums in the block sort's prefix sum (``kernels.order``)


def put(field, a) -> None:
    """Write ``a`` (numpy, its first axis the rows) into the first rows of ``field``, zeros after
    them: containers from the pool hold more rows than a simulation uses."""
    import numpy as np

    a = np.asarray(a)
    rows = field.shape[0]
    if len(a) < rows:
        a = np.concatenate([a, np.zeros((rows - len(a),) + a.shape[1:], a.dtype)])
    field.from_numpy(np.ascontiguousarray(a))


def particle_bytes(dim: int, real: int) -> int:
    """Bytes per ``Particles`` slot with ``real``-byte floats (checked before allocating)."""
    return 6 * 4 + real * (10 + 4 * dim + 3 * dim * dim)


# the scattered channels that only the heat step reads, and the controller's pull (it acts on the
# heat step's substeps, ``kernels.control``): P2G adds into them on a substep that carries the heat
# step (``knobs.heat_step``), not on the others (``frozen`` and ``ctrl_m`` the grid update reads
# every substep)
HEAT_CHANNELS = ("hc", "T", "k", "phi")
CONTROL_CHANNELS = ("ctrl_m", "ctrl_e", "ctrl_v")
HEAT_STEP_CHANNELS = HEAT_CHANNELS + CONTROL_CHANNELS[1:]
# the liquids' mixing sums (``kernels.mixing``), which P2G adds on a grid built to mix
MIX_CHANNELS = ("mix_m", "mix_c", "mix_d")


def scattered_channels(thermal: bool, control: bool, mixing: bool = False) -> tuple:
    """The ``Grid`` fields P2G adds into (each holds a copy per lane when P2G runs in lanes)."""
    return (("v", "m") + (HEAT_CHANNELS + ("frozen",) if thermal else ()) + (CONTROL_CHANNELS if control else ())
            + (MIX_CHANNELS if thermal and mixing else ()))


def scattered_reals(dim: int, thermal: bool, control: bool, mixing: bool = False) -> int:
    """Reals per node of the channels P2G adds into (``scattered_channels``)."""
    return dim + 1 + 5 * bool(thermal) + (2 * dim + 1) * bool(control) + 3 * bool(thermal and mixing)


LANE_BUDGET = 1 << 30  # bytes: at most this for the P2G lanes' copies of the scattered channels (lane 0's is the grid)


def grid_lanes(wanted: int, nodes: int, dim: int, real: int, thermal: bool, control: bool,
               mixing: bool = False) -> int:
    """The P2G lanes of a grid of ``nodes`` allocated nodes: ``wanted`` (``runtime.p2g_lanes``),
    fewer where the copies of lanes 1 and up (lane 0 adds into the grid) would pass
    ``LANE_BUDGET`` (a film-size grid on many cores), never fewer than 1 (the serial loop); 0 (a
    GPU's atomics) stays 0."""
    if wanted < 2:
        return wanted
    copies = LANE_BUDGET // max(1, nodes * real * scattered_reals(dim, thermal, control, mixing))
    return int(min(wanted, copies + 1))


def grid_node_bytes(dim: int, real: int, thermal: bool, control: bool = False, lanes: int = 1,
                    mixing: bool = False) -> int:
    """Bytes per ``Grid`` node with ``real``-byte floats and ``lanes`` P2G lanes (checked before
    allocating): with two lanes or more, each but lane 0 (which adds into the grid) holds a copy
    of the scattered channels."""
    spare = scattered_reals(dim, thermal, control, mixing) * max(0, lanes - 1)
    return real * (dim + 1 + 12 * bool(thermal) + (2 * dim + 1) * bool(control) + spare)


class Particles:
    """Up to ``capacity`` particles in ``dim`` dimensions (structure of arrays); ``n[None]`` are live.

    Constant per particle: ``material`` (id into the material table), ``mass`` (kg),
    ``vol0`` (initial volume, m^dim), ``body`` (index of the body it was sampled from).
    State rewritten every substep: ``x`` (dim, position, m), ``v`` (dim, velocity, m/s),
    ``C`` (dim x dim, APIC affine velocity matrix, 1/s), ``F`` (dim x dim, deformation
    gradient), ``Jp`` (plastic volume ratio, -).
    Thermal state: ``H`` (specific enthalpy, J/kg relative to its material's ``T_ref``), ``T`` (temperature, K, follows
    from H), ``phase`` (FROZEN/MIMETIC/MOLTEN of ``kernels.heat``, switched with hysteresis),
    ``damage`` (0 intact .. 1 carries no tension). ``alive`` is 0 for a particle that boiled
    off or is still waiting in an emitter's pool (skipped by every kernel). ``tau`` (dim x dim,
    Pa): the Kirchhoff stress of the current state, written by G2P for the next P2G, so that
    the serial P2G loop does no SVD.
    Controller (``kernels.control``): ``part`` (index of the template part, -1: not
    controlled), ``home`` (dim, the home point in the template's rest coordinates, m),
    ``home_alt`` (dim, the home in the earlier shape a glitch drifts toward, m). Mimicry:
    ``color`` (linear RGB, the colour the renderer shows, 0..1). Mixing: ``comp`` (the fraction
    of the particle's mass that is polyalloy: 1 for a polyalloy particle, 0 for any other at the
    start; liquids that touch exchange it, ``kernels.mixing``).
    Block order (``kernels.order``): ``order`` holds the slots 0 .. ``n_sorted`` - 1 sorted by the
    grid block of their stencil (x slowest), which P2G visits in that order (slots from
    ``n_sorted`` up in their own); ``n_sorted`` 0: no order, every slot in its own.
    ``serial`` (compile-time, as the grid's ``Grid.serial``): the loops over these particles in a
    substep run on the calling thread.
    """

    def __init__(self, dim: int, capacity: int, dtype, builder=None, serial: bool = False):
        self._fb = ti.root if builder is None else builder
        self.dim = dim
        self.serial = bool(serial)
        self.capacity = capacity
        self.material = new_field(self._fb, ti.i32, capacity)
        self.body = new_field(self._fb, ti.i32, capacity)
        self.mass = new_field(self._fb, dtype, capacity)
        self.vol0 = new_field(self._fb, dtype, capacity)
        self.x = new_field(self._fb, dtype, capacity, dim)
        self.v = new_field(self._fb, dtype, capacity, dim)
        self.C = new_field(self._fb, dtype, capacity, dim, dim)
        self.F = new_field(self._fb, dtype, capacity, dim, dim)
        self.Jp = new_field(self._fb, dtype, capacity)
        self.H = new_field(self._fb, dtype, capacity)
        self.T = new_field(self._fb, dtype, capacity)
        self.phase = new_field(self._fb, ti.i32, capacity)
        self.damage = new_field(self._fb, dtype, capacity)
        self.alive = new_field(self._fb, ti.i32, capacity)
        self.tau = new_field(self._fb, dtype, capacity, dim, dim)
        self.part = new_field(self._fb, ti.i32, capacity)
        self.home = new_field(self._fb, dtype, capacity, dim)
        self.home_alt = new_field(self._fb, dtype, capacity, dim)
        self.color = new_field(self._fb, dtype, capacity, 3)
        self.comp = new_field(self._fb, dtype, capacity)
        self.order = new_field(self._fb, ti.i32, capacity)
        self.n = new_field(self._fb, ti.i32, ())
        self.n_sorted = new_field(self._fb, ti.i32, ())



class Grid:
    """A block-sparse grid of ``res`` nodes per axis, spacing ``dx`` (m), node 0 at ``origin`` (m).

    Nodes are stored densely, in one flat array; the work goes by blocks of ``block``^dim and
    follows the particles through an explicit active-block list: P2G marks the blocks its stencils touch
    (``block_mask``), ``collect_blocks`` lists them (``block_list``, ``n_active``), and every
    grid pass and ``clear_grid`` visit only the listed blocks. (Taichi's own pointer and
    bitmasked SNodes would do this too, but Taichi 1.7's CPU runtime corrupts its heap after a
    few dozen simulations with sparse SNodes in one process; an explicit list is also what a
    GPU wants.) Memory is (dim + 1) reals per node of the box (12 more with heat).
    ``v`` (dim, momentum after P2G, then velocity, m/s) and ``m`` (mass, kg) per node.

    With ``thermal``: ``hc`` (heat capacity sum m c, J/K), ``T`` (thermal energy m c T after
    P2G, then temperature, K), ``k`` (volume-weighted conductivity, W/(m K)), ``dT`` (the
    temperature change of this substep, K), ``frozen`` (mass of frozen polyalloy, kg) and
    ``phi`` (volume fraction of the node's cell, -), ``relax`` (the fraction of the way a
    particle's temperature relaxes toward the node's this substep, see ``kernels.heat``),
    ``held`` (1 where a hot or cold collider holds the node at its temperature), ``inflow`` (the
    heat that entered the node from a collider or the air on this heat step, J: summed in a fixed
    order into ``Knobs.boundary_energy``, ``kernels.heat.conduct_pass``); for
    ``kernels.mixing``: ``mix_m`` (the mass of liquid particles, kg), ``mix_c`` (their mass
    times their polyalloy fraction ``comp``, kg) and ``mix_d`` (their mass times their
    material's ``mixing`` diffusivity, kg m^2/s). With ``mixing`` (a thermal grid of a scene where
    some material mixes) P2G adds these three with the others (in its lanes, with their copies);
    otherwise ``kernels.mixing``'s serial scatter does, where a material is set to mix later.
    With ``control``: ``ctrl_m`` (grip-weighted mass, kg), ``ctrl_e`` (dim, grip-weighted
    mass times the home error, kg m; then divided by ``ctrl_m``), ``ctrl_v`` (dim, likewise
    the home velocity), see ``kernels.control``.
    ``lanes`` (compile-time) says how P2G adds into the nodes (``kernels.mpm.p2g``): 0 with
    float atomics, one thread per particle (a GPU); 1 on one thread with plain adds; L >= 2 on L
    threads, lane l scattering the l-th of L equal index ranges of the particles with plain adds
    (no atomics) into its own copy of the scattered channels: each such channel holds L copies side
    by side along axis 0, ``lane_stride`` nodes apart, lane 0's the grid's own nodes (what every
    other pass reads). A lane adds into the grid itself the particles whose stencils lie beyond
    every node of the lanes before it (``lane_reach``: each lane's highest stencil base along axis
    0, plus one, found before the scatter, for every lane but the last): no two lanes write one
    node. Lanes 1 and up mark the blocks they wrote in their copies in ``lane_mask``;
    ``kernels.mpm.collect_blocks`` adds their copies of the marked blocks into the grid in lane
    order and clears the marks (a thermal grid's sum zeroes the copies it read; on a grid without
    heat a lane zeroes its copy of a block when it first marks it). A result depends on the lane
    count, never on the threads or their timing: it repeats bit for bit.
    ``serial`` (compile-time, with lanes 1): every loop of a substep (the grid passes, P2G, G2P,
    the heat step, the mixing, the mimicry) runs on the calling thread, with no dispatch to
    Taichi's thread pool: a small simulation's, a one-thread runtime's and one asked to run on
    one lane (``polyalloy.simulation.serial_lanes``). Lanes 1 without it (a grid too large for
    the lanes' copies): P2G's serial loop, the other passes on the pool's threads.

    ``bin_start`` and ``bin_chunk``: the scratch of the particles' block sort (``kernels.order``).

    The storage holds ``alloc_res`` nodes per axis (at least ``res``): simulations of other
    sizes reuse one Grid and its compiled kernels (``polyalloy.pool``). So the geometry of the
    simulation that holds the grid now lives in 0-D fields, never in compile-time constants:
    ``spacing`` (dx, m), ``inv_spacing`` (1/dx), ``corner`` (dim, the position of node 0, m) and
    ``extent`` (dim, the nodes in use per axis); ``set_geometry`` writes them, and the host keeps
    a copy in ``host_res``, ``host_dx`` and ``host_origin``.
    """

    def __init__(self, dim: int, alloc_res, dtype, block: int = GRID_BLOCK, thermal: bool = False,
                 lanes: int = 1, control: bool = False, mixing: bool = False, builder=None, serial: bool = False):
        fb = ti.root if builder is None else builder
        self.dim = dim
        self.alloc_res = tuple(int(r) for r in alloc_res)
        self.block = block
        self.thermal = bool(thermal)
        self.control = bool(control)
        self.mixing = bool(mixing) and self.thermal
        self.lanes = int(lanes)
        if self.lanes < 0:
            raise ValueError(f"a grid's P2G lanes must be 0 (atomics), 1 or more, got {lanes}")
        self.serial = bool(serial) and self.lanes == 1  # every loop of a substep on the calling thread
        self.n_blocks = tuple(-(-r // block) for r in self.alloc_res)
        total = 1
        for nb in self.n_blocks:
            total *= nb
        self.total_blocks = total
        indices = ti.ij if dim == 2 else ti.ijk
        self.scattered = scattered_channels(self.thermal, self.control, self.mixing)
        self.lane_stride = self.n_blocks[0] * block
        # one flat dense array of nodes (the blocks are a unit of the work, not of the storage):
        # a stencil's 3^dim addresses are then one base plus constants, where two levels cost a
        # split and a product per axis and node (measured 4-6% of a CPU substep, docs/benchmark.md).
        # With P2G in lanes the channels P2G adds into hold the lanes' copies too, side by side
        # along axis 0 (``lane_stride`` nodes apart): lane 0's copy is the grid itself.
        shape = tuple(nb * block for nb in self.n_blocks)
        cells = {}

        def place(*fields):
            for name, f in fields:
                laned = self.lanes >= 2 and name in self.scattered
                if laned not in cells:
                    cells[laned] = fb.dense(indices, ((self.lanes * shape[0],) if laned else shape[:1]) + shape[1:])
                cells[laned].place(f)
                setattr(self, name, f)

        place(("v", ti.Vector.field(dim, dtype)), ("m", ti.field(dtype)))
        if self.thermal:
            place(*((name, ti.field(dtype)) for name in ("hc", "T", "k", "dT", "frozen", "phi", "relax", "held",
                                                         "inflow")))
            place(*((name, ti.field(dtype)) for name in MIX_CHANNELS))
        if self.control:
            place(("ctrl_m", ti.field(dtype)), ("ctrl_e", ti.Vector.field(dim, dtype)),
                  ("ctrl_v", ti.Vector.field(dim, dtype)))
        self.block_mask = ti.field(ti.i32)
        fb.dense(indices, self.n_blocks).place(self.block_mask)
        if self.lanes >= 2:  # the blocks lanes 1.. wrote (``lane_mask``), lane l's (l - 1) n_blocks[0] along axis 0
            self.lane_mask = ti.field(ti.i32)
            fb.dense(indices, ((self.lanes - 1) * self.n_blocks[0],) + self.n_blocks[1:]).place(self.lane_mask)
            self.lane_reach = new_field(fb, ti.i32, self.lanes - 1)  # P2G's, kernels.mpm.lane_reaches_pass
        self.block_list = new_field(fb, ti.i32, total, dim)
        self.n_active = new_field(fb, ti.i32, ())
        # the particles' block sort (``kernels.order``): a count, then a start, per block and one
        # bin more for the dead slots, and their sums per chunk of ``SORT_CHUNK`` bins
        self.bin_start = new_field(fb, ti.i32, total + 1)
        self.bin_chunk = new_field(fb, ti.i32, -(-(total + 1) // SORT_CHUNK))
        self.spacing = new_field(fb, dtype, ())
        self.inv_spacing = new_field(fb, dtype, ())
        self.corner = new_field(fb, dtype, (), dim)
        self.extent = new_field(fb, ti.i32, (), dim)
        self.host_res, self.host_dx, self.host_origin = self.alloc_res, 0.0, (0.0,) * dim

    def set_geometry(self, res, dx: float, origin) -> None:
        """Use ``res`` nodes per axis (at most ``alloc_res``) of spacing ``dx`` (m), node 0 at ``origin`` (m)."""
        res = tuple(int(r) for r in res)
        if any(r > a for r, a in zip(res, self.alloc_res)):
            raise ValueError(f"a grid of {res} nodes does not fit the {self.alloc_res} allocated")
        self.host_res, self.host_dx, self.host_origin = res, float(dx), tuple(float(o) for o in origin)
        fieldio.assign(self, spacing=dx, inv_spacing=1.0 / dx, corner=list(self.host_origin), extent=list(res))



class MaterialTable:
    """One row per material: ``kind`` (FLUID/ELASTIC/PLASTIC/POLYALLOY of ``kernels.kinds``) and
    the parameters of ``MATERIAL_KEYS`` (SI units, see ``polyalloy.materials``).

    ``kinds``: the material kinds the table may hold (default: all four). The kernels compile
    the code of these kinds only (``has``, read in ``ti.static``): a water scene's G2P carries
    no SVD and no polyalloy return, which is most of its compile time. The set is fixed for
    the table's life, since the compiled kernels depend on it; ``upload`` refuses a row of
    another kind."""

    def __init__(self, capacity: int, dtype, builder=None, kinds=ALL_KINDS):
        self._fb = ti.root if builder is None else builder
        self.capacity = max(1, capacity)
        self.kinds = frozenset(int(k) for k in kinds)
        if not self.kinds or not self.kinds <= set(ALL_KINDS):
            raise ValueError(f"material kinds must be a non-empty subset of {ALL_KINDS}, got {sorted(self.kinds)}")
        self.kind = new_field(self._fb, ti.i32, self.capacity)
        for key in MATERIAL_KEYS:
            setattr(self, key, new_field(self._fb, dtype, self.capacity))

    def has(self, *kinds) -> bool:
        """Whether any of ``kinds`` may be in the table (a compile-time fact: use in ``ti.static``)."""
        return any(k in self.kinds for k in kinds)

    def upload(self, rows):
        wrong = sorted({int(r["kind"]) for r in rows} - self.kinds)
        if wrong:
            raise ValueError(f"material kinds {wrong} are not among the kinds {sorted(self.kinds)} this table "
                             "was compiled for")
        import numpy as np

        from polyalloy.kernels import fieldio

        # the whole table in one kernel launch (a python-scope ``f[i] = v`` compiles a kernel per field)
        values = {key: np.zeros(self.capacity) for key in MATERIAL_KEYS}
        values["kind"] = np.zeros(self.capacity, np.int32)
        for i, r in enumerate(rows):
            values["kind"][i] = int(r["kind"])
            for key in MATERIAL_KEYS:
                values[key][i] = float(r[key])
        fieldio.group(self, ("kind",) + MATERIAL_KEYS).write(values)


class Knobs:
    """Runtime-tweakable values as 0-D fields (changing them never recompiles):
    ``gravity`` (dim, m/s^2). ``max_speed`` and ``bad`` are written by kernels: the largest
    particle speed of the last G2P (m/s) and the count of non-finite particles;
    ``push_impulse`` (N s): the momentum G2P's push-out took from particles that went into a
    collider, summed over the run (the grid's boundary condition should take nearly all of it).
    ``max_wave`` (m/s): the fastest elastic wave of the live phases, written by G2P.
    G2P folds both into ``LANES`` partial maxima (``lane_speed``, ``lane_wave``; particle p into
    lane p mod LANES) and ``mpm.fold_lanes`` reduces them: one address for every particle's
    atomic max serialises a GPU. ``push_impulse`` likewise: G2P adds into ``lane_push`` and
    ``fold_lanes`` sums the lanes, in lane order, into it. On a CPU (``fixed_push``) G2P adds into
    ``lane_quanta`` instead, whole numbers of ``PUSH_QUANTUM`` N s in f64: two particles of one
    lane pushed on two threads add in either order, and whole numbers below 2^53 sum exactly, so
    to the same bits in any order (a maximum does anyway). Both kinds of lanes exist on every
    device, so that a state fits a simulation of any lane count.
    The device clock (``kernels.mpm.start_clock``, ``fold_lanes``; f64 floats, ``CLOCK``):
    ``clock_t`` (s, simulated time), ``clock_dt`` (s, the step of the substep about to run),
    ``clock_stable`` (s, the stable step it was cut from), ``clock_stop`` (s, where the substeps must stop: the frame's end or
    the next event), ``clock_cap`` (s, dt_max and the explicit limits), ``clock_cfl_dx``
    (cfl x dx, m), ``clock_min_dt`` (s, below it the step has collapsed), ``clock_state``
    (``RUNNING``, ``DONE``, ``BLOWN`` or ``COLLAPSED``; every substep kernel does nothing
    unless RUNNING), ``clock_steps`` (substeps run since ``start_clock``), ``clock_last`` (s,
    the step of the last one) and ``dt_log`` (their steps, a ring of ``CLOCK_LOG``). The substep kernels read their step and time from
    ``step_dt``, ``step_t`` and ``step_t1`` (= t + dt), in the real type, as their arguments were.
    ``boundary_energy`` (J, f64): the heat that entered through hot or cold colliders and
    the air, summed over the run by ``heat.conduct`` (the host used to add it up).
    The heat step (``kernels.heat``, "Multirate"; the controller's pull acts on it too,
    ``kernels.control``): ``heat_cap`` (s, f64, its longest step: half the heat's explicit limit,
    ``Simulation.heat_dt``, or the controller spring's limit if shorter; 0: every substep, where
    neither is finite), ``heat_group`` (the most substeps one heat step may span; 0: as many as
    ``heat_cap`` allows, 1: every substep),
    ``heat_acc`` (s, f64, the time since the last heat step that no heat step has covered yet)
    and ``heat_count`` (its substeps); ``heat_step`` (1 when the substep about to run carries
    the heat step) and ``step_heat_dt`` (s, the real type: the time that heat step covers,
    ``heat_acc`` plus this substep's step), both chosen with the step (``kernels.mpm.choose_heat``).
    Heat: ``air_temperature`` (K) and ``air_coefficient`` (W/(m^2 K), Newton's law of cooling
    at the free surface; 0 insulates), ``heat_scale`` (multiplies every conductivity),
    ``stick_below`` (K: frozen polyalloy sticks to a collider colder than this).
    ``plain`` (0 or 1): 1 switches G2P's closed-form shortcuts off, so that every solid
    particle takes the SVD path: the reference that ``polyalloy bench`` checks the fast path
    against (same compiled kernel, a run-time branch).
    Controller (``kernels.control``): ``ctrl_gain`` (0 switches it off, 1 full), ``ctrl_omega``
    (natural frequency of the pull toward home, rad/s), ``ctrl_zeta`` (damping ratio),
    ``ctrl_hold`` (fraction of the weight of gripped material the controller carries),
    ``ctrl_max_accel`` (m/s^2, the cap), ``grip_fade`` (K below the melting point over which
    the grip fades), ``glitch`` (0..1, how far parts drift toward the earlier shape),
    ``glitch_rate`` (Hz, its pulses) and ``glitch_spread`` (0..1 of a period, how far out of
    step the parts pulse),
    ``mimic_decay`` (s, time constant of a copied colour's return), ``volume_relax`` (s, how
    fast gripped material forgets a volume change, ``kernels.control.settle_volume``),
    ``ctrl_fine`` (1/s, the rate at which a particle closes the part of its home error the
    grid cannot see, ``kernels.control.close_gaps``)."""

    def __init__(self, dim: int, dtype, builder=None, fixed_push: bool = False):
        self._fb = ti.root if builder is None else builder
        self.fixed_push = bool(fixed_push)  # compile-time: G2P's push-out into ``lane_quanta`` (a CPU)
        self.gravity = new_field(self._fb, dtype, (), dim)
        self.max_speed = new_field(self._fb, dtype, ())
        self.max_wave = new_field(self._fb, dtype, ())
        self.lane_speed = new_field(self._fb, dtype, LANES)
        self.lane_wave = new_field(self._fb, dtype, LANES)
        self.bad = new_field(self._fb, ti.i32, ())
        self.push_impulse = new_field(self._fb, dtype, ())
        self.lane_push = new_field(self._fb, dtype, LANES)
        self.lane_quanta = new_field(self._fb, CLOCK, LANES)
        clock = CLOCK
        for name in ("clock_t", "clock_dt", "clock_stable", "clock_last", "clock_stop", "clock_cap", "clock_cfl_dx", "clock_min_dt",
                     "boundary_energy"):
            setattr(self, name, new_field(self._fb, clock, ()))
        for name in ("heat_cap", "heat_acc"):
            setattr(self, name, new_field(self._fb, clock, ()))
        self.heat_group = new_field(self._fb, ti.i32, ())
        self.heat_count = new_field(self._fb, ti.i32, ())
        self.heat_step = new_field(self._fb, ti.i32, ())
        self.step_heat_dt = new_field(self._fb, dtype, ())
        self.clock_state = new_field(self._fb, ti.i32, ())
        self.clock_steps = new_field(self._fb, ti.i32, ())
        self.dt_log = new_field(self._fb, clock, CLOCK_LOG)
        self.step_dt = new_field(self._fb, dtype, ())
        self.step_t = new_field(self._fb, dtype, ())
        self.step_t1 = new_field(self._fb, dtype, ())
        self.air_temperature = new_field(self._fb, dtype, ())
        self.air_coefficient = new_field(self._fb, dtype, ())
        self.heat_scale = new_field(self._fb, dtype, ())
        self.stick_below = new_field(self._fb, dtype, ())
        self.plain = new_field(self._fb, ti.i32, ())
        for name in CONTROL_KNOBS:
            setattr(self, name, new_field(self._fb, dtype, ()))


LANES = 1024  # partial maxima of G2P's speed and wave reductions
PUSH_QUANTUM = 2.0 ** -40  # N s (or N s/m in 2D): one unit of a CPU's push-out lanes (Knobs.fixed_push)
CLOCK_LOG = 64  # the ring of the device clock's last steps (more than the host's chunk)
RUNNING, DONE, BLOWN, COLLAPSED = 0, 1, 2, 3  # knobs.clock_state


# The device clock's float: f64, as the host's time was (a Python float), so that the device
# chooses the very steps the host did and a frame ends exactly at its time. (Metal has no f64:
# the clock is one more reason the Metal backend is untested.)
CLOCK = ti.f64

CONTROL_KNOBS = ("ctrl_gain", "ctrl_omega", "ctrl_zeta", "ctrl_hold", "ctrl_max_accel", "grip_fade", "glitch",
                 "glitch_rate", "glitch_spread", "mimic_decay", "volume_relax", "ctrl_fine")


class ControlTable:
    """Per template part (``parts`` rows): the affine map from rest to posed world coordinates,
    ``A`` (dim x dim) and ``b`` (dim, m), its time derivative ``Ad`` (1/s), ``bd`` (m/s), and the
    body's root map ``RA``, ``Rb`` that places the earlier shape (glitch). Per source (body or
    emitter): ``source_color`` (linear RGB), the colour mimicry decays back to."""

    def __init__(self, dim: int, parts: int, sources: int, dtype, builder=None):
        self._fb = ti.root if builder is None else builder
        self.parts = max(1, parts)
        self.A = new_field(self._fb, dtype, self.parts, dim, dim)
        self.b = new_field(self._fb, dtype, self.parts, dim)
        self.Ad = new_field(self._fb, dtype, self.parts, dim, dim)
        self.bd = new_field(self._fb, dtype, self.parts, dim)
        self.RA = new_field(self._fb, dtype, self.parts, dim, dim)
        self.Rb = new_field(self._fb, dtype, self.parts, dim)
        self.source_color = new_field(self._fb, dtype, max(1, sources), 3)


@ti.func
def while_running(knobs: ti.template(), n):
    """``n`` while the device clock runs, else 0: a substep kernel's loop bound, so that a
    substep launched after the clock stopped (the frame's end reached, a blow-up) does nothing."""
    return ti.select(knobs.clock_state[None] == RUNNING, n, 0)


@ti.func
def block_node(grid: ti.template(), B, k):
    """Index of node ``k`` (0 .. block^dim - 1, the last axis fastest) of block ``B``."""
    I = B * grid.block
    r = k
    for d in ti.static(range(grid.dim)):
        I[grid.dim - 1 - d] += r % grid.block
        r //= grid.block
    return I


@ti.func
def active_node(grid: ti.template(), i, k):
    """Index of node ``k`` (0 .. block^dim - 1) of the ``i``-th listed active block."""
    return block_node(grid, grid.block_list[i], k)


@ti.func
def each_active_node(grid: ti.template(), n, visit: ti.template(), a: ti.template(), b: ti.template(),
                     light: ti.template()):
    """``visit(grid, a, b, i, I)`` for every node ``I`` of the first ``n`` listed blocks (``i``:
    the block's place in the list), as a grid pass's top-level loop. On a GPU (``Grid.lanes`` 0)
    a thread per node. On the CPU, Taichi's range-for pays a call and an index split per
    iteration, and hands iterations to its threads in chunks of 512 (a loop of fewer runs on one
    thread): a ``light`` pass (``clear_grid``, the lanes' sum: a few loads and stores a node)
    takes a block per iteration, its block^dim nodes in a loop inside it, and runs faster on one
    thread than a node per iteration on two; a heavy one (``update_grid``: the colliders at every
    node with mass) takes a row of ``block`` nodes per iteration, enough iterations to share. The
    same operations on every node in every shape (the same bits); ``visit`` must not add into a
    variable shared across nodes. Measured: docs/benchmark.md, "The grid passes' loops"."""
    if ti.static(grid.lanes == 0):
        for i, k in ti.ndrange(n, grid.block ** grid.dim):
            visit(grid, a, b, i, active_node(grid, i, k))
    elif ti.static(light):
        ti.loop_config(serialize=grid.serial)
        for i in range(n):
            for k in range(grid.block ** grid.dim):
                visit(grid, a, b, i, active_node(grid, i, k))
    else:
        ti.loop_config(serialize=grid.serial)
        for i, r in ti.ndrange(n, grid.block ** (grid.dim - 1)):
            for c in range(grid.block):
                visit(grid, a, b, i, active_node(grid, i, r * grid.block + c))
