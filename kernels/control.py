"""The mimetic controller on the device: grip by phase, posed home points, the spring-damper
pull toward home on the grid, and mimicry of textured colliders.

Anchors: Shi & Yu 2005 ("Taming liquids for rapidly changing targets": a feedback force
toward the target shape plus a damping of the velocity relative to the target's) and
Thürey et al. 2006 (control particles whose influence is spread over the grid, so that the
control acts on the low-frequency error and leaves the fine surface motion alone).

Every controlled particle carries a home point ``home`` in its template's rest coordinates
and the index ``part`` of the template part it belongs to. The host uploads, per part, the
affine map rest -> posed world (``A``, ``b``) and its time derivative (``Ad``, ``bd``), so
that the posed home and its velocity are ``A h + b`` and ``Ad h + bd``. P2G spreads each
particle's grip-weighted mass, home error and home velocity to its 3^dim nodes
(``kernels.mpm.scatter_stencil``); the grid update turns the node averages into an acceleration
(``control_accel``): a spring of natural frequency ``omega`` and damping ratio ``zeta``
toward home, scaled by the node's gripped mass share and capped at ``max_accel``. The damping is
taken implicitly, so it is stable at any dt. A weight support, ``hold`` times gravity, upward,
times the node's gripped mass share (``hold_up``), acts beside it; G2P closes the fine part of
the home error (``close_gaps``).

Multirate. The pull acts on the substeps that carry the heat step (``kernels.heat``,
"Multirate"), over the time that step covers: the spring's time scale (1 / omega: 53 ms at the
default 3 Hz) is far longer than a substep, which the elastic waves limit to a few tenths of a
millisecond, so the home error and home velocity need not be scattered, nor the pull applied,
on every substep. On the substeps between, P2G poses no home and adds six of the controller's
seven channels no more (the gripped mass it adds every substep: the weight support reads it),
G2P gathers no home error and the grid update applies no pull (13% of the polyalloy's substep
in ``polyalloy bench``'s block, ``tools/kernel_ab.py``). The heat step never spans more than
the spring's explicit limit (``polyalloy.scene.Control.spring_dt``: ``Simulation._heat_settings``),
so the pull stays as stable as it was every substep, and it always ends where the clock stops,
so every frame sees the pull up to date. The weight support and the volume's settling
(``settle_volume``) act on every substep. ``heat_substeps`` = 1 acts every substep. Since only
the pull's substeps read the pose, a walking body's host uploads its pose only before those
(``Controller.pose_due``; the table between two calls of ``advance_to`` is the same): the pose's
upload cost a sixth of the 2D freeze beat's substep.
"""
import taichi as ti

from polyalloy.kernels.fields import while_running
from polyalloy.kernels.heat import FROZEN, POLYALLOY, frozen_weight, liquid_fraction
from polyalloy.kernels.sdf import shape_sdf

NO_TEXTURE, STRIPES, CHECKER = 0, 1, 2
TEXTURE_NAMES = {"stripes": STRIPES, "checker": CHECKER}


@ti.func
def grip(mats: ti.template(), knobs: ti.template(), mat: ti.i32, phase: ti.i32, T, f):
    """How much the controller holds a particle (0..1): none for anything but polyalloy and
    none when frozen; it fades with the frozen weight across the brittle band, along a
    smoothstep over the ``grip_fade`` kelvin below the melting point, and with the liquid
    fraction ``f``, so a melting particle is out of control before it is liquid."""
    g = 0.0
    if mats.kind[mat] == POLYALLOY and phase != FROZEN:
        fade = ti.max(knobs.grip_fade[None], 1e-6)
        u = ti.min(ti.max((T - (mats.T_m[mat] - fade)) / fade, 0.0), 1.0)
        g = (1.0 - frozen_weight(mats, mat, T)) * (1.0 - f) * (1.0 - u * u * (3.0 - 2.0 * u))
    return g


