"""Exporter: numbered PNG frames, MP4 and GIF videos, PLY and NPZ particle data, JSON; every
file written atomically.

A file is written under a hidden temporary name in its own folder, flushed to disk and renamed
into place (``os.replace``), so a killed render never leaves a half-written file under a final
name; on an error the temporary file is removed.

Particle files (``particles_00000.ply`` / ``.npz``) hold the live particles of one frame:
``id`` (slot index, stable across frames), ``x`` and ``v`` (position m, velocity m/s), ``T``
(K), ``phase`` (``kernels.heat`` FROZEN/MIMETIC/MOLTEN), ``color`` (linear RGB) and ``comp`` (the
fraction of the particle's mass that is polyalloy, ``kernels.mixing``). The NPZ keeps
them exactly as simulated ((n, dim) vectors, the run's float type) plus the frame's ``time`` (s);
the PLY is binary little-endian with one vertex per particle, ``x y z vx vy vz temperature
phase red green blue id comp`` (floats in the run's precision, colour as 8-bit sRGB, z = 0 in 2D),
which Blender, Houdini and MeshLab read as a point cloud.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np

from polyalloy.errors import PolyalloyError

PathLike = Union[str, "os.PathLike[str]"]
FRAME_DIGITS = 5
MP4_QUALITY = 7  # imageio-ffmpeg quality 1..10; 7 is x264 CRF 15, enough to keep single particles crisp
MACRO_BLOCK = 8  # px; frame sizes are padded up to a multiple of this (DESIGN: MP4 sizes divisible by 8)
GIF_MAX_WIDTH = 320  # px; a README GIF stays a few hundred KB
GIF_MAX_FPS = 15  # frames per second; higher rates keep every k-th frame
PARTICLE_ARRAYS = ("id", "x", "v", "T", "phase", "color", "comp")


def frame_path(out_dir: PathLike, index: int, ext: str = "png") -> Path:
    """Path of frame ``index`` (0-based) in ``out_dir``: ``frame_00000.png`` for an image,
    ``particles_00000.ply`` / ``.npz`` for particle data."""
    if index < 0:
        raise PolyalloyError(f"frame index must be >= 0, got {index}")
    return Path(out_dir) / f"{'frame' if ext == 'png' else 'particles'}_{index:0{FRAME_DIGITS}d}.{ext}"


def ensure_writable_dir(out_dir: PathLike) -> Path:
    """Create ``out_dir`` if needed and prove it writable by writing a probe file; PolyalloyError otherwise."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".polyalloy-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise PolyalloyError(f"output folder {str(path)!r} is not writable: {e.strerror or e}") from None
    return path


@contextlib.contextmanager
def _atomic_target(path: PathLike, suffix: str) -> Iterator[str]:
    """Yield a temporary file name beside ``path``; rename it to ``path`` on success, delete it on error."""
    final = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix)
    except OSError as exc:
        raise _write_error(final, exc) from None
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data reaches the disk before the name does
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):  # a full disk, a folder in the way: one line, and the old file is intact
            raise _write_error(final, exc) from None
        raise


def _write_error(path: Path, exc: OSError) -> PolyalloyError:
    return PolyalloyError(f"cannot write {path}: {exc.strerror or exc}; free some space, move what is in the way "
                          f"or use another --out")


def _as_rgb8(image, what: str) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise PolyalloyError(f"{what} must be an (H, W, 3) or (H, W, 4) uint8 array, "
                             f"got shape {a.shape} dtype {a.dtype}")
    return a


