"""MLS-MPM (Hu et al. 2018) with APIC transfers and quadratic B-splines, one code path for 2D
and 3D: ``clear_grid`` -> ``p2g`` -> ``collect_blocks`` -> ``update_grid`` -> ``g2p``. Each pass is a
``ti.func`` (``*_pass``) that ``kernels.substep`` launches two kernels of a substep from, and a
kernel of the same name that launches it alone; every pass takes its fields as ``ti.template()``
arguments.
"""
import taichi as ti

from polyalloy.kernels.constitutive import (ELASTIC, FLUID, PLASTIC, POLYALLOY, kirchhoff_stress, polyalloy_closed_form,
                                            polyalloy_return, polyalloy_stress_stretch, polyalloy_stress_svd,
                                            project_deformation, solid_stress, wave_speed)
from polyalloy.kernels.control import close_gaps, control_accel, grip, hold_up, posed_home, settle_volume
from polyalloy.kernels.fields import (BLOWN, CLOCK, CLOCK_LOG, COLLAPSED, DONE, HEAT_STEP_CHANNELS, LANES, PUSH_QUANTUM,
                                      RUNNING, active_node, block_node, each_active_node, while_running)
from polyalloy.kernels.heat import (FROZEN, frozen_weight, heat_capacity, liquid_fraction, next_phase,
                                    temperature_of)
from polyalloy.kernels.sdf import SEPARATE, SLIP, STICKY, shape_normal, shape_sdf

DOMAIN_PAD = 3  # grid nodes between the domain wall and the end of the grid (stencil room)
LANE_SPREAD = 1024  # iterations of P2G's lane loop per lane (p2g)


@ti.func
def quadratic_weights(fx):
    """Quadratic B-spline weights at offsets 0, 1, 2 from ``base`` (fx = x/dx - base in [0.5, 1.5))."""
    return [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]


def stencil_walk(dim: int, heavy: bool) -> int:
    """How many axes of the 3^dim stencil a kernel walks in a run-time loop (the others are
    unrolled with ``ti.static``): 1 for a 3D kernel with a long body (``heavy``: P2G with the heat
    and controller fields, G2P with the polyalloy model), else 0.

    Why: LLVM's compile time grows faster than the code. Fully unrolled (27 copies of the body)
    the 3D polyalloy P2G and G2P took 22-23 s and 14-16 s to compile on this project's 2-core CPU;
    with one axis at run time (9 copies) 3-4 s and 8-9 s. Run time, measured in one process
    substep by substep against the unrolled kernels: P2G 3-5% slower, G2P 13-23% faster (less
    code to fetch), the substep no slower. A short body (the fluid's, any 2D kernel) compiles in
    seconds and stays unrolled. The nodes come in the same order either way, but the loop changes
    LLVM's float contractions: results differ in the last bits (docs/benchmark.md, "Compile time")."""
    return 1 if dim == 3 and heavy else 0


def stencil_rest(dim: int, walk: int):
    """The unrolled part of the stencil (for ``ti.static``): the offsets along its last dim -
    ``walk`` axes. Inside ``for i in range(3 ** walk)``, ``stencil_node`` makes the node."""
    return ti.grouped(ti.ndrange(*((3,) * (dim - walk))))


@ti.func
def stencil_node(w, i, rest: ti.template()):
    """The stencil node at run-time index ``i`` along the walked axis (if any) and unrolled
    offsets ``rest``: its offset from the base and its weight, from the per-axis weights ``w``
    (``quadratic_weights``; the walked axis's picked with selects, which keep them in registers).

    The APIC terms use the offset as it is, not the node's position relative to the particle,
    (offset - fx) dx: P2G's affine momentum A (offset - fx) dx is A offset dx - A fx dx, and G2P's
    sum of w v (offset - fx) is sum w v offset - (sum w v) fx, so the particle's part comes once per
    particle and the node's part is a few adds (``add_times_offset``: the offset is a
    compile-time 0, 1 or 2 on every unrolled axis): 8-16% off a substep, the same sums to
    rounding (docs/benchmark.md, "APIC from the stencil's offsets")."""
    dim = ti.static(w[0].n)
    walk = ti.static(dim - rest.n)
    offset = ti.Vector([i] * walk + [rest[d] for d in ti.static(range(rest.n))])
    weight = 1.0
    for d in ti.static(range(dim)):
        if ti.static(d < walk):
            weight *= ti.select(i == 0, w[0][d], ti.select(i == 1, w[1][d], w[2][d]))
        else:
            weight *= w[rest[d - walk]][d]
    return offset, weight


@ti.func
def add_times_offset(total: ti.template(), value, i, rest: ti.template(), d: ti.template(), walk: ti.template()):
    """``total`` += ``value`` times the offset along axis ``d`` of the stencil node at ``i`` and
    ``rest`` (``stencil_node``, ``walk`` axes walked): on an unrolled axis a compile-time 0, 1 or 2
    (no add, one, two), on a walked axis the run-time index ``i``. (Written as a product with the
    offset vector, Taichi kept the multiplies by the constants: the substep ran no faster.)"""
    if ti.static(d < walk):
        total += ti.cast(i, float) * value
    elif ti.static(rest[d - walk] == 1):
        total += value
    elif ti.static(rest[d - walk] == 2):
        total += 2.0 * value


@ti.func
def stencil_base(grid: ti.template(), x):
    """Lower corner of the 3^dim stencil of position ``x`` and the offset within it, in cells."""
    Xp = (x - grid.corner[None]) * grid.inv_spacing[None]
    base = ti.cast(ti.floor(Xp - 0.5), ti.i32)
    for d in ti.static(range(grid.dim)):
        base[d] = ti.min(ti.max(base[d], 0), grid.extent[None][d] - 3)
    return base, Xp - base


@ti.func
def slot_at(parts: ti.template(), k, n_sorted):
    """The slot P2G visits ``k``-th: ``Particles.order[k]`` below ``n_sorted`` (the particles in
    block order, ``kernels.order``), ``k`` itself from there on."""
    p = k
    if k < n_sorted:
        p = parts.order[k]
    return p


