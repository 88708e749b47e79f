"""Simulation: owns the Taichi fields of one Scene, chooses the time step and runs the substeps.

The substep order is written once, in ``Simulation.substep``, and reads like the data flow
of DESIGN.md: clear grid -> P2G -> grid update (gravity, colliders, walls) -> G2P. The time
step adapts every substep to the CFL limit of the fastest particle and the fastest elastic
wave of the materials present; a watchdog stops the run with a message when the state
turns non-finite.
"""
from __future__ import annotations

import math
import os

import numpy as np

from polyalloy import runtime
from polyalloy.errors import ConfigError, SimulationError
from polyalloy.kernels import fields as kf
from polyalloy.kernels import mpm
from polyalloy.kernels.sdf import SURFACE_NAMES, ShapeTable, evaluate_sdf
from polyalloy.scene import DEFAULT_COLORS, Scene

MIN_DT = 1e-8  # s; a step below this means the run has exploded


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


class Simulation:
    """Runs a ``Scene``: ``step_frame()`` advances one output frame, ``particles()`` reads the state.

    Attributes: ``t`` (simulated time, s), ``frame`` (frames done), ``substeps`` (substeps
    done), ``last_dt`` (s). Requires ``polyalloy.init()`` first.
    """

    def __init__(self, scene: Scene):
        runtime.info()
        self.scene = scene
        self.dim = d = scene.dim
        self.real = runtime.real_dtype()
        self.np_real = runtime.np_real()
        self.material_names = list(scene.materials)
        if not scene.bodies:
            raise ConfigError(f"scene {scene.name!r} has no bodies")

        lo, hi = (np.asarray(c, float) for c in scene.domain)
        dx = scene.dx
        pad = mpm.DOMAIN_PAD
        res = np.ceil((hi - lo) / dx).astype(int) + 2 * pad + 1
        self.domain_lo, self.domain_hi = lo, lo + (res - 1 - 2 * pad) * dx

        body_rows = []
        for bi, b in enumerate(scene.bodies):
            body_rows += [dict(r, owner=bi) for r in b.shape.rows(d)]
        self.body_shapes = ShapeTable(d, len(body_rows), self.real)
        self.body_shapes.upload(body_rows)
        samples = [self._sample(i, b) for i, b in enumerate(scene.bodies)]
        n = sum(len(s[0]) for s in samples)
        if n == 0:
            raise ConfigError(f"scene {scene.name!r}: the bodies hold no particles inside the domain "
                              f"at dx = {dx:g} m; use a smaller dx or larger bodies")
        self._check_memory(n, res)

        self.particles_fields = kf.Particles(d, n, self.real)
        self.grid = kf.Grid(d, res, dx, lo - pad * dx, self.real)
        self.materials = kf.MaterialTable(len(self.material_names), self.real)
        self.materials.upload([scene.materials[m].row() for m in self.material_names])
        rows = []
        for ci, c in enumerate(scene.colliders):
            for r in c.shape.rows(d):
                r.update(owner=ci, surface=SURFACE_NAMES[c.surface], friction=c.friction)
                rows.append(r)
        self.colliders = ShapeTable(d, len(rows), self.real)
        self.colliders.upload(rows)
        self.knobs = kf.Knobs(d, self.real)
        self.knobs.gravity[None] = [0.0, scene.gravity] + [0.0] * (d - 2)
        self._upload_particles(samples)

        self.wave_speed = max(scene.materials[scene.bodies[i].material].wave_speed()
                              for i in range(len(scene.bodies)))
        self.t = 0.0
        self.frame = 0
        self.substeps = 0
        self.last_dt = 0.0

    # --- set-up ---------------------------------------------------------------------------
    def _sample(self, index: int, body) -> tuple[np.ndarray, np.ndarray]:
        """Particles of a body: a jittered lattice at dx / particles_per_cell (numpy, seeded),
        kept where the body's SDF (evaluated on the device) is negative and inside the domain."""
        sc, d = self.scene, self.dim
        spacing = sc.dx / sc.particles_per_cell
        blo, bhi = body.shape.bounds(d)
        lo, hi = np.maximum(blo, self.domain_lo), np.minimum(bhi, self.domain_hi)
        if np.any(hi <= lo):
            return np.zeros((0, d)), np.zeros((0, d))
        counts = np.ceil((hi - lo) / spacing).astype(np.int64)
        if int(np.prod(counts)) > sc.max_particles:
            raise ConfigError(f"body {body.name!r} would need up to {int(np.prod(counts)):,} particles at "
                              f"dx = {sc.dx:g} m, above max_particles = {sc.max_particles:,}; use a larger dx")
        rng = np.random.default_rng(sc.seed * 1000003 + index)
        axes = [lo[k] + (np.arange(counts[k]) + 0.5) * spacing for k in range(d)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        pts += rng.uniform(-0.25, 0.25, pts.shape) * spacing
        dist = np.zeros(len(pts), dtype=self.np_real)
        evaluate_sdf(self.body_shapes, index, pts.astype(self.np_real), dist, 0.0)
        pts = pts[dist < 0]
        vel = np.broadcast_to(np.asarray(body.velocity, float)[:d], pts.shape)
        return pts, vel

    def _check_memory(self, n: int, res) -> None:
        d = self.dim
        real = 8 if self.np_real == np.float64 else 4
        per_particle = 12 + real * (3 + 2 * d + 2 * d * d)
        # the bitmasked grid holds (dim + 1) reals per node of the whole box, plus its bit masks
        grid_bytes = int(np.prod(np.asarray(res, np.int64))) * real * (d + 1)
        need = n * per_particle + grid_bytes
        have = available_memory()
        if need > 0.8 * have:
            raise ConfigError(f"{n:,} particles need about {need / 2**30:.1f} GiB but only "
                              f"{have / 2**30:.1f} GiB is free; use a larger dx or a smaller scene")

    def _upload_particles(self, samples) -> None:
        p, d, sc = self.particles_fields, self.dim, self.scene
        x = np.concatenate([s[0] for s in samples]).astype(self.np_real)
        v = np.concatenate([s[1] for s in samples]).astype(self.np_real)
        n = len(x)
        body = np.concatenate([np.full(len(s[0]), i, np.int32) for i, s in enumerate(samples)])
        mat_of_body = np.array([self.material_names.index(b.material) for b in sc.bodies], np.int32)
        density = np.array([sc.materials[b.material].density for b in sc.bodies])
        vol0 = (sc.dx / sc.particles_per_cell) ** d
        p.x.from_numpy(x)
        p.v.from_numpy(v)
        p.C.from_numpy(np.zeros((n, d, d), self.np_real))
        p.F.from_numpy(np.tile(np.eye(d, dtype=self.np_real), (n, 1, 1)))
        p.Jp.from_numpy(np.ones(n, self.np_real))
        p.material.from_numpy(mat_of_body[body])
        p.body.from_numpy(body)
        p.vol0.from_numpy(np.full(n, vol0, self.np_real))
        p.mass.from_numpy((density[body] * vol0).astype(self.np_real))
        p.n[None] = n
        self.knobs.max_speed[None] = float(np.linalg.norm(v, axis=1).max())  # the first dt sees the launch speed

    # --- running --------------------------------------------------------------------------
    @property
    def n_particles(self) -> int:
        return int(self.particles_fields.n[None])

    def stable_dt(self) -> float:
        """CFL step: cfl * dx / (fastest particle + fastest elastic wave), capped by dt_max."""
        speed = float(self.knobs.max_speed[None])
        if not math.isfinite(speed) or self.knobs.bad[None]:
            self._blow_up()
        return min(self.scene.dt_max, self.scene.cfl * self.scene.dx / (speed + self.wave_speed))

    def substep(self, dt: float) -> None:
        """One MLS-MPM substep of ``dt`` seconds."""
        pf, g = self.particles_fields, self.grid
        mpm.clear_grid(g)
        mpm.p2g(pf, g, self.materials, dt)
        mpm.update_grid(g, self.colliders, self.knobs, dt, self.t)
        mpm.g2p(pf, g, self.materials, self.colliders, self.knobs, dt, self.t)
        self.t += dt
        self.substeps += 1
        self.last_dt = dt

    def advance_to(self, t_end: float) -> None:
        """Substep until ``t`` reaches ``t_end`` exactly, each step at the stable dt."""
        while t_end - self.t > 1e-12:
            dt = self.stable_dt()
            if dt < MIN_DT:
                raise SimulationError(
                    f"time step collapsed to {dt:.2e} s at frame {self.frame + 1} (t = {self.t:.4f} s): a particle "
                    f"moves at {float(self.knobs.max_speed[None]):.3g} m/s; lower cfl (now {self.scene.cfl:g}) "
                    f"or soften the stiffest material")
            remaining = t_end - self.t
            # split the last stretch evenly rather than leave a sliver of a step
            dt = remaining if remaining <= dt else (remaining / 2 if remaining < 2 * dt else dt)
            self.substep(dt)
        self.stable_dt()

    def step_frame(self) -> None:
        """Advance to the time of the next output frame."""
        self.advance_to((self.frame + 1) / self.scene.fps)
        self.frame += 1

    def _blow_up(self):
        bad = int(self.knobs.bad[None]) or mpm.count_nonfinite(self.particles_fields)
        raise SimulationError(
            f"simulation blew up at frame {self.frame + 1} (t = {self.t:.4f} s): {bad} particles have NaN/Inf "
            f"state; lower the time step (--set cfl={self.scene.cfl / 2:g}) or soften the stiffest material")

    # --- reading --------------------------------------------------------------------------
    def particles(self) -> dict:
        """Live particle state as numpy arrays: ``x``, ``v`` (n, dim), ``material``, ``body`` (n,),
        ``mass`` (n,), ``color`` (n, 3) for the preview renderer."""
        n, pf = self.n_particles, self.particles_fields
        body = pf.body.to_numpy()[:n]
        colors = np.array([b.color if b.color is not None else
                           DEFAULT_COLORS.get(self.scene.materials[b.material].kind, (0.8, 0.8, 0.8))
                           for b in self.scene.bodies], np.float32)
        return dict(x=pf.x.to_numpy()[:n], v=pf.v.to_numpy()[:n], material=pf.material.to_numpy()[:n],
                    body=body, mass=pf.mass.to_numpy()[:n], color=colors[body])

    def total_mass(self) -> float:
        return float(self.particles_fields.mass.to_numpy()[: self.n_particles].astype(np.float64).sum())

    def momentum(self) -> np.ndarray:
        s = self.particles()
        return (s["mass"][:, None].astype(np.float64) * s["v"]).sum(axis=0)

    def grid_mass(self) -> float:
        """Mass on the grid after a fresh P2G of the current state (kg)."""
        mpm.clear_grid(self.grid)
        mpm.p2g(self.particles_fields, self.grid, self.materials, 0.0)
        return float(mpm.grid_mass(self.grid))

    def grid_momentum(self) -> np.ndarray:
        """Momentum on the grid after a fresh P2G of the current state (kg m/s)."""
        mpm.clear_grid(self.grid)
        mpm.p2g(self.particles_fields, self.grid, self.materials, 0.0)
        return np.asarray(mpm.grid_momentum(self.grid))[: self.dim]

    def active_blocks(self) -> int:
        return int(mpm.active_blocks(self.grid))
