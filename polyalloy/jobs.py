"""The render job: simulate a scene frame by frame, render each frame, export the files.

Used by ``polyalloy render`` and callable from Python (``render_scene``). Frames are
written as they are made, each atomically, so an interrupted job leaves only whole files.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from polyalloy.errors import ConfigError
from polyalloy.scene import Scene

FORMATS = ("png", "mp4")


@dataclass
class RenderResult:
    """What a render job wrote: ``frames`` (PNG paths), ``video`` (MP4 path or None), timings (s)."""

    out_dir: str
    frames: list = field(default_factory=list)
    video: str | None = None
    particles: int = 0
    sim_seconds: float = 0.0
    render_seconds: float = 0.0
    substeps: int = 0


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}")
    return formats


def render_scene(scene: Scene, out_dir: str, frames: int, size: tuple[int, int],
                 formats=("png", "mp4"), progress: bool = True) -> RenderResult:
    """Simulate ``frames`` frames of ``scene`` and write them to ``out_dir``.

    Frame 0 is the initial state; frame k is the state at t = k / fps. ``size`` is (width,
    height) in pixels, multiples of 8. PNG frames are always written (the MP4 is made
    from them); ``formats`` says which files are kept beside them.
    """
    from polyalloy.export import ensure_writable_dir, frame_path, write_mp4, write_png_atomic
    from polyalloy.render import SurfaceRenderer
    from polyalloy.simulation import Simulation

    if frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}")
    ensure_writable_dir(out_dir)
    sim = Simulation(scene)
    renderer = SurfaceRenderer(sim, *size)
    result = RenderResult(out_dir=out_dir, particles=sim.n_particles)
    bar = _progress(frames, scene.name, progress)
    try:
        for k in range(frames):
            t0 = time.perf_counter()
            if k > 0:
                sim.step_frame()
            t1 = time.perf_counter()
            path = frame_path(out_dir, k)
            write_png_atomic(path, renderer.render())
            t2 = time.perf_counter()
            result.frames.append(path)
            result.sim_seconds += t1 - t0
            result.render_seconds += t2 - t1
            bar.set_postfix_str(f"t={sim.t:.2f}s sim {t1 - t0:.2f}s render {t2 - t1:.2f}s", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    result.substeps = sim.substeps
    if "mp4" in formats:
        result.video = os.path.join(out_dir, f"{scene.name}.mp4")
        write_mp4(result.frames, result.video, scene.fps)
    return result


def _progress(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"render {name}", unit="frame", disable=not enabled, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                           "[{elapsed}<{remaining} ETA, {rate_fmt}] {postfix}")
