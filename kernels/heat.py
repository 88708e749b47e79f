"""Heat transfer and phase change inside MLS-MPM (after Stomakhin et al. 2014, "Augmented MPM
for phase-change and varied materials"), as ``@ti.func`` pieces called from the P2G/G2P kernels
of ``kernels.mpm`` and one grid kernel, ``conduct``.

State: every particle carries its specific enthalpy H (J/kg) relative to its material's value
at a reference temperature T_ref (the temperature the scene gives that material first, so near
its working range: f32 then keeps about as many digits of a small change as the temperature
has moved from T_ref, rather than of the whole enthalpy from 0 K). Temperature and liquid
fraction follow from H through the material's curve, with h_s = c_s T_m - H(T_ref) the stored
enthalpy at the solid end of the plateau::

    H <= h_s          : T = T_m + (H - h_s) / c_s   (= T_ref + H / c_s when T_ref <= T_m),   f = 0
    h_s < H < h_s + L : T = T_m (the latent plateau),                                      f = (H - h_s) / L
    H >= h_s + L      : T = T_m + (H - h_s - L) / c_l (= T_ref + H / c_l when T_ref > T_m),  f = 1

(each branch is written from the anchor on its own side, so the reference's branch never
subtracts two large numbers). Nothing is colder than 0 K: H >= H(0 K) = -H(T_ref) from 0 K.

One heat step: P2G spreads heat capacity m c and thermal energy m c T to the grid; ``conduct``
turns them into node temperatures, moves heat between face neighbours with conductance
k_face dx^(d-2) (k_face: harmonic mean of the volume-weighted node conductivities, so a
free surface is insulated), holds nodes in a hot or cold collider at its temperature and
exchanges heat with the air at free surfaces (Newton's law, area |grad phi| dx^d); G2P gives
each particle H += c dT with dT the interpolated change of its nodes. Because the same c is
used on both sides, sum(m dH) equals the grid's energy change exactly: conduction conserves
energy and every joule from colliders or the air is counted in the boundary budget.

The grid cannot see temperature differences inside a cell (a sharp hot/cold contact leaves
particles a few tenths of the jump away from the grid's smooth field, for ever). So each
particle also relaxes toward the grid temperature of each node at that node's rate
``relax = RELAX dt alpha_i / dx^2`` (alpha_i the node's diffusivity): the physical time scale
on which a cell-sized difference conducts away. Since sum_p w_ip m_p c_p (T_i - T_p) = 0 for
every node, the relaxation moves no net energy. Its side effect on resolved gradients is an
extra diffusivity of about RELAX/4 alpha (2.5%).

The explicit step is stable for dt <= dx^2 / (4 dim alpha) (alpha = k / (rho c)); the
simulation keeps the heat step at half of that (``Simulation.heat_dt``, ``knobs.heat_cap``).

Multirate. The heat step needs no substep's resolution: the elastic waves limit a substep to a
few tenths of a millisecond, while heat moves a cell in ``heat_cap`` (3.7 ms in the 3D freeze
beat at dx = 4 cm, 1.1 ms in ``polyalloy bench``'s block). So one heat step spans several
substeps (``kernels.mpm.choose_heat``): the transfer above runs on the substep that ends it,
over the time since the last one (``knobs.step_heat_dt``), and the substeps between scatter no
heat channel but the frozen mass (the grid update reads it every substep), run no ``conduct``
and gather no temperature change. Particles carry their temperature along meanwhile, so
advection is as before; what changes is only that conduction, contact with hot and cold
colliders and the air act in steps of up to ``heat_cap`` instead of every substep, which is
the explicit scheme's own step wherever the substep is not shorter. A heat step never spans
more than ``heat_cap`` (``choose_dt`` shortens a substep that would pass it) and always ends
where the clock stops (a frame's end, an event), so every frame, check and event sees the heat
up to date, and the energy budget closes as before. ``knobs.heat_group`` = 1 steps the heat
every substep (the scheme before, to the bit). The controller's pull acts on the same substeps
(``kernels.control``, "Multirate"), so on a controlled run the step is also capped by the
spring's explicit limit (``Simulation._heat_settings``).
"""
import taichi as ti

from polyalloy.kernels.fields import CLOCK, active_node, while_running
from polyalloy.kernels.kinds import FROZEN, MIMETIC, MOLTEN, POLYALLOY  # noqa: F401  (re-exported)
from polyalloy.kernels.sdf import shape_sdf

RELAX = 0.1  # sub-cell temperature relaxation, in units of the cell conduction rate alpha / dx^2


@ti.func
def liquid_fraction(mats: ti.template(), mat: ti.i32, H):
    """Fraction of the latent heat taken in (0 solid .. 1 liquid) at specific enthalpy ``H``."""
    h_solidus = mats.h_solidus[mat]
    f = 0.0
    if mats.latent[mat] > 0.0:
        f = ti.min(ti.max((H - h_solidus) / mats.latent[mat], 0.0), 1.0)
    elif H > h_solidus:
        f = 1.0
    return f


