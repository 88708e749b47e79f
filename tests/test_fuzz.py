"""Property-based fuzzing (hypothesis): random ``--set`` keys and values, random Scene, material,
shape, template and walk arguments, random and truncated checkpoint and manifest files. Every case
either works or raises a ``PolyalloyError`` whose message is one line; anything else (a TypeError,
a numpy error, a crash) is a bug. Nothing here compiles a kernel: polyalloy validates at
construction and in ``polyalloy.preflight``, which is what these cases reach. Example counts are
fixed and the search derandomized, so the file takes seconds and fails the same way every run.
"""
import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyalloy import preflight
from polyalloy.body import Humanoid, ShapeTemplate, Walk
from polyalloy.cli import _parse_set
from polyalloy.errors import PolyalloyError
from polyalloy.jobs import CHECKPOINT, MANIFEST, RenderJob, _read_checkpoint
from polyalloy.materials import Elastic, ElastoPlastic, Fluid, LiquidNitrogen, MoltenSteel, Polyalloy
from polyalloy.scene import TUNABLE, Control, Scene, load_scene
from polyalloy.scenes import drop
from polyalloy.shapes import Box, Capsule, Cylinder, Plane, Sphere, Union

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
LIMIT = 64 * 2**30  # bytes: a fixed memory limit, so that a case does not depend on the machine

numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-2.0, 2.0), st.floats(1e-4, 1.0))
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=6), st.lists(st.floats(-1, 2), max_size=4),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
values = st.one_of(numbers, numbers, junk)
points = st.lists(st.floats(-1.0, 2.0), min_size=3, max_size=3).map(tuple)


def mostly(good):
    """``good`` three times in four, else anything."""
    return st.one_of(good, good, good, values)


places, sizes = mostly(points), mostly(st.floats(0.01, 0.5))
vectors = st.one_of(st.lists(st.one_of(st.floats(-1.0, 2.0), st.floats()), min_size=0, max_size=4).map(tuple),
                    values)


def works_or_says_why(action):
    """Run ``action``; True when it worked, False when it raised a one-line PolyalloyError."""
    try:
        action()
    except PolyalloyError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return False
    return True


def fuzz(*strategies):
    """A test that runs ``case`` on FUZZ examples of ``strategies`` (``case`` returns what
    ``works_or_says_why`` said) and then asserts that both answers occurred: a fuzz that never
    reaches the working path, or never an error, tests less than it claims."""
    def wrap(case):
        def test():
            seen = set()

            @FUZZ
            @given(st.tuples(*strategies))
            def run(args):
                seen.add(case(*args))

            run()
            assert seen == {True, False}, f"every example {'worked' if True in seen else 'was refused'}"

        test.__name__, test.__doc__ = case.__name__, case.__doc__
        return test
    return wrap


def _preflight(scene: Scene) -> None:
    preflight.check_scene(scene)
    preflight.check_memory(scene, image=(64, 64), limit=LIMIT)


# --- --set ----------------------------------------------------------------------------------------
DROP_KEYS = drop.build(dim=2).settable_keys() + ["dim"]
set_values = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", "", "1_000", " 3 ", "2", "3",
                                        "0.04", "-0", "1e-9", "true", "None"]),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                       st.text(max_size=8))
set_keys = st.one_of(st.sampled_from(DROP_KEYS), st.text(max_size=16),
                     st.text(max_size=8).map(lambda k: f"materials.rubber.{k}"),
                     st.text(max_size=8).map(lambda k: f"control.{k}"))


@fuzz(st.lists(st.tuples(set_keys, set_values), min_size=1, max_size=3))
def test_random_set_options_work_or_say_why(pairs):
    def run():
        scene = load_scene("drop", "preview", _parse_set([f"{k}={v}" for k, v in pairs]))
        _preflight(scene)

    return works_or_says_why(run)


# --- Scene, materials, shapes, templates ---------------------------------------------------------
MATERIALS = [Fluid, Elastic, ElastoPlastic, Polyalloy, LiquidNitrogen, MoltenSteel]


