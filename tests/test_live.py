"""The live session (``polyalloy.live``), kernel hot reload (``polyalloy.reload``), the window
(``polyalloy.window``, headless, where a Vulkan driver is installed) and the example notebook.

Everything is driven through the session's own API at tiny 2D sizes: the ``stand`` scene (a
controlled 2D man, 1,992 particles) and the 2D ``drop`` ball for the reload (free fall makes
an edited gravity line easy to read).
"""
import ctypes.util
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polyalloy import reload
from polyalloy.cli import main
from polyalloy.errors import ConfigError
from polyalloy.live import LiveSession, benchmark

ROOT = Path(__file__).resolve().parents[1]
SIZE = (160, 96)


@pytest.fixture(scope="module")
def stand():
    s = LiveSession("stand", size=SIZE)
    yield s
    s.close()


def _top(s) -> float:
    return float(s.sim.particles()["x"][:, 1].max())


def test_session_draws_and_records(stand):
    stand.reset()
    stand.step(3)
    assert stand.frames == 3 and abs(stand.sim.t - 3 / 60) < 1e-9  # 2D: frames of 1/60 s
    img = stand.render()
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank: sky gradient, tank and the man
    dots = stand.render("points")
    # the man's particles light up pixels on a black background: about his area in px
    assert 50 < (dots.max(axis=2) > 0).sum() < SIZE[0] * SIZE[1] / 4
    r = benchmark(stand, 2)
    assert r["frames"] == 2 and r["fps"] > 0 and r["realtime"] > 0


def test_gain_zero_slumps_the_man(stand):
    stand.reset()
    stand.step(2)
    top0 = _top(stand)
    stand.step(20)
    # held by the controller his head stays put (the stand claim allows 2 dx = 5 cm)
    assert abs(_top(stand) - top0) < 0.05
    stand.set("control.gain", 0.0)
    stand.step(20)
    # with the grip off he slumps: measured 0.54 m lower after 1/3 s; a quarter of that is the bar
    assert _top(stand) < top0 - 0.15
    assert stand.timeline[-1]["kind"] == "set" and stand.timeline[-1]["frame"] == 22


def test_click_shot_damages_particles_where_it_hits(stand):
    stand.reset()
    stand.step(1)
    assert stand.shoot_at(0.5, 0.02) is None  # the floor strip, below the man: a miss records nothing
    assert stand.timeline == []
    hit = stand.shoot_at(0.5, 0.4)  # chest height; in 2D the shot comes from the left along +x
    assert hit is not None
    p = stand.sim.particles()
    damaged = p["damage"] > 0
    radius = stand.shot["radius"]
    assert damaged.sum() > 5
    assert np.linalg.norm(p["x"][damaged] - hit, axis=1).max() <= radius * 1.001
    # the hit is the metal nearest the shooter: nothing at that height lies left of it
    band = np.abs(p["x"][:, 1] - hit[1]) < radius
    assert hit[0] <= p["x"][band, 0].min() + radius
    assert (p["v"][damaged, 0] > 1.0).all()  # kicked along +x (4 m/s by default)
    assert stand.timeline[-1]["kind"] == "shot"