@ti.func
def enthalpy_of(mats: ti.template(), mat: ti.i32, T):
    """Specific enthalpy (J/kg, relative to T_ref) at temperature ``T`` (K), on the solid side at
    T_m: the curve of the module docstring, which ``temperature_of`` inverts."""
    T_m, T_ref = mats.T_m[mat], mats.T_ref[mat]
    H = 0.0
    if T <= T_m:
        H = mats.c_s[mat] * (T - T_ref) if T_ref <= T_m else mats.h_solidus[mat] + mats.c_s[mat] * (T - T_m)
    else:
        H = mats.c_l[mat] * (T - T_ref) if T_ref > T_m else \
            mats.h_solidus[mat] + mats.latent[mat] + mats.c_l[mat] * (T - T_m)
    return H


@ti.func
def temperature_of(mats: ti.template(), mat: ti.i32, H):
    """Temperature (K) at specific enthalpy ``H`` (J/kg, relative to T_ref): the curve of the
    module docstring."""
    T_m, T_ref, h_solidus = mats.T_m[mat], mats.T_ref[mat], mats.h_solidus[mat]
    T = T_m
    if H <= h_solidus:
        T = T_ref + H / mats.c_s[mat] if T_ref <= T_m else T_m + (H - h_solidus) / mats.c_s[mat]
    elif H >= h_solidus + mats.latent[mat]:
        T = T_ref + H / mats.c_l[mat] if T_ref > T_m else \
            T_m + (H - h_solidus - mats.latent[mat]) / mats.c_l[mat]
    return T


@ti.func
def heat_capacity(mats: ti.template(), mat: ti.i32, f):
    """Specific heat (J/(kg K)) used for the grid transfer: solid and liquid blended by ``f``."""
    return (1.0 - f) * mats.c_s[mat] + f * mats.c_l[mat]


@ti.func
def frozen_weight(mats: ti.template(), mat: ti.i32, T):
    """1 well below the brittle point, 0 well above, a smoothstep across +-band (polyalloy only)."""
    s = 0.0
    if mats.kind[mat] == POLYALLOY:
        u = ti.min(ti.max((mats.T_b[mat] + mats.band[mat] - T) / (2.0 * mats.band[mat]), 0.0), 1.0)
        s = u * u * (3.0 - 2.0 * u)
    return s


@ti.func
def next_phase(mats: ti.template(), mat: ti.i32, phase: ti.i32, T, f):
    """The stored phase after this substep, with the material's hysteresis (``phase_change``)."""
    return phase_change(mats, mat, phase, T, f, mats.hysteresis[mat])


@ti.func
def phase_change(mats: ti.template(), mat: ti.i32, phase: ti.i32, T, f, h):
    """The phase that ``phase`` goes to at temperature T and liquid fraction f, with a hysteresis
    of ``h`` kelvin: frozen -> mimetic only above T_b + h, mimetic -> frozen only below T_b - h;
    mimetic -> molten once f passes 3/4, and molten -> mimetic only once f is below 1/4 and T
    is below T_m + h. A material that is not polyalloy is never frozen. Applied twice so that a
    jump across both bands resolves in one call."""
    cold = mats.kind[mat] == POLYALLOY
    for _ in ti.static(range(2)):
        if phase == FROZEN and (not cold or T > mats.T_b[mat] + h):
            phase = MIMETIC
        elif phase == MIMETIC and cold and T < mats.T_b[mat] - h:
            phase = FROZEN
        elif phase == MIMETIC and f > 0.75:
            phase = MOLTEN
        elif phase == MOLTEN and f < 0.25 and T < mats.T_m[mat] + h:
            phase = MIMETIC
    return phase


@ti.kernel
def set_thermal_state(parts: ti.template(), mats: ti.template(), start: ti.i32, end: ti.i32):
    """Slots [start, end) from their temperature ``T``: the enthalpy ``H`` (``enthalpy_of``) and the
    phase that a mimetic particle settles in at that state without hysteresis (``phase_change``)."""
    for p in range(start, end):
        mat = parts.material[p]
        H = enthalpy_of(mats, mat, parts.T[p])
        parts.H[p] = H
        parts.phase[p] = phase_change(mats, mat, MIMETIC, parts.T[p], liquid_fraction(mats, mat, H), 0.0)


@ti.kernel
def liquid_fractions(parts: ti.template(), mats: ti.template(), out: ti.types.ndarray()):
    """``out[p]``: the liquid fraction (``liquid_fraction``) of each particle slot below ``parts.n``."""
    for p in range(parts.n[None]):
        out[p] = liquid_fraction(mats, parts.material[p], parts.H[p])


@ti.func
def _conductance(grid: ti.template(), I, J):
    """Face conductivity (W/(m K)) between node I and neighbour J: the harmonic mean of their
    volume-weighted conductivities (0 across a free surface); a held neighbour is the collider
    itself, a perfect conductor, so the face takes I's own conductivity."""
    k_i = grid.k[I]
    k_j = grid.k[J]
    g = 0.0
    if grid.held[J] > 0.0:
        g = k_i
    elif k_i > 0.0 and k_j > 0.0:
        g = 2.0 * k_i * k_j / (k_i + k_j)
    return g


