"""The live session: run a scene frame by frame, change its parameters, poke it, draw it to a
numpy image and reload its kernels, from Python, a notebook or the window (``polyalloy.window``).

    import polyalloy.live as live
    s = live.LiveSession("drop", dim=2)          # a shipped scene (options as keywords) or a Scene
    s.step(30)                                   # 30 frames of 1/fps s of scene time each
    s.set("gravity", 0.0)                        # on the next substep, nothing recompiles
    s.shoot_at(0.5, 0.5)                         # a gunshot where the view ray through the image
                                                 # point (0..1, top left) meets the metal
    image = s.render()                           # (H, W, 3) uint8
    s.reload()                                   # reload edited kernel modules, state kept

A window frame advances ``time_scale / fps`` seconds of scene time. Every change of a parameter
and every poke is a timeline event stamped with the frame it happened before, so ``save``
writes a run that ``LiveSession.load(path).replay()`` plays again exactly.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyalloy import runtime
from polyalloy.errors import ConfigError
from polyalloy.events import SHATTER_MIN_SPACINGS, Gunshot
from polyalloy.kernels import events as kev
from polyalloy.kernels import live as klive
from polyalloy.kernels import mpm

SIZE = (320, 184)  # px, the window's image (scaled up there) and the benchmark's: 640x360 draws 3x slower
VIEWS = ("surface", "points")
NOT_LIVE = {"density"}  # material parameters baked into the particles' mass: not changeable live


@dataclass
class Knob:
    """A live parameter: ``key`` (what ``LiveSession.set`` takes), its range and a label."""

    key: str
    lo: float
    hi: float
    label: str
    log: bool = False


class LiveSession:
    """A scene running frame by frame (see the module docstring).

    ``scene``: a shipped scene name, a path to a scene script or a ``Scene``; ``quality``;
    ``options``: ``--set`` style overrides (scene options or Scene keys); ``fps``: frames per
    second of scene time (default 60 in 2D, 30 in 3D: what one window frame advances);
    ``size``: (width, height) px of ``render``; ``kernels``: a folder of kernel modules to run
    on (``polyalloy.reload.use_kernels``); ``arch``: the backend if Taichi is not started yet.
    """

    def __init__(self, scene="drop", quality: str = "preview", options: dict | None = None, *, fps: float | None = None,
                 size=SIZE, view: str = "surface", kernels=None, arch: str = "cpu", **scene_options):
        from polyalloy import reload
        from polyalloy.scene import Scene, load_scene

        if not runtime.is_initialized():
            runtime.init(arch=arch)
        if kernels is not None:
            reload.use_kernels(kernels)
        options = dict(options or {}, **scene_options)
        if isinstance(scene, Scene):
            if options:
                raise ConfigError("options apply to a scene loaded by name; set them on the Scene instead")
            self._source = copy.deepcopy(scene)
        else:
            self._source = (scene, quality, options)
            load_scene(scene, quality, options)  # a bad name or option fails here, before any simulation
        self.size = (int(size[0]), int(size[1]))
        if view not in VIEWS:
            raise ConfigError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        self.view = view
        self.reloader = reload.KernelReloader()
        self.last_reload: reload.Reload | None = None
        self.errors: list[str] = []  # every reload error so far, newest last
        self.sim = None
        self._renderer = None
        self._fps = fps
        self.reset()

    # --- the run ------------------------------------------------------------------------
    def _build_scene(self):
        from polyalloy.scene import load_scene

        if isinstance(self._source, tuple):
            return load_scene(*self._source)
        return copy.deepcopy(self._source)

    def reset(self) -> None:
        """Start the scene again from t = 0 with its own parameters; the timeline is cleared. The
        simulation is built once and then restored from its first state, so a reset compiles
        nothing (a new simulation would instantiate every kernel again for its new fields)."""
        from polyalloy.simulation import Simulation

        if self.sim is None:
            self._scene0 = self._build_scene()
            self.sim = Simulation(copy.deepcopy(self._scene0))
            self._state0, self._fills0 = self.sim.state_dict(), list(self.sim.fills)
        else:
            self.sim.load_state_dict(self._state0)
            self.sim.fills = list(self._fills0)
            self.sim.scene = copy.deepcopy(self._scene0)
        self.scene = self.sim.scene
        self.fps = float(self._fps or (60 if self.scene.dim == 2 else 30))
        if not 1 <= self.fps <= 1000:
            raise ConfigError(f"fps must be in [1, 1000], got {self.fps}")
        self.time_scale = 1.0
        # a click's gunshot; shatter (m, 0: off): the frozen pieces it hits break into fragments that size
        self.shot = dict(speed=4.0, radius=3 * self.scene.dx, damage=1.0, shatter=0.0)
        self.pull_settings = dict(frequency=3.0, damping=1.0, radius=3 * self.scene.dx, max_accel=200.0)
        self.brush_settings = dict(power=2.0e5, radius=4 * self.scene.dx)  # W/kg (+ heats, - chills)
        self.timeline: list[dict] = []
        self._pull = None  # [centre, target, radius] of the grab in progress
        self._brush = None  # [centre, specific power, radius] of the brush in progress
        self.sim.forces[:] = [self._pull_force, self._brush_force]
        self.frames = 0
        self.sim_seconds = self.render_seconds = 0.0  # wall time spent in each since the start

    def step(self, frames: int = 1) -> None:
        """Advance ``frames`` frames of ``time_scale / fps`` s each (a pending kernel reload runs
        its first frame on trial: if it fails, the old kernels come back and redo the frame)."""
        for _ in range(int(frames)):
            self._fire(lambda: self._advance())

    def _advance(self) -> None:
        t0 = time.perf_counter()
        self.sim.advance_to(self.sim.t + self.time_scale / self.fps)
        self.sim.frame += 1
        self.frames += 1
        self.sim_seconds += time.perf_counter() - t0

    def _fire(self, work, drawing: bool = False):
        """Run ``work`` (a frame, or a ``drawing``); the first runs after a reload are on trial: a
        failure rolls the kernels and the state back and runs ``work`` again with the old ones."""
        rec = self.reloader.pending
        if rec is None:
            return work()
        state = self.sim.state_dict()
        frames = self.frames
        try:
            out = work()
        except Exception as exc:  # noqa: BLE001 - a broken kernel of the user's: undo and report
            self.reloader.rollback(exc)
            self.sim.load_state_dict(state)
            self.frames = frames
            self.last_reload = rec
            self.errors.append(rec.error)
            return work()
        if drawing or not any(m in ("render", "shade") for m in rec.modules):  # every new kernel ran
            self.last_reload = self.reloader.commit()
        return out

    # --- parameters ---------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        """The live parameters of this scene (what the window shows as sliders)."""
        sc = self.scene
        out = [Knob("gravity", -30.0, 30.0, "gravity m/s2"), Knob("time_scale", 0.05, 2.0, "time scale"),
               Knob("air_temperature", 50.0, 2000.0, "air K"),
               Knob("shot.shatter", 0.0, 40 * self.scene.spacing, "shot shatter m")]
        if self.sim.controlled:
            out += [Knob("control.gain", 0.0, 2.0, "gain"),
                    Knob("control.frequency", 0.2, 10.0, "frequency Hz"),
                    Knob("control.damping", 0.0, 3.0, "damping"),
                    Knob("control.glitch", 0.0, 1.0, "glitch"),
                    Knob("control.mimic_decay", 0.05, 10.0, "mimic decay s", log=True)]
        for c in sc.colliders:
            if self.sim.thermal:
                out.append(Knob(f"colliders.{c.name}.temperature", 0.0, 2000.0, f"{c.name} K (0 off)"))
        for e in sc.emitters:
            out.append(Knob(f"emitters.{e.name}.rate", e.rate / 10, e.rate * 10, f"{e.name} rate m3/s", log=True))
        for name, m in sc.materials.items():
            for key, label in (("youngs_modulus", "E Pa"), ("bulk_modulus", "K Pa"), ("yield_strain", "yield"),
                               ("viscosity", "visc Pa s")):
                if hasattr(m, key) and getattr(m, key) > 0:
                    v = getattr(m, key)
                    out.append(Knob(f"materials.{name}.{key}", v / 10, v * 10,
                                    label if len(sc.materials) == 1 else f"{name} {label}", log=True))
        return out

    def get(self, key: str) -> float:
        """The current value of the live parameter ``key`` (see ``knobs``)."""
        sc, parts = self.scene, key.split(".")
        if key == "gravity":
            return float(self.sim.knobs.gravity[None][1])
        if key == "time_scale":
            return self.time_scale
        if key == "air_temperature":
            return float(self.sim.knobs.air_temperature[None])
        if key == "shot.shatter":
            return float(self.shot["shatter"])
        if parts[0] == "control" and len(parts) == 2:
            return float(getattr(sc.control, parts[1]))
        if parts[0] == "colliders" and len(parts) == 3 and parts[2] == "temperature":
            return float(self._collider(parts[1]).temperature or 0.0)
        if parts[0] == "emitters" and len(parts) == 3 and parts[2] == "rate":
            return float(self._emitter(parts[1])[1].rate)
        if parts[0] == "materials" and len(parts) == 3 and parts[1] in sc.materials:
            return float(getattr(sc.materials[parts[1]], parts[2]))
        raise ConfigError(f"unknown live parameter {key!r}; known: {', '.join(k.key for k in self.knobs())}")

    def set(self, key: str, value: float) -> None:
        """Change the live parameter ``key`` (``knobs()`` lists them, e.g. ``gravity``,
        ``control.gain``, ``colliders.floor.temperature``, ``materials.polyalloy.viscosity``):
        written to a device field, in effect from the next substep, no recompile."""
        self._record("set", key=key, value=float(value))

    def _set(self, key: str, value: float) -> None:
        sim, sc, parts = self.sim, self.scene, key.split(".")
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if key == "gravity":
            sc.set("gravity", value)
            g = np.zeros(sim.dim)
            g[1] = value
            sim.knobs.gravity[None] = g.tolist()
        elif key == "time_scale":
            if not 0 < value <= 10:
                raise ConfigError(f"time_scale must be in (0, 10], got {value}")
            self.time_scale = value
        elif key == "air_temperature":
            sc.set("air_temperature", value)
            sim.knobs.air_temperature[None] = value
        elif key == "shot.shatter":
            if value < 0:
                raise ConfigError(f"shot.shatter must be >= 0 m (0: off), got {value}")
            # a network finer than that cuts nothing whole: below it the slider means off
            self.shot["shatter"] = value if value >= SHATTER_MIN_SPACINGS * self.scene.spacing else 0.0
        elif parts[0] == "control" and len(parts) == 2:
            if not sim.controlled:
                raise ConfigError(f"scene {sc.name!r} has no controlled body, so no {key}")
            sim.set_control(**{parts[1]: value})
        elif parts[0] == "colliders" and len(parts) == 3 and parts[2] == "temperature":
            c = self._collider(parts[1])
            if not sim.thermal:
                raise ConfigError(f"scene {sc.name!r} runs no heat step, so a collider temperature does nothing")
            if not 0 <= value < 1e5:
                raise ConfigError(f"{key} must be in [0, 1e5) K (0: adiabatic), got {value}")
            c.temperature = value or None
            owner = sim.colliders.owner.to_numpy()
            temps = sim.colliders.temperature.to_numpy()
            temps[(owner == sc.colliders.index(c)) & (np.arange(len(owner)) < int(sim.colliders.count[None]))] = value
            sim.colliders.temperature.from_numpy(temps)
        elif parts[0] == "emitters" and len(parts) == 3 and parts[2] == "rate":
            self._set_rate(parts[1], value)
        elif parts[0] == "materials" and len(parts) == 3 and parts[1] in sc.materials:
            if parts[2] in NOT_LIVE:
                raise ConfigError(f"{key} is baked into the particles' mass; change it with --set before the run")
            sc.materials[parts[1]] = sc.materials[parts[1]].replace(**{parts[2]: value})
            sim.upload_materials()
            sim.update_limits()
            sim.knobs.max_wave[None] = max(float(sim.knobs.max_wave[None]),
                                           mpm.max_wave_speed(sim.particles_fields, sim.materials, 0, sim.n_particles))
        else:
            self.get(key)  # the unknown-key error with the list of known ones

    def _collider(self, name):
        for c in self.scene.colliders:
            if c.name == name:
                return c
        raise ConfigError(f"no collider {name!r} in scene {self.scene.name!r}")

    def _emitter(self, name):
        for i, e in enumerate(self.scene.emitters):
            if e.name == name:
                return i, e
        raise ConfigError(f"no emitter {name!r} in scene {self.scene.name!r}")

    def _set_rate(self, name: str, rate: float) -> None:
        """Re-time the emitter's fills still to come at ``rate`` (m^3/s); its pool of particles was
        allocated with the simulation, so a faster rate empties it sooner."""
        sim, (ei, em) = self.sim, self._emitter(name)
        if not rate > 0:
            raise ConfigError(f"emitters.{name}.rate must be > 0 m^3/s, got {rate}")
        source = len(self.scene.bodies) + ei
        body = sim.particles_fields.body.to_numpy()
        mine = [k for k, f in enumerate(sim.fills) if body[f[1]] == source]
        done = [k for k in mine if k < sim._next_fill]
        todo = [k for k in mine if k >= sim._next_fill]
        if todo:
            volume = (sim.fills[todo[0]][2] - sim.fills[todo[0]][1]) * (self.scene.dx / self.scene.particles_per_cell) ** sim.dim
            last = sim.fills[done[-1]][0] if done else max(em.start, sim.t)
            t = max(last + volume / rate, sim.t)
            for k in todo:
                sim.fills[k] = (t,) + tuple(sim.fills[k][1:])
                t += volume / rate
            rest = sim.fills[sim._next_fill:]
            sim.fills[sim._next_fill:] = sorted(rest, key=lambda f: f[0])
        self.scene.emitters[ei] = em.__class__(**{**em.__dict__, "rate": rate})

    # --- pokes --------------------------------------------------------------------------
    def screen_ray(self, u: float, v: float) -> tuple[np.ndarray, np.ndarray]:
        """The view ray (origin, unit direction; m) through the image point (u, v) in [0, 1]
        (from the top left). In 2D (a side view) the ray comes in from the left edge of the
        domain, along +x, at the point's height: shots hit the first metal from the left."""
        w, h = self.size
        if self.sim.dim == 2:
            r = self._renderer_or_new()
            s, corner = float(r.view.scale[None]), r.view.corner.to_numpy()
            y = corner[1] + (1 - v) * h / s
            return np.array([self.sim.domain_lo[0] - 1.0, y]), np.array([1.0, 0.0])
        from polyalloy.render import camera_axes

        cam = self.scene.camera
        eye, look = cam.at(self.sim.t)
        right, up, forward = camera_axes(eye, look, cam.up)
        focal = 0.5 * h / math.tan(math.radians(cam.fov) / 2)
        d = forward * focal + right * (u - 0.5) * w - up * (v - 0.5) * h
        return np.asarray(eye, float), d / np.linalg.norm(d)

    def screen_point(self, u: float, v: float, depth: float | None = None) -> np.ndarray:
        """The world point (m) under the image point (u, v): in 2D the point itself; in 3D on the
        view ray at ``depth`` (m from the eye; default: the camera's look-at distance)."""
        if self.sim.dim == 2:
            r = self._renderer_or_new()
            s, corner = float(r.view.scale[None]), r.view.corner.to_numpy()
            w, h = self.size
            return corner + np.array([u * w, (1 - v) * h]) / s
        origin, d = self.screen_ray(u, v)
        if depth is None:
            eye, look = self.scene.camera.at(self.sim.t)
            depth = float(np.linalg.norm(np.asarray(look) - np.asarray(eye)))
        return origin + depth * d

    def hit(self, origin, direction, radius: float | None = None) -> np.ndarray | None:
        """Where the ray (origin, direction) first passes within ``radius`` (default: the shot's)
        of a live particle, or None."""
        d = np.asarray(direction, float)[: self.sim.dim]
        d = d / np.linalg.norm(d)
        o = np.asarray(origin, float)[: self.sim.dim]
        s = klive.ray_hit(self.sim.particles_fields, o.astype(self.sim.np_real), d.astype(self.sim.np_real),
                          float(radius or self.shot["radius"]))
        return None if s < 0 else o + s * d

    def shoot(self, origin, direction, speed: float | None = None, radius: float | None = None,
              damage: float | None = None) -> np.ndarray | None:
        """A gunshot along the ray (origin, direction) where it meets the metal: the particles
        within ``radius`` of the hit point take ``speed`` m/s along the ray (the impulse is speed
        x the mass hit) and ``damage``; with ``shot["shatter"]`` > 0 (the ``shot.shatter`` knob) the
        frozen pieces it hits shatter into fragments that size (``Simulation.shatter``). Returns the
        hit point, or None on a miss (no event)."""
        radius = float(radius or self.shot["radius"])
        point = self.hit(origin, direction, radius)
        if point is None:
            return None
        d = np.asarray(direction, float)[: self.sim.dim]
        m = kev.mass_in_sphere(self.sim.particles_fields, point.astype(self.sim.np_real), radius)
        speed = self.shot["speed"] if speed is None else speed
        self._record("shot", point=point.tolist(), direction=(d / np.linalg.norm(d)).tolist(),
                     impulse=float(speed * m), radius=radius,
                     damage=float(self.shot["damage"] if damage is None else damage),
                     shatter=float(self.shot["shatter"]))
        return point

    def shoot_at(self, u: float, v: float, **kw) -> np.ndarray | None:
        """``shoot`` along the view ray through the image point (u, v) (0..1 from the top left)."""
        return self.shoot(*self.screen_ray(u, v), **kw)

    def grab(self, point, radius: float | None = None) -> None:
        """Start a pull: a spring (``pull_settings``: frequency, damping) draws the metal within
        ``radius`` of ``point`` toward the target (``drag``) until ``release``."""
        self._record("grab", point=np.asarray(point, float)[: self.sim.dim].tolist(),
                     radius=float(radius or self.pull_settings["radius"]))

    def drag(self, target) -> None:
        """Move the pull's target to ``target`` (m)."""
        self._record("drag", target=np.asarray(target, float)[: self.sim.dim].tolist())

    def release(self) -> None:
        self._record("release")

    def brush(self, point, power: float | None = None, radius: float | None = None) -> None:
        """Heat (power > 0, W/kg) or chill (< 0) the metal within ``radius`` of ``point`` from now
        until ``brush_stop`` (or a brush elsewhere); ``brush_settings`` holds the defaults."""
        self._record("brush", point=np.asarray(point, float)[: self.sim.dim].tolist(),
                     power=float(self.brush_settings["power"] if power is None else power),
                     radius=float(radius or self.brush_settings["radius"]))

    def brush_stop(self) -> None:
        self._record("brush_stop")

    def _pull_force(self, sim, dt: float) -> None:
        """Substep force of the grab: a damped spring on the grabbed blob's centre of mass."""
        if self._pull is None:
            return
        centre, target, radius = self._pull
        out = np.zeros(1 + 2 * sim.dim, sim.np_real)
        klive.sphere_moments(sim.particles_fields, centre.astype(sim.np_real), radius, out)
        if out[0] <= 0:
            return
        c, v = out[1:1 + sim.dim] / out[0], out[1 + sim.dim:] / out[0]
        w = 2 * math.pi * self.pull_settings["frequency"]
        a = w * w * (target - c) - 2 * self.pull_settings["damping"] * w * v
        cap = self.pull_settings["max_accel"]
        if np.linalg.norm(a) > cap:
            a *= cap / np.linalg.norm(a)
        kev.kick(sim.particles_fields, sim.materials, c.astype(sim.np_real), radius, (a * dt).astype(sim.np_real), 0.0, 0.0, 0.0)
        self._pull[0] = c  # the grab follows the metal it holds
        sim.knobs.max_speed[None] = max(float(sim.knobs.max_speed[None]), float(np.linalg.norm(v + a * dt)))

    def _brush_force(self, sim, dt: float) -> None:
        if self._brush is None:
            return
        centre, power, radius = self._brush
        c = centre.astype(sim.np_real)
        m = kev.mass_in_sphere(sim.particles_fields, c, radius)
        if m > 0:
            missing = kev.kick(sim.particles_fields, sim.materials, c, radius, np.zeros(sim.dim, sim.np_real), 0.0, 0.0, power * dt)
            sim.book_event_heat(power * dt * m, missing, f"the brush of {-power:g} W/kg")

    # --- the timeline -------------------------------------------------------------------
    def _record(self, kind: str, **args) -> None:
        self._apply(kind, args)
        self.timeline.append(dict(frame=self.frames, t=self.sim.t, kind=kind, **args))

    def _apply(self, kind: str, a: dict) -> None:
        d = self.sim.dim
        if kind == "set":
            self._set(a["key"], a["value"])
        elif kind == "shot":
            self.sim.apply_impulse(Gunshot(self.sim.t, tuple(a["point"]), tuple(a["direction"]), a["impulse"],
                                           a["radius"], a["damage"], a.get("shatter", 0.0)))
        elif kind == "grab":
            p = np.asarray(a["point"], float)[:d]
            self._pull = [p, p.copy(), a["radius"]]
        elif kind == "drag":
            if self._pull is not None:
                self._pull[1] = np.asarray(a["target"], float)[:d]
        elif kind == "release":
            self._pull = None
        elif kind == "brush":
            self._brush = [np.asarray(a["point"], float)[:d], a["power"], a["radius"]]
        elif kind == "brush_stop":
            self._brush = None
        else:
            raise ConfigError(f"unknown timeline event {kind!r}")

    def record(self) -> dict:
        """The run as plain data: the scene's source, fps and the timeline (see ``save``)."""
        if not isinstance(self._source, tuple):
            raise ConfigError("a session of a Scene object cannot be saved; start it from a scene name or file")
        name, quality, options = self._source
        return dict(scene=name, quality=quality, options=options, fps=self.fps, frames=self.frames,
                    timeline=self.timeline)

    def save(self, path) -> Path:
        """Write ``record()`` as JSON to ``path``."""
        from polyalloy.export import write_json_atomic

        return write_json_atomic(path, self.record())

    @classmethod
    def load(cls, path, **kw) -> "LiveSession":
        """A session of the run saved at ``path``, at t = 0; ``replay()`` plays its timeline."""
        try:
            rec = json.loads(Path(path).read_text())
            scene, quality, options, fps = rec["scene"], rec["quality"], rec["options"], rec["fps"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a saved live run: {exc}") from None
        s = cls(scene, quality, options, fps=fps, **kw)
        s._saved = rec
        return s

    def replay(self, record: dict | None = None) -> None:
        """From t = 0, play ``record`` (default: the one ``load`` read): every event before the
        frame it was made before, to the recorded number of frames."""
        rec = record or getattr(self, "_saved", None)
        if rec is None:
            raise ConfigError("nothing to replay: load a saved run or pass a record")
        self.reset()
        events = sorted(rec["timeline"], key=lambda e: e["frame"])
        k = 0
        for frame in range(int(rec["frames"]) + 1):
            while k < len(events) and events[k]["frame"] == frame:
                e = {key: v for key, v in events[k].items() if key not in ("frame", "t", "kind")}
                self._record(events[k]["kind"], **e)
                k += 1
            if frame < int(rec["frames"]):
                self.step()

    # --- drawing ------------------------------------------------------------------------
    def _renderer_or_new(self):
        if self._renderer is None:
            from polyalloy.render import SurfaceRenderer

            self._renderer = SurfaceRenderer(self.sim, self.size[0], self.size[1], "live")
        return self._renderer

    def render(self, view: str | None = None) -> np.ndarray:
        """The current state as an (H, W, 3) uint8 image: ``surface`` (the renderer's ``live``
        quality) or ``points`` (each particle a dot in its colour, over black)."""
        view = view or self.view
        if view not in VIEWS:
            raise ConfigError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")

        def draw():
            t0 = time.perf_counter()
            img = self._renderer_or_new().render() if view == "surface" else self._points()
            self.render_seconds += time.perf_counter() - t0
            return img

        return self._fire(draw, drawing=view == "surface")

    def _points(self) -> np.ndarray:
        """Every live particle as a 2x2 px dot of its colour (sRGB), nearest in front."""
        from polyalloy.export import srgb8

        w, h = self.size
        p = self.sim.particles()
        x = p["x"].astype(float)
        if self.sim.dim == 2:
            r = self._renderer_or_new()
            s, corner = float(r.view.scale[None]), r.view.corner.to_numpy()
            px, py, depth = (x[:, 0] - corner[0]) * s, h - (x[:, 1] - corner[1]) * s, np.zeros(len(x))
        else:
            from polyalloy.render import camera_axes

            cam = self.scene.camera
            eye, look = cam.at(self.sim.t)
            right, up, forward = camera_axes(eye, look, cam.up)
            rel = x - np.asarray(eye)
            depth = rel @ forward
            f = 0.5 * h / math.tan(math.radians(cam.fov) / 2) / np.maximum(depth, 1e-6)
            px, py = 0.5 * w + f * (rel @ right), 0.5 * h - f * (rel @ up)
        img = np.zeros((h, w, 3), np.uint8)
        keep = (depth >= 0) & (px >= 0) & (px < w - 1) & (py >= 0) & (py < h - 1)
        order = np.argsort(-depth[keep])  # far first, so the near ones are written last
        i, j = py[keep][order].astype(int), px[keep][order].astype(int)
        rgb = srgb8(p["color"][keep][order])
        for di in (0, 1):
            for dj in (0, 1):
                img[i + di, j + dj] = rgb
        return img

    def frame(self) -> np.ndarray:
        """One window frame: ``step`` then ``render``."""
        self.step()
        return self.render()

    # --- kernels ------------------------------------------------------------------------
    def reload(self, modules=None):
        """Reload the kernel modules whose files changed (or ``modules``) with what imports them;
        the next frame runs the new kernels from the same particle state. Returns the
        ``polyalloy.reload.Reload`` (its ``error`` set when the new code failed to import: the
        previous kernels keep running). A failure on the first frame rolls back the same way."""
        rec = self.reloader.reload(modules)
        if rec.error:
            self.last_reload = rec
            self.errors.append(rec.error)
        elif rec.modules:
            self.last_reload = rec
        return rec

    def poll(self):
        """``reload`` the kernel modules whose files changed since the last look, if any (the
        window calls this every frame); returns the Reload or None."""
        names = self.reloader.changed()
        return self.reload(names) if names else None

    def status(self) -> str:
        """One line for the window: time, frame rate, particles, the last reload."""
        line = f"t = {self.sim.t:.2f} s  frame {self.frames}  {self.sim.n_particles:,} particles"
        rec = self.last_reload
        if rec is not None:
            if rec.error:
                line += f"\nreload FAILED (old kernels running): {rec.error}"
            elif rec.seconds is not None:
                line += f"\nreloaded {', '.join(rec.modules)} in {rec.seconds:.1f} s (save -> first frame)"
            else:
                line += f"\nreloading {', '.join(rec.modules)} ..."
        return line

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
            self.sim = None


def benchmark(session: LiveSession, frames: int, view: str = "surface") -> dict:
    """Time ``frames`` window frames (step + render) after one warm-up frame (the compiles):
    frames per second, the real-time factor (scene seconds per wall second) and the split."""
    if not 1 <= frames <= 100_000:
        raise ConfigError(f"--benchmark needs 1 to 100000 frames, got {frames}")
    t0 = time.perf_counter()
    session.step()
    session.render(view)
    warm = time.perf_counter() - t0
    sim0, ren0, t_sim0, subs0 = session.sim_seconds, session.render_seconds, session.sim.t, session.sim.substeps
    t0 = time.perf_counter()
    for _ in range(frames):
        session.step()
        session.render(view)
    wall = time.perf_counter() - t0
    sc = session.scene
    return dict(scene=sc.name, dim=sc.dim, quality=sc.quality, particles=session.sim.n_particles, view=view,
                size=list(session.size), frames=frames, frame_dt=session.time_scale / session.fps,
                fps=frames / wall, realtime=(session.sim.t - t_sim0) / wall,
                sim_ms=1000 * (session.sim_seconds - sim0) / frames,
                render_ms=1000 * (session.render_seconds - ren0) / frames,
                substeps_per_frame=(session.sim.substeps - subs0) / frames, warmup_s=warm)
