"""``polyalloy check`` and ``render --check`` as a user runs them (subprocesses): the bars beat's
claims on its 2D top view hold and can fail, a user's scene file is judged the same way, bad input
is one line with exit status 2, and a rendered clip carries its claims in frames.json."""
import json

import pytest

from test_cli import assert_one_line_error, finish, run_cli, start_cli

BARS_2D = ("bars", "--set", "dim=2", "--arch", "cpu", "--no-progress")
CLAIMS = ("past_bars", "shape_error", "coverage", "inside_bars", "mass", "stripes", "stripes_fade")

USER_SCENE = """
from polyalloy.claims import Claim
from polyalloy.materials import Elastic
from polyalloy.scene import Scene
from polyalloy.shapes import Sphere


def build(quality="preview", height=0.5):
    s = Scene(name="mine", dim=2, domain=((0, 0), (1, 1)), dx=0.05, duration=0.2)
    s.add_material("jelly", Elastic())
    s.add_body("ball", Sphere(centre=(0.5, height), radius=0.12), "jelly")
    return s
"""
# the ball falls freely for 0.2 s: its lowest point drops by g t^2 / 2 = 0.2 m, from 0.38 m to 0.18 m
FALLS = USER_SCENE + """

def claims(scene):
    low = lambda sim: float(sim.particles()["x"][:, 1].min())
    return [Claim("low", "the ball's lowest point", low, "{op}", 0.3, unit="m")]
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# three bars runs: the beat as shipped, and two broken on purpose. The shortest runs first, alone:
# the other two, started together when it has ended, load its compiled kernels from Taichi's cache
# (written at a process's exit): 32 s of CPU against 46 s for the three started together (one
# measurement each, cold cache), and no later (24 s against 26 s of wall)
BROKEN = {
    # the walk stops 1.3 s in, before he reaches the bars: nothing is past them
    "short": (("--set", "duration=1.3"), {"past_bars", "stripes", "stripes_fade"}),
    # copied colours relax in 1 ms, so none is left when a particle leaves the bar (by 2.2 s the front
    # of him has left them: ~half the beat's cost)
    "no_stripes": (("--set", "control.mimic_decay=0.001", "--seconds", "2.2"), {"stripes"}),
}


@pytest.fixture(scope="module")
def bars_runs():
    runs = {"short": finish(start_cli("check", *BARS_2D, *BROKEN["short"][0], "--json"))}
    procs = {"as_shipped": start_cli("check", *BARS_2D),
             "no_stripes": start_cli("check", *BARS_2D, *BROKEN["no_stripes"][0], "--json")}
    runs.update({k: finish(p) for k, p in procs.items()})
    return runs


def test_bars_top_view_holds_its_claims(bars_runs):
    proc = bars_runs["as_shipped"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout
    for name in CLAIMS:
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert row.rstrip().endswith("pass"), row
    assert "every frame" in table and "all claims hold" in table


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bars_claims_fail_when_the_beat_goes_wrong(bars_runs, case):
    proc, fails = bars_runs[case], BROKEN[case][1]
    assert proc.returncode == 1, proc.stderr
    record = json.loads(proc.stdout)
    status = {r["name"]: r["status"] for r in record["claims"]}
    assert {n for n, s in status.items() if s == "FAIL"} >= fails, status
    assert record["passed"] is False


def test_a_user_scene_is_judged_by_its_own_claims(tmp_path):
    held, failed = (start_cli("check", write(tmp_path, f"{name}.py", FALLS.replace("{op}", op)), "--arch", "cpu",
                              "--no-progress") for name, op in (("held", "<="), ("failed", ">=")))
    held, failed = finish(held), finish(failed)
    assert held.returncode == 0, held.stderr
    assert "all claims hold" in held.stdout
    assert failed.returncode == 1, failed.stderr
    assert "FAIL" in failed.stdout and "claims FAILED" in failed.stdout


def test_a_scene_without_claims_is_reported_not_an_error(tmp_path):
    proc = run_cli("check", write(tmp_path, "plain.py", USER_SCENE), "--arch", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "declares no claims" in proc.stdout


@pytest.mark.parametrize("args,needle", [
    (["no_such_scene"], "unknown scene"),
    (["bars", "--set", "gapp=0.1"], "unknown key 'gapp'"),
    (["bars", "--set", "gap=wide"], "'gap' needs a number"),
    (["bars", "--set", "dim=4"], "dim must be 2 or 3"),
    (["bars", "--seconds", "-1"], "--seconds"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    proc = run_cli("check", *args)
    assert_one_line_error(proc, needle)
    assert proc.returncode == 2


def test_claims_that_raise_are_one_line_and_exit_2(tmp_path):
    script = write(tmp_path, "broken.py", USER_SCENE + "\n\ndef claims(scene):\n    raise KeyError('oops')\n")
    proc = run_cli("check", script)
    assert_one_line_error(proc, "claims() failed", "oops")
    assert proc.returncode == 2
    proc = run_cli("render", script, "--check", "--frames", "1", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "claims() failed")
    assert proc.returncode == 2


def test_render_check_writes_the_claims_into_frames_json(tmp_path):
    script = write(tmp_path, "falls.py", FALLS.replace("{op}", ">="))  # fails at the end (0.18 m < 0.3 m)
    out = tmp_path / "o"
    common = ("render", script, "--check", "--out", str(out), "--arch", "cpu", "--size", "64x64", "--format", "png",
              "--no-progress")
    proc = run_cli(*common, "--frames", "7")
    assert proc.returncode == 1, proc.stderr  # the claim failed; the frames are written all the same
    doc = json.loads((out / "frames.json").read_text())
    assert len(doc["frames"]) == 7 and (out / "frame_00006.png").exists()
    claims = doc["claims"]
    assert claims["final"] and not claims["partial"] and claims["passed"] is False
    [low] = claims["records"]
    assert low["name"] == "low" and low["status"] == "FAIL" and low["time"] == pytest.approx(0.2)
    assert "FAILED" in proc.stdout

    # the claim now holds (<= 0.3 m), but a resumed render judges from its checkpoint on only: no
    # verdict, and never a pass
    write(tmp_path, "falls.py", FALLS.replace("{op}", "<="))
    proc = run_cli(*common, "--frames", "9", "--resume")
    assert proc.returncode == 1, proc.stderr
    claims = json.loads((out / "frames.json").read_text())["claims"]
    assert claims["partial"] and claims["judged_from"] == 6 and claims["passed"] is None
    assert "no verdict" in proc.stdout
    proc = run_cli(*common, "--frames", "7", "--force")  # judged from frame 0: a verdict
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "frames.json").read_text())["claims"]["passed"] is True


def test_the_eta_goes_at_the_pace_of_the_last_frames(monkeypatch):
    import io

    from polyalloy import jobs

    clock = iter([0.0] + [100.0 + k for k in range(30)])  # start; the first frame compiles for 100 s
    monkeypatch.setattr(jobs.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = jobs.Progress(40, "x", True, stream=out, verb="check")
    for k in range(12):
        bar.update(k, k / 30, 1.0, None)
    last = out.getvalue().splitlines()[-1]
    assert last.endswith("ETA 0:28"), last  # 28 frames left at 1 s each, not at the 100 s of the first