@ti.kernel
def set_pose(ctrl: ti.template(), maps: ti.types.ndarray()):
    """Write every part's maps, packed as ``maps[k] = [[A | b], [Ad | bd], [RA | Rb]]`` (3, dim,
    dim + 1), in one launch: six ``from_numpy`` calls a substep cost more than a 2D P2G. A few
    dozen rows: on one thread (handing them to a CPU's thread pool costs more than the copy)."""
    ti.loop_config(serialize=True)
    for k in range(maps.shape[0]):
        for i in ti.static(range(ctrl.A.n)):
            for j in ti.static(range(ctrl.A.n)):
                ctrl.A[k][i, j] = maps[k, 0, i, j]
                ctrl.Ad[k][i, j] = maps[k, 1, i, j]
                ctrl.RA[k][i, j] = maps[k, 2, i, j]
            ctrl.b[k][i] = maps[k, 0, i, ctrl.A.n]
            ctrl.bd[k][i] = maps[k, 1, i, ctrl.A.n]
            ctrl.Rb[k][i] = maps[k, 2, i, ctrl.A.n]


@ti.func
def glitch_weight(knobs: ti.template(), part: ti.i32, t):
    """How far part ``part`` drifts toward the earlier shape at time ``t``: ``glitch`` times a
    pulse of ``glitch_rate`` Hz (0 for half the period, ramping to 1 and holding for most of
    the other half), each part with its own phase, an integer hash times ``glitch_spread`` of a
    period, so parts go and come back out of step (spread 0: all together)."""
    h = ti.cast(part + 1, ti.u32) * ti.u32(2654435761)
    h ^= h >> 15
    phase = knobs.glitch_spread[None] * ti.cast(h & ti.u32(0xFFFF), float) / 65536.0
    s = ti.sin(6.283185307 * (knobs.glitch_rate[None] * t + phase))
    return knobs.glitch[None] * ti.min(ti.max(2.0 * s, 0.0), 1.0)


@ti.func
def posed_home(parts: ti.template(), ctrl: ti.template(), knobs: ti.template(), p, t):
    """World position (m) and velocity (m/s) of particle ``p``'s home at time ``t``."""
    k = parts.part[p]
    h = parts.home[p]
    x = ctrl.A[k] @ h + ctrl.b[k]
    v = ctrl.Ad[k] @ h + ctrl.bd[k]
    if knobs.glitch[None] > 0.0:
        w = glitch_weight(knobs, k, t)
        x = (1.0 - w) * x + w * (ctrl.RA[k] @ parts.home_alt[p] + ctrl.Rb[k])
    return x, v


@ti.func
def control_accel(grid: ti.template(), knobs: ti.template(), I, v, dt):
    """New node velocity after the controller's pull on node ``I`` (velocity ``v`` after gravity)
    over ``dt``, the time the heat step covers (the module's "Multirate")."""
    cm = grid.ctrl_m[I]
    gain = knobs.ctrl_gain[None]
    if cm > 0.0 and gain > 0.0:
        share = ti.min(cm / grid.m[I], 1.0)
        e = grid.ctrl_e[I] / cm
        vh = grid.ctrl_v[I] / cm
        k = gain * share
        w = knobs.ctrl_omega[None]
        c = 2.0 * knobs.ctrl_zeta[None] * w * k
        a = k * w * w * e + c * vh
        v_new = (v + dt * a) / (1.0 + dt * c)  # spring explicit, damping implicit
        dv = v_new - v
        cap = knobs.ctrl_max_accel[None] * dt
        n = dv.norm()
        if n > cap:
            dv *= cap / n
        v += dv
    return v