@st.composite
def material_args(draw):
    cls = draw(st.sampled_from(MATERIALS))
    names = [f.name for f in dataclasses.fields(cls)]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    return cls, {n: draw(values) for n in chosen}


@fuzz(material_args())
def test_random_materials_work_or_say_why(args):
    cls, kwargs = args

    def run():
        m = cls(**kwargs)
        row = m.row()
        assert all(np.all(np.isfinite(np.asarray(v, float))) for v in row.values())
        assert math.isfinite(m.kinematic_viscosity())

    return works_or_says_why(run)


def recipe(cls, **kwargs):
    """A strategy of zero-argument callables that build ``cls`` from drawn arguments (a recipe is
    built inside the test, where a ConfigError is an answer, not a failure)."""
    return st.builds(lambda **drawn: lambda: cls(**{k: v() if callable(v) else v for k, v in drawn.items()}),
                     **kwargs)


def shapes(depth=1):
    base = st.one_of(
        recipe(Sphere, centre=places, radius=sizes),
        recipe(Box, centre=places, half_size=mostly(st.tuples(sizes, sizes, sizes)), rotation=mostly(points)),
        recipe(Capsule, a=places, b=places, radius=sizes),
        recipe(Cylinder, centre=places, radius=sizes, half_height=sizes, rotation=st.one_of(points, numbers)),
        recipe(Plane, point=places, normal=mostly(points)),
    )
    if depth == 0:
        return base
    parts = st.lists(shapes(depth - 1), max_size=3).map(lambda rs: lambda: [r() for r in rs])
    return st.one_of(base, recipe(Union, parts=parts))


@fuzz(shapes(), st.sampled_from([2, 3]))
def test_random_shapes_work_or_say_why(make, dim):
    def run():
        shape = make()
        rows = shape.rows(dim)
        lo, hi = shape.bounds(dim)
        assert len(rows) >= 1 and np.shape(lo) == np.shape(hi) == (dim,)
        assert not np.any(np.isnan(lo)) and not np.any(np.isnan(hi))

    return works_or_says_why(run)


@fuzz(st.one_of(recipe(Humanoid, position=st.one_of(points, vectors), height=st.one_of(st.floats(0.05, 3.0), values),
                        heading=values, blades=values),
                 recipe(ShapeTemplate, shape=st.one_of(shapes(0), junk), position=st.one_of(points, vectors),
                        heading=values)),
       st.one_of(st.none(), recipe(Walk, path=st.lists(st.one_of(points, vectors), max_size=4),
                                   speed=st.one_of(st.floats(0.01, 5.0), values),
                                   start=st.one_of(st.floats(0.0, 1.0), values),
                                   stride=st.one_of(st.floats(0.1, 2.0), values))),
       st.sampled_from([2, 3]), st.floats(0.0, 5.0))
def test_random_templates_and_walks_work_or_say_why(make_template, make_walk, dim, t):
    def run():
        template, walk = make_template(), make_walk() if make_walk else None
        template.rows(dim)
        template.bounds(dim)
        template.posed_rows(template.pose_at(t, dim, walk), dim)

    return works_or_says_why(run)


scene_fields = st.fixed_dictionaries({}, optional={
    "dim": mostly(st.sampled_from([2, 3])), "domain": mostly(st.tuples(points, points)),
    **{k: mostly(st.floats(*map(float, TUNABLE[k]))) for k in TUNABLE if k != "dx"},
    "dx": mostly(st.floats(0.01, 0.2)), "max_memory": st.one_of(st.none(), values), "seed": mostly(st.integers(0, 9))})


events = st.one_of(
    st.tuples(st.just("gunshot"), mostly(st.floats(0, 2)), places, places, sizes, sizes),
    st.tuples(st.just("grenade"), mostly(st.floats(0, 2)), places, sizes, values, sizes),
    st.tuples(st.just("heat"), shapes(0), values, mostly(st.floats(0, 1)), mostly(st.floats(1, 2))),
    st.tuples(st.just("pour"), st.just("tap"), shapes(0), st.just("m"), sizes, mostly(st.floats(200, 400)),
              places, mostly(st.floats(0, 1)), mostly(st.floats(1, 2))))


