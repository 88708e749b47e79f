"""Surface renderer and exporter: image format, what lands where on screen, atomic files, MP4."""
import math
import os
import subprocess
import sys

import imageio.v2 as iio
import numpy as np
import pytest
from PIL import Image

from polyalloy.errors import PolyalloyError
from polyalloy.export import MACRO_BLOCK, ensure_writable_dir, frame_path, write_mp4, write_png_atomic
from polyalloy.materials import Elastic
from polyalloy.render import PRESETS, SurfaceRenderer
from polyalloy.scene import Camera, Scene
from polyalloy.shapes import Plane, Sphere

W, H = 128, 96
BALL_CENTRE, BALL_RADIUS = (0.5, 0.55, 0.5), 0.15
EYE_DISTANCE, FOV = 2.5, 30.0
FLOOR_Y = 0.1
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _scene(dim: int) -> Scene:
    """A red ball over a green floor, a blue sphere collider sinking at 0.4 m/s on its left."""
    eye = (BALL_CENTRE[0], BALL_CENTRE[1], BALL_CENTRE[2] + EYE_DISTANCE)
    scene = Scene(name="render_test", dim=dim, domain=((0, 0, 0), (1, 1, 1)), dx=1 / 32,
                  camera=Camera(position=eye, look_at=BALL_CENTRE, fov=FOV))
    scene.add_material("rubber", Elastic())
    scene.add_body("ball", Sphere(centre=BALL_CENTRE, radius=BALL_RADIUS), "rubber", color=RED)
    scene.add_collider("floor", Plane(point=(0, FLOOR_Y, 0), normal=(0, 1, 0)), color=GREEN)
    scene.add_collider("sinker", Sphere(centre=(0.17, 0.7, 0.5), radius=0.08, velocity=(0, -0.4, 0)), color=BLUE)
    return scene


@pytest.fixture(scope="module", params=[3, 2], ids=["3d", "2d"])
def rendered(request, runtime):
    from polyalloy.simulation import Simulation

    sim = Simulation(_scene(request.param))
    return sim, SurfaceRenderer(sim, W, H)


def _mask(image, channel):
    """Pixels where one channel clearly dominates the other two (a pure-colour object)."""
    c = image.astype(int)
    others = [k for k in range(3) if k != channel]
    return (c[..., channel] > c[..., others[0]] + 40) & (c[..., channel] > c[..., others[1]] + 40)


def _projected_disc(sim):
    """Centre (row, col; pixel k spans [k, k + 1)) and radius (px) of the ball's silhouette, analytically."""
    if sim.dim == 3:
        focal = 0.5 * H / math.tan(math.radians(FOV) / 2)
        radius = focal * math.tan(math.asin(BALL_RADIUS / EYE_DISTANCE))
        return (H / 2, W / 2), radius
    lo, hi = sim.domain_lo, sim.domain_hi
    scale = min(W / ((hi - lo)[0] * 1.08), H / ((hi - lo)[1] * 1.08))
    corner = (lo + hi) / 2 - np.array([W, H]) / (2 * scale)
    return (H - (BALL_CENTRE[1] - corner[1]) * scale, (BALL_CENTRE[0] - corner[0]) * scale), BALL_RADIUS * scale


def test_render_returns_rgb8_of_the_requested_size_and_is_deterministic(rendered):
    sim, renderer = rendered
    image = renderer.render()
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert np.array_equal(image, renderer.render())
    assert all(w % MACRO_BLOCK == 0 and h % MACRO_BLOCK == 0 for w, h in PRESETS.values())


def test_ball_silhouette_matches_the_projected_disc(rendered):
    """The liquid's alpha covers the projected disc; the red metal shows red where it faces the
    sky (its lower half mirrors the green floor, which red metal reflects dark)."""
    sim, renderer = rendered
    red = _mask(renderer.render(), 0)
    ball = renderer.alpha() > 0.5
    (row, col), radius = _projected_disc(sim)
    assert ball[int(row), int(col)] and red[int(row - radius / 2), int(col + radius / 2)]
    assert abs(ball.sum() / (math.pi * radius ** 2) - 1.0) < 0.25
    rows, cols = np.nonzero(ball)
    assert abs(rows.mean() + 0.5 - row) < 1.0 and abs(cols.mean() + 0.5 - col) < 1.0
    assert not red[:, : int(col - 1.5 * radius)].any() and not red[:, int(col + 1.5 * radius):].any()


