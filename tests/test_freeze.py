"""The freeze beat (scenes/freeze.py) end to end in its 2D side view, judged as ``polyalloy check
freeze --set dim=2`` judges it, and the same beat with the steel's heat removed
(``--set steel_heat=0``): with the heat every claim holds, in the beat's order; without it the
thaw, coalescence and reform claims fail.

The two runs differ only from ``T_HOT`` on (the moment the steel heats the plate, or does not),
so they share their first 6.6 s: one simulation runs to the last frame before ``T_HOT``, its state
and its judge (whose measures remember the feet, the first mass, ...) are copied, and each branch
goes on to the end with its own scene. That halves the cost of the negative case.
"""
import copy

import pytest

from polyalloy.claims import Judge
from polyalloy.scenes import freeze
from polyalloy.simulation import Simulation

LATE = {"thawed", "coalesced", "shape_error", "coverage"}  # the claims the steel's heat makes true


def _run(sim, judge, frames):
    for _ in range(frames):
        sim.step_frame()
        judge.observe(sim)


@pytest.fixture(scope="module")
def runs():
    hot, cold = freeze.build(dim=2), freeze.build(dim=2, steel_heat=0)
    frames = hot.duration_frames()
    branch = int(freeze.T_HOT * hot.fps)  # the last frame before the plate's heat differs
    judge = Judge(freeze.claims(hot))
    with Simulation(hot) as sim:
        judge.observe(sim)
        _run(sim, judge, branch)
        state, cold_judge = sim.state_dict(), copy.deepcopy(judge)
        _run(sim, judge, frames - branch)
        judge.finish(sim)
    with Simulation(cold) as sim:
        sim.load_state_dict(state)
        _run(sim, cold_judge, frames - branch)
        cold_judge.finish(sim)
    return {"hot": judge, "cold": cold_judge}


def _claims(judge):
    return {c["name"]: c for c in judge.results()}


def test_the_2d_beat_makes_every_claim_in_order(runs):
    claims = _claims(runs["hot"])
    failed = {n: (c["value"], c["status"]) for n, c in claims.items() if c["status"] != "pass"}
    assert not failed, failed
    met = {n: c["met"] for n, c in claims.items()}
    # the steps come in the beat's order (measured: 1.33, 1.63, 4.92, 5.00, 7.88, 8.46 s)
    assert met["feet_frozen"] < met["legs_off"] < met["arm_off"] < met["shattered"] < met["thawed"] <= \
        met["coalesced"]


def test_without_the_steels_heat_the_pieces_stay_frozen_and_the_check_fails(runs):
    judge = runs["cold"]
    assert not judge.passed()  # `polyalloy check` exits 1 exactly then (tests/test_check.py)
    failed = {n for n, c in _claims(judge).items() if c["status"] != "pass"}
    assert failed == LATE, failed
