"""Surface renderer: draws a Simulation's particles as a smooth liquid-metal surface with the
scene's colliders, floor and environment, with the kernels of ``kernels/render.py`` (the
surface) and ``kernels/shade.py`` (shading and compositing); the method is explained there.

3D scenes are seen through the scene's pinhole ``Camera`` (keyframable: ``Camera.keys``); 2D
scenes as an orthographic side view that fits the domain box. ``QUALITY`` names the render
settings (``live``: the fast path for an interactive window; ``preview``; ``film``) and
``PRESETS`` the image size of each ``--quality``. Buffers are allocated once per renderer and the
camera, environment and colours live in fields, so frame after frame never recompiles a kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.kernels import render as kr
from polyalloy.kernels import shade as ks
from polyalloy.materials import LiquidNitrogen, MoltenSteel

PRESETS = {"preview": (640, 360), "film": (1920, 1080)}  # (width, height) px; divisible by export.MACRO_BLOCK
SPHERE_RADIUS = 1.0  # splatted sphere radius, in particle spacings: covers the gaps of a jittered lattice
COVER_RADIUS = 0.6  # particle spacings; the silhouette: about the boundary of the volume the particles fill
DEPTH_SIGMA = 12.0  # sphere radii; depth steps well above this are separate sheets, not bumps (smaller: streaks at folds)
COVER_SIGMA = 0.5  # sphere radii; blur of the coverage mask that rounds the silhouette
RELIEF = 10.0  # sphere radii; width of the rounded rim at the liquid's silhouette
RELIEF_SIGMA = {2: 4.0, 3: 2.0}  # sphere radii, per dim; blur of the coverage in which the distance to the
# silhouette is read (wider in 2D, where it alone shapes the surface: holes of splashing liquid fill in)
SIDE_MARGIN = 0.04  # blank border around the domain box in the 2D view, as a fraction of the box size
MAX_SIZE = 8192  # px, per side


@dataclass(frozen=True)
class RenderSettings:
    """How hard a frame works: ``passes`` of the separable bilateral filter, its screen sigma in
    sphere radii (``smoothing``) capped at ``max_filter_px``, sphere-tracing steps of primary and
    reflected rays (``march_steps``, ``reflect_steps``; 0 skips colliders in reflections) and the
    shadow filter (``shadow_blur`` columns each side)."""

    passes: int
    smoothing: float
    max_filter_px: float
    march_steps: int
    reflect_steps: int
    shadow_blur: int


QUALITY = {
    "live": RenderSettings(passes=1, smoothing=2.0, max_filter_px=8.0, march_steps=40, reflect_steps=0, shadow_blur=1),
    "preview": RenderSettings(passes=2, smoothing=2.0, max_filter_px=16.0, march_steps=64, reflect_steps=32,
                              shadow_blur=2),
    "film": RenderSettings(passes=3, smoothing=2.0, max_filter_px=48.0, march_steps=128, reflect_steps=64,
                           shadow_blur=3),
}


def camera_axes(position, look_at, up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit (right, up, forward) axes of a camera at ``position`` looking at ``look_at`` (m)."""
    eye, target, up = (np.asarray(v, float)[:3] for v in (position, look_at, up))
    forward = target - eye
    if not (np.all(np.isfinite(forward)) and np.linalg.norm(forward) > 1e-9):
        raise ConfigError(f"camera position {tuple(eye)} and look_at {tuple(target)} must differ")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        raise ConfigError(f"camera up {tuple(up)} must not be parallel to the view direction")
    right /= np.linalg.norm(right)
    return right, np.cross(right, forward), forward


def source_look(material) -> int:
    """The look of particles of ``material``: molten steel glows, nitrogen is a pale liquid, the
    rest (polyalloy first of all) is metal."""
    if isinstance(material, MoltenSteel):
        return kr.MOLTEN
    if isinstance(material, LiquidNitrogen):
        return kr.CRYO
    return kr.METAL


def shadow_map_layout(lo, hi, cell: float) -> tuple[tuple, tuple]:
    """Corner (x, z, m) and columns of a 3D shadow map of ``cell`` m over the floor of the domain box
    ``lo``..``hi``, widened by the box's height on every side for shadows cast at a slant."""
    margin = hi[1] - lo[1]
    corner = (lo[0] - margin, lo[2] - margin)
    columns = (math.ceil((hi[0] - lo[0] + 2 * margin) / cell), math.ceil((hi[2] - lo[2] + 2 * margin) / cell))
    return corner, columns


