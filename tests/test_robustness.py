"""Robustness: what a user can hand polyalloy (scene paths, damaged checkpoints and manifests, scenes
that make no physical sense or do not fit in memory, runs that blow up, two runs in one folder)
ends as a clear one-line error with exit status 2 (1 for a simulation that failed), never an
internal error, and no finished frame is lost.

Most cases fail before the runtime starts, so they cost a subprocess start and no compile; the
render that the damaged-file cases need is made once per module.
"""
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import make_scene
from polyalloy import ConfigError, pool, preflight
from polyalloy import simulation as simulation_module
from polyalloy.body import Humanoid, Walk
from polyalloy.errors import PolyalloyError, SimulationError
from polyalloy.jobs import CHECKPOINT, LOCK, MANIFEST, RenderJob, _checksum, _read_checkpoint
from polyalloy.kernels import fields as kf
from polyalloy.materials import Elastic, Fluid, Polyalloy
from polyalloy.scene import Camera
from polyalloy.scenes import drop
from polyalloy.shapes import Box, Plane, Sphere
from polyalloy.simulation import Simulation
from test_cli import run_cli

TINY = ["--set", "dim=2", "--set", "dx=0.04", "--format", "npz", "--arch", "cpu", "--no-progress"]  # no renderer


def assert_clear_error(proc, status, *needles):
    """Exit ``status``, exactly one ``polyalloy:`` line on stderr holding ``needles``, no traceback."""
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "internal error" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("polyalloy:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- 1. every file read back ------------------------------------------------------------------
def _scripts(tmp_path):
    (tmp_path / "syntax.py").write_text("def build(quality='preview':\n    pass\n")
    (tmp_path / "binary.py").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "folder.py").mkdir()
    os.mkfifo(tmp_path / "pipe.py")
    return tmp_path


@pytest.mark.parametrize("path,needle", [
    ("/etc/passwd", "not a Python script"),
    ("{tmp}", "is a folder"),
    ("{tmp}/folder.py", "is a folder"),
    ("{tmp}/pipe.py", "not a regular file"),
    ("{tmp}/syntax.py", "SyntaxError at line 1"),
    ("{tmp}/binary.py", "failed on import"),
    ("{tmp}/exits.py", "SystemExit"),
])
def test_a_scene_path_of_any_kind_is_one_clear_line(tmp_path, path, needle):
    tmp = _scripts(tmp_path)
    proc = run_cli("render", path.format(tmp=tmp), "--frames", "1", "--out", str(tmp_path / "o"))
    assert_clear_error(proc, 2, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_scene_file_is_one_clear_line(tmp_path):
    script = tmp_path / "secret.py"
    script.write_text("def build(quality='preview'):\n    pass\n")
    script.chmod(0)
    assert_clear_error(run_cli("render", str(script), "--out", str(tmp_path / "o")), 2, "cannot be read")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A finished 3-frame render of the tiny 2D drop: the folder and its files' bytes."""
    out = tmp_path_factory.mktemp("render") / "drop"
    proc = run_cli("render", "drop", "--frames", "3", "--out", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def _copy(rendered, tmp_path):
    out, files = rendered
    dst = tmp_path / "copy"
    dst.mkdir()
    for name, data in files.items():
        (dst / name).write_bytes(data)
    return dst


def test_a_render_leaves_no_lock_and_a_versioned_checksummed_checkpoint(rendered):
    out, files = rendered
    assert LOCK not in files
    state, meta = _read_checkpoint(str(out / CHECKPOINT))
    assert meta["format"] == 2 and meta["checksum"] == _checksum(state) and meta["frame"] == 2


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 3], lambda b: b""])
def test_a_damaged_checkpoint_is_refused_on_resume(rendered, tmp_path, damage):
    out = _copy(rendered, tmp_path)
    (out / CHECKPOINT).write_bytes(damage((out / CHECKPOINT).read_bytes()))
    proc = run_cli("render", "drop", "--frames", "4", "--out", str(out), "--resume", *TINY)
    assert_clear_error(proc, 2, "checkpoint.npz is unreadable", "--force")
    assert (out / "particles_00002.npz").read_bytes() == rendered[1]["particles_00002.npz"]  # nothing is lost


