"""The ``polyalloy live`` window: a thin Taichi GGUI layer over ``polyalloy.live.LiveSession``.

The image (the session's ``render``) fills the right of the window, scaled up; the controls
panel on the left holds a slider per live parameter (``LiveSession.knobs``), buttons, the
status and the last reload (its time, or its error: file, line, message). Controls:

- left click: shoot along the view ray where it meets the metal; shift + left drag: heat
  brush, ctrl + left drag: chill brush; right drag: pull the metal toward the cursor (a spring);
- space: pause / run, n: one step, r: reset, p: screenshot (PNG), m: record on / off (MP4),
  v: surface / points view, o: save the run (its timeline) as JSON for ``--replay``;
- 3D: arrow keys orbit the camera about its look-at point, + and - zoom;
- a saved file in the kernel folder reloads it (``LiveSession.poll``).

GGUI needs Vulkan; on a machine without a GPU, Mesa's software driver (``apt-get install
mesa-vulkan-drivers libvulkan1``) runs it, and ``xvfb-run`` gives it a display.
``run(session, screenshot=PATH)`` runs the window without showing it and saves a screenshot.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from polyalloy.errors import ConfigError, SimulationError

PANEL = 400  # px, the controls panel's width
MIN_HEIGHT = 540  # px; a smaller image is scaled up to this
MAX_RECORD = 3600  # frames kept while recording (then the video is written)
ORBIT_STEP, ZOOM_STEP = 5.0, 1.1  # degrees per key press; distance factor per press


def _ti():
    import taichi as ti

    return ti


class LiveWindow:
    """A GGUI window over ``session``; ``show=False`` draws off screen (``save_image`` works).
    ``frame()`` does one iteration: input, a step (unless paused), drawing."""

    def __init__(self, session, show: bool = True, out_dir: str = "renders"):
        ti = _ti()
        self.s = session
        w, h = session.size
        self.scale = max(1.0, MIN_HEIGHT / h)
        self.panel = int(round(PANEL / self.scale))  # image pixels under the panel
        self.res = (int(round((w + self.panel) * self.scale)), int(round(h * self.scale)))
        try:
            self.window = ti.ui.Window(f"polyalloy live: {session.scene.name}", self.res, vsync=False,
                                       show_window=show)
        except Exception as exc:  # noqa: BLE001 - no Vulkan: say how to get one
            raise ConfigError(f"cannot open a GGUI window ({type(exc).__name__}: {exc}); it needs Vulkan: install a "
                              f"driver (software: apt-get install mesa-vulkan-drivers libvulkan1) and a display "
                              f"(xvfb-run), or use LiveSession / --benchmark without a window") from None
        self.show = show
        self.canvas = self.window.get_canvas()
        self.out_dir = out_dir
        self.paused = False
        self.recording: list | None = None
        self.message = ""
        self.image = None
        self.dirty = True
        self._grab_depth = None
        self._brushing = None  # +1 heat, -1 chill
        self._last_cursor = None
        self._fps = 0.0
        self._orbit = None  # (yaw, pitch, distance) once the camera was moved
        self._told = None  # the last reload reported on the console

    # --- input ----------------------------------------------------------------------------
    def image_uv(self, x: float, y: float):
        """Window cursor (0..1, from the bottom left) -> image point (u, v from the top left);
        None over the panel."""
        w, h = self.s.size
        u = (x * self.res[0] / self.scale - self.panel) / w
        return None if u < 0 or u > 1 else (u, 1.0 - y)

    def _point(self, uv, hit_first: bool = True):
        """World point under ``uv``: in 3D the metal the ray meets (else the look-at depth)."""
        if self.s.sim.dim == 3 and hit_first:
            p = self.s.hit(*self.s.screen_ray(*uv))
            if p is not None:
                return p
        return self.s.screen_point(*uv, depth=self._grab_depth)

    def press(self, button: str, uv, shift: bool = False, ctrl: bool = False) -> None:
        """A mouse press at image point ``uv``: ``button`` "left" (shoot; shift: heat; ctrl: chill) or "right" (pull)."""
        s = self.s
        if button == "left" and (shift or ctrl):
            self._brushing = 1.0 if shift else -1.0
            s.brush(self._point(uv), power=self._brushing * abs(s.brush_settings["power"]))
            self.message = "heating" if shift else "chilling"
        elif button == "left":
            hit = s.shoot_at(*uv)
            self.message = "shot: missed" if hit is None else f"shot at {np.round(hit, 2).tolist()}"
        elif button == "right":
            p = self._point(uv)
            if s.sim.dim == 3:
                eye, _ = s.scene.camera.at(s.sim.t)
                self._grab_depth = float(np.linalg.norm(p - np.asarray(eye)))
            s.grab(p)
            self.message = "pulling"
        self._last_cursor = uv
        self.dirty = True

    def move(self, uv, left: bool, right: bool) -> None:
        """The cursor moved to ``uv`` with these buttons held: drag the pull or the brush."""
        if uv is None or uv == self._last_cursor:
            return
        self._last_cursor = uv
        if right and self.s._pull is not None:
            self.s.drag(self.s.screen_point(*uv, depth=self._grab_depth))
        if left and self._brushing is not None:
            self.s.brush(self._point(uv), power=self._brushing * abs(self.s.brush_settings["power"]))

    def release(self, button: str) -> None:
        if button == "right" and self.s._pull is not None:
            self.s.release()
            self._grab_depth = None
        if button == "left" and self._brushing is not None:
            self.s.brush_stop()
            self._brushing = None
        self.message = ""

    def key(self, k: str) -> None:
        """A key press (see the module docstring)."""
        s = self.s
        if k == " ":
            self.paused = not self.paused
        elif k == "n":
            self.paused = True
            self._step()
        elif k == "r":
            s.reset()
            self._orbit = None
            self.message = "reset"
        elif k == "p":
            self.message = f"screenshot {self.screenshot()}"
        elif k == "m":
            self.toggle_record()
        elif k == "v":
            s.view = "points" if s.view == "surface" else "surface"
        elif k == "o":
            path = self._path("run", "json")
            s.save(path)
            self.message = f"run saved: {path} (polyalloy live --replay {path})"
        elif k in ("left", "right", "up", "down", "=", "+", "-") and s.sim.dim == 3:
            self.orbit(*{"left": (-ORBIT_STEP, 0, 1), "right": (ORBIT_STEP, 0, 1), "up": (0, ORBIT_STEP, 1),
                         "down": (0, -ORBIT_STEP, 1), "=": (0, 0, 1 / ZOOM_STEP), "+": (0, 0, 1 / ZOOM_STEP),
                         "-": (0, 0, ZOOM_STEP)}[k])
        self.dirty = True

    def orbit(self, yaw: float, pitch: float, zoom: float) -> None:
        """Turn the camera about its look-at point by ``yaw`` / ``pitch`` degrees and scale its
        distance by ``zoom``."""
        from polyalloy.scene import Camera

        cam = self.s.scene.camera
        eye, look = (np.asarray(v, float) for v in cam.at(self.s.sim.t))
        if self._orbit is None:
            r = eye - look
            dist = float(np.linalg.norm(r))
            self._orbit = [math.degrees(math.atan2(r[0], r[2])), math.degrees(math.asin(r[1] / dist)), dist]
        o = self._orbit
        o[0] += yaw
        o[1] = min(85.0, max(-5.0, o[1] + pitch))
        o[2] *= zoom
        a, b = math.radians(o[0]), math.radians(o[1])
        pos = look + o[2] * np.array([math.cos(b) * math.sin(a), math.sin(b), math.cos(b) * math.cos(a)])
        self.s.scene.camera = Camera(position=tuple(pos), look_at=tuple(look), fov=cam.fov, up=cam.up)

    def _events(self) -> None:
        ti, win = _ti(), self.window
        names = {ti.ui.LEFT: "left", ti.ui.RIGHT: "right", ti.ui.UP: "up", ti.ui.DOWN: "down", ti.ui.SPACE: " "}
        pos = win.get_cursor_pos()
        uv = self.image_uv(*pos)
        for e in win.get_events(ti.ui.PRESS):
            if e.key in (ti.ui.LMB, ti.ui.RMB):
                if uv is not None:
                    self.press("left" if e.key == ti.ui.LMB else "right", uv, shift=win.is_pressed(ti.ui.SHIFT),
                               ctrl=win.is_pressed(ti.ui.CTRL))
            elif e.key == ti.ui.ESCAPE:
                win.running = False
            else:
                self.key(names.get(e.key, e.key))
        for e in win.get_events(ti.ui.RELEASE):
            if e.key in (ti.ui.LMB, ti.ui.RMB):
                self.release("left" if e.key == ti.ui.LMB else "right")
        self.move(uv, win.is_pressed(ti.ui.LMB), win.is_pressed(ti.ui.RMB))

    # --- actions --------------------------------------------------------------------------
    def _path(self, stem: str, ext: str) -> str:
        os.makedirs(self.out_dir, exist_ok=True)
        return os.path.join(self.out_dir, f"live_{self.s.scene.name}_{stem}_{time.strftime('%Y%m%d_%H%M%S')}.{ext}")

    def screenshot(self, path: str | None = None) -> str:
        """Save the window (image and panel) as a PNG; returns the path."""
        path = path or self._path("screenshot", "png")
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self.window.save_image(path)
        return path

    def toggle_record(self) -> str | None:
        """Start recording the drawn frames, or stop and write them as an MP4 (the exporter's)."""
        from polyalloy.export import write_mp4

        if self.recording is None:
            self.recording = []
            self.message = "recording"
            return None
        frames, self.recording = self.recording, None
        if not frames:
            return None
        path = self._path("video", "mp4")
        write_mp4(frames, path, fps=self.s.fps / self.s.time_scale)
        self.message = f"video {path} ({len(frames)} frames)"
        return path

    def _step(self) -> None:
        try:
            self.s.step()
        except SimulationError as exc:
            self.paused = True
            self.message = f"simulation failed: {exc}; press r to reset"
        self.dirty = True

    # --- drawing --------------------------------------------------------------------------
    def _panel(self) -> None:
        s, gui = self.s, self.window.get_gui()
        fh = 1.0  # the panel is the whole left strip
        with gui.sub_window("polyalloy live", 0.0, 0.0, PANEL / self.res[0], fh) as g:
            g.text(s.status())
            g.text(f"{self._fps:.1f} frames/s{'  PAUSED' if self.paused else ''}"
                   f"{'  REC %d' % len(self.recording) if self.recording is not None else ''}")
            if self.message:
                g.text(_wrap(self.message))
            if s.errors and s.last_reload is not None and s.last_reload.error:
                g.text(_wrap(s.last_reload.error))
            for k in s.knobs():
                cur = s.get(k.key)
                if k.log:
                    lo, hi = math.log10(k.lo), math.log10(k.hi)
                    new = 10 ** g.slider_float(f"log {k.label}", math.log10(max(cur, k.lo)), lo, hi)
                else:
                    new = g.slider_float(k.label, cur, k.lo, k.hi)
                if abs(new - cur) > 1e-6 * max(1.0, abs(cur)):
                    try:
                        s.set(k.key, new)
                    except ConfigError as exc:
                        self.message = str(exc)
            for label, key in (("pause / run (space)", " "), ("step (n)", "n"), ("reset (r)", "r"),
                               ("screenshot (p)", "p"), ("record on/off (m)", "m"),
                               ("surface / points (v)", "v"), ("save run (o)", "o")):
                if g.button(label):
                    self.key(key)
            g.text("left click: shoot   right drag: pull\nshift/ctrl + left drag: heat/chill"
                   + ("\narrows: orbit   +/-: zoom" if s.sim.dim == 3 else ""))

    def frame(self) -> None:
        """One iteration: reload edited kernels, input, a step unless paused, draw."""
        t0 = time.perf_counter()
        errors = len(self.s.errors)
        self.s.poll()
        if self.show and self.window.running:  # off screen there is no cursor to read
            self._events()
        if not self.paused:
            self._step()
        if self.dirty or self.image is None:
            self.image = self.s.render()
            self.dirty = False
            if self.recording is not None:
                self.recording.append(self.image)
                if len(self.recording) >= MAX_RECORD:
                    self.toggle_record()
        for err in self.s.errors[errors:]:
            print(f"polyalloy: reload failed, the previous kernels keep running: {err}", flush=True)
        last = self.s.last_reload
        if last is not None and last is not self._told and last.seconds is not None and not last.error:
            print(f"polyalloy: reloaded {', '.join(last.modules)} in {last.seconds:.1f} s (save -> first frame)",
                  flush=True)
            self._told = last
        self._draw()
        self._fps = 0.8 * self._fps + 0.2 / max(time.perf_counter() - t0, 1e-6)

    def _draw(self) -> None:
        w, h = self.s.size
        img = np.zeros((w + self.panel, h, 3), np.float32)
        img[self.panel:] = np.flip(self.image, 0).transpose(1, 0, 2) / np.float32(255)
        self.canvas.set_image(img)
        self._panel()


def _wrap(text: str, width: int = 44) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def run(session, screenshot: str | None = None, frames: int = 30) -> int:
    """Run the window until it is closed (Esc); with ``screenshot`` (a PNG path), run ``frames``
    frames without showing it, save the window there and return."""
    win = LiveWindow(session, show=screenshot is None)
    if screenshot is not None:
        for k in range(frames):
            win.frame()
            if k >= frames - 3:  # off screen, a frame is presented (its panel laid out) by saving it
                win.screenshot(screenshot)
        print(f"screenshot of the window after {frames} frames: {os.path.abspath(screenshot)}")
        return 0
    print("polyalloy live: left click shoots, right drag pulls, shift/ctrl + left drag heat/chill; "
          "space pause, n step, r reset, p screenshot, m record, v view, o save the run, Esc quits", flush=True)
    while win.window.running:
        win.frame()
        win.window.show()
    if win.recording:
        win.toggle_record()
    return 0
