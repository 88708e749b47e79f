"""Checks of a Scene that run before anything is allocated or compiled (host side, numpy only).

``check_scene`` refuses a scene that makes no physical sense (a body or an emitter outside the
domain, a body inside a collider or too small to hold a particle at this dx, a walk path that
leaves the domain) and warns about one that will look wrong (a camera inside a collider).
``memory_estimate`` adds up the particle, grid, state-copy and renderer memory of a scene at its
size and precision; ``check_memory`` refuses one that needs more than the memory available (or a
given limit) and names the largest ``dx`` that fits. ``Simulation`` runs both first; the CLI
runs ``check_memory`` again with the image size before the runtime starts.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.kernels import fields as kf
from polyalloy.kernels import mpm
from polyalloy.kernels import render as kr
from polyalloy.kernels.sdf import host_sdf
from polyalloy.materials import POLYALLOY
from polyalloy.render import shadow_map_layout

log = logging.getLogger("polyalloy")

EXACT_SAMPLE_LIMIT = 200_000  # lattice points: up to this, a body's particles are counted exactly on the host
PROBE_POINTS = 20_000  # about this many points probe a larger body for the inside-a-collider check
RUNTIME_BYTES = 400 * 2**20  # Taichi, LLVM, compiled kernels: the soak test's tiny 2D run held 185-393 MiB in all
DX_STEP = 1.05  # the largest dx that fits is searched on this geometric ladder


def available_memory() -> int:
    """Bytes of memory this process may still allocate (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"4G"``, ``"2GiB"``, ``"1.5g"`` or a plain byte count -> bytes (ConfigError otherwise)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if m is None:
        raise ConfigError(f"--max-memory expects a size such as 512M or 4G, got {text!r}")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if not (math.isfinite(value) and value >= 2**20):
        raise ConfigError(f"--max-memory must be at least 1M, got {text!r}")
    return int(value)


def grid_shape(scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid nodes per axis (with the stencil padding) and the domain's lo and hi corners as the
    grid covers them (hi rounded up to a whole cell)."""
    lo, hi = (np.asarray(c, float) for c in scene.domain)
    cells = np.ceil((hi - lo) / scene.dx).astype(np.int64)
    return cells + 2 * mpm.DOMAIN_PAD + 1, lo, lo + cells * scene.dx


def is_thermal(scene) -> bool:
    """Whether the heat step runs: something can change a temperature or a phase."""
    from polyalloy.events import Retemper

    return (any(m.conductivity > 0 or m.kind == POLYALLOY for m in scene.materials.values())
            or any(c.temperature is not None for c in scene.colliders)
            or any(isinstance(e, Retemper) and e.temperature is not None for e in scene.events))


def is_mixing(scene) -> bool:
    """Whether touching liquids exchange composition (``kernels.mixing``): the heat step runs and
    some material mixes. A simulation's grid is built for it then (P2G adds the mixing's sums)."""
    return is_thermal(scene) and any(m.mixing > 0 for m in scene.materials.values())


def is_controlled(scene) -> bool:
    """Whether a body is under the mimetic controller."""
    return any(b.template is not None for b in scene.bodies)


def _lattice(scene, shape) -> tuple[np.ndarray, np.ndarray]:
    """Lower corner and counts per axis of the particle lattice over ``shape``'s box inside the
    domain (counts 0 when they do not overlap), as ``Simulation`` samples it."""
    _, dlo, dhi = grid_shape(scene)
    spacing = scene.dx / scene.particles_per_cell
    blo, bhi = shape.bounds(scene.dim)
    lo, hi = np.maximum(blo, dlo), np.minimum(bhi, dhi)
    if np.any(hi <= lo):
        return lo, np.zeros(scene.dim, np.int64)
    return lo, np.ceil((hi - lo) / spacing).astype(np.int64)


def particle_bound(scene) -> tuple[int, int]:
    """An upper bound of the particle slots (bodies, then every emitter fill) and the largest
    lattice one body samples: the lattice over each body's box, and for an emitter its first fill
    plus rate x (end - start) of particle volumes."""
    vol0 = (scene.dx / scene.particles_per_cell) ** scene.dim
    counts = [int(np.prod(_lattice(scene, b.shape)[1], dtype=np.float64)) for b in [*scene.bodies, *scene.emitters]]
    total = sum(counts) + sum(math.ceil(e.rate * (e.end - e.start) / vol0) for e in scene.emitters)
    return total, max(counts, default=0)


def memory_estimate(scene, image: tuple[int, int] | None = None, real_bytes: int = 4, lanes: int | None = None) -> dict:
    """Bytes by part for ``scene`` at its dx with ``real_bytes`` floats: ``particles`` (the fields),
    ``state_copy`` (a host copy for checkpoints and blow-up retries), ``sampling`` (the largest body's
    lattice while it is sampled), ``grid`` (with the copies of the P2G lanes: ``lanes``, or the
    runtime's, or 1 before ``init``, cut by ``kernels.fields.grid_lanes``), ``renderer`` (``image`` =
    (width, height) px; 0 without), ``runtime`` (Taichi itself) and ``total``."""
    from polyalloy import pool, runtime

    d = scene.dim
    n, lattice = particle_bound(scene)
    res, lo, hi = grid_shape(scene)
    res = pool.grid_alloc(d, res, kf.GRID_BLOCK)  # what is allocated: sizes rounded up for reuse
    nodes = int(np.prod(res, dtype=np.int64))
    if lanes is None:
        lanes = runtime.info().p2g_lanes if runtime.is_initialized() else 1
    lanes = kf.grid_lanes(lanes, nodes, d, real_bytes, is_thermal(scene), is_controlled(scene), is_mixing(scene))
    particle = pool.bucket(n, pool.MIN_PARTICLES) * kf.particle_bytes(d, real_bytes)
    out = dict(particles=particle, state_copy=particle, sampling=lattice * (2 * d * 8 + real_bytes + 1),
               grid=nodes * kf.grid_node_bytes(d, real_bytes, is_thermal(scene), is_controlled(scene), lanes,
                                               is_mixing(scene)),
               renderer=0, runtime=RUNTIME_BYTES)
    if image is not None:
        out["renderer"] = kr.frame_bytes(int(image[0]), int(image[1]), real_bytes)
        if d == 3:
            _, columns = shadow_map_layout(lo, hi, scene.dx / scene.particles_per_cell)
            out["renderer"] += int(np.prod(columns, dtype=np.float64)) * (4 + real_bytes)
    out["total"] = sum(out.values())
    out["particle_count"] = n
    return out


def _size(b: float) -> str:
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def check_memory(scene, image: tuple[int, int] | None = None, real_bytes: int = 4, limit: int | None = None) -> dict:
    """Refuse ``scene`` when ``memory_estimate`` exceeds ``limit`` bytes (default: the scene's
    ``max_memory``, else the memory available now); the message gives the estimate by part and the
    largest dx that fits. Returns the estimate."""
    if limit is None:
        limit = scene.max_memory if scene.max_memory is not None else available_memory()
    est = memory_estimate(scene, image, real_bytes)
    if est["total"] <= limit:
        return est
    parts = ", ".join(f"{k.replace('_', ' ')} {_size(est[k])}" for k in
                      ("particles", "state_copy", "sampling", "grid", "renderer", "runtime") if est[k])
    fit = largest_fitting_dx(scene, image, real_bytes, limit)
    if fit is not None:
        fix = f"use --set dx={fit:.3g} or larger (now {scene.dx:g})"
    elif est["runtime"] + est["renderer"] > limit:
        fix = "polyalloy itself and the renderer need more than that" + (": use a smaller --size" if image else "")
    else:
        fix = "no dx fits: use a smaller domain"
    fix += ", or raise --max-memory" if scene.max_memory is not None else ""
    raise ConfigError(f"scene {scene.name!r} ({est['particle_count']:,} particles at most) needs about "
                      f"{_size(est['total'])} ({parts}) but only {_size(limit)} is "
                      f"{'allowed' if scene.max_memory is not None else 'free'}; {fix}")


def largest_fitting_dx(scene, image, real_bytes: int, limit: int) -> float | None:
    """The smallest dx on a DX_STEP ladder above ``scene.dx`` whose estimate fits in ``limit``
    (the finest grid that fits), or None when even dx = 1 m does not."""
    from polyalloy.scene import TUNABLE

    dx = scene.dx
    while dx < TUNABLE["dx"][1]:
        dx = min(dx * DX_STEP, TUNABLE["dx"][1])
        if memory_estimate(dataclasses.replace(scene, dx=dx), image, real_bytes)["total"] <= limit:
            return dx
    return None


# --- physical sense ------------------------------------------------------------------------------
def _body_points(scene, index: int, body) -> tuple[np.ndarray, bool]:
    """Points inside ``body`` at t = 0 and whether they are exactly its particles: the particle
    lattice (jittered as ``Simulation._sample`` does) when it is small, else a coarser probe."""
    d = scene.dim
    lo, counts = _lattice(scene, body.shape)
    total = int(np.prod(counts, dtype=np.float64))
    if total == 0:
        return np.zeros((0, d)), True
    spacing = scene.dx / scene.particles_per_cell
    exact = total <= EXACT_SAMPLE_LIMIT
    if exact:
        axes = [lo[k] + (np.arange(counts[k]) + 0.5) * spacing for k in range(d)]
    else:
        extent = counts * spacing
        per_axis = max(2, int(PROBE_POINTS ** (1 / d)))
        axes = [lo[k] + (np.arange(per_axis) + 0.5) * extent[k] / per_axis for k in range(d)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    if exact:
        pts += np.random.default_rng([scene.seed, index, 0]).uniform(-0.25, 0.25, pts.shape) * spacing
    return pts[host_sdf(body.shape.rows(d), pts) < 0], exact


def check_scene(scene) -> list[str]:
    """Raise ConfigError for a scene that makes no physical sense; return (and log) its warnings."""
    d = scene.dim
    _, dlo, dhi = grid_shape(scene)
    box = f"the domain {tuple(round(float(v), 4) for v in dlo)}..{tuple(round(float(v), 4) for v in dhi)}"
    colliders = [(c, c.shape.rows(d)) for c in scene.colliders]
    for i, b in enumerate(scene.bodies):
        if not np.any(_lattice(scene, b.shape)[1]):
            raise ConfigError(f"body {b.name!r} lies outside {box}; move it inside")
        pts, exact = _body_points(scene, i, b)
        if exact and len(pts) == 0:
            raise ConfigError(f"body {b.name!r} holds no particles at dx = {scene.dx:g} m (it is smaller than a "
                              f"particle spacing); use a smaller dx or a larger body")
        for c, rows in colliders:
            if len(pts) and np.all(host_sdf(rows, pts) < 0):
                raise ConfigError(f"body {b.name!r} lies inside collider {c.name!r}; move one of them")
        if b.walk is not None:
            _check_walk(b, d, dlo, dhi, box)
    for e in scene.emitters:
        if not np.any(_lattice(scene, e.shape)[1]):
            raise ConfigError(f"emitter {e.name!r} lies outside {box}; move it inside")
    warnings = []
    if d == 3 and colliders:
        eyes = [scene.camera.position] + [k[1] for k in scene.camera.keys]
        for c, rows in colliders:
            if np.any(host_sdf(rows, np.asarray(eyes, float)) < 0):
                warnings.append(f"the camera is inside collider {c.name!r}: the frames will show its inside")
    for w in warnings:
        log.warning("%s", w)
    return warnings


def _check_walk(body, d: int, dlo, dhi, box: str) -> None:
    """Every point of a walk path lies over the domain's floor (x, and z in 3D)."""
    axes = [0] if d == 2 else [0, 2]
    for k, p in enumerate(body.walk.path):
        q = np.asarray(p, float).reshape(-1)
        if q.size < d or not np.all(np.isfinite(q[:d])):
            raise ConfigError(f"body {body.name!r}: walk path point {k} needs {d} finite coordinates, got {p!r}")
        if any(not dlo[a] <= q[a] <= dhi[a] for a in axes):
            raise ConfigError(f"body {body.name!r}: walk path point {k} {tuple(float(v) for v in q[:d])} leaves "
                              f"{box}; keep the path inside it")