@pytest.mark.parametrize("damage", [lambda b: b"PK\x03\x04" + bytes(300), lambda b: b[:-40], lambda b: b[:100]])
def test_a_truncated_or_foreign_checkpoint_is_unreadable(rendered, tmp_path, damage):
    path = tmp_path / CHECKPOINT
    path.write_bytes(damage(rendered[1][CHECKPOINT]))
    with pytest.raises(ConfigError, match="checkpoint.npz is unreadable"):
        _read_checkpoint(str(path))


def _rewrite_checkpoint(path, change):
    with np.load(path) as data:
        state = {k: data[k] for k in data.files}
    meta = json.loads(str(state.pop("meta")))
    change(state, meta)
    np.savez(path, **state, meta=np.array(json.dumps(meta)))


@pytest.mark.parametrize("change,needle", [
    (lambda state, meta: meta.update(format=1), "checkpoint format 1"),
    (lambda state, meta: meta.pop("format"), "checkpoint format None"),
    (lambda state, meta: state["host/t"].fill(0.5), "checksum does not match"),
])
def test_a_checkpoint_of_another_format_or_with_a_bad_checksum_is_refused(rendered, tmp_path, change, needle):
    out = _copy(rendered, tmp_path)
    path = str(out / CHECKPOINT)
    _rewrite_checkpoint(path, change)
    with pytest.raises(ConfigError, match=needle):
        _read_checkpoint(path)


def test_a_checkpoint_of_another_format_is_one_line_from_the_cli(rendered, tmp_path):
    out = _copy(rendered, tmp_path)
    _rewrite_checkpoint(str(out / CHECKPOINT), lambda state, meta: meta.update(format=99))
    proc = run_cli("render", "drop", "--frames", "4", "--out", str(out), "--resume", *TINY)
    assert_clear_error(proc, 2, "checkpoint format 99", "--force")


@pytest.mark.parametrize("text,needle", [
    ('{"scene": "drop", "frames": [1, 2', "JSONDecodeError"),
    ('{"scene": "drop", "frames": [{"index": "0"}]}', "without a whole index"),
])
def test_a_damaged_manifest_is_one_clear_line(rendered, tmp_path, text, needle):
    out = _copy(rendered, tmp_path)
    (out / MANIFEST).write_text(text)
    proc = run_cli("render", "drop", "--frames", "3", "--out", str(out), "--resume", *TINY)
    assert_clear_error(proc, 2, needle, "--force")
    assert (out / "particles_00001.npz").read_bytes() == rendered[1]["particles_00001.npz"]


@pytest.mark.parametrize("text,needle", [
    ("[]", "no scene name"),
    ('{"scene": "drop", "frames": {}}', "no list of frames"),
    ("\udcff", "UnicodeDecodeError"),
    ("[" * 100_000, "RecursionError"),
])
def test_a_manifest_of_another_shape_is_refused(tmp_path, text, needle):
    (tmp_path / MANIFEST).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=f"frames.json is not a polyalloy render manifest \\((ValueError: )?{needle}"):
        _job(tmp_path).check()
    assert not (tmp_path / LOCK).exists()  # a refused job does not keep the folder locked


def test_a_manifest_that_is_a_folder_is_one_clear_line(tmp_path):
    (tmp_path / MANIFEST).mkdir()
    proc = run_cli("render", "drop", "--frames", "1", "--out", str(tmp_path), *TINY)
    assert_clear_error(proc, 2, "not a polyalloy render manifest", "IsADirectoryError")


# --- 2. memory --------------------------------------------------------------------------------
def test_parse_bytes():
    assert preflight.parse_bytes("512M") == 512 * 2**20
    assert preflight.parse_bytes("1.5GiB") == int(1.5 * 2**30)
    assert preflight.parse_bytes("2g") == 2 * 2**30
    assert preflight.parse_bytes(str(2**21)) == 2**21
    for bad in ("12x", "", "-1G", "0", "nanG", "1e3M"):
        with pytest.raises(ConfigError, match="--max-memory"):
            preflight.parse_bytes(bad)


