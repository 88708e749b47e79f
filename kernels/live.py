"""Kernels of the live session's pokes (``polyalloy.live``): where a view ray meets the metal,
and the mass moments of the particles in a sphere (the pull spring's grab).

The impulses and heat deposits themselves are ``kernels.events.kick``.
"""
import taichi as ti


@ti.kernel
def ray_hit(parts: ti.template(), origin: ti.types.ndarray(), direction: ti.types.ndarray(),
            radius: float) -> float:
    """Distance (m) along the unit ray ``origin + s direction`` (s > 0) to the first live particle
    that lies within ``radius`` of the ray; -1 when the ray misses every particle."""
    best = 1e30
    for p in range(parts.n[None]):
        if parts.alive[p]:
            r = parts.x[p]
            u = ti.Vector.zero(float, parts.dim)
            for d in ti.static(range(parts.dim)):
                r[d] -= origin[d]
                u[d] = direction[d]
            s = r.dot(u)
            if s > 0.0 and (r - s * u).norm() <= radius:
                ti.atomic_min(best, s)
    out = -1.0
    if best < 1e29:
        out = best
    return out


@ti.kernel
def sphere_moments(parts: ti.template(), centre: ti.types.ndarray(), radius: float, out: ti.types.ndarray()):
    """Of the live particles within ``radius`` of ``centre``: ``out`` = (mass (kg), mass-weighted
    position sums (dim, kg m), momentum (dim, kg m/s)), 1 + 2 dim numbers."""
    for k in range(1 + 2 * parts.dim):
        out[k] = 0.0
    for p in range(parts.n[None]):
        if parts.alive[p]:
            r = parts.x[p]
            for d in ti.static(range(parts.dim)):
                r[d] -= centre[d]
            if r.norm() <= radius:
                m = parts.mass[p]
                out[0] += m
                for d in ti.static(range(parts.dim)):
                    out[1 + d] += m * parts.x[p][d]
                    out[1 + parts.dim + d] += m * parts.v[p][d]
