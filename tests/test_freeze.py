"""The freeze beat (scenes/freeze.py) end to end in its 2D side view, as a user runs it:
``polyalloy check freeze --set dim=2``, and the same with the steel's heat removed
(``--set steel_heat=0``), in two parallel subprocesses (one per core; about 3 minutes of CPU
each). With the heat the thaw, coalescence and reform claims hold; without it they fail and the
check exits 1. Three claims do not hold yet in 2D (``KNOWN_GAPS``): the feet freeze in mid-stride
rather than planted on the plate, and the arm freezes to the line but is not pulled off it; the
strict xfail test turns into a failure the day they hold, so that the list is kept true."""
import json
import subprocess
import sys

import pytest

LATE = {"thawed", "coalesced", "shape_error", "coverage"}  # the claims the steel's heat makes true
KNOWN_GAPS = {"feet_stuck", "feet_on_floor", "arm_off"}  # measured failing in 2D (see the module docstring)


@pytest.fixture(scope="module")
def runs():
    def start(*extra):
        return subprocess.Popen([sys.executable, "-m", "polyalloy.cli", "check", "freeze", "--arch", "cpu",
                                 "--set", "dim=2", "--json", "--no-progress", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = {"hot": start(), "cold": start("--set", "steel_heat=0")}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=3600)
        out[name] = (proc.returncode, stdout, stderr)
    return out


def _claims(run):
    rc, stdout, stderr = run
    record = json.loads(stdout)
    return rc, {c["name"]: c for c in record["claims"]}


def test_the_2d_beat_makes_its_claims_in_order(runs):
    rc, claims = _claims(runs["hot"])
    failed = {n: (c["value"], c["status"]) for n, c in claims.items() if c["status"] != "pass"}
    assert set(failed) <= KNOWN_GAPS, failed
    met = {n: c["met"] for n, c in claims.items()}
    # the steps come in the beat's order (measured: 1.71, 2.08, 5.0, 8.04, 9.54 s)
    assert met["feet_frozen"] < met["legs_off"] < met["shattered"] < met["thawed"] <= met["coalesced"]


@pytest.mark.xfail(strict=True, reason="the feet freeze in mid-stride and the arm stays on the line (2D)")
def test_the_2d_beat_makes_every_claim(runs):
    rc, claims = _claims(runs["hot"])
    assert rc == 0 and all(c["status"] == "pass" for c in claims.values())


def test_without_the_steels_heat_the_pieces_stay_frozen_and_the_check_fails(runs):
    rc, claims = _claims(runs["cold"])
    assert rc == 1
    failed = {n for n, c in claims.items() if c["status"] != "pass"}
    assert failed - KNOWN_GAPS == LATE, failed