def test_the_estimate_follows_dx_and_image_size():
    scene = drop.build(dim=3)
    est = preflight.memory_estimate(scene, lanes=2)
    coarse = preflight.memory_estimate(dataclasses.replace(scene, dx=2 * scene.dx), lanes=2)
    # particles and grid scale as dx^-3; a sphere fills pi/6 of the lattice over its box
    assert est["particles"] / coarse["particles"] == pytest.approx(8, rel=0.1)
    # the grid as allocated: the nodes the scene needs (dx^-3, plus stencil padding), rounded up by
    # the field pool (a power-of-two cube when small, else 32-node steps per axis)
    res, _, _ = preflight.grid_shape(scene)
    alloc = pool.grid_alloc(3, res, kf.GRID_BLOCK)
    assert all(a >= r for a, r in zip(alloc, res))
    assert est["grid"] == np.prod(alloc) * kf.grid_node_bytes(3, 4, preflight.is_thermal(scene),
                                                              preflight.is_controlled(scene), lanes=2)
    # P2G in two lanes keeps one copy more of the scattered channels (lane 0 adds into the grid):
    # v and m (4 of a plain node's 4 reals), 5 of the 12 thermal ones, all 7 of the controller's
    thermal, controlled = preflight.is_thermal(scene), preflight.is_controlled(scene)
    reals = (4 + 12 * thermal + 7 * controlled, 4 + 5 * thermal + 7 * controlled)
    assert preflight.memory_estimate(scene, lanes=1)["grid"] * (reals[0] + reals[1]) == est["grid"] * reals[0]
    assert est["grid"] > 3 * coarse["grid"]
    film = preflight.memory_estimate(scene, image=(1920, 1080))
    small = preflight.memory_estimate(scene, image=(640, 360))
    assert film["renderer"] > 8 * small["renderer"] > 0 and est["renderer"] == 0
    assert est["total"] == sum(est[k] for k in ("particles", "state_copy", "sampling", "grid", "renderer", "runtime"))


def test_too_big_a_scene_is_refused_with_the_largest_dx_that_fits():
    scene = drop.build(dim=3)
    limit = preflight.RUNTIME_BYTES + 5 * 2**20  # 5 MiB beside Taichi itself
    with pytest.raises(ConfigError, match=r"needs about .* but only .* is free; use --set dx=") as err:
        preflight.check_memory(scene, limit=limit)
    fit = float(str(err.value).split("--set dx=")[1].split()[0])
    assert fit > scene.dx
    need = lambda dx: preflight.memory_estimate(dataclasses.replace(scene, dx=dx))["total"]  # noqa: E731
    assert need(fit) <= limit < need(fit / preflight.DX_STEP ** 1.5)


@pytest.fixture(scope="module")
def ball():
    """A tiny 2D simulation of an elastic ball, shared (one compile) by the tests that need one."""
    s = make_scene(2, dx=0.04)
    s.add_material("rubber", Elastic(youngs_modulus=1e5))
    s.add_body("ball", Sphere(centre=(0.5, 0.5, 0), radius=0.15), "rubber")
    with Simulation(s) as sim:
        yield sim


def test_the_estimate_bounds_what_a_simulation_allocates(ball):
    est = preflight.memory_estimate(ball.scene)
    assert ball.n_particles <= est["particle_count"] <= 1.6 * ball.n_particles  # a disc fills pi/4 of its box


def test_max_memory_refuses_before_the_runtime_starts(tmp_path):
    proc = run_cli("render", "drop", "--frames", "2", "--out", str(tmp_path), "--set", "dx=0.002",
                   "--max-memory", "1G", "--arch", "cpu")
    line = assert_clear_error(proc, 2, "needs about", "is allowed", "--set dx=", "--max-memory")
    assert "renderer" in line and "[Taichi]" not in proc.stderr + proc.stdout
    proc = run_cli("check", "drop", "--max-memory", "1G", "--set", "dx=0.002", "--arch", "cpu")
    assert_clear_error(proc, 2, "needs about", "--set dx=")
    proc = run_cli("render", "drop", "--max-memory", "lots", "--out", str(tmp_path))
    assert_clear_error(proc, 2, "--max-memory expects a size")