def write_png_atomic(path: PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3|4) uint8 image to ``path`` as PNG, atomically; returns the path."""
    from PIL import Image

    a = _as_rgb8(image, "a PNG image")
    with _atomic_target(path, ".tmp") as tmp:
        Image.fromarray(a).save(tmp, format="PNG")
    return Path(path)


def write_mp4(frames: Iterable[Union[PathLike, np.ndarray]], path: PathLike, fps: float) -> Path:
    """Encode ``frames`` (image paths or uint8 arrays, all one size) to an H.264 MP4 at ``fps``,
    atomically; imageio scales a size not divisible by MACRO_BLOCK up to the next multiple."""
    import imageio.v2 as iio

    if not (isinstance(fps, (int, float)) and 0 < fps <= 1000):
        raise PolyalloyError(f"fps must be in (0, 1000], got {fps!r}")
    count, shape = 0, None
    with _atomic_target(path, ".mp4") as tmp:
        writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                quality=MP4_QUALITY, macro_block_size=MACRO_BLOCK, ffmpeg_log_level="error")
        try:
            for item in frames:
                image = _as_rgb8(item if isinstance(item, np.ndarray) else iio.imread(item), f"frame {count}")
                if shape is None:
                    shape = image.shape[:2]
                elif image.shape[:2] != shape:
                    raise PolyalloyError(f"frame {count} is {image.shape[1]}x{image.shape[0]} px, "
                                         f"the first was {shape[1]}x{shape[0]}")
                writer.append_data(image[:, :, :3])
                count += 1
            if count == 0:
                raise PolyalloyError(f"no frames to write to {str(path)!r}")
        finally:
            writer.close()
    return Path(path)


def write_gif(frames: Iterable[PathLike], path: PathLike, fps: float, stride: int | None = None,
              max_width: int = GIF_MAX_WIDTH, crop=None, colors: int = 255) -> Path:
    """A small looping GIF of the image files ``frames``, atomically: scaled down to at most
    ``max_width`` px wide (GIF_MAX_WIDTH), every ``stride``-th frame (default: at most
    GIF_MAX_FPS), one shared palette of ``colors``; ``crop``: (left, top, right, bottom) px cut
    from every frame first."""
    from PIL import Image

    frames = list(frames)
    if not frames:
        raise PolyalloyError(f"no frames to write to {str(path)!r}")
    stride = stride or gif_stride(fps)
    images = []
    for item in frames[::stride]:
        with Image.open(item) as im:
            im = im.convert("RGB")
            if crop is not None:
                im = im.crop(tuple(crop))
            if im.width > max_width:
                height = max(1, round(im.height * max_width / im.width))
                im = im.resize((max_width, height), Image.Resampling.LANCZOS)
            images.append(im)
    # one palette from a sample of frames: no per-frame palette flicker, and a smaller file
    sample = images[:: max(1, len(images) // 8)]
    sheet = Image.new("RGB", (images[0].width, images[0].height * len(sample)))
    for k, im in enumerate(sample):
        sheet.paste(im, (0, k * im.height))
    palette = sheet.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    indexed = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    with _atomic_target(path, ".gif") as tmp:
        indexed[0].save(tmp, format="GIF", save_all=True, append_images=indexed[1:], loop=0,
                        duration=10 * round(100 * stride / fps),  # ms, in the GIF's own 1/100 s
                        optimize=False, disposal=1)
    return Path(path)


def gif_stride(fps: float) -> int:
    """Keep every ``gif_stride(fps)``-th frame in a GIF so that it plays at most GIF_MAX_FPS."""
    return max(1, math.ceil(fps / GIF_MAX_FPS - 1e-9))


def _particle_arrays(record: dict) -> dict:
    missing = [k for k in PARTICLE_ARRAYS if k not in record]
    if missing:
        raise PolyalloyError(f"particle record lacks {', '.join(missing)}")
    a = {k: np.asarray(record[k]) for k in PARTICLE_ARRAYS}
    n = len(a["id"])
    if any(len(v) != n for v in a.values()) or a["x"].ndim != 2 or a["x"].shape[1] not in (2, 3):
        raise PolyalloyError("particle arrays must share their length n; x and v must be (n, 2) or (n, 3)")
    return a


def write_particles_npz(path: PathLike, record: dict, time: float) -> Path:
    """The particle arrays of one frame (PARTICLE_ARRAYS, exact) and its ``time`` (s) as an NPZ, atomically."""
    return write_npz_atomic(path, dict(_particle_arrays(record), time=np.float64(time)))


def write_npz_atomic(path: PathLike, arrays: dict) -> Path:
    """Uncompressed ``np.savez`` of ``arrays`` to ``path``, atomically (checkpoints, particle data)."""
    with _atomic_target(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return Path(path)


def srgb8(color: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] -> 8-bit sRGB (IEC 61966-2-1), clamped."""
    c = np.clip(np.asarray(color, np.float64), 0.0, 1.0)
    s = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.round(s * 255).astype(np.uint8)