def test_the_shatter_knob_makes_a_click_shot_break_frozen_metal_into_fragments():
    """A frozen slab (100 K, 663 particles) on a floor in a live session: a click shot (damage 1,
    1 m/s) with ``shot.shatter`` at 6 cm cuts it into fragments of >= 8 particles (the crack
    network of ``Simulation.shatter``; measured 11, holding 464 particles, 199 grains), recorded
    in the timeline, and a replay of the timeline cracks it alike; with the knob below 3 particle
    spacings (off) the same shot only craters it: one piece of 607 particles and 56 grains."""
    from conftest import make_scene
    from polyalloy import metrics
    from polyalloy.materials import Polyalloy
    from polyalloy.shapes import Box, Plane

    scene = make_scene(2, size=(1.0, 0.6), dx=1 / 64, air_coefficient=0.0)
    scene.add_material("t1000", Polyalloy())
    scene.add_body("slab", Box(centre=(0.5, 0.16, 0.5), half_size=(0.2, 0.05, 0.1)), "t1000", temperature=100.0)
    scene.add_collider("floor", Plane(point=(0, 0.1, 0), normal=(0, 1, 0)), friction=0.5)
    s = LiveSession(scene, size=SIZE)
    try:
        counts = {}
        for shatter in (0.06, 0.01):
            s.reset()
            s.set("shot.shatter", shatter)
            s.step(1)
            assert s.shoot((0.5, 0.5), (0.0, -1.0), speed=1.0) is not None  # from above onto its middle
            s.step(1)
            counts[shatter] = metrics.fragments(s.sim, body="slab", min_particles=8)
            assert s.timeline[-1]["kind"] == "shot" and s.timeline[-1]["shatter"] == (shatter if shatter > 0.02 else 0)
        assert len(counts[0.01]) == 1  # off: the crater's grains are single particles
        assert 6 <= len(counts[0.06]) <= 16, counts[0.06]
        s.reset()
        s.set("shot.shatter", 0.06)
        s.step(1)
        s.shoot((0.5, 0.5), (0.0, -1.0), speed=1.0)
        s.step(1)
        s.replay(dict(timeline=list(s.timeline), frames=s.frames))  # what a saved run's replay plays
        assert metrics.fragments(s.sim, body="slab", min_particles=8) == counts[0.06]
        with pytest.raises(ConfigError, match="shot.shatter"):
            s.set("shot.shatter", -0.1)
    finally:
        s.close()


def test_pull_and_brush_move_and_heat_the_metal(stand):
    stand.reset()
    stand.set("control.gain", 0.0)
    hand = stand.sim.particles()["x"]
    grab = hand[np.argmax(hand[:, 1])]  # the top of his head
    stand.grab(grab)
    stand.drag(grab + np.array([0.4, 0.0]))
    stand.step(10)
    x = stand.sim.particles()["x"]
    near = np.linalg.norm(hand - grab, axis=1) < stand.pull_settings["radius"]
    # pulled 0.4 m sideways by a 3 Hz spring for 1/6 s: the grabbed blob moved right by > 5 cm
    assert (x[near, 0] - hand[near, 0]).mean() > 0.05
    stand.release()
    T0 = stand.sim.particles()["T"]
    stand.brush(x[near].mean(0), power=-2e5)
    stand.step(3)
    stand.brush_stop()
    dT = stand.sim.particles()["T"] - T0
    # -2e5 W/kg on polyalloy (450 J/(kg K)) for 0.05 s: about -22 K where the brush was
    assert dT.min() < -5 and stand.timeline[-1]["kind"] == "brush_stop"


def test_replay_repeats_a_poked_run(stand, tmp_path):
    stand.reset()
    stand.step(2)
    stand.shoot_at(0.5, 0.4)
    stand.set("gravity", -3.0)
    stand.step(4)
    x = stand.sim.particles()["x"]
    path = stand.save(tmp_path / "run.json")
    rec = json.loads(Path(path).read_text())
    assert [e["kind"] for e in rec["timeline"]] == ["shot", "set"] and rec["frames"] == 6
    stand.replay(rec)
    assert stand.frames == 6 and stand.get("gravity") == -3.0
    np.testing.assert_allclose(stand.sim.particles()["x"], x, atol=1e-6)


def test_bad_live_input_is_a_config_error(stand):
    with pytest.raises(ConfigError, match="unknown live parameter"):
        stand.set("gravityy", 1.0)
    with pytest.raises(ConfigError, match="baked into"):
        stand.set("materials.polyalloy.density", 1.0)
    with pytest.raises(ConfigError, match="time_scale"):
        stand.set("time_scale", 0.0)
    assert main(["live", "nosuchscene", "--benchmark", "1", "--arch", "cpu"]) == 2
    assert main(["live", "--arch", "cpu"]) == 2
    assert main(["live", "stand", "--kernels", "/nonexistent", "--benchmark", "1", "--arch", "cpu"]) == 2