# --- 3. physical sense, before anything is allocated -------------------------------------------
def _ball_script(tmp_path, name: str, body: str):
    """A user's 2D scene script ``name.py``: one elastic body, ``add_body("ball", <body>)``."""
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(f"""
        from polyalloy.scene import Scene
        from polyalloy.materials import Elastic
        from polyalloy.shapes import Sphere
        def build(quality="preview"):
            s = Scene(name="{name}", dim=2, domain=((0, 0), (1, 1)), dx=0.04)
            s.add_material("m", Elastic())
            s.add_body("ball", {body})
            return s
    """))
    return script


@pytest.fixture
def no_allocation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("fields were allocated before the scene was checked")

    monkeypatch.setattr(simulation_module.pool, "acquire_table", refuse)
    monkeypatch.setattr(simulation_module.pool, "acquire", refuse)


def _scene(dim=2, **fields):
    s = make_scene(dim, dx=0.04, **fields)
    s.add_material("water", Fluid())
    s.add_material("metal", Polyalloy())
    return s


def test_a_body_outside_the_domain_is_refused(no_allocation):
    s = _scene()
    s.add_body("lost", Box(centre=(1.5, 0.5, 0), half_size=(0.2, 0.2, 0)), "water")
    with pytest.raises(ConfigError, match="body 'lost' lies outside the domain"):
        Simulation(s)


@pytest.mark.parametrize("collider", [
    Plane(point=(0, 0.8, 0), normal=(0, 1, 0)),
    Box(centre=(0.5, 0.5, 0), half_size=(0.3, 0.3, 0)),
    Sphere(centre=(0.5, 0.45, 0), radius=0.3),
])
def test_a_body_inside_a_collider_is_refused(no_allocation, collider):
    s = _scene()
    s.add_collider("rock", collider)
    s.add_body("buried", Sphere(centre=(0.5, 0.5, 0), radius=0.1), "water")
    with pytest.raises(ConfigError, match="body 'buried' lies inside collider 'rock'"):
        Simulation(s)


def test_a_body_touching_a_collider_is_fine():
    s = _scene()
    s.add_collider("floor", Plane(point=(0, 0.45, 0), normal=(0, 1, 0)))
    s.add_body("resting", Sphere(centre=(0.5, 0.5, 0), radius=0.1), "water")
    assert preflight.check_scene(s) == []


def test_a_body_with_no_particles_at_this_dx_is_refused(no_allocation):
    s = _scene()
    s.add_body("speck", Sphere(centre=(0.5, 0.5, 0), radius=0.002), "water")
    with pytest.raises(ConfigError, match="body 'speck' holds no particles at dx = 0.04 m"):
        Simulation(s)


def test_an_emitter_outside_the_domain_is_refused(no_allocation):
    s = _scene()
    s.add_body("pool", Box(centre=(0.5, 0.2, 0), half_size=(0.3, 0.1, 0)), "water")
    s.pour("tap", Sphere(centre=(0.5, 3.0, 0), radius=0.05), "water", rate=1e-3)
    with pytest.raises(ConfigError, match="emitter 'tap' lies outside the domain"):
        Simulation(s)


def test_a_walk_that_leaves_the_domain_is_refused(no_allocation):
    s = _scene(dim=3)
    man = Humanoid(position=(0.3, 0.05, 0.5), height=0.5)
    s.add_body("walker", man, "metal", template=man, walk=Walk(path=[(0.3, 0, 0.5), (0.7, 0, 0.5), (1.4, 0, 0.5)]))
    with pytest.raises(ConfigError, match=r"walk path point 2 \(1.4, 0.0, 0.5\) leaves the domain"):
        Simulation(s)


def test_a_camera_inside_a_collider_is_a_warning(caplog):
    s = _scene(dim=3, camera=Camera(position=(0.5, 0.5, 0.5), look_at=(0.5, 0.5, 2.0)))
    s.add_collider("pillar", Box(centre=(0.5, 0.5, 0.5), half_size=(0.1, 0.4, 0.1)))
    s.add_body("drop", Sphere(centre=(0.2, 0.5, 0.2), radius=0.1), "water")
    warnings = preflight.check_scene(s)
    assert warnings == ["the camera is inside collider 'pillar': the frames will show its inside"]
    assert warnings[0] in caplog.text