@fuzz(scene_fields, shapes(0), material_args(), st.one_of(st.none(), shapes(0)), places,
      mostly(st.floats(100, 2000)), st.dictionaries(st.sampled_from(list(Control.RANGES)), values, max_size=2),
      st.lists(events, max_size=2))
def test_random_scenes_work_or_say_why(fields, body_shape, material, collider, velocity, temperature, control, timeline):
    cls, kwargs = material

    def run():
        scene = Scene(name="fuzz", **fields)
        scene.add_material("m", cls(**kwargs))
        scene.add_body("b", body_shape(), "m", velocity=velocity, temperature=temperature)
        if collider is not None:
            scene.add_collider("c", collider())
        scene.control = Control(**control)
        for kind, *args in timeline:
            getattr(scene, kind)(*[a() if callable(a) else a for a in args])
        _preflight(scene)

    return works_or_says_why(run)


# --- files read back --------------------------------------------------------------------------------
class _FakeSim:
    """The part of a Simulation that ``RenderJob._save_checkpoint`` reads."""

    frame, t = 3, 0.1

    def state_dict(self):
        return {"host/t": np.asarray(0.1), "field/particles/x": np.arange(12, dtype=np.float32).reshape(6, 2)}


def _job(out: str, resume: bool = False) -> RenderJob:
    scene = drop.build(dim=2)
    return RenderJob(scene, out, 4, (64, 64), ("png",), precision="f32", resume=resume, progress=False)


with tempfile.TemporaryDirectory() as _d:
    _job(_d)._save_checkpoint(_FakeSim(), {"scene": "drop"})
    CHECKPOINT_BYTES = (Path(_d) / CHECKPOINT).read_bytes()
damaged = st.one_of(
    st.integers(0, len(CHECKPOINT_BYTES)).map(lambda n: CHECKPOINT_BYTES[:n]),
    st.tuples(st.integers(0, len(CHECKPOINT_BYTES) - 1), st.integers(1, 255)).map(
        lambda p: CHECKPOINT_BYTES[:p[0]] + bytes([CHECKPOINT_BYTES[p[0]] ^ p[1]]) + CHECKPOINT_BYTES[p[0] + 1:]),
    st.binary(max_size=600), st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b))


@fuzz(damaged)
def test_random_and_truncated_checkpoints_load_intact_or_are_refused(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / CHECKPOINT
        path.write_bytes(data)
        loaded = {}
        worked = works_or_says_why(lambda: loaded.update(zip(("state", "meta"), _read_checkpoint(str(path)))))
        if worked:
            want = _FakeSim().state_dict()  # only an intact state passes the checksum
            assert sorted(loaded["state"]) == sorted(want)
            assert all(np.array_equal(loaded["state"][k], want[k]) for k in want)
        return worked


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=12)
with tempfile.TemporaryDirectory() as _d:
    _manifest = dict(_job(_d).identity(), frames=[dict(index=0, time=0.0, files={"png": "frame_00000.png"})])
    MANIFEST_TEXT = json.dumps(_manifest)
manifests = st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries({"scene": st.one_of(st.just("drop"), json_values),
                           "frames": st.one_of(st.lists(st.fixed_dictionaries({"index": json_values}), max_size=2),
                                               json_values)}).map(lambda m: json.dumps({**_manifest, **m})),
    st.integers(0, len(MANIFEST_TEXT)).map(lambda n: MANIFEST_TEXT[:n]),
    st.text(max_size=40))


@fuzz(manifests, st.booleans(), st.booleans())
def test_random_and_truncated_manifests_are_read_or_refused(text, resume, force):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / MANIFEST).write_text(text, encoding="utf-8", errors="surrogateescape")
        job = _job(d, resume=resume)
        job.force = force
        worked = works_or_says_why(job.check)
        job._unlock()
        return worked