def test_live_parameters_reach_the_device(stand):
    stand.reset()
    stand.set("materials.polyalloy.viscosity", 2.0)
    i = stand.sim.material_names.index("polyalloy")
    assert abs(stand.sim.materials.viscosity[i] - 2.0) < 1e-6
    rho, dx = stand.scene.materials["polyalloy"].density, stand.scene.dx
    assert stand.sim.viscous_dt == pytest.approx(rho * dx * dx / (2 * stand.sim.dim * 2.0))  # the step follows
    stand.set("colliders.floor.temperature", 100.0)
    assert abs(stand.sim.colliders.temperature[0] - 100.0) < 1e-4
    stand.set("control.frequency", 5.0)
    assert abs(stand.sim.knobs.ctrl_omega[None] - 2 * np.pi * 5.0) < 1e-4
    keys = {k.key for k in stand.knobs()}
    assert {"gravity", "control.gain", "colliders.floor.temperature", "materials.polyalloy.yield_strain"} <= keys


GRAVITY_LINE = "v = grid.v[I] / m + dt * knobs.gravity[None]"


def test_hot_reload_keeps_state_and_rolls_back_broken_edits(tmp_path):
    home = reload.kernel_dir()
    copy = reload.export_kernels(tmp_path / "kernels")
    s = LiveSession("drop", dim=2, size=SIZE, kernels=copy)
    try:
        s.step(3)
        vy = lambda: float(s.sim.particles()["v"][:, 1].mean())  # noqa: E731
        v0 = vy()
        s.step(1)
        assert vy() - v0 < -0.15  # free fall: -9.81 m/s^2 * 1/60 s = -0.164 m/s per frame
        mpm = copy / "mpm.py"
        source = mpm.read_text()
        assert GRAVITY_LINE in source
        mpm.write_text(source.replace(GRAVITY_LINE, GRAVITY_LINE.replace("dt *", "dt * 0.0 *")))
        x_before = s.sim.particles()["x"]
        rec = s.poll()
        # the edited module, then the kernel modules that import from it (mixing and order bind mpm's
        # stencil, substep its passes, and mixing's)
        assert rec.modules == ["mpm", "mixing", "order", "substep"] and rec.error is None
        np.testing.assert_array_equal(s.sim.particles()["x"], x_before)  # a reload touches no state
        v1 = vy()
        s.step(2)
        assert abs(vy() - v1) < 0.01  # the new kernels: no gravity
        assert s.last_reload.seconds is not None and s.last_reload.seconds > 0
        # a syntax error: reported with file and line, the edited (no gravity) kernels run on
        mpm.write_text(source.replace("def update_grid(", "def update_grid((", 1))
        rec = s.poll()
        assert rec.error.startswith(f"{mpm}:") and "SyntaxError" in rec.error
        v2, t2 = vy(), s.sim.t
        s.step(1)
        assert abs(vy() - v2) < 0.01 and s.sim.t > t2
        # a name error that only the Taichi compile finds, on the first frame: rolled back
        mpm.write_text(source.replace("grid.v[I] = v\n", "grid.v[I] = v + not_a_name\n", 1))
        rec = s.poll()
        assert rec.error is None and s.reloader.pending is rec
        v3 = vy()
        s.step(1)
        assert "not_a_name" in s.last_reload.error and f"{mpm}:" in s.last_reload.error
        assert abs(vy() - v3) < 0.01 and s.frames == 8  # the frame ran once, on the previous kernels
        assert "not_a_name" in s.status()
    finally:
        s.close()
        reload.use_kernels(home)
    assert reload.kernel_dir() == home


def _vulkan() -> bool:
    return bool(ctypes.util.find_library("vulkan")) and bool(glob.glob("/usr/share/vulkan/icd.d/*.json"))


@pytest.mark.skipif(not _vulkan(), reason="no Vulkan loader and driver (apt-get install libvulkan1 "
                                          "mesa-vulkan-drivers) for the GGUI window")