def test_nonsense_is_one_line_from_the_cli(tmp_path):
    script = _ball_script(tmp_path, "nonsense", 'Sphere(centre=(3.0, 0.5), radius=0.2), "m"')
    proc = run_cli("render", str(script), "--frames", "1", "--out", str(tmp_path / "o"), "--arch", "cpu")
    assert_clear_error(proc, 2, "body 'ball' lies outside the domain")


# --- 4. a blow-up retries its frame -------------------------------------------------------------
def test_a_frame_that_blows_up_once_is_redone_at_half_the_cfl(ball, monkeypatch):
    sim, s = ball, ball.scene
    sim.step_frame()
    mass, cfl, frame = sim.total_mass(), s.cfl, sim.frame
    real_substep, seen = sim._launch_substep, []

    def poisoned():  # a NaN appears in the first try of the frame (at the scene's cfl) only
        seen.append(s.cfl)
        real_substep()
        if s.cfl == cfl:
            v = sim.particles_fields.v.to_numpy()
            v[0] = np.nan
            sim.particles_fields.v.from_numpy(v)
            sim.knobs.bad[None] = 1

    monkeypatch.setattr(sim, "_launch_substep", poisoned)
    assert sim.step_frame_retrying() == [cfl / 2]
    assert seen[0] == cfl and seen[-1] == cfl / 2 and s.cfl == cfl
    state = sim.particles()
    assert np.all(np.isfinite(state["x"])) and np.all(np.isfinite(state["v"]))
    assert sim.total_mass() == mass and sim.frame == frame + 1
    assert sim.t == pytest.approx(sim.frame / s.fps, abs=1e-12)


def test_a_blow_up_stops_the_device_clock_at_once(ball, monkeypatch):
    """The host reads the device only every few substeps: a particle that turns non-finite in
    G2P stops the clock in that substep, so the error names the time of that substep, and the
    substeps the host launched after it (unread) change nothing."""
    sim = ball
    sim.step_frame()
    real_substep, seen = sim._launch_substep, []

    def poisoned():  # the third substep of the frame finds a non-finite particle
        if len(seen) == 2:
            sim.knobs.bad[None] = 1  # as G2P counts one
        real_substep()
        seen.append(sim.particles_fields.x.to_numpy())

    monkeypatch.setattr(sim, "_launch_substep", poisoned)
    log = sim.record_steps = []
    start, t0 = sim.state_dict(), sim.t
    try:
        with pytest.raises(SimulationError, match="blew up"):
            sim.step_frame()
        assert len(seen) > 3  # the host had launched more, unread
        assert sim.t == t0 + log[0][1] + log[1][1] + log[2][1] and len(log) == 3
        assert all(np.array_equal(x, seen[2]) for x in seen[3:])
        assert np.array_equal(sim.particles_fields.x.to_numpy(), seen[2])
    finally:
        sim.record_steps = None
        monkeypatch.undo()
        sim.load_state_dict(start)  # the module's ball, as it was


def test_a_frame_that_always_blows_up_stops_with_one_line_and_the_manifest_says_so(tmp_path):
    script = _ball_script(tmp_path, "rocket", 'Sphere(centre=(0.5, 0.5), radius=0.15), "m", velocity=(1e30, 0)')
    out = tmp_path / "o"
    proc = run_cli("render", str(script), "--frames", "3", "--out", str(out), *TINY[4:])
    assert_clear_error(proc, 1, "simulation failed", "at frame 1", "--set cfl=", "was tried 4 times",
                       "cfl 0.4, 0.2, 0.1, 0.05")
    doc = json.loads((out / MANIFEST).read_text())
    assert doc["failed"]["frame"] == 1 and "tried 4 times" in doc["failed"]["error"]
    assert [e["index"] for e in doc["frames"]] == [0] and (out / "particles_00000.npz").exists()
    assert not (out / LOCK).exists()


