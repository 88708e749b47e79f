"""Preview renderer: draws a Simulation's particles, colliders and domain box to an RGB image
with the kernels of ``kernels/render.py``.

3D scenes are seen through the scene's pinhole ``Camera``; 2D scenes as a side view that fits
the domain box. Buffers are allocated once per renderer and the camera lives in 0-D fields,
so rendering frame after frame never recompiles a kernel.
"""
from __future__ import annotations

import math

import numpy as np

from polyalloy.errors import ConfigError
from polyalloy.kernels import render as kr

PRESETS = {"preview": (640, 360), "film": (1920, 1080)}  # (width, height) px; divisible by export.MACRO_BLOCK
IMPOSTOR_RADIUS = {2: 1.0, 3: 0.75}  # in particle spacings, per dim: 2D discs leave no gaps, 3D balls overlap
SIDE_MARGIN = 0.04  # blank border around the domain box in the 2D view, as a fraction of the box size
MAX_SIZE = 8192  # px, per side


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


class PreviewRenderer:
    """Draws ``sim`` at ``width`` x ``height`` px; ``render()`` returns the current frame as an
    (height, width, 3) uint8 sRGB array. Reads the camera, background and collider colours
    from ``sim.scene`` at every frame, so they may change between frames."""

    def __init__(self, sim, width: int, height: int):
        for name, v in (("width", width), ("height", height)):
            if not (isinstance(v, (int, np.integer)) and 1 <= v <= MAX_SIZE):
                raise ConfigError(f"image {name} must be a whole number of pixels in [1, {MAX_SIZE}], got {v!r}")
        self.sim = sim
        self.width, self.height = int(width), int(height)
        scene, real = sim.scene, sim.real
        self.radius = IMPOSTOR_RADIUS[sim.dim] * scene.dx / scene.particles_per_cell
        self.frame = kr.Frame(self.width, self.height, real)
        view_class = kr.PinholeView if sim.dim == 3 else kr.SideView
        self.view = view_class(self.width, self.height, real)
        # one colour per particle source: the bodies, then the emitters
        self.stage = kr.Stage(sim.domain_lo, sim.domain_hi, len(sim.sources), len(scene.colliders), scene.dx, real)
        body_color = np.zeros((self.stage.body_color.shape[0], 3))
        body_color[: len(sim.sources)] = sim.source_colors()
        self.stage.body_color.from_numpy(body_color.astype(sim.np_real))
        if sim.dim == 2:
            self._fit_side_view()

    def _fit_side_view(self) -> None:
        lo, hi = self.sim.domain_lo, self.sim.domain_hi
        size = (hi - lo) * (1 + 2 * SIDE_MARGIN)
        scale = min(self.width / size[0], self.height / size[1])
        centre = (lo + hi) / 2
        self.view.scale[None] = scale
        self.view.corner[None] = centre - np.array([self.width, self.height]) / (2 * scale)

    def _set_camera(self) -> None:
        cam = self.sim.scene.camera
        if not (math.isfinite(cam.fov) and 1.0 <= cam.fov <= 170.0):
            raise ConfigError(f"camera fov must be in [1, 170] degrees, got {cam.fov!r}")
        right, up, forward = camera_axes(cam.position, cam.look_at, cam.up)
        self.view.eye[None] = np.asarray(cam.position, float)[:3]
        self.view.right[None] = right
        self.view.up[None] = up
        self.view.forward[None] = forward
        self.view.focal[None] = 0.5 * self.height / math.tan(math.radians(cam.fov) / 2)

    def _set_colors(self) -> None:
        scene = self.sim.scene
        bg = np.clip(np.asarray(scene.background, float)[:3], 0.0, 1.0)
        self.stage.sky_top[None] = np.minimum(bg * 1.6 + 0.02, 1.0)
        self.stage.sky_bottom[None] = bg * 0.5
        if scene.colliders:
            self.stage.collider_color.from_numpy(
                np.array([c.color for c in scene.colliders], float)[:, :3].astype(self.sim.np_real))

    def render(self) -> np.ndarray:
        """The current state of the simulation (at ``sim.t``) as an (H, W, 3) uint8 image."""
        sim = self.sim
        self._set_colors()
        parts, cols = sim.particles_fields, sim.colliders
        if sim.dim == 3:
            self._set_camera()
            kr.splat_particles(self.frame, self.view, parts, self.radius)
            kr.cast_shadows(self.stage, parts)
            kr.shade_pinhole(self.frame, self.view, self.stage, parts, cols, self.radius, sim.t)
        else:
            kr.splat_particles(self.frame, self.view, parts, self.radius)
            kr.shade_side(self.frame, self.view, self.stage, parts, cols, self.radius, sim.t)
        return self.frame.rgb.to_numpy()
