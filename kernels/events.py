"""Kernels of the timeline events (polyalloy.events): impulses, heat deposits, emitter pools.

Each deposit is two passes: the mass inside the region first, then every particle inside
gets its share (dv = impulse / mass, dH = energy / mass), so the totals are exact. A chill
stops at absolute zero (``add_enthalpy``): the deposits return the joules they could not take.
"""
import taichi as ti

from polyalloy.kernels.heat import enthalpy_of
from polyalloy.kernels.sdf import shape_sdf


@ti.kernel
def mass_in_sphere(parts: ti.template(), centre: ti.types.ndarray(), radius: float) -> float:
    """Mass (kg) of the live particles within ``radius`` of ``centre``. Summed in particle order
    on one thread: the impulse of a shot is shared over this mass, and a float sum split over
    threads rounds differently with their number, which changed every later step (a run on fixed
    P2G lanes must not depend on the threads; tests/test_determinism.py). Once per event: the
    serial loop costs nothing a user sees."""
    total = 0.0
    ti.loop_config(serialize=True)
    for p in range(parts.n[None]):
        if parts.alive[p]:
            r = parts.x[p]
            for d in ti.static(range(parts.dim)):
                r[d] -= centre[d]
            if r.norm() <= radius:
                total += parts.mass[p]
    return total


@ti.func
def add_enthalpy(parts: ti.template(), mats: ti.template(), p, dH):
    """H += dH (J/kg) for particle ``p``, held at its enthalpy at 0 K (nothing is colder);
    returns the energy (J) of the chill that it could not give up."""
    floor = enthalpy_of(mats, parts.material[p], 0.0)
    room = floor - parts.H[p]  # <= 0: the most it can give up (exact near the floor)
    missing = 0.0
    if dH < room:  # what it cannot give up, from dH and room, not from a rounded H + dH
        missing = parts.mass[p] * (room - dH)
        parts.H[p] = floor
    else:
        parts.H[p] += dH
    return missing


@ti.kernel
def kick(parts: ti.template(), mats: ti.template(), centre: ti.types.ndarray(), radius: float, dv: ti.types.ndarray(),
         radial_dv: float, damage: float, dH: float) -> float:
    """Particles within ``radius`` of ``centre``: v += dv + radial_dv * (x - c)/|x - c|,
    damage = max(damage, given), H += dH (J/kg, ``add_enthalpy``). Returns the joules of a
    chill that particles at 0 K could not give up."""
    missing = 0.0
    for p in range(parts.n[None]):
        if parts.alive[p]:
            r = parts.x[p]
            step = ti.Vector.zero(float, parts.dim)
            for d in ti.static(range(parts.dim)):
                r[d] -= centre[d]
                step[d] = dv[d]
            dist = r.norm()
            if dist <= radius:
                if dist > 1e-9:
                    step += radial_dv * r / dist
                parts.v[p] += step
                parts.damage[p] = ti.max(parts.damage[p], damage)
                missing += add_enthalpy(parts, mats, p, dH)
    return missing


@ti.kernel
def crack(parts: ti.template(), slots: ti.types.ndarray()):
    """Damage 1 for the particles in ``slots``: a crack through frozen metal (rubble there)."""
    for k in range(slots.shape[0]):
        parts.damage[slots[k]] = 1.0


@ti.func
def in_region(regions: ti.template(), owner: ti.i32, x, t) -> ti.i32:
    """Whether ``x`` lies inside any primitive of shape ``owner`` in ``regions`` at time ``t``."""
    inside = 0
    for s in range(regions.count[None]):
        if regions.owner[s] == owner and shape_sdf(regions, s, x, t) < 0.0:
            inside = 1
    return inside


@ti.kernel
def mass_in_region(parts: ti.template(), regions: ti.template(), owner: ti.i32, t: float) -> float:
    """Mass (kg) of the live particles inside the shape ``owner`` of ``regions`` at time ``t``,
    summed in particle order on one thread (as ``mass_in_sphere``: a heat source shares its
    power over it, every substep it is on). Whether it is zero: ``live_in_region``."""
    total = 0.0
    ti.loop_config(serialize=True)
    for p in range(parts.n[None]):
        if parts.alive[p] and in_region(regions, owner, parts.x[p], t):
            total += parts.mass[p]
    return total


@ti.kernel
def live_in_region(parts: ti.template(), regions: ti.template(), owner: ti.i32, t: float, start: ti.i32) -> ti.i32:
    """The index of a live particle of positive mass inside the shape ``owner`` of ``regions`` at
    time ``t``, or -1 if there is none: whether ``mass_in_region`` would be above zero, without
    its sum over every particle. One thread scans the particles from ``start`` on (wrapping
    around) and stops at the first it finds: an emitter whose fill waits for room asks this every
    substep, and the caller passes the particle found last time, which mostly is still there (a
    full scan only when the emitter is free, once per fill)."""
    n = parts.n[None]
    found = -1
    ti.loop_config(serialize=True)  # a loop of one: not handed to the CPU's thread pool
    for _ in range(1):  # one thread; the inner loop may stop early
        for k in range(n):
            p = (start + k) % n
            if parts.alive[p] and parts.mass[p] > 0 and in_region(regions, owner, parts.x[p], t):
                found = p
                break
    return found


@ti.kernel
def heat_region(parts: ti.template(), mats: ti.template(), regions: ti.template(), owner: ti.i32, t: float, dH: float) -> float:
    """H += dH (J/kg, ``add_enthalpy``) for the live particles inside the shape ``owner`` of
    ``regions``. Returns the joules of a chill that particles at 0 K could not give up."""
    missing = 0.0
    for p in range(parts.n[None]):
        if parts.alive[p] and in_region(regions, owner, parts.x[p], t):
            missing += add_enthalpy(parts, mats, p, dH)
    return missing


@ti.kernel
def activate(parts: ti.template(), start: ti.i32, end: ti.i32):
    """Switch on the pooled particles [start, end) (already placed in their emitter)."""
    for p in range(start, end):
        parts.alive[p] = 1
    parts.n[None] = ti.max(parts.n[None], end)