def write_ply(path: PathLike, record: dict, comment: str = "") -> Path:
    """The particles of one frame as a binary little-endian PLY point cloud, atomically."""
    a = _particle_arrays(record)
    n, dim = a["x"].shape
    real = "double" if a["x"].dtype == np.float64 else "float"
    f = "<f8" if real == "double" else "<f4"
    columns = [("x", f), ("y", f), ("z", f), ("vx", f), ("vy", f), ("vz", f), ("temperature", f), ("phase", "<i4"),
               ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("id", "<i4"), ("comp", f)]
    rows = np.zeros(n, dtype=columns)
    for k, axis in enumerate("xyz"[:dim]):
        rows[axis] = a["x"][:, k]
        rows["v" + axis] = a["v"][:, k]
    rows["temperature"] = a["T"]
    rows["phase"] = a["phase"]
    for k, channel in enumerate(("red", "green", "blue")):
        rows[channel] = srgb8(a["color"])[:, k]
    rows["id"] = a["id"]
    rows["comp"] = a["comp"]
    types = {f: real, "<i4": "int", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0"] + [f"comment {comment}"] * bool(comment)
    header += [f"element vertex {n}"] + [f"property {types[t]} {name}" for name, t in columns] + ["end_header"]
    with _atomic_target(path, ".ply") as tmp:
        with open(tmp, "wb") as out:
            out.write(("\n".join(header) + "\n").encode("ascii"))
            out.write(rows.tobytes())
    return Path(path)


def write_json_atomic(path: PathLike, obj) -> Path:
    """``obj`` as indented JSON, atomically (the render manifest)."""
    with _atomic_target(path, ".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    return Path(path)


def label_grid(tiles, path: PathLike, columns: int = 4, width: int | None = None, scale: float = 1.0,
               crop=None) -> Path:
    """PNG images in a grid, each with a caption bar along its top, written atomically to ``path``
    (a contact sheet: ``polyalloy sweep``'s, ``tools/showcase.py``'s strips). ``tiles``: (PNG path,
    caption) pairs; ``crop`` (left, top, right, bottom px) is cut from every image first; each is
    then scaled to ``width`` px wide, or by ``scale``. Tiles 4 px apart on white."""
    from PIL import Image, ImageDraw

    images = []
    for source, caption in tiles:
        im = Image.open(source).convert("RGB")
        if crop:
            im = im.crop(tuple(crop))
        factor = width / im.width if width else scale
        im = im.resize((max(1, round(im.width * factor)), max(1, round(im.height * factor))), Image.LANCZOS)
        draw = ImageDraw.Draw(im)
        draw.rectangle((0, 0, im.width, 16), fill=(40, 40, 44))
        draw.text((6, 2), caption, fill=(255, 255, 255))
        images.append(im)
    if not images:
        raise PolyalloyError("a contact sheet needs at least one image")
    w, h, gap = max(i.width for i in images), max(i.height for i in images), 4
    cols = max(1, min(columns, len(images)))
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap), "white")
    for k, im in enumerate(images):
        sheet.paste(im, ((k % cols) * (w + gap), (k // cols) * (h + gap)))
    with _atomic_target(path, ".png") as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return Path(path)