@ti.func
def hold_up(grid: ti.template(), knobs: ti.template(), I, v, dt):
    """New node velocity after the controller's weight support on node ``I`` over ``dt``: ``hold``
    times gravity, upward, times the node's gripped mass share, while the pull is on (gain > 0).
    Every substep: the pull acts only on the heat step's substeps, and weight carried in kicks
    that far apart would let a held body fall and be thrown back in a sawtooth (g dt: 4-8 cm/s
    over the beats' heat steps)."""
    cm = grid.ctrl_m[I]
    if cm > 0.0 and knobs.ctrl_gain[None] > 0.0:
        v -= dt * knobs.ctrl_hold[None] * ti.min(cm / grid.m[I], 1.0) * knobs.gravity[None]
    return v


@ti.func
def close_gaps(parts: ti.template(), ctrl: ti.template(), knobs: ti.template(), p, g, e_grid, dt, t):
    """The displacement (m) that moves particle ``p`` (grip ``g``) by the fine part of its home error.

    The grid pull acts on the home error averaged over a node's stencil. Across a crack
    narrower than the stencil (two fragments that met a cell apart, the usual MPM contact
    gap) the errors of the two sides point at each other and cancel, and a velocity kick
    would cancel the same way in the next P2G. So the residual ``e_p - e_grid`` (the part of
    the particle's error that the grid average ``e_grid`` misses) is closed kinematically,
    at the rate ``ctrl_fine`` (1/s) times the grip: the crack closes, and the residual of a
    particle moving with its neighbours is zero, so a body's flow and fine surface motion are
    left alone. At most a tenth of the residual per substep."""
    d = ti.Vector.zero(float, parts.dim)
    if knobs.ctrl_fine[None] > 0.0 and knobs.ctrl_gain[None] > 0.0:
        home, _ = posed_home(parts, ctrl, knobs, p, t)
        d = ti.min(dt * g * knobs.ctrl_fine[None], 0.1) * ((home - parts.x[p]) - e_grid)
    return d


@ti.func
def settle_volume(knobs: ti.template(), g, F, sig, dt):
    """A gripped particle (grip ``g``) forgets its volume change with the time constant
    ``volume_relax`` (s, scaled by the grip): det F relaxes geometrically toward 1.

    Why: MPM bodies meet through shared grid nodes and stop about a cell apart; closing that
    gap reads to the grid as a compression of both sides, which their bulk stiffness resists,
    so fragments pulled home would sit as cobblestones with cracks between them. The
    controller holds every particle at its own home, one particle spacing from the next, so
    nothing can clump once the volume memory goes; the fragments fuse. Uncontrolled and
    frozen material keeps its full elasticity. ``sig`` (the singular values of F) is scaled
    with F."""
    J = F.determinant()
    if J > 0.0:
        rate = ti.min(g * dt / ti.max(knobs.volume_relax[None], 1e-6), 1.0)
        s = ti.pow(J, -rate / F.n)  # J -> J^(1 - rate)
        F *= s
        sig *= s
    return F, sig


@ti.func
def texture_color(cols: ti.template(), s: ti.i32, x, t):
    """Colour of textured collider row ``s`` at world point ``x``: stripes are bands across the
    row's local y axis, a checker alternates in every local axis; ``tex_period`` (m) apart."""
    q = cols.rot[s].transpose() @ (x - cols.centre[s] - cols.vel[s] * t)
    per = ti.max(cols.tex_period[s], 1e-6)
    parity = 0
    if cols.texture[s] == STRIPES:
        parity = ti.cast(ti.floor(q[1] / per), ti.i32) & 1
    else:
        total = 0
        for d in ti.static(range(x.n)):
            total += ti.cast(ti.floor(q[d] / per), ti.i32)
        parity = total & 1
    return cols.tex_a[s] if parity == 0 else cols.tex_b[s]