def test_window_opens_headless_and_saves_a_screenshot(tmp_path):
    """The window off screen (its own process: a broken Vulkan would take pytest down with it):
    a click shoots, a right drag pulls, the view toggles, and the screenshot shows image and panel."""
    png = tmp_path / "window.png"
    script = f"""
import json
import polyalloy
polyalloy.init(arch="cpu")
from polyalloy.live import LiveSession
from polyalloy.window import LiveWindow
s = LiveSession("stand", size=(320, 184))
w = LiveWindow(s, show=False, out_dir={str(tmp_path)!r})
w.frame()
w.press("left", (0.5, 0.4))
damaged = int((s.sim.particles()["damage"] > 0).sum())
w.press("right", (0.5, 0.2))
w.move((0.7, 0.2), left=False, right=True)
w.release("right")
w.key("v")
w.frame()
w.key("v")
w.key("m")
w.frame()
w.key("m")
w.key("o")
kinds = [e["kind"] for e in s.timeline]
w.key("r")
for _ in range(3):
    w.frame()
    w.screenshot({str(png)!r})
print(json.dumps(dict(kinds=kinds, damaged=damaged, t=s.sim.t)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kinds"] == ["shot", "grab", "drag", "release"] and result["damaged"] > 5
    assert abs(result["t"] - 3 / 60) < 1e-9  # reset to 0, then three frames
    assert len(list(tmp_path.glob("live_stand_video_*.mp4"))) == 1  # m, a frame, m: a one-frame video
    saved = list(tmp_path.glob("live_stand_run_*.json"))
    assert len(saved) == 1 and len(json.loads(saved[0].read_text())["timeline"]) == 4
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(float)
    assert img.shape[0] >= 540 and img.std() > 10
    panel = img[:, : img.shape[1] // 5]  # the controls panel: text and sliders over its dark background
    assert panel.std() > 10


def test_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "examples" / "live.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the rendered frame was shown


def test_emitter_rate_retimes_the_fills_to_come():
    from polyalloy.materials import Fluid
    from polyalloy.scene import Scene
    from polyalloy.shapes import Box

    sc = Scene(name="spout", dim=2, domain=((0, 0), (1, 1)), dx=0.04)
    sc.add_material("water", Fluid(density=1000.0, bulk_modulus=1e4))
    sc.add_body("pool", Box(centre=(0.5, 0.1, 0), half_size=(0.4, 0.05, 0.1)), "water")
    sc.pour("spout", Box(centre=(0.5, 0.8, 0), half_size=(0.06, 0.03, 0.1)), "water", rate=0.02,
            velocity=(0.0, -1.0, 0.0), start=0.0, end=1.0)
    s = LiveSession(sc, size=SIZE, fps=30)
    try:
        s.step(3)
        fills = s.sim.fills[s.sim._next_fill:]
        old_gap = fills[1][0] - fills[0][0]
        s.set("emitters.spout.rate", 0.08)
        fills = s.sim.fills[s.sim._next_fill:]
        gaps = np.diff([f[0] for f in fills])
        np.testing.assert_allclose(gaps, old_gap / 4, rtol=1e-6)  # four times the rate: a quarter of the wait
        assert fills[0][0] >= s.sim.t - 1e-12
        n, pooled = s.sim.n_particles, sum(f[2] - f[1] for f in fills)
        # the spout fills 0.0072 m^2 every 0.36 s at 0.02 m^2/s: by t = 0.3 s the two fills left
        # would still wait; at 0.08 m^2/s they come at 0.1 s and 0.19 s
        s.step(6)
        assert s.sim.t < fills[0][0] + old_gap
        assert s.sim._next_fill == len(s.sim.fills) and s.sim.n_particles - n == pooled
        assert s.get("emitters.spout.rate") == 0.08
    finally:
        s.close()


def test_the_reload_benchmarks_edits_each_find_their_spot_in_the_kernels():
    """``tools/reload_bench.py`` times a reload by editing a constant in a kernel module; an edit
    whose text the kernels no longer have stops the tool (its g2p edit did, after G2P's APIC sum
    was rewritten), so every edit is checked against the kernels as they are."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reload_bench", ROOT / "tools" / "reload_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name, (module, edit) in bench.EDITS.items():
        source = (reload.kernel_dir() / f"{module}.py").read_text()
        once, twice = edit(source, 1), edit(source, 2)
        assert once != source and once != twice, f"the {name} edit finds nothing to change in {module}.py"
