"""``polyalloy validate`` at its quick size: every case passes its thresholds, the record is valid
JSON with every field, the table names every check, and the command's exit status says whether
a check failed. The cases run once per session (``validation_case`` in conftest.py), shared
with the heat tests that read the same runs."""
import json
import math

import pytest

from polyalloy import cli, validate


@pytest.fixture(scope="module")
def report(validation_case):
    return validate.report({name: validation_case(name) for name in validate.CASES}, quick=True)


def test_every_case_passes_its_thresholds(report):
    failed = {name: [c for c in case["checks"] if not c["passed"]] or case["error"]
              for name, case in report["cases"].items() if not case["passed"]}
    assert report["passed"] and not failed, failed
    assert set(report["cases"]) == set(validate.CASES)


def test_record_is_json_with_every_field(report):
    record = json.loads(json.dumps(validate.json_record(report), allow_nan=False))
    for key in ("version", "taichi_version", "arch", "precision"):
        assert isinstance(record[key], str) and record[key]
    assert record["quick"] is True and record["passed"] is True
    for name, case in record["cases"].items():
        assert case["description"] and case["error"] is None and case["seconds"] > 0, name
        assert len(case["checks"]) >= 2, name
        for c in case["checks"]:
            assert c["kind"] in ("max", "min") and c["passed"] is True, (name, c)
            assert math.isfinite(c["value"]) and math.isfinite(c["threshold"]), (name, c)


def test_dam_break_front_runs_ahead_of_the_column(validation_case):
    """The surge front grows monotonically (within a particle's jitter) from z/a = 1."""
    data = validation_case("dam_break").data
    assert data["Z"][0] == pytest.approx(1.0, abs=0.05)
    assert all(b >= a - 0.02 for a, b in zip(data["Z"], data["Z"][1:]))
    assert data["Z"][-1] > 5.0


def test_table_names_every_check(report):
    table = validate.format_table(report)
    for case in report["results"].values():
        for c in case.checks:
            assert c.metric in table
    assert table.splitlines()[-1] == "all checks passed"


def test_cli_exit_status_follows_the_checks(validation_case, monkeypatch, capsys):
    monkeypatch.setattr(validate, "run_case", lambda name, quick=True: validation_case(name))
    assert cli.main(["validate", "--arch", "cpu", "--quick", "--only", "free_fall", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert list(record["cases"]) == ["free_fall"] and record["passed"]

    failing = validate.CaseResult("free_fall", "forced failure", [validate.Check("error", 1.0, 0.5)])
    monkeypatch.setattr(validate, "run_case", lambda name, quick=True: failing)
    assert cli.main(["validate", "--arch", "cpu", "--only", "free_fall"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unknown_case_is_a_clear_error(capsys):
    assert cli.main(["validate", "--arch", "cpu", "--only", "no_such_case"]) == 2
    assert "no_such_case" in capsys.readouterr().err
