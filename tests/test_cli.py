"""The CLI as a user runs it: subprocesses, exit codes, one-line errors, files on disk."""
import json
import os
import subprocess
import sys

import imageio.v3 as iio
import pytest

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


def run_cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "polyalloy.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=timeout)


def start_cli(*args, cwd=None):
    """``polyalloy ARGS`` started in the background (``finish`` waits for it): runs side by side."""
    return subprocess.Popen([sys.executable, "-m", "polyalloy.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=ENV)


def finish(proc, timeout=900) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in err.splitlines() if ln.startswith("polyalloy:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_list_names_the_shipped_scenes():
    proc = run_cli("list", "--json")
    assert proc.returncode == 0, proc.stderr
    scenes = json.loads(proc.stdout)
    assert {"dam_break", "drop"} <= set(scenes)
    assert all(isinstance(v, str) and v for v in scenes.values())


@pytest.mark.parametrize("dim", ["3", "2"])
def test_render_dam_break_writes_frames_and_mp4(tmp_path, dim):
    out = tmp_path / "out"
    proc = run_cli("render", "dam_break", "--quality", "preview", "--frames", "3", "--out", str(out),
                   "--arch", "cpu", "--size", "160x96", "--set", f"dim={dim}", "--set", "dx=0.04",
                   "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert pngs == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    for name in pngs:
        assert iio.imread(out / name).shape == (96, 160, 3)
    frames = list(iio.imiter(summary["video"]))
    assert len(frames) == 3 and frames[0].shape[:2] == (96, 160)
    assert summary["frames"] == 3 and summary["particles"] > 0
    assert not [p for p in os.listdir(out) if ".tmp" in p]


def test_render_a_user_scene_file(tmp_path):
    script = tmp_path / "my_scene.py"
    script.write_text(
        "from polyalloy.scene import Scene\n"
        "from polyalloy.materials import Elastic\n"
        "from polyalloy.shapes import Sphere\n"
        "def build(quality='preview'):\n"
        "    s = Scene(name='mine', dim=2, domain=((0, 0), (1, 1)), dx=0.04)\n"
        "    s.add_material('jelly', Elastic())\n"
        "    s.add_body('ball', Sphere(centre=(0.5, 0.5), radius=0.15), 'jelly')\n"
        "    return s\n")
    out = tmp_path / "o"
    proc = run_cli("render", str(script), "--frames", "2", "--out", str(out), "--arch", "cpu",
                   "--size", "64x64", "--format", "png", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "frame_00000.png", "frame_00001.png", "frames.json"]
    assert proc.stdout.strip().endswith(f"are in {out}")


def test_unknown_scene_is_one_clear_line():
    proc = run_cli("render", "no_such_scene", "--frames", "1")
    assert_one_line_error(proc, "unknown scene", "dam_break")
    assert proc.returncode == 2


def test_unknown_set_key_is_one_clear_line(tmp_path):
    proc = run_cli("render", "drop", "--frames", "1", "--out", str(tmp_path), "--set", "gravty=-3")
    assert_one_line_error(proc, "unknown key 'gravty'", "gravity")
    assert proc.returncode == 2


@pytest.mark.parametrize("args,needle", [
    (["--set", "cfl=7"], "cfl"),
    (["--set", "cfl"], "key=value"),
    (["--size", "100x90"], "multiples of 8"),
    (["--format", "avi"], "unknown format"),
    (["--frames", "0"], "--frames"),
])
def test_bad_values_are_one_clear_line(tmp_path, args, needle):
    proc = run_cli("render", "drop", "--out", str(tmp_path), *args)
    assert_one_line_error(proc, needle)


def test_scene_script_that_raises_is_one_clear_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("def build(quality='preview'):\n    raise RuntimeError('boom')\n")
    proc = run_cli("render", str(script), "--frames", "1", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "boom")


def test_unwritable_output_folder_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli("render", "drop", "--frames", "1", "--out", str(blocker / "sub"), "--arch", "cpu")
    assert_one_line_error(proc)
    assert blocker.read_text() == "not a folder"


def test_a_bad_p2g_lane_count_is_a_one_line_error():
    """``POLYALLOY_P2G_LANES`` (the CPU P2G's lanes, 1 to 16): anything else stops the run before a
    simulation starts, with one line naming the variable and exit status 2."""
    for bad in ("0", "17", "two"):
        out = subprocess.run([sys.executable, "-m", "polyalloy.cli", "check", "bars", "--arch", "cpu"],
                             capture_output=True, text=True, env=dict(ENV, POLYALLOY_P2G_LANES=bad), timeout=120)
        assert out.returncode == 2, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("polyalloy: error:")]
        assert errors == [f"polyalloy: error: POLYALLOY_P2G_LANES must be a whole number from 1 to 16, got {bad!r}"]
        assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_bad_sort_interval_is_a_one_line_error():
    """``POLYALLOY_SORT_EVERY`` (P2G in block order, ``kernels.order``; whole substeps, 0 off): a
    word, a negative number, a digit no ``int`` reads or a huge one stops the run before a
    simulation starts, with one line naming the variable and exit status 2."""
    for bad in ("often", "-4", "\u00b2", "2000000"):
        out = subprocess.run([sys.executable, "-m", "polyalloy.cli", "check", "bars", "--arch", "cpu"],
                             capture_output=True, text=True, env=dict(ENV, POLYALLOY_SORT_EVERY=bad), timeout=120)
        assert out.returncode == 2, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("polyalloy: error:")]
        assert errors == ["polyalloy: error: POLYALLOY_SORT_EVERY must be a whole number of substeps from 0 to "
                          f"1000000, got {bad!r}"]
        assert "Traceback" not in out.stderr and out.stdout == ""