class SurfaceRenderer:
    """Draws ``sim`` at ``width`` x ``height`` px with the ``quality`` settings of ``QUALITY`` (None:
    the scene's quality); ``render()`` returns the frame at ``sim.t`` as an (height, width, 3)
    uint8 sRGB array. Camera, environment and collider colours are read from ``sim.scene`` at
    every frame, so they may change between frames."""

    def __init__(self, sim, width: int, height: int, quality: str | None = None):
        for name, v in (("width", width), ("height", height)):
            if not (isinstance(v, (int, np.integer)) and 1 <= v <= MAX_SIZE):
                raise ConfigError(f"image {name} must be a whole number of pixels in [1, {MAX_SIZE}], got {v!r}")
        quality = sim.scene.quality if quality is None else quality
        if quality not in QUALITY:
            raise ConfigError(f"unknown render quality {quality!r}; choose from {', '.join(QUALITY)}")
        self.sim = sim
        self.settings = QUALITY[quality]
        self.width, self.height = int(width), int(height)
        scene, real, d = sim.scene, sim.real, sim.dim
        spacing = scene.dx / scene.particles_per_cell
        self.radius, self.cover_radius = SPHERE_RADIUS * spacing, COVER_RADIUS * spacing
        self.frame = kr.Frame(self.width, self.height, real)
        self.view = (kr.PinholeView if d == 3 else kr.SideView)(self.width, self.height, real)
        self.looks = kr.Looks(len(sim.sources))
        self.stage = ks.Stage(sim.domain_lo, sim.domain_hi, len(scene.colliders), real)
        self.env = ks.Environment(real)
        self.shadow = self._shadow_map(real)
        ks.tabulate_blackbody(self.env)
        kind = np.zeros(self.looks.kind.shape[0], np.int32)
        kind[: len(sim.sources)] = [source_look(scene.materials[s.material]) for s in sim.sources]
        self.looks.kind.from_numpy(kind)
        mixes = np.zeros_like(kind)
        mixes[: len(sim.sources)] = [scene.materials[s.material].mixing > 0 and k != kr.CRYO
                                     for s, k in zip(sim.sources, kind)]
        self.looks.mixes.from_numpy(mixes)
        if d == 2:
            self._fit_side_view()

    def _shadow_map(self, real) -> kr.ShadowMap:
        """In 3D, a map over the floor under the domain, widened by the domain's height on every
        side for shadows cast at a slant; in 2D (no shadows) a single column."""
        lo, hi = self.sim.domain_lo, self.sim.domain_hi
        if self.sim.dim == 2:
            return kr.ShadowMap((0.0, 0.0), (1, 1), 1.0, float(lo[1]), real)
        cell = self.sim.scene.dx / self.sim.scene.particles_per_cell
        corner, columns = shadow_map_layout(lo, hi, cell)
        return kr.ShadowMap(corner, columns, cell, float(lo[1]), real)

    def _fit_side_view(self) -> None:
        lo, hi = self.sim.domain_lo, self.sim.domain_hi
        size = (hi - lo) * (1 + 2 * SIDE_MARGIN)
        scale = min(self.width / size[0], self.height / size[1])
        centre = (lo + hi) / 2
        self.view.scale[None] = scale
        self.view.corner[None] = centre - np.array([self.width, self.height]) / (2 * scale)

    def _set_camera(self) -> None:
        cam = self.sim.scene.camera
        cam.validate()
        position, look_at = cam.at(self.sim.t)
        right, up, forward = camera_axes(position, look_at, cam.up)
        self.view.eye[None] = position
        self.view.right[None] = right
        self.view.up[None] = up
        self.view.forward[None] = forward
        self.view.focal[None] = 0.5 * self.height / math.tan(math.radians(cam.fov) / 2)

    def _set_scene(self) -> None:
        scene, env = self.sim.scene, self.env
        e = scene.environment
        for name in ("zenith", "horizon", "ground", "floor", "floor_alt"):
            getattr(env, name)[None] = np.asarray(getattr(e, name), float)
        env.tile[None] = e.tile
        env.exposure[None] = e.exposure
        env.n_lights[None] = len(e.lights)
        for k, light in enumerate(e.lights):
            direction = np.asarray(light.direction, float)
            env.light_dir[k] = direction / np.linalg.norm(direction)
            env.light_color[k] = np.asarray(light.color, float)
            env.light_width[k] = math.radians(light.size) ** 2
        key = np.asarray(e.lights[0].direction if e.lights else (0.0, 1.0, 0.0), float)
        self.shadow.light[None] = key / np.linalg.norm(key)
        if scene.colliders:
            self.stage.collider_color.from_numpy(
                np.array([c.color for c in scene.colliders], float)[:, :3].astype(self.sim.np_real))

    def render(self) -> np.ndarray:
        """The current state of the simulation (at ``sim.t``) as an (H, W, 3) uint8 image."""
        sim, s, frame = self.sim, self.settings, self.frame
        self._set_scene()
        parts = sim.particles_fields
        if sim.dim == 3:
            self._set_camera()
            kr.cast_shadows(self.shadow, parts)
        kr.splat_spheres(frame, self.view, parts, self.radius, self.cover_radius)
        kr.gather_surface(frame, self.looks, parts)
        r = self.radius
        for k in range(s.passes):
            for axis, src, dst in ((0, frame.a, frame.b), (1, frame.b, frame.a)):
                kr.smooth_surface(frame, self.view, src, dst, axis, k == 0, s.smoothing * r, DEPTH_SIGMA * r,
                                  COVER_SIGMA * r, RELIEF_SIGMA[sim.dim] * r, s.max_filter_px)
        ks.compose(frame, self.view, self.env, self.stage, self.shadow, sim.colliders, sim.t, s.march_steps,
                   s.reflect_steps, s.shadow_blur, RELIEF_SIGMA[sim.dim] * r, RELIEF * r)
        return frame.rgb.to_numpy()

    def alpha(self) -> np.ndarray:
        """(H, W) opacity (0..1) of the liquid in the last frame, before depth compositing."""
        cov = self.frame.a.cov.to_numpy()
        lo, hi = ks.ALPHA_EDGE
        u = np.clip((cov - lo) / (hi - lo), 0.0, 1.0)
        return u * u * (3 - 2 * u) * self.frame.a.ok.to_numpy()