def test_a_retried_frame_is_recorded_in_the_manifest(tmp_path, monkeypatch):
    scene = drop.build(dim=2)
    scene.dx = 0.04
    original = Simulation.step_frame_retrying
    monkeypatch.setattr(Simulation, "step_frame_retrying",
                        lambda sim: original(sim) + ([0.2] if sim.frame == 2 else []))  # as if frame 2 was redone
    RenderJob(scene, str(tmp_path), 3, (64, 64), ("npz",), progress=False).run()
    frames = json.loads((tmp_path / MANIFEST).read_text())["frames"]
    assert [e.get("retries") for e in frames] == [None, None, [0.2]]


# --- 5. one run per output folder ---------------------------------------------------------------
def _job(out):
    scene = drop.build(dim=2)
    return RenderJob(scene, str(out), 1, (64, 64), ("png",), precision="f32", progress=False)


def test_a_second_job_into_the_same_folder_is_refused_until_the_first_ends(tmp_path):
    first, second = _job(tmp_path), _job(tmp_path)
    first.check()
    with pytest.raises(PolyalloyError, match=f"another polyalloy render \\(pid {os.getpid()}\\) is writing into"):
        second.check()
    first._unlock()
    second.check()
    second._unlock()
    assert not (tmp_path / LOCK).exists()


def test_a_running_render_makes_a_second_cli_run_refuse(tmp_path):
    with open(tmp_path / LOCK, "w") as f:
        f.write("4242\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        proc = run_cli("render", "drop", "--frames", "1", "--out", str(tmp_path), *TINY)
    assert_clear_error(proc, 2, "another polyalloy render (pid 4242) is writing into", "another --out")


def test_a_killed_run_leaves_no_stuck_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, sys
        from polyalloy.jobs import RenderJob
        from polyalloy.scenes import drop
        RenderJob(drop.build(dim=2), {str(tmp_path)!r}, 1, (64, 64), ("png",), precision="f32").check()
        print("locked", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert any(line.strip() == "locked" for line in iter(holder.stdout.readline, ""))  # after Taichi's banner
    with pytest.raises(PolyalloyError, match=f"pid {holder.pid}"):
        _job(tmp_path).check()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK).exists()  # the file stays, the lock does not
    job = _job(tmp_path)
    job.check()
    job._unlock()


def test_a_write_that_fails_is_one_clear_error_and_keeps_the_old_file(tmp_path):
    from polyalloy import export

    (tmp_path / MANIFEST).mkdir()
    with pytest.raises(PolyalloyError, match="cannot write .*frames.json: Is a directory"):
        export.write_json_atomic(tmp_path / MANIFEST, {"a": 1})
    assert (tmp_path / MANIFEST).is_dir() and os.listdir(tmp_path) == [MANIFEST]


def test_p2g_lanes_give_way_on_a_grid_whose_copies_would_not_fit():
    """Each P2G lane but lane 0 (which adds into the grid) copies the grid's scattered channels
    (``kernels.fields.grid_lanes``): a bench-size grid (24 MB a copy) keeps all 16 lanes of a
    16-core machine, a film-size 3D grid gets one lane more than the copies that fit ``LANE_BUDGET``
    (the serial loop when none), and a GPU keeps its atomics (0)."""
    budget, reals = kf.LANE_BUDGET, kf.scattered_reals(3, True, True)
    assert reals == 16  # v (3), m, 5 thermal, 7 of the controller
    assert kf.grid_lanes(16, 72 ** 3, 3, 4, True, True) == 16  # 24 MB a copy
    assert 256 ** 3 * 4 * reals == budget and kf.grid_lanes(16, 256 ** 3, 3, 4, True, True) == 2  # one copy fits
    assert kf.grid_lanes(16, 260 ** 3, 3, 4, True, True) == 1  # 1.1 GB a copy: serial
    assert kf.grid_lanes(16, 160 ** 3, 3, 4, True, True) == budget // (160 ** 3 * 4 * reals) + 1 == 5
    assert kf.grid_lanes(2, 512 ** 2, 2, 4, False, False) == 2
    assert kf.grid_lanes(0, 256 ** 3, 3, 4, True, True) == 0 and kf.grid_lanes(1, 8, 2, 4, False, False) == 1
