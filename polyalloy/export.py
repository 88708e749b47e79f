"""Exporter: numbered PNG frames and MP4 videos, every file written atomically.

A file is written under a hidden temporary name in its own folder and renamed into place
(``os.replace``), so a killed render never leaves a half-written file under a final name;
on an error the temporary file is removed.
"""
from __future__ import annotations

import contextlib
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


def frame_path(out_dir: PathLike, index: int) -> Path:
    """Path of frame ``index`` (0-based) in ``out_dir``: ``out_dir/frame_00000.png``."""
    if index < 0:
        raise PolyalloyError(f"frame index must be >= 0, got {index}")
    return Path(out_dir) / f"frame_{index:0{FRAME_DIGITS}d}.png"


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
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


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
