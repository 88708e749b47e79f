"""Interdiffusion of touching liquids: how a molten man dissolves into a pool of molten steel.

Every particle carries ``comp``, the fraction of its mass that is polyalloy (1 for a polyalloy
particle and 0 for any other at the start). Particles are material points; two liquids that
meet keep their particles apart, and without a composition nothing but the flow could mix
them: a molten body that settles in a pool would stay one lump of its own particles for ever.
Here touching liquids exchange composition as a diffusion with each material's ``mixing``
diffusivity D (m^2/s; 0 for every material unless a scene sets it: the eddy diffusivity of a
stirred melt, far above the molecular ~1e-9 m^2/s that the grid could never show).

The scheme is the particle-grid smoothing of the heat step, for a conserved scalar. P2G puts
each liquid particle's mass m, m c and m D on the nodes of its stencil, with the other channels
and in its lanes (``Grid.mixing``, a grid built for a scene where some material mixes; a
material set to mix later, live, gets ``scatter``, a serial loop after P2G, instead);
node i holds the mass-weighted composition C_i and diffusivity D_i. ``gather`` turns each
node's sums into C_i and a_i once (``blend_node``), then moves each liquid particle's c toward
its nodes' compositions:

    c_p += sum_i w_ip a_i (C_i - c_p),   a_i = min(1, 4 D_i dt / dx^2)

- **Conservation.** sum_p m_p w_ip c_p is node i's m c, so sum_p m_p dc_p = sum_i a_i (C_i M_i -
  (m c)_i) = 0: the polyalloy mass sum_p m_p c_p is conserved to rounding, for any D_i.
- **Bounds.** sum_i w_ip a_i <= 1 makes the new c a convex combination: c stays in [0, 1].
- **The diffusivity.** The quadratic B-spline has variance dx^2/4 per axis, so P2G followed by
  G2P smooths with variance dx^2/2 and (S - I) c = (dx^2/4) lap c to leading order: a_i = 4 D
  dt / dx^2 gives dc/dt = D lap c. Where a_i would pass 1 (a coarse grid or a long step) it is
  capped, and the mixing is slower than D; nothing goes unstable.

A liquid is a particle of a ``FLUID`` material, or a polyalloy particle more than half molten
(its liquid fraction above 0.5, as G2P's ``molten``). Solids neither give nor take. The
composition is passive: it does not change a particle's material, density or heat capacity
(molten polyalloy and molten steel are both dense liquid metals); it is what the foundry's
``dissolved`` claim reads (``polyalloy.metrics.coverage`` with ``majority``). The gather (and
the serial scatter where the grid was not built to mix) runs only when some material has
``mixing`` > 0 (``polyalloy.simulation``), between P2G and G2P, where the particles sit where
P2G put them on the grid.
"""
import taichi as ti

from polyalloy.kernels.fields import each_active_node, while_running
from polyalloy.kernels.heat import liquid_fraction
from polyalloy.kernels.mpm import is_liquid, quadratic_weights, stencil_base, stencil_node, stencil_rest


@ti.func
def takes_part(parts: ti.template(), mats: ti.template(), p):
    """Whether particle ``p`` mixes: live and liquid (a ``FLUID`` material, or polyalloy more
    than half molten)."""
    ok = False
    if parts.alive[p]:
        mat = parts.material[p]
        ok = is_liquid(mats, mat, liquid_fraction(mats, mat, parts.H[p]))
    return ok


@ti.func
def scatter_pass(parts: ti.template(), grid: ti.template(), mats: ti.template(), knobs: ti.template()):
    """Liquid particles' m, m c and m D to their stencils' nodes (after P2G, which cleared and
    listed the blocks they touch), on a grid not built to mix (``Grid.mixing``: there P2G adds
    them); nothing while the device clock is stopped."""
    ti.loop_config(serialize=grid.lanes >= 1)  # a CPU: one thread, plain adds
    for p in range(while_running(knobs, parts.n[None])):
        if takes_part(parts, mats, p):
            base, fx = stencil_base(grid, parts.x[p])
            w = quadratic_weights(fx)
            m = parts.mass[p]
            mc = m * parts.comp[p]
            md = m * mats.mixing[parts.material[p]]
            for rest in ti.static(stencil_rest(grid.dim, 0)):  # short: all unrolled (stencil_walk)
                offset, weight = stencil_node(w, 0, rest)
                node = base + offset
                grid.mix_m[node] += weight * m
                grid.mix_c[node] += weight * mc
                grid.mix_d[node] += weight * md


@ti.kernel
def scatter(parts: ti.template(), grid: ti.template(), mats: ti.template(), knobs: ti.template()):
    """``scatter_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    scatter_pass(parts, grid, mats, knobs)


@ti.func
def blend_node(grid: ti.template(), knobs: ti.template(), _: ti.template(), i, I):
    """Node ``I``'s sums to what the gather reads: ``mix_c`` becomes the composition C_i = (m c)_i /
    m_i and ``mix_d`` the rate a_i = min(1, 4 D_i dt / dx^2), D_i = (m D)_i / m_i, over the device
    clock's step (nodes without liquid mass keep their zeros). Once a node: computed in the gather,
    per particle and node, the two divisions were most of its time (3D foundry, 96,038 particles:
    docs/benchmark.md, "The liquids' mixing")."""
    m = grid.mix_m[I]
    if m > 0.0:
        rate = 4.0 * knobs.step_dt[None] * grid.inv_spacing[None] ** 2
        grid.mix_d[I] = ti.min(1.0, rate * grid.mix_d[I] / m)
        grid.mix_c[I] = grid.mix_c[I] / m


@ti.func
def gather_pass(parts: ti.template(), grid: ti.template(), mats: ti.template(), knobs: ti.template()):
    """Each liquid particle's composition moves toward its nodes' (module docstring), over the
    device clock's step; nothing while the clock is stopped. First every listed node's sums become
    its composition and rate (``blend_node``)."""
    each_active_node(grid, while_running(knobs, grid.n_active[None]), blend_node, knobs, knobs, True)
    ti.loop_config(serialize=grid.serial)
    for p in range(while_running(knobs, parts.n[None])):
        if takes_part(parts, mats, p):
            base, fx = stencil_base(grid, parts.x[p])
            w = quadratic_weights(fx)
            c = parts.comp[p]
            dc = 0.0
            for rest in ti.static(stencil_rest(grid.dim, 0)):
                offset, weight = stencil_node(w, 0, rest)
                node = base + offset
                if grid.mix_m[node] > 0.0:
                    dc += weight * grid.mix_d[node] * (grid.mix_c[node] - c)
            parts.comp[p] = c + dc


@ti.kernel
def gather(parts: ti.template(), grid: ti.template(), mats: ti.template(), knobs: ti.template()):
    """``gather_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    gather_pass(parts, grid, mats, knobs)