@ti.func
def conduct_pass(grid: ti.template(), cols: ti.template(), knobs: ti.template()):
    """Grid heat step: node temperatures from P2G, collider contact, conduction, air exchange.
    Writes ``grid.dT`` (K) and adds the energy that entered through colliders and air (J) to
    ``knobs.boundary_energy`` (in the clock's float, as the host added the returned value
    before). Only on a substep that carries the heat step (``knobs.heat_step``), over the time
    it covers (``knobs.step_heat_dt``; "Multirate" above); time: the device clock's; nothing
    while the clock is stopped.
    The energy is a sum over the nodes: each node's part goes into ``grid.inflow`` and, on a CPU,
    one thread adds them up in f64 in the block list's order (``mpm.collect_blocks_pass`` lists the
    blocks in the grid's order there), so that the account repeats to the bit from run to run
    and at any thread count with the same P2G lanes (threads adding partial sums in the order
    they finish did not: the 3D freeze's budget moved in its last digits)."""
    n = ti.select(knobs.heat_step[None] != 0, while_running(knobs, grid.n_active[None]), 0)
    ti.loop_config(serialize=grid.serial)
    for i, k in ti.ndrange(n, grid.block ** grid.dim):
        I = active_node(grid, i, k)
        hc = grid.hc[I]
        held_in = 0.0
        if hc > 0.0:
            t = knobs.step_t[None]
            T = grid.T[I] / hc
            x = grid.corner[None] + I.cast(float) * grid.spacing[None]
            for s in range(cols.count[None]):
                Tc = cols.temperature[s]
                if Tc > 0.0 and shape_sdf(cols, s, x, t) < 0.5 * grid.spacing[None]:
                    # a node in a hot or cold collider, or within half a cell of its surface (so
                    # the wall sits at the surface, not a cell inside it), is held at Tc
                    # its particles relax fully to Tc: sum_p w m c (Tc - T_p) = hc (Tc - T), no overshoot
                    grid.held[I] = 1.0
                    grid.dT[I] = 0.0
                    grid.relax[I] = 1.0
                    held_in += hc * (Tc - T)
                    T = Tc
            grid.T[I] = T
        grid.inflow[I] = held_in
    area_scale = grid.spacing[None] ** (grid.dim - 2)
    ti.loop_config(serialize=grid.serial)
    for i, k in ti.ndrange(n, grid.block ** grid.dim):
        I = active_node(grid, i, k)
        hc = grid.hc[I]
        if hc > 0.0 and grid.held[I] == 0.0:
            dt = knobs.step_heat_dt[None]
            Ti = grid.T[I]
            flow = 0.0  # W into node I from its face neighbours
            wall = 0.0  # the part of it that comes from held nodes (a collider)
            grad = ti.Vector.zero(float, grid.dim)
            for d in ti.static(range(grid.dim)):
                e = ti.Vector.unit(grid.dim, d, ti.i32)
                for sgn in ti.static((-1, 1)):
                    J = I + sgn * e
                    q = _conductance(grid, I, J) * (grid.T[J] - Ti)
                    flow += q
                    if grid.held[J] > 0.0:
                        wall += q
                grad[d] = (grid.phi[I + e] - grid.phi[I - e]) * 0.5 * grid.inv_spacing[None]
            scale = dt * knobs.heat_scale[None] * area_scale
            # free surface: Newton cooling on an area |grad phi| dx^d, never past the air temperature
            area = grad.norm() * grid.spacing[None] ** grid.dim
            q_air = dt * knobs.air_coefficient[None] * area * (knobs.air_temperature[None] - Ti)
            q_max = hc * ti.abs(knobs.air_temperature[None] - Ti)
            q_air = ti.min(ti.max(q_air, -q_max), q_max)
            grid.inflow[I] = scale * wall + q_air  # a node that is not held took in nothing above
            grid.dT[I] = (scale * flow + q_air) / hc
            grid.relax[I] = ti.min(1.0, RELAX * dt * knobs.heat_scale[None] * grid.k[I] * area_scale / hc)
    if ti.static(grid.lanes >= 1):  # a CPU: one thread, in the list's order, in the clock's float
        boundary = ti.cast(0.0, CLOCK)
        ti.loop_config(serialize=True)
        for i in range(n):
            for k in range(grid.block ** grid.dim):
                boundary += ti.cast(grid.inflow[active_node(grid, i, k)], CLOCK)
        knobs.boundary_energy[None] += boundary
    else:  # a GPU: its threads' reduction in the grid's float (no f64 atomics needed), as before
        boundary = 0.0
        for i, k in ti.ndrange(n, grid.block ** grid.dim):
            boundary += grid.inflow[active_node(grid, i, k)]
        knobs.boundary_energy[None] += ti.cast(boundary, CLOCK)


@ti.kernel
def conduct(grid: ti.template(), cols: ti.template(), knobs: ti.template()):
    """``conduct_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    conduct_pass(grid, cols, knobs)