def test_floor_collider_fills_pixels_below_the_horizon_only(rendered):
    sim, renderer = rendered
    green = _mask(renderer.render(), 1)
    (row, _), radius = _projected_disc(sim)
    assert green[int(row + radius):].sum() > 0.03 * W * H
    assert not green[: int(row)].any()


def test_moving_collider_follows_simulation_time(rendered):
    sim, renderer = rendered
    rows_at = {}
    for t in (0.0, 0.5):
        sim.t = t
        rows_at[t] = np.nonzero(_mask(renderer.render(), 2))[0].mean()
    sim.t = 0.0
    assert rows_at[0.5] > rows_at[0.0] + 5  # it sank 0.2 m: lower in the image


def test_f64_runtime_draws_the_same_picture(rendered, tmp_path):
    sim, renderer = rendered
    out = tmp_path / "f64.npy"
    code = (f"import sys, numpy as np; sys.path.insert(0, {os.path.dirname(__file__)!r}); import polyalloy; "
            f"polyalloy.init(arch='cpu', precision='f64'); from polyalloy.simulation import Simulation; "
            f"from polyalloy.render import SurfaceRenderer; from test_render_export import _scene; "
            f"np.save({str(out)!r}, SurfaceRenderer(Simulation(_scene({sim.dim})), {W}, {H}).render())")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    diff = np.abs(np.load(out).astype(int) - renderer.render().astype(int)).max(axis=-1)
    assert (diff > 2).mean() < 0.01


def test_write_png_atomic_round_trips_and_leaves_no_temp_file(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = frame_path(tmp_path, 7)
    assert path == tmp_path / "frame_00007.png"
    write_png_atomic(path, np.zeros_like(image))
    write_png_atomic(path, image)
    assert os.listdir(tmp_path) == ["frame_00007.png"]
    assert np.array_equal(np.asarray(Image.open(path)), image)


def test_write_png_atomic_removes_its_temp_file_on_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(PolyalloyError, match="disk full"):
        write_png_atomic(tmp_path / "frame_00000.png", np.zeros((4, 4, 3), np.uint8))
    assert os.listdir(tmp_path) == []
    with pytest.raises(PolyalloyError):
        write_png_atomic(tmp_path / "bad.png", np.zeros((4, 4), np.float32))


def test_write_mp4_encodes_every_frame_at_its_size(tmp_path):
    frames = [np.full((32, 48, 3), 40 * k, np.uint8) for k in range(5)]
    ensure_writable_dir(tmp_path / "png")
    paths = [write_png_atomic(frame_path(tmp_path / "png", k), f) for k, f in enumerate(frames)]
    for source, name in ((frames, "arrays.mp4"), (paths, "paths.mp4")):
        out = write_mp4(source, tmp_path / name, fps=10)
        reader = iio.get_reader(out, format="FFMPEG")
        decoded = [f for f in reader]
        reader.close()
        assert len(decoded) == 5 and decoded[0].shape == (32, 48, 3)
        assert abs(int(decoded[4].mean()) - 160) < 8
    assert sorted(os.listdir(tmp_path)) == ["arrays.mp4", "paths.mp4", "png"]


def test_write_mp4_without_frames_leaves_nothing(tmp_path):
    with pytest.raises(PolyalloyError, match="no frames"):
        write_mp4([], tmp_path / "empty.mp4", fps=10)
    assert os.listdir(tmp_path) == []


def test_unwritable_output_folder_is_a_one_line_error(tmp_path):
    assert ensure_writable_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PolyalloyError) as err:
        ensure_writable_dir(blocker / "frames")
    assert "not writable" in str(err.value) and "\n" not in str(err.value)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(PolyalloyError):
            ensure_writable_dir(locked)
