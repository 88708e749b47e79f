"""Simulation: owns the Taichi fields of one Scene, chooses the time step and runs the substeps.

The substep order is written once, in ``Simulation.substep``, and reads like the data flow
of DESIGN.md: heat sources and the controller's pose -> clear grid -> P2G -> grid update
(gravity, control forces, colliders, walls) -> heat conduction -> G2P -> mimicry; between
substeps, due events fire and the controller heals (``polyalloy.control``). The time
step adapts every substep to the CFL limit of the fastest particle and the fastest elastic
wave of the materials present, within the explicit limits of conduction, viscosity and the
controller's spring; a watchdog stops the run with a message when the state
turns non-finite. The step is chosen on the device (``kernels.mpm.choose_dt``), so the host
reads the device once every few substeps, not three values every substep (``advance_to``).
"""
from __future__ import annotations

import contextlib
import logging
import math

import numpy as np

from polyalloy import pool, preflight, runtime
from polyalloy.errors import ConfigError, SimulationError
from polyalloy.kernels import fields as kf
from polyalloy.events import AIR, ControlChange, Grenade, Gunshot, HeatSource, Retemper, crack_network
from polyalloy.kernels import events as kev
from polyalloy.kernels import control as kc
from polyalloy.kernels import fieldio, heat, mixing, mpm, order
from polyalloy.kernels import substep as ks
from polyalloy.materials import POLYALLOY
from polyalloy.kernels.sdf import SURFACE_NAMES, evaluate_sdf
from polyalloy.scene import DEFAULT_COLORS, Scene

MIN_DT = 1e-8  # s; a step below this means the run has exploded
CHUNK = 32  # the most substeps advance_to launches between two reads of the device clock (its docstring)
BLOWUP_RETRIES = 3  # a frame that blows up is tried again from its start at cfl / 2, / 4, / 8
# A simulation of at most this many particles x 3^dim stencil nodes runs its substeps on the
# calling thread (``serial_lanes``): on the project's 2-core CPU a loop handed to Taichi's thread
# pool costs ~100 us to dispatch even with nothing to do (tools/dispatch_cost.py), more than a
# small scene's loop takes on one thread (docs/benchmark.md, "Small simulations on one thread")
SERIAL_WORK = 150_000
SCRATCH = ("grid",)
KIT_ATTRIBUTES = ("particles_fields", "grid", "control_table", "materials", "colliders", "regions", "knobs",
                  "body_shapes")  # containers every substep rewrites from the particles: no part of a checkpoint

log = logging.getLogger("polyalloy")