@ti.func
def mimic_pass(parts: ti.template(), mats: ti.template(), cols: ti.template(), ctrl: ti.template(),
               knobs: ti.template(), reach: float):
    """Mimicry: a polyalloy particle within ``reach`` (m) of a textured collider takes the
    texture's colour there (at the end of the substep, ``knobs.step_t1``); otherwise its colour
    relaxes back to its body's colour with the time constant ``mimic_decay`` (s). Launched
    before ``fold_lanes`` moves the device clock on."""
    rate = ti.min(knobs.step_dt[None] / ti.max(knobs.mimic_decay[None], 1e-6), 1.0)
    t = knobs.step_t1[None]
    ti.loop_config(serialize=parts.serial)
    for p in range(while_running(knobs, parts.n[None])):
        if parts.alive[p] and mats.kind[parts.material[p]] == POLYALLOY:
            c = parts.color[p]
            touched = 0
            for s in range(cols.count[None]):
                if cols.texture[s] != NO_TEXTURE and shape_sdf(cols, s, parts.x[p], t) < reach:
                    c = texture_color(cols, s, parts.x[p], t)
                    touched = 1
            if not touched:
                c += rate * (ctrl.source_color[parts.body[p]] - c)
            parts.color[p] = c


@ti.kernel
def mimic(parts: ti.template(), mats: ti.template(), cols: ti.template(), ctrl: ti.template(),
          knobs: ti.template(), reach: float):
    """``mimic_pass`` on its own (a substep launches it inside ``kernels.substep``)."""
    mimic_pass(parts, mats, cols, ctrl, knobs, reach)


@ti.kernel
def grips(parts: ti.template(), mats: ti.template(), knobs: ti.template(), out: ti.types.ndarray()):
    """``out[p]`` = the grip of particle ``p`` (0 for retired or uncontrolled particles)."""
    for p in range(parts.n[None]):
        g = 0.0
        if parts.alive[p] and parts.part[p] >= 0:
            mat = parts.material[p]
            g = grip(mats, knobs, mat, parts.phase[p], parts.T[p], liquid_fraction(mats, mat, parts.H[p]))
        out[p] = g


@ti.kernel
def homes(parts: ti.template(), ctrl: ti.template(), knobs: ti.template(), t: float, out: ti.types.ndarray()):
    """``out[p]`` = the posed world home (m) of particle ``p`` at time ``t`` (its position when
    it has no home)."""
    for p in range(parts.n[None]):
        x = parts.x[p]
        if parts.part[p] >= 0:
            x, _ = posed_home(parts, ctrl, knobs, p, t)
        for d in ti.static(range(parts.dim)):
            out[p, d] = x[d]


@ti.kernel
def body_moments(parts: ti.template(), mats: ti.template(), knobs: ti.template(), body: ti.i32,
                 out: ti.types.ndarray(), gripped: ti.template()):
    """``out`` = (mass, mass-weighted sum of x (dim), of v (dim)) over the live particles of
    ``body``: its centre of mass and momentum, for a template that follows the body (every
    substep: on the calling thread for a small simulation's particles, ``Particles.serial``).
    With ``gripped`` (a Python bool) each mass is weighted by its grip, over the controlled
    particles only: what the controller holds, for a body that has lost its footing
    (``polyalloy.control``, point 5 of its docstring), always on the calling thread so that its
    sums come in one order and a run repeats bit for bit (a loop a substep that carries the
    heat step, while a body is adrift)."""
    ti.loop_config(serialize=parts.serial or gripped)
    for k in range(out.shape[0]):
        out[k] = 0.0
    ti.loop_config(serialize=parts.serial or gripped)
    for p in range(parts.n[None]):
        if parts.alive[p] and parts.body[p] == body:
            m = parts.mass[p]
            if ti.static(gripped):
                mat = parts.material[p]
                g = 0.0
                if parts.part[p] >= 0:
                    g = grip(mats, knobs, mat, parts.phase[p], parts.T[p], liquid_fraction(mats, mat, parts.H[p]))
                m *= g
            out[0] += m
            for d in ti.static(range(parts.dim)):
                out[1 + d] += m * parts.x[p][d]
                out[1 + parts.dim + d] += m * parts.v[p][d]
