"""The freeze beat (scenes/freeze.py) end to end in its 2D side view, as a user runs it:
``polyalloy check freeze --set dim=2`` passes every claim, and with the steel's heat removed
(``--set steel_heat=0``) the thaw, coalescence and reform claims fail and the check exits 1
while the freezing, snapping and shattering claims still hold. The two runs go in parallel
subprocesses (one per core)."""
import json
import subprocess
import sys

import pytest

LATE = {"thawed", "coalesced", "shape_error", "coverage"}  # the claims the steel's heat makes true


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


def test_the_2d_beat_makes_every_claim(runs):
    rc, claims = _claims(runs["hot"])
    failed = {n: (c["value"], c["status"]) for n, c in claims.items() if c["status"] != "pass"}
    assert rc == 0 and not failed, failed
    met = {n: c["met"] for n, c in claims.items()}
    # the steps come in the beat's order
    assert met["feet_frozen"] < met["legs_off"] < met["shattered"] < met["thawed"] <= met["coalesced"]


def test_without_the_steels_heat_the_pieces_stay_frozen_and_the_check_fails(runs):
    rc, claims = _claims(runs["cold"])
    assert rc == 1
    failed = {n for n, c in claims.items() if c["status"] != "pass"}
    assert failed == LATE, failed
