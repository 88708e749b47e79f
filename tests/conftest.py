"""Shared set-up of the test suite: the runtime starts once per session on the CPU, and small
scenes are built by calls so that every physics test runs in seconds on a 2-core machine.

Sizes are tiny on purpose (hundreds to a few thousand particles, coarse 3D grids); a Taichi
kernel compiles once per Simulation, so tests that can share one run do so through
module-scoped fixtures.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import polyalloy
from polyalloy import metrics, validate
from polyalloy.scene import Scene
from polyalloy.simulation import Simulation
from polyalloy.validate import centre_of_mass  # noqa: F401  (tests import it from here)

DX = validate.SMALL_DX  # m; coarse enough that a 3D test compiles and runs in seconds


# Polyalloy kernels compile ~1.5x faster with Taichi's advanced optimisation off (water ones no
# faster) and run 1.3-1.5x slower: at the suite's sizes compiling is most of the time, so the suite
# (and the CLI runs it starts, which inherit the variable) takes the trade (measured against the
# optimised build: docs/tests.md, the two about even since the kernels carry only their kinds). POLYALLOY_FAST_COMPILE=0 runs it on the optimised build;
# tests/test_determinism.py always does.
os.environ.setdefault("POLYALLOY_FAST_COMPILE", "1")


@pytest.fixture(scope="session", autouse=True)
def runtime():
    """``polyalloy.init`` may be called once per process: every test shares this CPU runtime."""
    return polyalloy.init(arch="cpu", seed=0, debug=bool(os.environ.get("POLYALLOY_DEBUG")))


# The freeze beat's file is the longest of the suite (one subprocess on the optimised build, ~4 min
# of one core) and has only two tests: pytest-xdist's own order (files with more tests first) ran
# it last, alone on one worker while the other sat idle. So the suite orders its files itself
# (``--no-loadscope-reorder`` in pyproject.toml): the files in FIRST at the start, then the rest
# as xdist would (more tests first; ties in collection order).
FIRST = ("test_freeze.py",)


def pytest_collection_modifyitems(session, config, items):
    counts = Counter(item.nodeid.split("::")[0] for item in items)

    def rank(item):
        path = item.nodeid.split("::")[0]
        return (0 if os.path.basename(path) in FIRST else 1, -counts[path])

    items.sort(key=rank)  # stable: a file's tests keep their order


_WORKER_POOLS = []  # under pytest-xdist: each worker's pool figures, gathered by the controller


def pytest_sessionfinish(session):
    """An xdist worker hands its pool figures to the controller (``pytest_testnodedown``)."""
    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        from polyalloy import pool

        out["pool"] = dict(pool.stats())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    pool = getattr(node, "workeroutput", {}).get("pool")
    if pool and pool.get("taken"):
        _WORKER_POOLS.append(pool)


def pytest_terminal_summary(terminalreporter):
    """How often the suite's simulations shared compiled kernels (``polyalloy.pool``)."""
    from polyalloy import pool

    stats = _WORKER_POOLS or [pool.stats()]
    taken, made = sum(s["taken"] for s in stats), sum(s["made"] for s in stats)
    if taken:
        where = f"{len(stats)} worker processes" if _WORKER_POOLS else "this process"
        terminalreporter.write_line(f"field pool: {taken} simulations in {where} ran on {made} sets of fields "
                                    f"(each set compiles its kernels once per process)")


@pytest.fixture(scope="session")
def validation_case():
    """``validation_case(name)``: the ``CaseResult`` of a ``polyalloy validate`` case (quick size),
    run once per session and shared by the tests that read it."""
    done = {}

    def get(name: str) -> validate.CaseResult:
        if name not in done:
            done[name] = validate.run_case(name, quick=True)
        return done[name]

    return get


def assert_checks(result: validate.CaseResult) -> None:
    """Every check of a validation case holds (the message names the one that does not)."""
    assert result.error is None, result.error
    for c in result.checks:
        assert c.passed, f"{result.name}: {c.metric} = {c.value:.4g} {c.unit}, threshold {c.kind} {c.threshold:g}"


def make_scene(dim: int, name: str = "test", size=(1.0, 1.0, 1.0), dx: float | None = None,
               gravity: float = -9.81, **fields) -> Scene:
    """An empty Scene in the box [0, size] with the suite's default grid spacing for ``dim``."""
    return validate.box_scene(dim, size=size, dx=dx or DX[dim], name=name, gravity=gravity, **fields)


def collider_distance(sim: Simulation, owner: int = -1) -> np.ndarray:
    """Signed distance (m) of every particle to collider ``owner`` (an index into
    ``scene.colliders``; -1: the union of them all) at the simulation's time ``sim.t``."""
    names = [c.name for c in sim.scene.colliders]
    return metrics.collider_distance(sim, names if owner < 0 else [names[owner]], points=sim.particles()["x"])


def run_frames(sim: Simulation, frames: int, probe) -> list:
    """Step ``frames`` output frames and return ``probe(sim)`` after each one."""
    out = []
    for _ in range(frames):
        sim.step_frame()
        out.append(probe(sim))
    return out