@ti.func
def lane_reaches_pass(parts: ti.template(), grid: ti.template(), n, n_sorted):
    """P2G in lanes (``Grid.lanes`` >= 2), before the scatter: the reach of each lane but the last
    (``Grid.lane_reach``; only the lanes after a lane read its reach), one more than the highest
    stencil base along axis 0 of its alive particles: the scatter's own ``stencil_base`` (integers,
    so a NaN or infinite position counts as the scatter clamps it, where a float maximum under fast
    math may lose a lane's largest x to a NaN), and the one cell more covers a rounding the
    compiler may do otherwise in the two places. On the calling thread: a loop of a few lanes, a
    position a particle, where handing it to the pool costs about as much again
    (``docs/benchmark.md``, "Lanes that add into the grid itself")."""
    ti.loop_config(serialize=True)
    for lane in range(grid.lanes - 1):
        top = -1
        for k in range(lane * n // grid.lanes, (lane + 1) * n // grid.lanes):
            p = slot_at(parts, k, n_sorted)
            if parts.alive[p]:
                base, _ = stencil_base(grid, parts.x[p])
                top = ti.max(top, base[0])
        grid.lane_reach[lane] = top + 1


@ti.func
def lane_start(grid: ti.template(), lane):
    """The lowest stencil base along axis 0 from which P2G's lane ``lane`` adds into the grid
    itself (``p2g_pass``): above every node the lanes before it may write (a base's stencil spans
    3 nodes). 0 for lane 0, which adds every particle into the grid."""
    start = 0
    for k in range(lane):
        start = ti.max(start, grid.lane_reach[k] + 3)
    return start


@ti.func
def mark_blocks(grid: ti.template(), base, copy):
    """Mark the (at most 2^dim) blocks that the 3^dim stencil starting at ``base`` touches; with
    P2G lanes (``Grid.lanes`` >= 2) also, where ``copy`` (the lane whose copy the particle adds
    into, ``scatter_particle``; 0: the grid itself) is 1 or more, in that lane's own marks, so
    that the lanes' sum reads only the copies a lane wrote (lane 0's copy is the grid). On a grid
    without heat the lane zeroes its copy of a block when it first marks it, where a thermal grid's
    sum zeroes the copies it read: water's transfer 0.90-0.96 of the other way, the polyalloy's
    1.02-1.03, whose many channels' zeroing in the scatter costs more than it saves (measured,
    docs/benchmark.md "The copies zeroed where they are written")."""
    lo = base // grid.block
    hi = (base + 2) // grid.block
    for corner in ti.static(ti.grouped(ti.ndrange(*((2,) * grid.dim)))):
        B = lo
        for d in ti.static(range(grid.dim)):
            if corner[d] == 1:
                B[d] = hi[d]
        if grid.block_mask[B] == 0:  # a read first: P2G lanes on other threads keep the line shared
            grid.block_mask[B] = 1
        if ti.static(grid.lanes >= 2):
            if copy > 0:
                M = B
                M[0] += (copy - 1) * grid.n_blocks[0]
                if ti.static(grid.thermal):
                    grid.lane_mask[M] = 1
                elif grid.lane_mask[M] == 0:  # first touch: the lane zeroes its copy of the block
                    grid.lane_mask[M] = 1
                    zero_lane_block(grid, B, copy)


@ti.func
def zero_copy(grid: ti.template(), name: ti.template(), J):
    """Zero a lane's copy of channel ``name`` at ``J`` (by assignment: a NaN times 0 stays NaN)."""
    channel = ti.static(getattr(grid, name))
    if ti.static(isinstance(channel, ti.MatrixField)):
        channel[J] = ti.Vector.zero(float, channel.n)
    else:
        channel[J] = 0.0


@ti.func
def zero_lane_block(grid: ti.template(), B, lane):
    """Zero lane ``lane``'s copy of every scattered channel in block ``B`` (``mark_blocks``, on a
    grid without heat: the lane that writes the copy zeroes it just before, on its own thread)."""
    for k in range(grid.block ** grid.dim):
        J = block_node(grid, B, k)
        J[0] += lane * grid.lane_stride
        for name in ti.static(grid.scattered):
            zero_copy(grid, name, J)


@ti.func
def add_lane(grid: ti.template(), name: ti.template(), I, J):
    """Add a lane's copy of channel ``name`` at ``J`` into the grid's node ``I``; on a thermal grid
    zero the copy for the next P2G (a grid without heat has its lanes zero a block's copy when
    they first touch it, ``mark_blocks``)."""
    channel = ti.static(getattr(grid, name))
    channel[I] = channel[I] + channel[J]
    if ti.static(grid.thermal):
        zero_copy(grid, name, J)


@ti.func
def collect_blocks_pass(grid: ti.template(), knobs: ti.template()):
    """List the blocks that P2G marked; every later grid pass visits only these. After P2G in
    lanes (``Grid.lanes`` >= 2), add into each listed node the copies of lanes 1 and up that
    marked its block, in lane order (lane 0 added into the grid itself, the other lanes their
    particles beyond the lanes before them: ``p2g_pass``), and zero those copies (on
    a thermal grid; ``mark_blocks`` otherwise) and the lanes' marks for the next P2G (the heat
    step's channels only on a substep that carries it: on the others P2G left them zero)."""
    grid.n_active[None] = 0
    # on a CPU on one thread: the blocks listed in the grid's order, so that a sum over the list in
    # its order repeats at any thread count (heat.conduct_pass's boundary energy). A range-for over
    # the blocks' indices, not a struct-for over ``block_mask``: Taichi ignores ``serialize`` on a
    # struct-for (it warns so), and its element lists made the scan 5x slower (measured,
    # docs/benchmark.md "The block list's scan")
    ti.loop_config(serialize=grid.lanes >= 1)
    for B in ti.grouped(ti.ndrange(*grid.n_blocks)):
        if grid.block_mask[B]:
            i = ti.atomic_add(grid.n_active[None], 1)
            grid.block_list[i] = B
    if ti.static(grid.lanes >= 2):
        each_active_node(grid, grid.n_active[None], sum_lanes_node, knobs, knobs, True)
        ti.loop_config(serialize=True)  # a store a block: less than handing the loop to the pool
        for i, lane in ti.ndrange(grid.n_active[None], grid.lanes - 1):
            B = grid.block_list[i]
            B[0] += lane * grid.n_blocks[0]
            grid.lane_mask[B] = 0


@ti.func
def sum_lanes_node(grid: ti.template(), knobs: ti.template(), _: ti.template(), i, I):
    """``collect_blocks_pass``'s sum at node ``I`` of the ``i``-th listed block."""
    for lane in range(1, grid.lanes):
        B = grid.block_list[i]
        B[0] += (lane - 1) * grid.n_blocks[0]
        if grid.lane_mask[B]:  # only the copies this lane wrote (often one lane of all)
            J = I
            J[0] += lane * grid.lane_stride
            for name in ti.static(grid.scattered):
                if ti.static(name in HEAT_STEP_CHANNELS):
                    if knobs.heat_step[None]:
                        add_lane(grid, name, I, J)
                else:
                    add_lane(grid, name, I, J)


@ti.kernel
def collect_blocks(grid: ti.template(), knobs: ti.template()):
    """``collect_blocks_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    collect_blocks_pass(grid, knobs)


@ti.func
def clear_grid_pass(grid: ti.template(), knobs: ti.template()):
    """Zero the nodes of the listed blocks and unmark them, so the next P2G pays only for the
    blocks it touches (nothing while the clock is stopped: the grid keeps the last substep's)."""
    each_active_node(grid, while_running(knobs, grid.n_active[None]), clear_node, knobs, knobs, True)
    # on a CPU on the calling thread: a store a block costs less than handing the loop to the pool
    ti.loop_config(serialize=grid.lanes >= 1)
    for i in range(while_running(knobs, grid.n_active[None])):
        grid.block_mask[grid.block_list[i]] = 0
    if knobs.clock_state[None] == RUNNING:
        grid.n_active[None] = 0


@ti.func
def clear_node(grid: ti.template(), knobs: ti.template(), _: ti.template(), i, I):
    """``clear_grid_pass`` at node ``I``: every channel zero."""
    grid.m[I] = 0.0
    grid.v[I] = ti.Vector.zero(float, grid.dim)
    if ti.static(grid.thermal):
        grid.hc[I] = 0.0
        grid.T[I] = 0.0
        grid.k[I] = 0.0
        grid.dT[I] = 0.0
        grid.frozen[I] = 0.0
        grid.phi[I] = 0.0
        grid.relax[I] = 0.0
        grid.held[I] = 0.0
        grid.mix_m[I] = 0.0
        grid.mix_c[I] = 0.0
        grid.mix_d[I] = 0.0
    if ti.static(grid.control):
        grid.ctrl_m[I] = 0.0
        grid.ctrl_e[I] = ti.Vector.zero(float, grid.dim)
        grid.ctrl_v[I] = ti.Vector.zero(float, grid.dim)


@ti.kernel
def clear_grid(grid: ti.template(), knobs: ti.template()):
    """``clear_grid_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    clear_grid_pass(grid, knobs)


@ti.func
def deposit(grid: ti.template(), name: ti.template(), node, value):
    """Add ``value`` into the scattered channel ``name`` at ``node`` (``Grid.lanes``): with lanes
    0 an atomic add into the grid; with 1 a plain add into the grid (the loop is serialised and
    Taichi demotes the atomic); with L >= 2 a plain load and store (only ``+=`` is an atomic)
    into the grid or a lane's copy, ``node`` already shifted to it (``scatter_particle``)."""
    target = ti.static(getattr(grid, name))
    if ti.static(grid.lanes <= 1):
        target[node] += value
    else:
        target[node] = target[node] + value


@ti.func
def is_liquid(mats: ti.template(), mat, f):
    """Whether a particle of material ``mat`` at liquid fraction ``f`` is a liquid, as the liquids'
    mixing counts one (``kernels.mixing``): a ``FLUID`` material, or polyalloy more than half
    molten (G2P's ``molten``)."""
    return mats.kind[mat] == FLUID or f > 0.5


@ti.func
def scatter_particle(parts: ti.template(), grid: ti.template(), mats: ti.template(), ctrl: ti.template(),
                     knobs: ti.template(), p, lane, start):
    """P2G of particle ``p`` in lane ``lane`` (``p2g``; 0 unless ``Grid.lanes`` >= 2): into the
    grid itself where its stencil base along axis 0 is ``start`` or more (``lane_start``),
    otherwise into the lane's copy."""
    dt = knobs.step_dt[None]
    t = knobs.step_t[None]
    mat = parts.material[p]
    base, fx = stencil_base(grid, parts.x[p])
    copy = lane
    if base[0] >= start:
        copy = 0
    mark_blocks(grid, base, copy)
    w = quadratic_weights(fx)
    T = parts.T[p]
    f = liquid_fraction(mats, mat, parts.H[p])
    tau = parts.tau[p]
    mass = parts.mass[p]
    # MLS-MPM: the force term -V0 tau grad(w) folds into the affine matrix (Hu et al. 2018, eq. 29)
    inv_dx = grid.inv_spacing[None]
    affine = (-dt * parts.vol0[p] * 4.0 * inv_dx * inv_dx) * tau + mass * parts.C[p]
    momentum = mass * parts.v[p]
    mc = 0.0
    vol = 0.0
    frozen = 0.0
    # this substep carries the heat step (kernels.heat, "Multirate"), on which the controller acts too
    heat_step = knobs.heat_step[None]
    if ti.static(grid.thermal):
        frozen = mass * frozen_weight(mats, mat, T)
        if heat_step:
            mc = mass * heat_capacity(mats, mat, f)
            vol = parts.vol0[p] * inv_dx ** grid.dim
    g_mass = 0.0
    g_err = ti.Vector.zero(float, grid.dim)
    g_vel = ti.Vector.zero(float, grid.dim)
    if ti.static(grid.control):
        if parts.part[p] >= 0:
            g_mass = mass * grip(mats, knobs, mat, parts.phase[p], T, f)
            if heat_step and g_mass > 0.0:
                home, home_v = posed_home(parts, ctrl, knobs, p, t)
                g_err = g_mass * (home - parts.x[p])
                g_vel = g_mass * home_v
    # the liquids' mixing sums (kernels.mixing) on a grid built to mix: a liquid's mass, times its
    # polyalloy fraction, times its material's diffusivity
    mix_m = 0.0
    mix_c = 0.0
    mix_d = 0.0
    if ti.static(grid.mixing):
        if is_liquid(mats, mat, f):
            mix_m = mass
            mix_c = mass * parts.comp[p]
            mix_d = mass * mats.mixing[mat]
    home_node = base
    home_node[0] += copy * grid.lane_stride  # the lane's copy, or (copy 0) the grid itself
    # the stencil compiled twice on a thermal or controlled grid, with and without the heat step's
    # channels: a branch per node inside one loop kept most of the adds' cost (measured, kernels.heat
    # "Multirate")
    if ti.static(grid.thermal or grid.control):
        if heat_step:
            scatter_stencil(grid, mats, home_node, w, fx, mat, momentum, affine, mass, frozen, mc, T, vol,
                            g_mass, g_err, g_vel, mix_m, mix_c, mix_d, True)
        else:
            scatter_stencil(grid, mats, home_node, w, fx, mat, momentum, affine, mass, frozen, mc, T, vol,
                            g_mass, g_err, g_vel, mix_m, mix_c, mix_d, False)
    else:
        scatter_stencil(grid, mats, home_node, w, fx, mat, momentum, affine, mass, frozen, mc, T, vol,
                        g_mass, g_err, g_vel, mix_m, mix_c, mix_d, False)


@ti.func
def scatter_stencil(grid: ti.template(), mats: ti.template(), home_node, w, fx, mat, momentum, affine, mass,
                    frozen, mc, T, vol, g_mass, g_err, g_vel, mix_m, mix_c, mix_d, heat: ti.template()):
    """The adds of ``scatter_particle`` into the 3^dim nodes from ``home_node``; the heat step's
    channels (``fields.HEAT_STEP_CHANNELS``: the heat's and the controller's pull's) only with
    ``heat`` (compile-time)."""
    walk = ti.static(stencil_walk(grid.dim, grid.thermal or grid.control))
    # APIC's A (offset - fx) dx as A dx offset - A dx fx (stencil_node)
    per_offset = affine * grid.spacing[None]
    at_base = momentum - per_offset @ fx
    columns = [ti.Vector([per_offset[c, d] for c in ti.static(range(grid.dim))]) for d in ti.static(range(grid.dim))]
    for i in range(3 ** walk):  # the stencil, partly unrolled (stencil_walk)
        for rest in ti.static(stencil_rest(grid.dim, walk)):
            offset, weight = stencil_node(w, i, rest)
            node = home_node + offset
            affine_momentum = at_base
            for d in ti.static(range(grid.dim)):
                add_times_offset(affine_momentum, columns[d], i, rest, d, walk)
            deposit(grid, "v", node, weight * affine_momentum)
            deposit(grid, "m", node, weight * mass)
            if ti.static(grid.thermal):
                deposit(grid, "frozen", node, weight * frozen)
                if ti.static(heat):
                    deposit(grid, "hc", node, weight * mc)
                    deposit(grid, "T", node, weight * mc * T)
                    deposit(grid, "k", node, weight * vol * mats.conductivity[mat])
                    deposit(grid, "phi", node, weight * vol)
            if ti.static(grid.control):
                if g_mass > 0.0:
                    deposit(grid, "ctrl_m", node, weight * g_mass)
                    if ti.static(heat):
                        deposit(grid, "ctrl_e", node, weight * g_err)
                        deposit(grid, "ctrl_v", node, weight * g_vel)
            if ti.static(grid.mixing):
                if mix_m > 0.0:
                    deposit(grid, "mix_m", node, weight * mix_m)
                    deposit(grid, "mix_c", node, weight * mix_c)
                    deposit(grid, "mix_d", node, weight * mix_d)


@ti.func
def p2g_pass(parts: ti.template(), grid: ti.template(), mats: ti.template(), ctrl: ti.template(),
             knobs: ti.template()):
    """Scatter mass, momentum, APIC affine momentum and the stress impulse (from the stress G2P
    stored) to the grid; on a thermal grid also heat capacity, thermal energy, conductivity,
    volume and frozen mass; on a controlled grid the grip-weighted mass, home error and home
    velocity of controlled particles (``kernels.control``); on a grid built to mix
    (``Grid.mixing``) the liquids' mixing sums (``kernels.mixing``). All but the mass, the
    momentum, the frozen and the gripped mass and the mixing sums only on a substep that carries
    the heat step (``knobs.heat_step``).
    How the adds meet (``Grid.lanes``): on a GPU (0) one thread per particle with float atomics;
    on one CPU thread (1) a serial loop with plain adds; on L >= 2 CPU threads, L lanes of
    consecutive particles, each on its own thread with plain adds into its own copy of the
    channels (lane 0's is the grid), which ``collect_blocks`` sums (two CPU threads fighting over
    float atomics are slower than one without them). A lane adds into the grid itself a particle
    whose stencil lies wholly beyond the nodes of every lane before it (``lane_reaches_pass``,
    ``lane_start``): no two lanes write one node, and particles in x order (as a body is sampled)
    leave only a band along each lane's border to the copies and their sum (water's transfer
    0.91-0.98 of what it took with every particle of lanes 1 and up in a copy). The step and the
    time are the device clock's (``knobs.step_dt``, ``knobs.step_t``)."""
    n = while_running(knobs, parts.n[None])
    n_sorted = parts.n_sorted[None]
    if ti.static(grid.lanes >= 2):
        lane_reaches_pass(parts, grid, n, n_sorted)
        # Taichi's CPU range-for hands out chunks of up to 512 iterations (``block_dim`` does
        # not go below its 32): a loop of L iterations would be one chunk on one thread, so
        # lane l starts at iteration l * LANE_SPREAD and the rest do nothing
        for q in range(grid.lanes * LANE_SPREAD):
            if q % LANE_SPREAD == 0:
                lane = q // LANE_SPREAD
                start = lane_start(grid, lane)
                for k in range(lane * n // grid.lanes, (lane + 1) * n // grid.lanes):
                    p = slot_at(parts, k, n_sorted)
                    if parts.alive[p]:
                        scatter_particle(parts, grid, mats, ctrl, knobs, p, lane, start)
    else:
        ti.loop_config(serialize=grid.serial)
        for k in range(n):
            p = slot_at(parts, k, n_sorted)
            if parts.alive[p]:
                scatter_particle(parts, grid, mats, ctrl, knobs, p, 0, 0)


@ti.kernel
def p2g(parts: ti.template(), grid: ti.template(), mats: ti.template(), ctrl: ti.template(),
        knobs: ti.template()):
    """``p2g_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    p2g_pass(parts, grid, mats, ctrl, knobs)


@ti.func
def collide_node(cols: ti.template(), x, v, t, frozen: ti.i32, stick_below, reach):
    """Boundary condition of every collider row on a grid velocity ``v`` at node position ``x``:
    sticky takes the collider's velocity, slip removes the normal part of the relative
    velocity, separate removes only the approaching part and applies Coulomb friction.
    A ``frozen`` node (mostly frozen polyalloy) within ``reach`` (m) of a collider colder than
    ``stick_below`` sticks to it: the material froze onto the surface."""
    for s in range(cols.count[None]):
        phi = shape_sdf(cols, s, x, t)
        stick = frozen and 0.0 < cols.temperature[s] < stick_below and phi < reach
        if phi < 0.0 or stick:
            n = shape_normal(cols, s, x, t, 1e-4)
            vc = cols.vel[s]
            rel = v - vc
            mode = cols.surface[s]
            if stick:
                mode = STICKY
            if mode == STICKY:
                rel = ti.Vector.zero(float, x.n)
            else:
                vn = rel.dot(n)
                if mode == SLIP or vn < 0.0:
                    tangent = rel - vn * n
                    if mode == SEPARATE:
                        speed_t = tangent.norm()
                        if speed_t > 1e-12:
                            # Coulomb: friction removes up to mu |vn| of tangential speed
                            tangent *= ti.max(0.0, 1.0 - cols.friction[s] * ti.abs(vn) / speed_t)
                    rel = tangent
            v = rel + vc
    return v


@ti.func
def update_grid_pass(grid: ti.template(), cols: ti.template(), knobs: ti.template()):
    """Momentum to velocity, gravity, on a controlled grid the controller's weight support and
    (on a substep that carries the heat step, over the time it covers) its pull
    (``kernels.control``), collider conditions, and the walls of the domain box (free-slip,
    separating: a node on a wall loses only its outward velocity). Step and time: the device
    clock's."""
    each_active_node(grid, while_running(knobs, grid.n_active[None]), update_node, cols, knobs, False)


@ti.func
def update_node(grid: ti.template(), cols: ti.template(), knobs: ti.template(), i, I):
    """``update_grid_pass`` at node ``I``."""
    m = grid.m[I]
    if m > 0.0:
        dt = knobs.step_dt[None]
        t = knobs.step_t[None]
        v = grid.v[I] / m + dt * knobs.gravity[None]
        if ti.static(grid.control):
            v = hold_up(grid, knobs, I, v, dt)
            if knobs.heat_step[None]:
                v = control_accel(grid, knobs, I, v, knobs.step_heat_dt[None])
        x = grid.corner[None] + I.cast(float) * grid.spacing[None]
        frozen = 0
        if ti.static(grid.thermal):
            frozen = grid.frozen[I] > 0.5 * m
        v = collide_node(cols, x, v, t, frozen, knobs.stick_below[None], grid.spacing[None])
        for d in ti.static(range(grid.dim)):
            if I[d] <= DOMAIN_PAD and v[d] < 0.0:
                v[d] = 0.0
            if I[d] >= grid.extent[None][d] - 1 - DOMAIN_PAD and v[d] > 0.0:
                v[d] = 0.0
        grid.v[I] = v


@ti.kernel
def update_grid(grid: ti.template(), cols: ti.template(), knobs: ti.template()):
    """``update_grid_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    update_grid_pass(grid, cols, knobs)


@ti.func
def push_out_of_colliders(cols: ti.template(), x, v, t):
    """Move a particle that ended inside a collider back to its surface and remove its
    approaching velocity, so no particle is ever left inside a collider. Returns x, v and the
    approaching speed removed (m/s): the grid's boundary condition (``update_grid``) should
    have left little of it (G2P adds it up, times the mass, in ``knobs.push_impulse``)."""
    removed = 0.0
    for s in range(cols.count[None]):
        phi = shape_sdf(cols, s, x, t)
        if phi < 0.0:
            n = shape_normal(cols, s, x, t, 1e-4)
            x -= phi * n
            vn = (v - cols.vel[s]).dot(n)
            if vn < 0.0:
                v -= vn * n
                removed -= vn
    return x, v, removed


@ti.kernel
def compute_stress(parts: ti.template(), mats: ti.template()):
    """The Kirchhoff stress of every particle slot's current state (G2P keeps it up to date)."""
    for p in range(parts.capacity):
        mat = parts.material[p]
        f = liquid_fraction(mats, mat, parts.H[p])
        parts.tau[p] = kirchhoff_stress(mats, mat, parts.F[p], parts.C[p], parts.Jp[p], parts.T[p], f,
                                        parts.damage[p])


@ti.kernel
def max_wave_speed(parts: ti.template(), mats: ti.template(), start: ti.i32, end: ti.i32) -> float:
    """The fastest elastic wave (m/s, ``wave_speed``) of the particle slots [start, end) in their
    current state, live or still pooled: the first step's, and an emitter fill's as it starts."""
    c = 0.0
    for p in range(start, end):
        mat = parts.material[p]
        ti.atomic_max(c, wave_speed(mats, mat, parts.T[p], liquid_fraction(mats, mat, parts.H[p])))
    return c


@ti.func
def toughness(p):
    """A fixed pseudo-random factor in [0.7, 1.3] per particle index (integer hash), so that
    cracks in a frozen body start at flaws rather than along the lattice, deterministically."""
    h = ti.cast(p, ti.u32) * ti.u32(2654435761)
    h ^= h >> 16
    h *= ti.u32(0x45D9F3B)
    h ^= h >> 16
    return 0.7 + 0.6 * ti.cast(h & ti.u32(0xFFFFFF), float) / 16777216.0


@ti.func
def gather_stencil(grid: ti.template(), mats: ti.template(), base, w, fx, T_p, heat: ti.template()):
    """G2P's gather over the 3^dim nodes from ``base``: the velocity, the APIC matrix, and with
    ``heat`` (compile-time: a substep that carries the heat step) the controller's grip-weighted
    home error and mass and the temperature change of a particle at ``T_p`` (the heat step's
    conduction and relaxation)."""
    new_v = ti.Vector.zero(float, grid.dim)
    # sum of w v offset[d] per axis d (stencil_node): the columns of sum w v (x) offset
    by_offset = [ti.Vector.zero(float, grid.dim) for _ in ti.static(range(grid.dim))]
    dT = 0.0
    c_err = ti.Vector.zero(float, grid.dim)
    c_mass = 0.0
    walk = ti.static(stencil_walk(grid.dim, mats.has(POLYALLOY)))
    for i in range(3 ** walk):  # the stencil, partly unrolled (stencil_walk)
        for rest in ti.static(stencil_rest(grid.dim, walk)):
            offset, weight = stencil_node(w, i, rest)
            node = base + offset
            g_v = grid.v[node]
            if ti.static(grid.control and heat):
                c_err += weight * grid.ctrl_e[node]
                c_mass += weight * grid.ctrl_m[node]
            weighted = weight * g_v
            new_v += weighted
            for d in ti.static(range(grid.dim)):
                add_times_offset(by_offset[d], weighted, i, rest, d, walk)
            if ti.static(grid.thermal and heat):
                dT += weight * (grid.dT[node] + grid.relax[node] * (grid.T[node] - T_p))
    # APIC: C = 4 / dx^2 sum w v (x) (offset - fx) dx
    new_C = (4.0 * grid.inv_spacing[None]) * (ti.Matrix.cols(by_offset) - new_v.outer_product(fx))
    return new_v, new_C, c_err, c_mass, dT


@ti.func
def g2p_pass(parts: ti.template(), grid: ti.template(), mats: ti.template(), cols: ti.template(),
             ctrl: ti.template(), knobs: ti.template()):
    """Gather velocity and the affine matrix, advect, update F (plasticity, damage), keep
    particles out of colliders and inside the domain; on a thermal grid gather the temperature
    change into the enthalpy, then update temperature, phase (with hysteresis), healing and
    boil-off; on a controlled grid, gripped particles close the gaps the grid cannot see
    (``close_gaps``) and settle their volume (``settle_volume``). Records the largest speed and elastic wave speed for the next dt. A particle
    whose state turns non-finite is frozen in place and counted in ``knobs.bad``. Step and
    time: the device clock's."""
    ti.loop_config(serialize=grid.serial)
    for p in range(while_running(knobs, parts.n[None])):
        if parts.alive[p]:
            dt = knobs.step_dt[None]
            t = knobs.step_t[None]
            mat = parts.material[p]
            base, fx = stencil_base(grid, parts.x[p])
            w = quadratic_weights(fx)
            new_v = ti.Vector.zero(float, grid.dim)
            new_C = ti.Matrix.zero(float, grid.dim, grid.dim)
            c_err = ti.Vector.zero(float, grid.dim)
            c_mass = 0.0
            dT = 0.0
            # the gather compiled twice on a thermal or controlled grid, with and without the heat
            # step's temperature change and the controller's home error (as P2G's adds, scatter_particle)
            heat_step = knobs.heat_step[None]
            if ti.static(grid.thermal or grid.control):
                if heat_step:
                    new_v, new_C, c_err, c_mass, dT = gather_stencil(grid, mats, base, w, fx, parts.T[p], True)
                else:
                    new_v, new_C, c_err, c_mass, dT = gather_stencil(grid, mats, base, w, fx, parts.T[p], False)
            else:
                new_v, new_C, c_err, c_mass, dT = gather_stencil(grid, mats, base, w, fx, parts.T[p], False)
            x = parts.x[p] + dt * new_v
            g = 0.0  # the controller's grip on this particle
            if ti.static(grid.control):
                if parts.part[p] >= 0:
                    g = grip(mats, knobs, mat, parts.phase[p], parts.T[p], liquid_fraction(mats, mat, parts.H[p]))
                if heat_step and c_mass > 0.0 and g > 0.0:
                    x += close_gaps(parts, ctrl, knobs, p, g, c_err / c_mass, knobs.step_heat_dt[None], t)
            x, new_v, removed = push_out_of_colliders(cols, x, new_v, t + dt)
            if removed > 0.0:
                if ti.static(knobs.fixed_push):  # a CPU: whole quanta, the same sum in any order
                    ti.atomic_add(knobs.lane_quanta[p % LANES],
                                  ti.round(ti.cast(parts.mass[p] * removed, CLOCK) / PUSH_QUANTUM))
                else:
                    ti.atomic_add(knobs.lane_push[p % LANES], parts.mass[p] * removed)
            for d in ti.static(range(grid.dim)):
                lo = grid.corner[None][d] + DOMAIN_PAD * grid.spacing[None]
                hi = grid.corner[None][d] + (grid.extent[None][d] - 1 - DOMAIN_PAD) * grid.spacing[None]
                if x[d] < lo:
                    x[d] = lo
                    new_v[d] = ti.max(new_v[d], 0.0)
                if x[d] > hi:
                    x[d] = hi
                    new_v[d] = ti.min(new_v[d], 0.0)
            H = parts.H[p]
            T = parts.T[p]
            f = liquid_fraction(mats, mat, H)
            damage = parts.damage[p]
            Jp = parts.Jp[p]
            F = (ti.Matrix.identity(float, grid.dim) + dt * new_C) @ parts.F[p]
            kind = mats.kind[mat]
            # one SVD per particle, in one place (each inlined ti.svd costs seconds of compile):
            # solids always, polyalloy only where the closed form does not serve (inside its
            # limits, or yielding in von Mises: polyalloy_closed_form) and not molten (a liquid
            # keeps only its volume); knobs.plain switches the closed form off (the reference
            # that polyalloy bench checks against)
            # only the material kinds of the table are compiled in (``mats.has``): a water scene's
            # G2P has no SVD and no polyalloy return, the largest part of its compile time
            inside = 0
            molten = kind == POLYALLOY and f > 0.5
            sig = ti.Matrix.identity(float, grid.dim)  # with U, V: an SVD of F
            if ti.static(mats.has(POLYALLOY)):
                if kind == POLYALLOY and not knobs.plain[None]:
                    inside, F, sig = polyalloy_closed_form(mats, mat, F, T, f, damage, toughness(p))
            U = ti.Matrix.identity(float, grid.dim)
            V = ti.Matrix.identity(float, grid.dim)
            if ti.static(mats.has(ELASTIC, PLASTIC, POLYALLOY)):
                if kind != FLUID and not inside and not molten:
                    U, sig, V = ti.svd(F)
            rotated = 1 - inside  # 0: U unknown, the stress comes from F and sig (polyalloy_stress_stretch)
            if ti.static(mats.has(POLYALLOY)):
                if kind == POLYALLOY:
                    if not inside:
                        F, Jp, damage, U, sig = polyalloy_return(mats, mat, F, U, sig, V, Jp, T, f, damage,
                                                                 toughness(p))
                    if ti.static(grid.control):
                        if g > 0.0:
                            F, sig = settle_volume(knobs, g, F, sig, dt)
            if ti.static(mats.has(FLUID, ELASTIC, PLASTIC)):
                if kind != POLYALLOY:
                    F, Jp, sig = project_deformation(mats, mat, F, U, sig, V, Jp)
            phase = parts.phase[p]
            alive = 1
            if ti.static(grid.thermal):
                H += heat_capacity(mats, mat, f) * dT
                T = temperature_of(mats, mat, H)
                f = liquid_fraction(mats, mat, H)
                new_phase = next_phase(mats, mat, phase, T, f)
                if new_phase != FROZEN:
                    if phase == FROZEN and damage > 0.0:
                        # a shattered piece that thaws re-bonds stress-free: drop its stretch memory
                        F = ti.Matrix.identity(float, grid.dim) * ti.pow(ti.max(F.determinant(), 1e-6),
                                                                          1.0 / grid.dim)
                        U = ti.Matrix.identity(float, grid.dim)
                        sig = F
                        Jp = 1.0
                        rotated = 1
                    damage = 0.0
                phase = new_phase
                if mats.boils[mat] > 0.0 and f >= 1.0:
                    alive = 0  # boiled off: its enthalpy stays in H for the energy budget
            finite = not (ti.math.isnan(x).any() or ti.math.isinf(x).any() or ti.math.isnan(new_v).any()
                          or ti.math.isinf(new_v).any() or ti.math.isnan(F).any() or ti.math.isinf(F).any()
                          or ti.math.isnan(H) or ti.math.isinf(H))
            if finite:
                parts.x[p] = x
                parts.v[p] = new_v
                parts.C[p] = new_C
                parts.F[p] = F
                parts.Jp[p] = Jp
                parts.H[p] = H
                parts.T[p] = T
                parts.phase[p] = phase
                parts.damage[p] = damage
                parts.alive[p] = alive
                if ti.static(mats.has(POLYALLOY)):
                    if kind == POLYALLOY:
                        if rotated:
                            parts.tau[p] = polyalloy_stress_svd(mats, mat, U, sig, new_C, T, f, damage)
                        else:
                            parts.tau[p] = polyalloy_stress_stretch(mats, mat, F, sig, new_C, T, f)
                if ti.static(mats.has(FLUID, ELASTIC, PLASTIC)):
                    if kind != POLYALLOY:
                        parts.tau[p] = solid_stress(mats, mat, F, U, sig, V, new_C, Jp)
                ti.atomic_max(knobs.lane_speed[p % LANES], new_v.norm())
                ti.atomic_max(knobs.lane_wave[p % LANES], wave_speed(mats, mat, T, f))
            else:
                knobs.bad[None] += 1
                parts.v[p] = ti.Vector.zero(float, grid.dim)
                ti.atomic_max(knobs.lane_speed[p % LANES], ti.math.inf)


@ti.kernel
def g2p(parts: ti.template(), grid: ti.template(), mats: ti.template(), cols: ti.template(),
        ctrl: ti.template(), knobs: ti.template()):
    """``g2p_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    g2p_pass(parts, grid, mats, cols, ctrl, knobs)


@ti.func
def choose_dt(knobs: ti.template()):
    """The step of the next substep, as the host chose it before (``Simulation.stable_dt`` and
    the split in ``advance_to``), in the clock's float: a non-finite speed or a non-finite
    particle stops the clock (BLOWN); at ``clock_stop`` it stops (DONE); a stable step below
    ``clock_min_dt`` stops it (COLLAPSED); else the stable step min(cap, cfl dx / (speed +
    wave)) (kept in ``clock_stable``), with the stretch left to ``clock_stop`` split evenly
    rather than leave a sliver of a step. Writes the step, the state and the substep kernels'
    ``step_*`` values."""
    speed = knobs.max_speed[None]
    state = RUNNING
    dt = ti.cast(0.0, CLOCK)
    stable = ti.cast(0.0, CLOCK)
    t = knobs.clock_t[None]
    if ti.math.isnan(speed) or ti.math.isinf(speed) or knobs.bad[None] != 0:
        state = BLOWN
    else:
        fastest = ti.cast(speed, CLOCK) + ti.cast(knobs.max_wave[None], CLOCK)
        stable = ti.min(knobs.clock_cap[None], knobs.clock_cfl_dx[None] / ti.max(fastest, 1e-9))
        step = stable
        room = knobs.heat_cap[None] - knobs.heat_acc[None]
        if room > 0.0:  # a heat step spans at most heat_cap (choose_heat)
            step = ti.min(step, room)
        remaining = knobs.clock_stop[None] - t
        if remaining <= 1e-12:
            state = DONE
        else:
            if stable < knobs.clock_min_dt[None]:
                state = COLLAPSED
            else:
                dt = step
                if remaining <= step:
                    dt = remaining
                elif remaining < 2 * step:
                    dt = remaining / 2
    knobs.clock_state[None] = state
    knobs.clock_dt[None] = dt
    knobs.clock_stable[None] = stable
    knobs.step_dt[None] = ti.cast(dt, float)
    knobs.step_t[None] = ti.cast(t, float)
    knobs.step_t1[None] = ti.cast(t + dt, float)
    choose_heat(knobs)


@ti.func
def choose_heat(knobs: ti.template()):
    """Whether the substep about to run (``clock_dt`` at ``clock_t``) carries the heat step, and
    the time that step covers (``kernels.heat``, "Multirate"): ``heat_acc``, the time no heat
    step has covered yet, plus this substep's step. It carries it unless another substep of the
    same step would still fit within ``heat_cap`` after it and the clock runs on past it: at
    the clock's stop (a frame's end, an event) the heat is always up to date. ``heat_group``
    > 0 also ends a heat step after that many substeps; ``heat_cap`` 0 puts one in every
    substep."""
    dt = knobs.clock_dt[None]
    due = knobs.heat_acc[None] + dt
    cap = knobs.heat_cap[None]
    group = knobs.heat_group[None]
    now = 1
    if cap > 0.0 and (group <= 0 or knobs.heat_count[None] + 1 < group):
        if due + dt <= cap and knobs.clock_stop[None] - (knobs.clock_t[None] + dt) > 1e-12:
            now = 0
    knobs.heat_step[None] = now
    knobs.step_heat_dt[None] = ti.select(now != 0, ti.cast(due, float), 0.0)


@ti.kernel
def start_clock(knobs: ti.template(), t: CLOCK, stop: CLOCK, cap: CLOCK,
                cfl_dx: CLOCK, min_dt: CLOCK):
    """Set the device clock to ``t``, to stop at ``stop``, and choose the first step from the
    speeds now in ``knobs`` (the last G2P's, or what the host raised them to since: an impulse,
    a fill)."""
    knobs.clock_t[None] = t
    knobs.clock_stop[None] = stop
    knobs.clock_cap[None] = cap
    knobs.clock_cfl_dx[None] = cfl_dx
    knobs.clock_min_dt[None] = min_dt
    knobs.clock_steps[None] = 0
    choose_dt(knobs)


@ti.kernel
def set_step(knobs: ti.template(), dt: CLOCK, t: CLOCK):
    """A substep of ``dt`` at ``t`` chosen by the host (``Simulation.substep``): the clock runs
    with no stop of its own."""
    knobs.clock_t[None] = t
    knobs.clock_dt[None] = dt
    knobs.clock_stop[None] = ti.math.inf
    knobs.clock_state[None] = RUNNING
    knobs.step_dt[None] = ti.cast(dt, float)
    knobs.step_t[None] = ti.cast(t, float)
    knobs.step_t1[None] = ti.cast(t + dt, float)
    choose_heat(knobs)


@ti.func
def fold_lanes_pass(knobs: ti.template()):
    """After G2P: ``max_speed`` and ``max_wave`` from its per-lane maxima and ``push_impulse``
    plus its per-lane sums (all lanes reset; on a CPU whole numbers of ``PUSH_QUANTUM``, the same
    whatever order G2P's threads added them in), then the clock: t += dt and the next step
    (``choose_dt``). Serial, in lane order. Nothing while the clock is stopped."""
    if knobs.clock_state[None] == RUNNING:
        speed = 0.0
        wave = 0.0
        push = 0.0
        quanta = ti.cast(0.0, CLOCK)
        for i in range(LANES):
            speed = ti.max(speed, knobs.lane_speed[i])
            wave = ti.max(wave, knobs.lane_wave[i])
            if ti.static(knobs.fixed_push):
                quanta += knobs.lane_quanta[i]
                knobs.lane_quanta[i] = 0.0
            else:
                push += knobs.lane_push[i]
                knobs.lane_push[i] = 0.0
            knobs.lane_speed[i] = 0.0
            knobs.lane_wave[i] = 0.0
        knobs.max_speed[None] = speed
        knobs.max_wave[None] = wave
        if ti.static(knobs.fixed_push):
            push = ti.cast(quanta * PUSH_QUANTUM, float)
        knobs.push_impulse[None] += push
        steps = knobs.clock_steps[None]
        knobs.dt_log[steps % CLOCK_LOG] = knobs.clock_dt[None]
        knobs.clock_last[None] = knobs.clock_dt[None]
        knobs.clock_steps[None] = steps + 1
        if knobs.heat_step[None]:
            knobs.heat_acc[None] = 0.0
            knobs.heat_count[None] = 0
        else:
            knobs.heat_acc[None] += knobs.clock_dt[None]
            knobs.heat_count[None] += 1
        knobs.clock_t[None] += knobs.clock_dt[None]
        choose_dt(knobs)


@ti.kernel
def fold_lanes(knobs: ti.template()):
    """``fold_lanes_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    fold_lanes_pass(knobs)


@ti.kernel
def count_nonfinite(parts: ti.template()) -> ti.i32:
    """Particles whose position or velocity is NaN or infinite."""
    bad = 0
    for p in range(parts.n[None]):
        if parts.alive[p] and (ti.math.isnan(parts.x[p]).any() or ti.math.isinf(parts.x[p]).any() or
                               ti.math.isnan(parts.v[p]).any() or ti.math.isinf(parts.v[p]).any()):
            bad += 1
    return bad


@ti.kernel
def grid_mass(grid: ti.template()) -> float:
    """Total mass on the grid (kg); after P2G it equals the particles' total mass."""
    total = 0.0
    for i, k in ti.ndrange(grid.n_active[None], grid.block ** grid.dim):
        total += grid.m[active_node(grid, i, k)]
    return total


@ti.kernel
def grid_momentum(grid: ti.template()) -> ti.types.vector(3, float):
    """Total momentum on the grid after P2G (kg m/s), padded to 3 components."""
    total = ti.Vector.zero(float, 3)
    for i, k in ti.ndrange(grid.n_active[None], grid.block ** grid.dim):
        I = active_node(grid, i, k)
        for d in ti.static(range(grid.dim)):
            total[d] += grid.v[I][d]
    return total


@ti.kernel
def active_blocks(grid: ti.template()) -> ti.i32:
    """Number of listed grid blocks (the sparse grid's footprint)."""
    return grid.n_active[None]
