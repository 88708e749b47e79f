"""Export and the render job as a user meets them: every format on disk and readable, the
manifest, atomic files under SIGTERM/SIGINT, ``--resume`` ending bit-identical to an
uninterrupted ``--deterministic`` run, ``--force`` and the default skip, bad input.

One tiny 2D scene (a few hundred particles) with heat, a nitrogen pour and a gunshot on its
timeline, so that a resume crosses emitter fills and events; ``dt_max`` is lowered so that a
frame takes long enough (~0.1 s) for a signal to land in the middle of the run.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from polyalloy.errors import ConfigError
from polyalloy.export import GIF_MAX_WIDTH, PARTICLE_ARRAYS, gif_stride, srgb8, write_particles_npz, write_ply
from test_cli import ENV, assert_one_line_error, run_cli

SCENE = '''"""Export test: a polyalloy ball on a cold floor, a nitrogen pour, a gunshot."""
from polyalloy.materials import LiquidNitrogen, Polyalloy
from polyalloy.scene import Scene
from polyalloy.shapes import Box, Plane, Sphere


def build(quality="preview"):
    s = Scene(name="tiny", dim=2, domain=((0, 0), (1, 1)), dx=0.04, fps=10, duration=1.0)
    s.add_material("t1000", Polyalloy())
    s.add_material("ln2", LiquidNitrogen())
    s.add_body("ball", Sphere(centre=(0.5, 0.45, 0), radius=0.15), "t1000", temperature=300.0)
    s.add_collider("floor", Plane(point=(0, 0.1, 0), normal=(0, 1, 0)), friction=0.5, temperature=120.0)
    s.pour("spout", Box(centre=(0.5, 0.8, 0), half_size=(0.06, 0.03, 0.1)), "ln2", rate=0.05, temperature=77.4,
           velocity=(0.0, -1.0, 0.0), start=0.15, end=0.45)
    s.gunshot(0.65, (0.5, 0.4, 0), (1, 0, 0), impulse=5.0, radius=0.08)
    return s
'''
FRAMES = 12
SIZE = (64, 48)
FORMATS = "mp4,gif,png,ply,npz"
SLOW = ("--set", "dt_max=5e-4")  # ~200 substeps per frame: a signal lands mid-run


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "tiny.py"
    path.write_text(SCENE)
    return path


def render_args(scene_file, out, *extra):
    return ("render", str(scene_file), "--frames", str(FRAMES), "--size", "x".join(map(str, SIZE)),
            "--format", FORMATS, "--out", str(out), "--arch", "cpu", "--deterministic", *SLOW, *extra)


@pytest.fixture(scope="module")
def tiny_sim(scene_file):
    """The test scene simulated in this process to t = 0.3 s, while the pour runs."""
    from polyalloy.scene import load_scene
    from polyalloy.simulation import Simulation

    with Simulation(load_scene(str(scene_file))) as sim:
        for _ in range(3):
            sim.step_frame()
        yield sim


@pytest.fixture(scope="module")
def reference(scene_file, tmp_path_factory):
    """An uninterrupted deterministic render with every format."""
    out = tmp_path_factory.mktemp("reference")
    proc = run_cli(*render_args(scene_file, out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


def read_ply(path):
    """A minimal reader of binary little-endian PLY vertex lists: a structured array."""
    types = {"float": "<f4", "double": "<f8", "int": "<i4", "uchar": "u1"}
    with open(path, "rb") as f:
        assert f.readline() == b"ply\n"
        assert f.readline() == b"format binary_little_endian 1.0\n"
        columns, count = [], None
        while (line := f.readline().decode("ascii").split()) != ["end_header"]:
            if line[0] == "element":
                assert line[1] == "vertex"
                count = int(line[2])
            elif line[0] == "property":
                columns.append((line[2], types[line[1]]))
        data = np.frombuffer(f.read(), dtype=columns)
    assert len(data) == count
    return data


def temp_files(folder):
    return [p for p in os.listdir(folder) if p.startswith(".")]


# --- formats --------------------------------------------------------------------------------
def test_every_format_is_written_with_the_right_frames(reference):
    out, proc = reference
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert pngs == [f"frame_{k:05d}.png" for k in range(FRAMES)]
    assert iio.imread(out / pngs[0]).shape == (SIZE[1], SIZE[0], 3)
    video = list(iio.imiter(out / "tiny.mp4"))
    assert len(video) == FRAMES and video[0].shape == (SIZE[1], SIZE[0], 3)
    with Image.open(out / "tiny.gif") as gif:
        assert gif.n_frames == len(range(0, FRAMES, gif_stride(10))) and gif.info["loop"] == 0
        assert gif.width <= GIF_MAX_WIDTH and gif.mode == "P"
    for ext in ("ply", "npz"):
        assert sorted(p for p in os.listdir(out) if p.endswith("." + ext) and p.startswith("particles_")) == \
            [f"particles_{k:05d}.{ext}" for k in range(FRAMES)]
    assert temp_files(out) == []
    assert f"are in {out}" in proc.stdout.strip().splitlines()[-1]


def test_ply_holds_the_npz_arrays_exactly(reference):
    out, _ = reference
    counts = []
    for k in (0, FRAMES - 1):
        with np.load(out / f"particles_{k:05d}.npz") as z:
            npz = {name: z[name] for name in z.files}
        ply = read_ply(out / f"particles_{k:05d}.ply")
        n, dim = npz["x"].shape
        counts.append(n)
        assert dim == 2 and n > 100 and float(npz["time"]) == pytest.approx(k / 10)
        for i, axis in enumerate("xy"):
            assert np.array_equal(ply[axis], npz["x"][:, i]) and np.array_equal(ply["v" + axis], npz["v"][:, i])
        assert not ply["z"].any() and not ply["vz"].any()
        assert np.array_equal(ply["temperature"], npz["T"]) and np.array_equal(ply["phase"], npz["phase"])
        assert np.array_equal(ply["id"], npz["id"]) and np.array_equal(ply["comp"], npz["comp"])
        rgb = np.stack([ply["red"], ply["green"], ply["blue"]], axis=1)
        assert np.array_equal(rgb, srgb8(npz["color"]))
        if k:
            assert npz["id"].max() >= counts[0]  # the pour added particles


def test_particle_files_round_trip_a_simulation_exactly(tiny_sim, tmp_path):
    from polyalloy.jobs import particle_record

    record, live, alive = particle_record(tiny_sim), tiny_sim.particles(), tiny_sim.particles(retired=True)["alive"]
    assert np.array_equal(record["id"], np.flatnonzero(alive))
    write_particles_npz(tmp_path / "p.npz", record, tiny_sim.t)
    write_ply(tmp_path / "p.ply", record)
    with np.load(tmp_path / "p.npz") as z:
        assert np.array_equal(z["id"], record["id"]) and float(z["time"]) == tiny_sim.t
        for name in PARTICLE_ARRAYS[1:]:
            assert z[name].dtype == live[name].dtype and np.array_equal(z[name], live[name]), name
    ply = read_ply(tmp_path / "p.ply")
    assert ply["x"].dtype == np.float32 and np.array_equal(ply["y"], record["x"][:, 1])
    doubles = dict(record, x=record["x"].astype(np.float64), v=record["v"].astype(np.float64),
                   T=record["T"].astype(np.float64) + 1e-9)
    write_ply(tmp_path / "d.ply", doubles)
    ply = read_ply(tmp_path / "d.ply")
    assert ply["x"].dtype == np.float64 and np.array_equal(ply["temperature"], doubles["T"])


def test_manifest_describes_the_render(reference, scene_file):
    out, _ = reference
    doc = json.loads((out / "frames.json").read_text())
    assert doc["scene"] == "tiny" and doc["source"] == str(scene_file) and doc["quality"] == "preview"
    assert doc["params"] == {"dt_max": "5e-4"} and doc["scene_params"]["dt_max"] == 5e-4
    assert doc["seed"] == 0 and doc["precision"] == "f32" and doc["arch"] == "x64" and doc["deterministic"]
    assert doc["polyalloy"] and doc["size"] == list(SIZE) and doc["formats"] == ["png", "mp4", "gif", "ply", "npz"]
    assert doc["complete"] and doc["videos"] == {"mp4": "tiny.mp4", "gif": "tiny.gif"}
    assert [f["index"] for f in doc["frames"]] == list(range(FRAMES))
    for f in doc["frames"]:
        assert f["time"] == pytest.approx(f["index"] / 10)
        assert f["files"] == {"png": f"frame_{f['index']:05d}.png", "ply": f"particles_{f['index']:05d}.ply",
                              "npz": f"particles_{f['index']:05d}.npz"}
        assert f["sim_seconds"] >= 0 and f["render_seconds"] > 0 and f["written"] == ["png", "ply", "npz"]
    assert doc["frames"][-1]["substeps"] > 0


# --- checkpoints -------------------------------------------------------------------------------
def test_state_dict_restores_every_field_and_counter(tiny_sim):
    state = tiny_sim.state_dict()
    assert {"field/particles_fields/x", "field/knobs/max_speed", "host/t", "host/frame", "host/_next_fill",
            "host/spawned_energy"} <= set(state)
    tiny_sim.step_frame()
    assert tiny_sim.t > float(state["host/t"])
    tiny_sim.load_state_dict(state)
    after = tiny_sim.state_dict()
    assert set(after) == set(state) and all(np.array_equal(after[k], v) for k, v in state.items())
    assert isinstance(tiny_sim.t, float) and isinstance(tiny_sim.frame, int)
    x = state["field/particles_fields/x"]
    with pytest.raises(ConfigError, match="particles_fields/x"):
        tiny_sim.load_state_dict(dict(state, **{"field/particles_fields/x": x[:-1]}))
    with pytest.raises(ConfigError, match="host/t"):
        tiny_sim.load_state_dict({k: v for k, v in state.items() if k != "host/t"})


def test_field_groups_read_and_write_what_taichis_own_methods_do(tiny_sim):
    """``kernels.fieldio`` moves every field of a container in one launch (Taichi's ``to_numpy``
    compiles a kernel per field): on the particle store and the knobs (scalar, vector, matrix and
    0-D fields of f32, f64 and i32) a group reads exactly what ``to_numpy`` reads and writes what
    it then reads back (random values); on every container, what it writes it reads, it pads short rows with
    zeros on request, refuses a wrong shape, and zeroes (NaN too: the pool zeroes a kit that
    a blown-up run gave back)."""
    from polyalloy.kernels import fieldio
    from polyalloy.simulation import _containers, _taichi_fields

    rng = np.random.default_rng(7)
    state = tiny_sim.state_dict()
    # Taichi's own methods compile a kernel per field (what fieldio avoids): they judge the
    # particle store and the knobs, which between them hold every kind of field; the other
    # containers are checked by writing random values and reading them back through the group
    judged = ("particles_fields", "knobs")
    try:
        kinds = set()
        for name, container in _containers(tiny_sim).items():
            fields = _taichi_fields(container)
            group = fieldio.group(container)
            assert fieldio.group(container) is group  # made once per container
            own = (lambda: {k: f.to_numpy() for k, f in fields.items()}) if name in judged else group.read
            got, ref = group.read(), own()
            for k, f in fields.items():
                kinds.add((ref[k].dtype.str, ref[k].ndim - len(f.shape)))
                assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape, (name, k)
                assert np.array_equal(got[k], ref[k]), (name, k)
            new = {k: (rng.integers(-9, 9, a.shape) if a.dtype.kind == "i" else rng.standard_normal(a.shape))
                   .astype(a.dtype) for k, a in got.items()}
            group.write(new)
            back = own()
            assert all(np.array_equal(back[k], new[k]) for k in fields), name
            group.write({k: (np.full(a.shape, -3) if a.dtype.kind == "i" else np.full(a.shape, np.nan))
                         for k, a in new.items()})  # what a blown-up run leaves
            group.zero()
            assert not any(a.any() for a in own().values()), name
        assert {("<f4", 0), ("<f4", 1), ("<f4", 2), ("<i4", 0), ("<f8", 0)} <= kinds, kinds
        pf = tiny_sim.particles_fields
        xv = fieldio.group(pf, ("x", "part"))
        xv.write(dict(x=np.ones((3, tiny_sim.dim)), part=np.arange(2)), pad=True)
        back = xv.read()
        assert back["x"][:3].all() and not back["x"][3:].any() and list(back["part"][:3]) == [0, 1, 0]
        with pytest.raises(ValueError, match="'x' takes shape"):
            xv.write(dict(x=np.ones((3, tiny_sim.dim)), part=np.arange(2)))
        # a few knobs in one launch (what Simulation sets as it starts): each reads back as Taichi
        # reads it, in its own type, and the others keep their values
        k = tiny_sim.knobs
        names = ("gravity", "heat_cap", "heat_group")
        others = {n: f.to_numpy() for n, f in _taichi_fields(k).items() if n not in names}
        g = [0.5, -3.25] + [0.0] * (tiny_sim.dim - 2)
        fieldio.assign(k, gravity=g, heat_cap=1.0 / 3.0, heat_group=7)
        assert fieldio.group(k, names) is fieldio.group(k, names)  # compiled once per container
        assert list(k.gravity.to_numpy()) == g and k.heat_group[None] == 7
        assert k.heat_cap.to_numpy().dtype == np.float64 and k.heat_cap[None] == 1.0 / 3.0  # f64 to the last bit
        assert all(np.array_equal(f.to_numpy(), others[n]) for n, f in _taichi_fields(k).items() if n in others)
    finally:
        tiny_sim.load_state_dict(state)


def test_a_state_dict_does_not_follow_later_changes_of_host_arrays(tiny_sim):
    """Host arrays (which emitter fills have started) change in place as the run goes on; a state
    that held them by reference restored the later bookkeeping (the freeze beat's branch read 9%
    of its energy as vapour)."""
    before = tiny_sim.fill_started
    try:
        tiny_sim.fill_started = np.zeros(3, bool)
        state = tiny_sim.state_dict()
        tiny_sim.fill_started[:] = True
        assert not state["host/fill_started"].any()
    finally:
        tiny_sim.fill_started = before


def _kill_mid_way(args, signum, after_frame=4):
    proc = subprocess.Popen([sys.executable, "-m", "polyalloy.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if f"frame {after_frame}/" in line:
            proc.send_signal(signum)
            break
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, "".join(lines) + rest


def test_a_render_killed_twice_leaves_whole_files_and_resumes_to_the_same_frames(reference, scene_file, tmp_path):
    """SIGTERM at frame 4, --resume, SIGINT at frame 8, --resume: the same files as one uninterrupted run."""
    ref, _ = reference
    out = tmp_path / "out"
    for signum, after_frame, options in ((signal.SIGTERM, 4, ()), (signal.SIGINT, 8, ("--resume",))):
        rc, err = _kill_mid_way(render_args(scene_file, out, *options), signum, after_frame)
        assert rc == 128 + signum, err
        message = [ln for ln in err.splitlines() if ln.startswith("polyalloy:")]
        assert len(message) == 1 and signal.Signals(signum).name in message[0] and "--resume" in message[0]
        assert temp_files(out) == []
        doc = json.loads((out / "frames.json").read_text())
        assert not doc["complete"] and after_frame <= len(doc["frames"]) < FRAMES
        for f in doc["frames"]:  # every file the manifest lists is whole
            assert Image.open(out / f["files"]["png"]).size == SIZE
            assert np.load(out / f["files"]["npz"])["x"].shape[1] == 2 and len(read_ply(out / f["files"]["ply"]))
        assert not (out / "tiny.mp4").exists()

    proc = run_cli(*render_args(scene_file, out, "--resume"))
    assert proc.returncode == 0, proc.stderr
    assert "resumed from frame" in proc.stdout
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref))
    for name in os.listdir(ref):
        if name.endswith((".png", ".npz", ".ply", ".gif")):
            assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert [f["time"] for f in json.loads((out / "frames.json").read_text())["frames"]] == \
        [f["time"] for f in json.loads((ref / "frames.json").read_text())["frames"]]


def test_existing_files_are_kept_unless_forced(reference, scene_file, tmp_path):
    ref, _ = reference
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    mine = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    Image.fromarray(mine).save(out / "frame_00001.png")
    os.remove(out / "particles_00002.npz")
    proc = run_cli(*render_args(scene_file, out, "--json", "--no-progress"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["written"] == 3  # the missing NPZ, then the MP4 and GIF made again
    assert np.array_equal(iio.imread(out / "frame_00001.png"), mine)
    assert (out / "particles_00002.npz").read_bytes() == (ref / "particles_00002.npz").read_bytes()
    written = [f["written"] for f in json.loads((out / "frames.json").read_text())["frames"]]
    assert written == [[]] * 2 + [["npz"]] + [[]] * (FRAMES - 3)
    proc = run_cli(*render_args(scene_file, out, "--json", "--no-progress", "--force"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["written"] == 3 * FRAMES + 2
    assert (out / "frame_00001.png").read_bytes() == (ref / "frame_00001.png").read_bytes()


# --- bad input ---------------------------------------------------------------------------------
def test_bad_render_requests_are_one_line_and_lose_nothing(reference, scene_file, tmp_path):
    ref, _ = reference
    before = {p: (ref / p).read_bytes() for p in os.listdir(ref)}
    proc = run_cli(*render_args(scene_file, ref, "--resume", "--set", "cfl=0.3"))
    assert_one_line_error(proc, "cannot resume", "cfl")
    # P2G in another order (kernels.order) deals the rest of the run again: a resume must not mix them
    proc = subprocess.run([sys.executable, "-m", "polyalloy.cli", *render_args(scene_file, ref, "--resume")],
                          capture_output=True, text=True, env=dict(ENV, POLYALLOY_SORT_EVERY="16"), timeout=600)
    assert_one_line_error(proc, "cannot resume", "POLYALLOY_SORT_EVERY 0 (now 16)")
    old = tmp_path / "old"  # a folder rendered before the identity held it: rendered with 0, as now
    shutil.copytree(ref, old)
    manifest = json.loads((old / "frames.json").read_text())
    del manifest["POLYALLOY_SORT_EVERY"]
    (old / "frames.json").write_text(json.dumps(manifest))
    proc = run_cli(*render_args(scene_file, old, "--json", "--no-progress"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["written"] == 0, proc.stderr
    proc = run_cli(*render_args(scene_file, ref, "--set", "cfl=0.3"))
    assert_one_line_error(proc, "will not mix frames", "--force")
    proc = run_cli(*render_args(scene_file, tmp_path / "empty", "--resume"))
    assert_one_line_error(proc, "nothing to resume")
    proc = run_cli(*render_args(scene_file, ref, "--format", "png,webm"))
    assert_one_line_error(proc, "unknown format webm")
    (tmp_path / "file").write_text("x")
    proc = run_cli(*render_args(scene_file, tmp_path / "file" / "out"))
    assert_one_line_error(proc, "not writable")
    assert {p: (ref / p).read_bytes() for p in os.listdir(ref)} == before