def serial_lanes(lanes: int, particles: int, dim: int, pinned: bool = False, threads: int = 2) -> tuple[int, bool]:
    """(P2G lanes, serial) of a simulation of ``particles`` particles, from the lanes its grid
    may have (``lanes``: the runtime's, fewer where their copies pass the memory budget) and the
    runtime's ``threads``: lanes asked for (``pinned``: POLYALLOY_P2G_LANES) are kept, serial
    (``kernels.fields.Grid.serial``: P2G and every other loop of its substeps on the calling
    thread) with one; otherwise serial on one lane where its work, ``particles`` x 3^dim stencil
    nodes, is at most ``SERIAL_WORK``, whatever the threads (a sweep's job on one thread gets what
    a lone command gets), and on a one-thread runtime's one lane; otherwise ``lanes`` and the
    passes on the pool's threads (one lane too where the grid is too large for the lanes' copies:
    P2G's serial loop only). A GPU's atomics (lanes 0) stay as they are."""
    if lanes == 0:
        return 0, False
    if pinned:
        return lanes, lanes == 1
    if particles * 3 ** dim <= SERIAL_WORK or (lanes == 1 and threads <= 1):
        return 1, True
    return lanes, False


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
        preflight.check_scene(scene)  # nonsense is refused before a field is allocated or a kernel compiled
        preflight.check_memory(scene, real_bytes=np.dtype(self.np_real).itemsize)

        dx = scene.dx
        pad = mpm.DOMAIN_PAD
        res, lo, self.domain_hi = preflight.grid_shape(scene)
        self.domain_lo = lo

        # bodies, then emitters: "sources" of particles; an emitter's particles carry body id
        # len(bodies) + its index, and its fills wait in a pool after the bodies' particles
        self.sources = list(scene.bodies) + list(scene.emitters)
        # each material's enthalpy is stored relative to its value at the temperature the scene
        # gives it first (kernels.heat): near where that material works, where f32 keeps most
        self.reference_temperature = {m: float(next((s.temperature for s in self.sources if s.material == m), 293.15))
                                      for m in self.material_names}
        body_rows = []
        for bi, b in enumerate(self.sources):
            body_rows += [dict(r, owner=bi) for r in b.shape.rows(d)]
        # every field lives in a kit of field containers taken from the pool (and given back by
        # close()), so a later simulation of the same layout reuses its compiled kernels; the
        # kit is chosen once the counts are known, the body shapes (needed to count the
        # particles) come from a pooled table meanwhile
        self.kit = None
        sampler = pool.acquire_table(d, len(body_rows))
        self.body_shapes = sampler
        self.body_shapes.upload(body_rows)
        samples = [self._sample(i, b) for i, b in enumerate(scene.bodies)]
        n_bodies = sum(len(s[0]) for s in samples)
        self.fills = []  # (time, start, end, enthalpy J, source) of each emitter fill, by time
        for ei, em in enumerate(scene.emitters):
            bi = len(scene.bodies) + ei
            first = self._sample(bi, em)
            volume = len(first[0]) * (dx / scene.particles_per_cell) ** d  # the filled volume, m^dim
            if volume == 0:
                raise ConfigError(f"emitter {em.name!r} holds no particles at dx = {dx:g} m")
            for k, t_fill in enumerate(em.fill_times(volume)):
                samples.append(first if k == 0 else self._sample(bi, em, fill=k))
                self.fills.append([t_fill, bi, len(samples[-1][0])])
        n = sum(len(s[0]) for s in samples)
        if n_bodies == 0:
            raise ConfigError(f"scene {scene.name!r}: the bodies hold no particles inside the domain "
                              f"at dx = {dx:g} m; use a smaller dx or larger bodies")
        mats = [scene.materials[m] for m in self.material_names]
        # the heat step runs when something can change a temperature or a phase
        self.thermal = preflight.is_thermal(scene)
        for b in scene.bodies:
            if b.template is not None and scene.materials[b.material].kind != POLYALLOY:
                raise ConfigError(f"body {b.name!r}: only polyalloy can be controlled, not {b.material!r}")
        self.controlled = preflight.is_controlled(scene)
        n_parts = sum(len(b.template.part_names()) for b in scene.bodies if b.template is not None)
        self.textured = any(c.texture is not None for c in scene.colliders)
        # a substep in two launches (``kernels.substep``); off: a launch per pass (per-kernel timing)
        self.fused = True
        # P2G visits the particles in grid-block order (``kernels.order``), sorted again every
        # ``sort_every`` substeps launched (``POLYALLOY_SORT_EVERY``; 0: never, slot order);
        # ``since_sort`` counts the launches since the last sort (state, with the order: a run
        # resumed from a checkpoint sorts where the uninterrupted one did; a render's identity
        # holds the setting, so a resume with another is refused)
        self.sort_every = runtime.info().sort_every
        self.since_sort = 0

        rows = []
        for ci, c in enumerate(scene.colliders):
            for r in c.shape.rows(d):
                r.update(owner=ci, surface=SURFACE_NAMES[c.surface], friction=c.friction,
                         temperature=c.temperature or 0.0, **(c.texture.row() if c.texture else {}))
                rows.append(r)
        self.impulses = sorted((e for e in scene.events if isinstance(e, (Gunshot, Grenade))), key=lambda e: e.time)
        bodies = [b.name for b in scene.bodies]
        for e in self.impulses:
            if getattr(e, "aim", "") and e.aim not in bodies:
                raise ConfigError(f"gunshot: aim names no body: {e.aim!r}; the scene has {', '.join(bodies)}")
        self.heaters = [e for e in scene.events if isinstance(e, HeatSource)]
        names = [c.name for c in scene.colliders]
        self.retempers = sorted((e for e in scene.events if isinstance(e, Retemper)), key=lambda e: e.time)
        for e in self.retempers:
            if e.collider not in names + [AIR]:
                raise ConfigError(f"retemper: unknown collider {e.collider!r}; the scene has {', '.join(names) or 'none'}")
        self._collider_rows = [[k for k, r in enumerate(rows) if r["owner"] == ci] for ci in range(len(names))]
        self.control_changes = sorted((e for e in scene.events if isinstance(e, ControlChange)), key=lambda e: e.time)
        region_rows = []
        for hi_, e in enumerate(self.heaters):
            region_rows += [dict(r, owner=hi_) for r in e.region.rows(d)]
        self.layout = layout = self._layout(res, n, n_parts, len(rows), len(region_rows), len(body_rows))
        pool.release_table(sampler)
        self.kit = kit = pool.acquire(layout)
        self.particles_fields, self.grid, self.control_table = kit.particles, kit.grid, kit.control_table
        self.materials, self.colliders, self.regions, self.knobs = kit.materials, kit.colliders, kit.regions, kit.knobs
        self.body_shapes = kit.body_shapes
        self.body_shapes.upload(body_rows)
        self.grid.set_geometry(res, dx, lo - pad * dx)
        self.upload_materials()
        self.colliders.upload(rows)
        self.regions.upload(region_rows)
        brittle = [m.brittle_point for m in mats if m.kind == POLYALLOY]
        # one launch (fieldio.assign; `knobs.x[None] = v` compiles an accessor per knob): the
        # pooled knobs may hold another run's heat_acc and heat_count
        fieldio.assign(self.knobs, gravity=[0.0, scene.gravity] + [0.0] * (d - 2),
                       air_temperature=scene.air_temperature, air_coefficient=scene.air_coefficient,
                       heat_scale=1.0, heat_acc=0.0, heat_count=0, stick_below=max(brittle) if brittle else 0.0)
        self.heat_dt = math.inf  # until update_limits, below
        self.set_control()
        kf.put(self.control_table.source_color, self.source_colors().astype(self.np_real))
        self._upload_particles(samples)
        self.controller = None
        self.forces = []  # callables force(sim, dt) run at the start of every substep (the live pokes)
        if self.controlled:
            from polyalloy.control import Controller

            self.controller = Controller(self, samples)
            self.controller.upload_particles()
            self.controller.upload_pose(0.0)
        self.update_limits()
        self.boundary_energy = 0.0  # J that entered through hot/cold colliders and the air (a device value)
        self.events_energy = 0.0  # J added by heat sources and grenades
        self.chill_missing = 0.0  # J that chills could not take from particles already at 0 K
        self.spawned_energy = 0.0  # J of enthalpy brought in by emitter fills
        self._next_impulse = 0
        self._next_fill = 0
        self._blockers = {}  # emitter -> a particle that blocked its waiting fill (where the next check starts)
        self._next_retemper = 0
        self._next_control = 0
        self.t = 0.0
        self.frame = 0
        self.substeps = 0
        self.last_dt = 0.0
        self.dt_guess = 0.0  # s, the last stable step the device reported: how many substeps to launch unread
        self.record_steps = None  # a list: advance_to appends (t, dt) of every substep to it
        self.clock_reads = 0  # reads of the device clock (advance_to), for counting
        self._reads = None  # the reading scope's values (``reading``), None outside one
        controller = self.controller
        self._cycling = controller is not None and any(
            len(scene.bodies[i].earlier_shapes()) > 1 for i in controller.bodies)

    def close(self) -> None:
        """Give this simulation's fields back to the pool (``polyalloy.pool``) for the next
        simulation of the same layout (also done when it is garbage-collected)."""
        kit, self.kit = getattr(self, "kit", None), None
        if kit is None:
            return
        for name in KIT_ATTRIBUTES:  # a closed simulation must not touch fields that serve another now
            self.__dict__.pop(name, None)
        try:
            pool.release(kit)
        except Exception:  # at interpreter exit the pool may be gone already
            pass

    def _layout(self, res, n: int, n_parts: int, n_colliders: int, n_regions: int, n_body_rows: int) -> pool.Layout:
        """The pool layout of this simulation: its counts rounded up by ``pool.bucket``."""
        sc, d, b = self.scene, self.dim, pool.bucket
        templates = [body.template for body in sc.bodies if body.template is not None]
        part_rows = sum(len(t.part_rows(d)) for t in templates)
        earlier = sum(len(e.part_rows(d)) for body in sc.bodies if body.template is not None
                      for e in body.earlier_shapes())
        block, rows = kf.GRID_BLOCK, pool.MIN_ROWS
        grid, real = pool.grid_alloc(d, res, block), runtime.info().precision
        mixing = preflight.is_mixing(sc)  # P2G adds the mixing's sums (a live change later: kernels.mixing)
        info = runtime.info()
        lanes, serial = serial_lanes(kf.grid_lanes(info.p2g_lanes, int(np.prod(grid, dtype=np.int64)), d,
                                                   8 if real == "f64" else 4, self.thermal, self.controlled, mixing),
                                     n, d, info.lanes_pinned, info.threads)
        return pool.Layout(
            dim=d, real=real, particles=b(n, pool.MIN_PARTICLES), grid=grid,
            block=block, thermal=self.thermal, control=self.controlled,
            lanes=lanes, serial=serial,
            kinds=tuple(sorted({int(sc.materials[m].kind) for m in self.material_names})),
            parts=b(n_parts, rows), sources=b(len(self.sources)),
            materials=b(len(self.material_names)), colliders=b(n_colliders, rows), regions=b(n_regions, rows),
            body_rows=b(n_body_rows, rows), part_rows=b(part_rows, rows) if self.controlled else 0,
            template_rows=b(part_rows, rows) if self.controlled else 0,
            earlier_rows=b(earlier, rows) if self.controlled else 0, mixing=mixing)

    def __del__(self):
        try:
            self.close()
        except Exception:  # at interpreter exit this module's globals may be gone already
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- set-up ---------------------------------------------------------------------------
    def _sample(self, index: int, body, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Particles of source ``index`` (a body or an emitter's ``fill``): a jittered lattice at
        dx / particles_per_cell (numpy, seeded), kept where the shape's SDF (evaluated on the
        device) is negative and inside the domain."""
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
        rng = np.random.default_rng([sc.seed, index, fill])
        axes = [lo[k] + (np.arange(counts[k]) + 0.5) * spacing for k in range(d)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        pts += rng.uniform(-0.25, 0.25, pts.shape) * spacing
        dist = np.zeros(len(pts), dtype=self.np_real)
        evaluate_sdf(self.body_shapes, index, pts.astype(self.np_real), dist, 0.0)
        pts = pts[dist < 0]
        vel = np.broadcast_to(np.asarray(body.velocity, float)[:d], pts.shape)
        return pts, vel

    def _upload_particles(self, samples) -> None:
        """Write every source's particles: the bodies' ones live, the emitters' fills pooled
        (alive = 0) after them, in the order of their fill times."""
        p, d, sc = self.particles_fields, self.dim, self.scene
        n_bodies = len(sc.bodies)
        order = list(range(n_bodies)) + sorted(range(n_bodies, len(samples)),
                                               key=lambda i: self.fills[i - n_bodies][0])
        samples = [samples[i] for i in order]
        fills = [self.fills[i - n_bodies] for i in order[n_bodies:]]
        src = np.concatenate([np.full(len(s[0]), i, np.int32) for i, s in enumerate(samples)])
        body = np.array([i if i < n_bodies else fills[i - n_bodies][1] for i in range(len(samples))], np.int32)[src]
        x = np.concatenate([s[0] for s in samples]).astype(self.np_real)
        v = np.concatenate([s[1] for s in samples]).astype(self.np_real)
        n, cap = len(x), p.capacity
        mat_of = np.array([self.material_names.index(b.material) for b in self.sources], np.int32)
        material = [sc.materials[b.material] for b in self.sources]
        density = np.array([m.density for m in material])
        vol0 = (sc.dx / sc.particles_per_cell) ** d
        mass = (density[body] * vol0).astype(self.np_real)
        T = np.array([b.temperature for b in self.sources], float)[body]
        live = int(sum(len(s[0]) for s in samples[:n_bodies]))
        # every per-particle field at once (one kernel launch; fieldio), the rows past n zero; H and
        # the phase follow from T by the device's curve just after
        first = dict(x=x, v=v, C=np.zeros((cap, d, d)), F=np.tile(np.eye(d), (cap, 1, 1)), Jp=np.ones(cap),
                     material=mat_of[body], body=body, vol0=np.full(cap, vol0), mass=mass, T=T, H=np.zeros(cap),
                     phase=np.zeros(cap), damage=np.zeros(cap), part=np.full(cap, -1),
                     color=self.source_colors()[body],
                     comp=np.array([m.kind == POLYALLOY for m in material], float)[body],
                     alive=np.arange(cap) < live)
        group = fieldio.group(p, tuple(first))
        group.write(first, pad=True)
        heat.set_thermal_state(p, self.materials, 0, n)  # H and the phase from T, by the device's curve
        H = fieldio.group(p, PARTICLE_READ).read()["H"][:n].copy()
        p.n[None] = live
        # the pool: (time, first, end, enthalpy, source) per fill, switched on by advance_to
        mh = self.thermal_energy(mass, H, mat_of[body])
        start, self.fills = live, []
        for (t_fill, source, count) in fills:
            self.fills.append((t_fill, start, start + count, float(mh[start:start + count].sum()), source))
            start += count
        self.fill_started = np.zeros(len(self.fills), bool)  # in the pool's order (live re-timing re-sorts fills)
        self._fill_row = {f[1]: i for i, f in enumerate(self.fills)}  # a fill's row of fill_started, by its first slot
        self.initial_energy = float(mh[:live].sum())
        mpm.compute_stress(p, self.materials)  # every slot, pooled ones included
        # the first dt sees the launch speed and the elastic waves of every slot, emitters' included;
        # G2P then reports the live ones, and each fill adds its own as it starts
        fieldio.assign(self.knobs, max_speed=float(np.linalg.norm(v, axis=1).max()),
                       max_wave=mpm.max_wave_speed(p, self.materials, 0, n))

    # --- running --------------------------------------------------------------------------
    def set_control(self, **values) -> None:
        """Change the controller's live settings (``polyalloy.scene.Control`` names, validated);
        they are 0-D fields, so nothing recompiles. Called with none, uploads the scene's."""
        import dataclasses

        if values:
            try:
                self.scene.control = dataclasses.replace(self.scene.control, **values)
            except TypeError as exc:
                raise ConfigError(f"unknown control setting: {exc}") from None
        c = self.scene.control
        fieldio.assign(self.knobs, ctrl_gain=c.gain, ctrl_omega=2 * math.pi * c.frequency, ctrl_zeta=c.damping,
                       ctrl_hold=c.hold, ctrl_max_accel=c.max_accel, grip_fade=c.grip_fade, glitch=c.glitch,
                       glitch_rate=c.glitch_rate, glitch_spread=c.glitch_spread, mimic_decay=c.mimic_decay,
                       volume_relax=c.volume_relax, ctrl_fine=c.fine)
        self._heat_settings()  # the spring's limit caps the heat step

    @property
    def n_particles(self) -> int:
        return int(self.particles_fields.n[None])

    def upload_materials(self) -> None:
        """The scene's materials to the device table (again after one changed), each with
        enthalpy relative to its ``reference_temperature``; ``h_ref`` (J/kg per material, f64)
        is what turns a stored enthalpy into one from 0 K (``thermal_energy``)."""
        rows = [self.scene.materials[m].row(self.reference_temperature[m]) for m in self.material_names]
        self.materials.upload(rows)
        self.h_ref = np.array([r["H_ref"] for r in rows], np.float64)

    def thermal_energy(self, mass, H, material) -> np.ndarray:
        """Thermal energy (J, float64, from 0 K) of particles of ``mass`` (kg) with stored
        enthalpy ``H`` (J/kg, relative to their material's reference) and ``material`` index."""
        return np.asarray(mass, np.float64) * (np.asarray(H, np.float64) + self.h_ref[np.asarray(material)])

    def update_limits(self) -> None:
        """The explicit limits that follow from the materials and dx alone (call again after a
        material changes): ``heat_dt``, half the conduction limit dx^2 / (4 dim alpha) of
        ``kernels.heat``, which caps both the substep and the heat step (``knobs.heat_cap``: the
        heat step spans as many substeps as fit in it, ``kernels.heat`` "Multirate"), and
        ``viscous_dt``, the momentum-diffusion limit dx^2 / (2 dim nu) of the explicit viscous
        stress (nu = eta / rho; measured stable up to 1.5x it in 2D, 2x in 3D)."""
        mats = [self.scene.materials[m] for m in self.material_names]
        dx, d = self.scene.dx, self.dim
        alpha = max(m.diffusivity() for m in mats)
        self.heat_dt = 0.5 * dx * dx / (4 * d * alpha) if self.thermal and alpha > 0 else math.inf
        nu = max(m.kinematic_viscosity() for m in mats)
        self.viscous_dt = dx * dx / (2 * d * nu) if nu > 0 else math.inf
        # touching liquids exchange composition only where a material mixes (kernels.mixing)
        self.mixes = self.thermal and any(m.mixing > 0 for m in mats)
        self._heat_settings()

    def _heat_settings(self) -> None:
        """The heat step's settings in ``knobs`` (not state: a checkpoint's are replaced by this
        run's): its cap, ``heat_dt`` and on a controlled run the controller's spring limit
        (``Control.spring_dt``: the pull acts on the heat step's substeps, ``kernels.control``
        "Multirate"), whichever is shorter (0, a heat step every substep, where neither is
        finite), and the scene's ``heat_substeps``."""
        spring = self.scene.control.spring_dt() if self.controlled else math.inf
        cap = min(self.heat_dt, spring)
        fieldio.assign(self.knobs, heat_cap=cap if math.isfinite(cap) else 0.0, heat_group=self.scene.heat_substeps)

    def stable_dt(self) -> float:
        """CFL step: cfl * dx / (fastest particle + fastest elastic wave of the live phases),
        capped by dt_max, the explicit conduction and viscous limits (``update_limits``) and,
        on a controlled run, the explicit limit of the controller's spring
        (``polyalloy.scene.Control.spring_dt``)."""
        speed = float(self.knobs.max_speed[None])
        if not math.isfinite(speed) or self.knobs.bad[None]:
            self._blow_up()
        wave = float(self.knobs.max_wave[None])
        spring = self.scene.control.spring_dt() if self.controlled else math.inf
        return min(self.scene.dt_max, self.heat_dt, self.viscous_dt, spring,
                   self.scene.cfl * self.scene.dx / max(speed + wave, 1e-9))

    @property
    def boundary_energy(self) -> float:
        """J that entered through hot or cold colliders and the air since t = 0 (``heat.conduct``
        adds it up on the device, in f64)."""
        return float(self.knobs.boundary_energy[None])

    @boundary_energy.setter
    def boundary_energy(self, value: float) -> None:
        self.knobs.boundary_energy[None] = value

    def substep(self, dt: float) -> None:
        """One MLS-MPM substep of ``dt`` seconds chosen by the caller (after ``forces`` and the
        heat sources active now); ``advance_to`` lets the device choose the step instead."""
        mpm.set_step(self.knobs, dt, self.t)
        self._before_substep(dt)
        self._launch_substep()
        self.t += dt
        self.substeps += 1
        self.last_dt = dt

    def _before_substep(self, dt: float) -> None:
        """The host's part of a substep of ``dt`` at ``t``: the live forces, the heat sources
        active now and the controller's pose."""
        pf = self.particles_fields
        for force in self.forces:
            force(self, dt)
        for i, e in enumerate(self.heaters):
            if e.start <= self.t + 1e-12 < e.end:  # substeps end on its start and end (_next_event_time)
                m = kev.mass_in_region(pf, self.regions, i, self.t)
                if m > 0:
                    self.book_event_heat(e.power * dt, kev.heat_region(pf, self.materials, self.regions, i, self.t, e.power * dt / m),
                                         f"the chill of {-e.power:g} W")
        if self.controller is not None:
            self.controller.maybe_cycle(self.t)
            if self.controller.following:
                self.controller.track_bodies(self.t)
            if self.controller.moving:
                # the substep reads the pose only when it carries the heat step (kernels.control,
                # "Multirate"): on the others the upload waits (Controller.sync_pose)
                if self.knobs.heat_step[None]:
                    if self.controller.adrift:
                        self.controller.track_adrift(self.t)
                    self.controller.upload_pose(self.t)
                else:
                    self.controller.pose_due = self.t

    def _launch_substep(self) -> None:
        """The kernels of one substep, at the device clock's step and time; no read of the device.
        ``fold_lanes`` ends it: it reduces G2P's maxima, moves the clock on and chooses the next step.
        Two launches (``kernels.substep``) unless ``fused`` is off: then each pass is a launch of
        its own, as the bench's per-kernel times need (the same state to the bit). Every
        ``sort_every`` substeps (where set) a third first: the particles' block order for P2G."""
        pf, g, k = self.particles_fields, self.grid, self.knobs
        if self.sort_every:
            if self.since_sort == 0:
                order.sort_by_block(pf, g)
            self.since_sort = (self.since_sort + 1) % self.sort_every
        if self.fused:
            ks.scatter_step(pf, g, self.materials, self.colliders, self.control_table, k, self.mixes)
            ks.gather_step(pf, g, self.materials, self.colliders, self.control_table, k, self.textured, self.scene.dx)
            return
        mpm.clear_grid(g, k)
        mpm.p2g(pf, g, self.materials, self.control_table, k)
        mpm.collect_blocks(g, k)
        mpm.update_grid(g, self.colliders, k)
        if self.thermal:
            heat.conduct(g, self.colliders, k)
        if self.mixes:
            if not g.mixing:  # a material set to mix after the grid was built: the serial scatter
                mixing.scatter(pf, g, self.materials, k)
            mixing.gather(pf, g, self.materials, k)
        mpm.g2p(pf, g, self.materials, self.colliders, self.control_table, k)
        if self.textured:
            kc.mimic(pf, self.materials, self.colliders, self.control_table, k, self.scene.dx)
        mpm.fold_lanes(k)

    def _start_clock(self, t_stop: float) -> None:
        """Set the device clock to ``t``, to stop at ``t_stop``, with this moment's cfl and limits;
        it chooses the first step from the speeds in ``knobs`` now (events included)."""
        spring = self.scene.control.spring_dt() if self.controlled else math.inf
        cap = min(self.scene.dt_max, self.heat_dt, self.viscous_dt, spring)
        mpm.start_clock(self.knobs, self.t, t_stop, cap, self.scene.cfl * self.scene.dx, MIN_DT)

    def read_clock(self, full: bool = True) -> dict:
        """The device clock: ``state`` (``kernels.fields``: RUNNING, DONE, BLOWN, COLLAPSED) and
        ``dt`` (the next step); with ``full`` also ``t``, ``steps`` (substeps since the clock was
        started), ``last`` (the last one's step) and ``stable`` (the stable step the next one was
        cut from). Scalar field reads, one per value: on the CPU a field read costs a fifth of a
        kernel launch (measured 10 us against 50 us: a kernel that returns the values, or fills a
        numpy array, costs 2-4 launches), and on a GPU only the first of them waits."""
        k = self.knobs
        self.clock_reads += 1
        clock = dict(state=int(k.clock_state[None]), dt=float(k.clock_dt[None]))
        if full:
            clock.update(t=float(k.clock_t[None]), steps=int(k.clock_steps[None]), last=float(k.clock_last[None]),
                         stable=float(k.clock_stable[None]))
        return clock

    def _check_clock(self, clock: dict, collapse: bool = True) -> None:
        """Raise what the host used to raise before a substep: a blow-up (a non-finite speed or
        particle) or, with ``collapse``, a collapsed step."""
        self.dt_guess = clock.get("stable") or self.dt_guess
        if clock["state"] == kf.BLOWN:
            self._blow_up()
        if collapse and clock["state"] == kf.COLLAPSED:
            raise SimulationError(
                f"time step collapsed to {self.stable_dt():.2e} s at frame {self.frame + 1} (t = {self.t:.4f} s): a "
                f"particle moves at {float(self.knobs.max_speed[None]):.3g} m/s; lower cfl (now {self.scene.cfl:g}) "
                f"or soften the stiffest material")

    def _host_every_substep(self) -> bool:
        """Whether the host has work at every substep from now to the next stop: live forces, a
        heat source on, a controller that moves or cycles its shapes, an emitter fill waiting
        for room. Then it reads the clock every substep, as before."""
        t = self.t + 1e-12
        if self.forces or any(e.start <= t < e.end for e in self.heaters):
            return True
        if self.controller is not None and (self.controller.moving or self._cycling):
            return True
        return any(self.fills[k][0] <= t and not self._fill_started(k) for k in range(self._next_fill, len(self.fills)))

    def _unread_substeps(self, t_stop: float) -> int:
        """How many substeps to launch before the next read: as many as reach ``t_stop`` at the
        last stable step (``dt_guess``), at most ``CHUNK``. Launching too many costs only
        launches (past the stop the device clock stands still and every kernel does nothing);
        too few costs a read. A controlled body's next reassignment is a time the host must see
        at once: only as many substeps as cannot reach it even at the cap go unread."""
        spring = self.scene.control.spring_dt() if self.controlled else math.inf
        cap = min(self.scene.dt_max, self.heat_dt, self.viscous_dt, spring)
        guess = min(self.dt_guess or cap, cap)
        n = min(CHUNK, max(1, math.ceil((t_stop - self.t) / guess)))
        if self.controller is not None:
            ahead = self.controller.next_check - 1e-12 - self.t
            n = min(n, 1 + max(0, math.floor(ahead / (cap * (1 + 1e-9)) - 1e-9)))
        return n

    def advance_to(self, t_end: float) -> None:
        """Substep until ``t`` reaches ``t_end`` exactly, each step at the stable dt, chosen on the
        device. Between two stops (the frame's end, the next event or heat source edge) the host
        launches up to ``CHUNK`` substeps and then reads the device clock once (time, state,
        substeps done, the last step): the device stops at the stop by itself and a blow-up or a
        collapsed step stops it at once (the substep kernels then do nothing), so the steps, the
        stops and the errors are the ones the host chose before, reading three values every
        substep. How many it launches unread: as many as reach the stop at the last stable step
        (``_unread_substeps``), so a frame usually ends on one read more than its chunks. Why at
        most 32: a read of the clock (five scalars) and a start (``start_clock``) cost about two
        launches, so at 32 substeps they are under 1% of the launches, and beyond it little is
        left to save while the device runs further past a blow-up (standing still, but the
        launches are spent). Where the host has work every substep (live forces, a heat source
        on, a moving controller, a fill waiting) it reads two scalars per substep instead (the
        state and the step, where it read three). The clock is started again only when the stop
        moved or an event fired (it may have raised the speeds); otherwise the last substep's
        ``fold_lanes`` already chose the next step from the same values."""
        ran, checked, stop, seen = False, True, None, 0
        while t_end - self.t > 1e-12:
            fired = self._apply_due_events()
            if self.controller is not None:
                self.controller.maybe_reassign(self.t)
            t_stop = min(t_end, self._next_event_time())
            if fired or t_stop != stop or not ran:
                # else the last fold_lanes chose the next step from the same speeds, limits and stop
                self._start_clock(t_stop)
                stop, seen = t_stop, 0
            ran = True
            if self._host_every_substep():
                clock = self.read_clock(full=False)
                self._check_clock(clock)
                if clock["state"] != kf.RUNNING:
                    raise SimulationError(f"the device clock stood still at t = {self.t!r} s before {t_stop!r} s")
                dt = clock["dt"]
                self._before_substep(dt)
                self._launch_substep()
                if self.record_steps is not None:
                    self.record_steps.append((self.t, dt))
                self.t += dt  # as the device's clock_t += dt
                self.substeps += 1
                self.last_dt = dt
                seen += 1
                checked = False
                continue
            for _ in range(self._unread_substeps(t_stop)):
                self._launch_substep()
            clock = self.read_clock()
            new = clock["steps"] - seen
            seen = clock["steps"]
            if self.record_steps is not None and new:
                ring = self.knobs.dt_log.to_numpy()
                t = self.t
                for i in range(seen - new, seen):
                    self.record_steps.append((t, float(ring[i % kf.CLOCK_LOG])))
                    t += float(ring[i % kf.CLOCK_LOG])
            self.t = clock["t"]
            self.substeps += new
            if new:
                self.last_dt = clock["last"]
            self._check_clock(clock)
            checked = True
        if self.controller is not None:
            self.controller.sync_pose()  # the table as a reader between calls expects it
        if not ran:
            self.stable_dt()  # the blow-up check on the state as it is
        elif not checked:  # the last substep's G2P found the state non-finite
            self._check_clock(self.read_clock(full=False), collapse=False)

    def _next_event_time(self) -> float:
        times = [math.inf]
        if self._next_impulse < len(self.impulses):
            times.append(self.impulses[self._next_impulse].time)
        # the next fill to come (fills waiting for free space are checked every substep anyway)
        times.append(next((f[0] for f in self.fills[self._next_fill:] if f[0] > self.t + 1e-12), math.inf))
        if self._next_retemper < len(self.retempers):
            times.append(self.retempers[self._next_retemper].time)
        if self._next_control < len(self.control_changes):
            times.append(self.control_changes[self._next_control].time)
        # a heat source switches on and off at a substep's edge, so it gives power x its duration
        times += [b for e in self.heaters for b in (e.start, e.end) if b > self.t + 1e-12]
        return max(min(times), self.t)

    def _apply_due_events(self) -> bool:
        """Change the controller's settings, fire the gunshots and grenades, switch on the emitter
        fills due at ``t`` whose emitter is free of live particles (the others wait, in order),
        and change the collider temperatures due at ``t``. Returns whether anything happened."""
        pf = self.particles_fields
        cursors = (self._next_control, self._next_retemper, self._next_impulse)
        filled = False  # a fill went in (fill_started changes only here)
        while self._next_control < len(self.control_changes) and \
                self.control_changes[self._next_control].time <= self.t + 1e-12:
            self.set_control(**self.control_changes[self._next_control].values)
            self._next_control += 1
        while self._next_retemper < len(self.retempers) and \
                self.retempers[self._next_retemper].time <= self.t + 1e-12:
            e = self.retempers[self._next_retemper]
            self._next_retemper += 1
            if e.collider == AIR:
                self.knobs.air_temperature[None] = e.temperature
                if e.coefficient is not None:
                    self.knobs.air_coefficient[None] = e.coefficient
                continue
            ci = [c.name for c in self.scene.colliders].index(e.collider)
            for k in self._collider_rows[ci]:
                self.colliders.temperature[k] = e.temperature or 0.0  # 0: adiabatic on the device
        while self._next_impulse < len(self.impulses) and self.impulses[self._next_impulse].time <= self.t + 1e-12:
            self._next_impulse += 1
            self.apply_impulse(self.impulses[self._next_impulse - 1])
        # a fill goes in only while its emitter holds no live particle (the last fill has left it and
        # the pour has not backed up into it), so fills never overlap; a blocked fill waits, and
        # the fills of other emitters go past it
        free = {}  # source -> whether its emitter can take a fill now
        for k in range(self._next_fill, len(self.fills)):
            t_fill, start, end, energy, source = self.fills[k]
            if t_fill > self.t + 1e-12:
                break
            if self._fill_started(k):
                continue
            if source not in free:
                # the scan starts at the particle that blocked it last time: mostly still there
                found = kev.live_in_region(pf, self.body_shapes, source, self.t, self._blockers.get(source, 0))
                free[source] = found < 0
                if found >= 0:
                    self._blockers[source] = found
            if not free[source]:
                continue
            free[source] = False  # this fill takes it
            self.fill_started[self._fill_row[start]] = True
            filled = True
            kev.activate(pf, start, end)
            self.spawned_energy += energy
            self.knobs.max_speed[None] = max(float(self.knobs.max_speed[None]), max(
                float(np.linalg.norm(np.asarray(e.velocity, float)[: self.dim])) for e in self.scene.emitters))
            self.knobs.max_wave[None] = max(float(self.knobs.max_wave[None]),
                                            mpm.max_wave_speed(pf, self.materials, start, end))
        while self._next_fill < len(self.fills) and self._fill_started(self._next_fill):
            self._next_fill += 1
        return filled or cursors != (self._next_control, self._next_retemper, self._next_impulse)

    def waiting_slots(self) -> np.ndarray:
        """(n_particles,) bool: the slots of emitter fills that have not gone in yet."""
        out = np.zeros(self.n_particles, bool)
        for k, (_, start, end, _, _) in enumerate(self.fills):
            if start < len(out) and not self._fill_started(k):
                out[start:end] = True
        return out

    def _fill_started(self, k: int) -> bool:
        """Whether ``fills[k]`` has gone in (looked up by its first slot: live re-timing re-sorts ``fills``)."""
        return bool(self.fill_started[self._fill_row[self.fills[k][1]]])

    def apply_impulse(self, e) -> float:
        """Fire a ``Gunshot`` or ``Grenade`` now (whatever its ``time``); returns the mass (kg) it hit."""
        pf = self.particles_fields
        centre = np.asarray(self.aim(e) if getattr(e, "aim", "") else e.point, self.np_real)[: self.dim]
        m = kev.mass_in_sphere(pf, centre, e.radius)
        if m <= 0:
            return 0.0
        if isinstance(e, Gunshot):
            direction = np.asarray(e.direction, float)[: self.dim]
            dv = (direction / np.linalg.norm(direction) * e.impulse / m).astype(self.np_real)
            if e.shatter > 0:  # before the kick: a shot of damage 1 would leave no intact metal to hit
                self.shatter(centre, e.radius, e.shatter)
            kev.kick(pf, self.materials, centre, e.radius, dv, 0.0, e.damage, 0.0)
        else:
            missing = kev.kick(pf, self.materials, centre, e.radius, np.zeros(self.dim, self.np_real), e.impulse / m, 0.0, e.heat / m)
            self.book_event_heat(e.heat, missing, f"the grenade's {e.heat:g} J")
        self.knobs.max_speed[None] = max(float(self.knobs.max_speed[None]), e.impulse / m)
        return m

    def aim(self, shot: Gunshot) -> np.ndarray:
        """Where a ``Gunshot`` with ``aim`` hits when it fires: the particle of the aimed body's
        largest piece (linked as ``metrics.fragments`` links: rubble is loose grains) nearest the
        shot's ``point``; ``point`` itself when the body has no live particle. A scene's shot is
        aimed before the run, at where its author expects the body, and a body whose fall is
        chaotic (a frozen man toppling) lies elsewhere on another seed or walk, where a fixed
        sphere of a few centimetres hits nothing, or a splinter: a gunman tracks the man's bulk."""
        from polyalloy import metrics

        point = np.asarray(shot.point, float)[: self.dim]
        s = metrics._select(self, body=shot.aim)
        if len(s["x"]) == 0:
            return point
        x = s["x"].astype(np.float64)
        labels = metrics.link_labels(x, s["damage"] < 1.0, 1.5 * self.scene.spacing)
        x = x[labels == np.argmax(np.bincount(labels))]
        return x[np.argmin(np.linalg.norm(x - point, axis=1))]

    def shatter(self, centre, radius: float, size: float) -> int:
        """Shatter the brittle pieces a blow at ``centre`` hits: every piece of frozen, intact
        polyalloy (linked as ``metrics.fragments`` links) with a particle within ``radius`` (m) of
        ``centre`` is cut by a network of cracks into fragments about ``size`` m across
        (``events.crack_network``; the flaws are drawn from the scene's seed and the time, so a
        rerun cracks alike). The cracks are 1.5 particle spacings wide, the distance at which two
        particles touch, and their particles are fully damaged: rubble, which carries no tension,
        so the fragments part where the blow and their fall pull them apart.

        Why a network and not the stress wave alone: a blow on a compact frozen block grinds
        into grains every particle its wave strains past the fracture strain and splits nothing
        (measured; docs/freeze.md), since MPM's one velocity per grid node is smooth over a
        stencil and cannot open a crack between two particles; a brittle solid hit hard breaks
        along cracks that run from its flaws at about the speed of sound, far faster than the
        grid resolves (dynamic fragmentation). Returns how many particles cracked."""
        from polyalloy import metrics

        s = self.particles(retired=True)
        kinds = np.array([self.scene.materials[n].kind for n in self.material_names])
        brittle = s["alive"] & (kinds[s["material"]] == POLYALLOY) & (s["phase"] == heat.FROZEN) & (s["damage"] < 1.0)
        slots = np.flatnonzero(brittle)
        x = s["x"][slots].astype(np.float64)
        spacing = self.scene.spacing
        labels = metrics.link_labels(x, np.ones(len(x), bool), 1.5 * spacing)
        hit = np.unique(labels[np.linalg.norm(x - np.asarray(centre, np.float64), axis=1) <= radius])
        rng = np.random.default_rng([int(self.scene.seed), int(round(self.t * 1e6))])
        cracked = []
        for piece in hit:
            members = np.flatnonzero(labels == piece)
            cracked.append(slots[members[crack_network(x[members], size, 1.5 * spacing, rng)[0]]])
        cracked = np.concatenate(cracked) if cracked else np.zeros(0, np.int64)
        if len(cracked):
            kev.crack(self.particles_fields, np.ascontiguousarray(cracked, np.int32))
        return len(cracked)

    def book_event_heat(self, asked: float, missing: float, what: str) -> None:
        """Book ``asked`` J of event heat in the energy budget, less the ``missing`` J of a chill
        that particles at 0 K could not give up (``kernels.events.add_enthalpy``); the first
        time a chill hits absolute zero it says so in a warning, and ``chill_missing`` adds up
        what was not taken."""
        self.events_energy += asked + missing
        if missing > 0:
            if self.chill_missing == 0:
                log.warning("%s drove particles to absolute zero at t = %.4f s: they stay at 0 K and %.3g J "
                            "of it was not taken; use a weaker chill", what, self.t, missing)
            self.chill_missing += missing

    def energy_accounts(self) -> dict:
        """Energy (J) that entered since t = 0 by each route; see ``polyalloy.metrics.energy_budget``."""
        return dict(initial=self.initial_energy, boundary_in=self.boundary_energy, events_in=self.events_energy,
                    spawned_in=self.spawned_energy)

    def step_frame(self) -> None:
        """Advance to the time of the next output frame."""
        self.advance_to((self.frame + 1) / self.scene.fps)
        self.frame += 1

    def step_frame_retrying(self, retries: int = BLOWUP_RETRIES) -> list[float]:
        """``step_frame``, but when the frame blows up (NaN/Inf, a collapsed time step) it starts again
        from the state it began with at half the cfl, up to ``retries`` times; the scene's cfl is
        restored afterwards. Returns the cfl of each retry ([]: the first try held); when the last
        retry blows up too, the SimulationError names the frame, the cfl tried and what to change."""
        start, cfl, tried = self.state_dict(), self.scene.cfl, []
        try:
            while True:
                try:
                    self.step_frame()
                    return tried
                except SimulationError as exc:
                    if len(tried) >= retries:
                        raise SimulationError(f"{exc} (frame {self.frame + 1} was tried {len(tried) + 1} times from "
                                              f"its start, at cfl {', '.join(f'{c:g}' for c in [cfl, *tried])})"
                                              ) from None
                    self.load_state_dict(start)
                    tried.append(self.scene.cfl / 2)
                    self.scene.cfl = tried[-1]
        finally:
            self.scene.cfl = cfl

    def _blow_up(self):
        bad = int(self.knobs.bad[None]) or mpm.count_nonfinite(self.particles_fields)
        raise SimulationError(
            f"simulation blew up at frame {self.frame + 1} (t = {self.t:.4f} s): {bad} particles have NaN/Inf "
            f"state; lower the time step (--set cfl={self.scene.cfl / 2:g}) or soften the stiffest material")

    # --- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything that the rest of the run depends on, as numpy arrays: every Taichi field of
        every field container of this simulation (particles, knobs, tables; not the ``SCRATCH``
        grid) under ``field/<container>/<name>``, and every number or numpy-array attribute
        (time, frame, substeps, event and emitter cursors, energy accounts, ...) under
        ``host/<name>``. New fields and counters are included without listing them anywhere."""
        # copies: a host array (which fills have started) goes on changing after the state is taken
        if self.controller is not None:
            self.controller.sync_pose()  # the pose table, as an upload on every substep leaves it
        state = {f"host/{name}": np.array(value, copy=True) for name, value in _host_numbers(self).items()}
        for cname, container in _containers(self).items():  # one kernel launch per container
            for fname, a in fieldio.group(container).read().items():
                state[f"field/{cname}/{fname}"] = a
        if self.controller is not None:
            state.update({f"control/{k}": v for k, v in self.controller.state().items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()`` of a simulation of the same scene; a ConfigError names the
        first entry whose presence, shape or type differs (another scene or version)."""
        host = {f"host/{name}": value for name, value in _host_numbers(self).items()}
        if self.controller is not None:  # the controller's host state: which home each particle holds
            host.update({f"control/{k}": v for k, v in self.controller.state().items()})
        groups = {c: fieldio.group(ct) for c, ct in _containers(self).items()}
        fields = {f"field/{c}/{n}": (g.shapes[n], g.dtypes[n]) for c, g in groups.items() for n in g.fields}
        extra = sorted(set(state) - set(host) - set(fields))
        if extra:
            raise ConfigError(f"the checkpoint holds {extra[0]!r}, which this simulation does not have")
        for key in sorted(host.keys() | fields.keys()):
            shape, dtype = (np.shape(host[key]), np.asarray(host[key]).dtype) if key in host else fields[key]
            got = state.get(key)
            if got is None or got.shape != tuple(shape) or got.dtype != dtype:
                raise ConfigError(f"the checkpoint's {key} does not fit this simulation: "
                                  f"{'missing' if got is None else f'{got.dtype}{list(got.shape)}'}, "
                                  f"expected {dtype}{list(shape)}")
        for c, g in groups.items():  # one kernel launch per container
            g.write({n: state[f"field/{c}/{n}"] for n in g.fields})
        for key, value in host.items():
            a = state[key]
            if key.startswith("host/"):
                setattr(self, key[len("host/"):], a.copy() if isinstance(value, np.ndarray) else type(value)(a.item()))
        if self.controller is not None:
            self.controller.load_state({k[len("control/"):]: v for k, v in state.items() if k.startswith("control/")})
        if not self.sort_every and state["field/particles_fields/n_sorted"]:
            self.particles_fields.n_sorted[None] = 0  # a sorted run's state, run on in slot order
        for change in self.control_changes[: self._next_control]:  # the host's copy of the settings
            self.set_control(**change.values)
        self._heat_settings()

    # --- reading --------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self):
        """A scope in which the state stands still and is only read (a judge's measures of one
        frame): each value asked for through ``read_once`` (the particles, a measure's fragment
        labels) is computed once and shared by every reader in it, its arrays read-only. Nested
        scopes share the outer one's values; they are dropped when the outermost ends."""
        if self._reads is not None:
            yield self
            return
        self._reads = {}
        try:
            yield self
        finally:
            self._reads = None

    def read_once(self, key, compute):
        """``compute()``, or inside ``reading`` the value it gave for ``key`` earlier in the scope
        (numpy arrays in it, alone or as a dict's values, made read-only; a dict is handed out
        as a shallow copy, so a reader that adds keys leaves the others' as it was)."""
        if self._reads is None:
            return compute()
        if key not in self._reads:
            value = compute()
            for a in (value.values() if isinstance(value, dict) else (value,)):
                if isinstance(a, np.ndarray):
                    a.flags.writeable = False
            self._reads[key] = value
        value = self._reads[key]
        return dict(value) if isinstance(value, dict) else value

    def particles(self, retired: bool = False) -> dict:
        """Particle state as numpy arrays: ``x``, ``v`` (n, dim), ``material``, ``body``, ``mass``
        (kg), ``H`` (J/kg, relative to the material's reference temperature: ``thermal_energy``
        turns it into joules from 0 K), ``T`` (K), ``phase``, ``damage`` (n,), ``color`` (n, 3: the body's colour, or
        what mimicry copied), ``part`` (template part, -1 when not controlled), ``comp`` (the
        fraction of its mass that is polyalloy, ``kernels.mixing``). Only live
        particles unless ``retired`` (then ``alive`` tells which). Inside ``reading``: one read
        of the device a scope, its arrays read-only."""
        return self.read_once(("particles", bool(retired)), lambda: self._read_particles(retired))

    def _read_particles(self, retired: bool) -> dict:
        n = self.n_particles
        read = fieldio.group(self.particles_fields, PARTICLE_READ).read()  # one launch
        out = {k: read[k][:n] for k in PARTICLE_READ}
        out["color"] = out["color"].astype(np.float32)
        out["alive"] = out["alive"].astype(bool)
        if not retired:
            keep = out.pop("alive")
            out = {k: v[keep] for k, v in out.items()}
        return out

    def source_colors(self) -> np.ndarray:
        """(sources, 3) linear RGB of each body, then each emitter: its own or its material kind's."""
        return np.array([b.color if b.color is not None else
                         DEFAULT_COLORS.get(self.scene.materials[b.material].kind, (0.8, 0.8, 0.8))
                         for b in self.sources], np.float32)

    def liquid_fraction(self) -> np.ndarray:
        """Liquid fraction (0 solid .. 1 liquid) of each live particle, by the device's enthalpy curve."""
        out = np.zeros(self.n_particles, self.np_real)
        heat.liquid_fractions(self.particles_fields, self.materials, out)
        return out[self.particles(retired=True)["alive"]]

    def total_mass(self) -> float:
        """Mass of the live particles (kg)."""
        return float(self.particles()["mass"].astype(np.float64).sum())

    def momentum(self) -> np.ndarray:
        s = self.particles()
        return (s["mass"][:, None].astype(np.float64) * s["v"]).sum(axis=0)

    def grid_mass(self) -> float:
        """Mass on the grid after a fresh P2G of the current state (kg)."""
        self._fresh_p2g()
        return float(mpm.grid_mass(self.grid))

    def grid_momentum(self) -> np.ndarray:
        """Momentum on the grid after a fresh P2G of the current state (kg m/s)."""
        self._fresh_p2g()
        return np.asarray(mpm.grid_momentum(self.grid))[: self.dim]

    def _fresh_p2g(self) -> None:
        if self.controller is not None:
            self.controller.sync_pose()  # P2G at the heat step reads the pose
        mpm.set_step(self.knobs, 0.0, self.t)  # P2G at dt = 0: no stress impulse
        self.knobs.heat_step[None] = 1  # every channel, the heat step's too (no conduct follows)
        mpm.clear_grid(self.grid, self.knobs)
        mpm.p2g(self.particles_fields, self.grid, self.materials, self.control_table, self.knobs)
        mpm.collect_blocks(self.grid, self.knobs)

    def active_blocks(self) -> int:
        return int(mpm.active_blocks(self.grid))


# the particle fields ``Simulation.particles`` returns
PARTICLE_READ = ("x", "v", "material", "body", "mass", "H", "T", "phase", "damage", "color", "part", "comp", "alive")


def _taichi_fields(container) -> dict:
    """The Taichi fields among ``container``'s attributes, by name."""
    import taichi as ti

    return {k: v for k, v in sorted(vars(container).items()) if isinstance(v, ti.Field)}


def _containers(sim: Simulation) -> dict:
    """``sim``'s attributes that hold Taichi fields (particles, knobs, tables), less ``SCRATCH``."""
    return {k: v for k, v in sorted(vars(sim).items())
            if k not in SCRATCH and hasattr(v, "__dict__") and _taichi_fields(v)}


# settings of how a run is launched, not of what it computes: the same bits either way (``fused``), or
# another order of the same sums (``sort_every``)
NOT_STATE = ("fused", "sort_every")


def _host_numbers(sim: Simulation) -> dict:
    """``sim``'s attributes that are numbers or numpy arrays: its host-side state (not ``NOT_STATE``,
    so that a checkpoint neither carries nor asks for them)."""
    return {k: v for k, v in sorted(vars(sim).items())
            if isinstance(v, (bool, int, float, np.ndarray, np.number)) and not k.startswith("__")
            and k not in NOT_STATE}
