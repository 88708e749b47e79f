"""``polyalloy validate`` at its quick size: every case passes its thresholds, the record is valid
JSON with every field, the table names every check, and the command's exit status says whether
a check failed. The cases run once per session (``validation_case`` in conftest.py); the heat
and mixing tests that read the same runs live here too (a session fixture is built once per
xdist worker: in another file on another worker the cases would run again)."""
import json
import math

import numpy as np
import pytest

from conftest import assert_checks
from polyalloy import cli, validate
from polyalloy.simulation import Simulation


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


# --- heat and mixing against analytic answers (the set-ups live in polyalloy.validate) --------
def test_slab_conduction_matches_the_erf_solution(validation_case):
    """Two touching slabs at 400 K and 200 K (2D, uniform along y, insulated): after t the
    temperature is T_mid - dT/2 erf((x - x0) / (2 sqrt(alpha t))); relative L2 error <= 3%, and
    the profile is far from the initial step (the heat did move)."""
    assert_checks(validation_case("heat_diffusion"))


def test_melting_front_follows_the_neumann_solution(validation_case):
    """A slab at its melting point touches a hot wall at T_w: the melted thickness (total
    liquid fraction over the slab height) follows s = 2 lambda sqrt(alpha t) within 10% at two
    times, and no particle gets hotter than the wall."""
    assert_checks(validation_case("stefan_front"))


def test_touching_liquids_mix_by_the_erfc_solution(validation_case):
    """Molten polyalloy beside molten steel, both mixing with D = 0.01 m^2/s: the composition
    profile at t = 0.25 s matches 1/2 erfc((x - x0) / (2 sqrt(D t))) within 3% (relative L2), the
    polyalloy mass sum(m comp) holds to 1e-6 and every comp stays in [0, 1]."""
    assert_checks(validation_case("mixing"))


def test_a_solid_takes_no_part_in_mixing():
    """The same two slabs with the polyalloy at 300 K (mimetic, a solid) beside the steel: no
    composition crosses, not a bit (every polyalloy particle keeps 1, every steel particle 0),
    while the steel alone is liquid."""
    scene = validate.mixing_scene()
    scene.bodies[0].temperature = 300.0
    scene.bodies[1].temperature = 300.0
    with Simulation(scene) as sim:
        sim.advance_to(0.05)
        s = sim.particles()
    man = s["body"] == 0
    assert np.all(s["comp"][man] == 1.0) and np.all(s["comp"][~man] == 0.0)


def test_p2g_adds_the_mixing_sums_as_the_serial_scatter_does():
    """A scene where a material mixes builds a grid that mixes (``Grid.mixing``): P2G adds the
    liquids' m, m c and m D with its other channels, in its lanes. After 0.05 s of the mixing
    pair (the compositions spread, the particles moved), a fresh P2G's three sums equal those of
    the serial scatter (``kernels.mixing.scatter``, kept for a material set to mix after the grid
    was built) to the bit with one lane and within f32 rounding with two (measured 1.3e-7 of each
    sum's largest value, asserted 4e-6, the bound of the P2G lanes' test). Without a mixing
    material the grid has no such channels; set to mix after the grid was built (as a live
    change does), the materials mix through the serial scatter, and with one lane the
    compositions after 0.05 s are those of the grid built to mix, to the bit."""
    from polyalloy import preflight, runtime
    from polyalloy.kernels import mixing

    scene = validate.mixing_scene()
    assert preflight.is_mixing(scene)
    names = ("mix_m", "mix_c", "mix_d")
    for lanes, atol in ((1, 0.0), (2, 4e-6)):
        with runtime.p2g_lanes_of(lanes), Simulation(scene) as sim:
            g = sim.grid
            assert g.mixing and g.lanes == lanes and set(names) <= set(g.scattered)
            sim.advance_to(0.05)
            sim.grid_mass()  # a fresh P2G of this state, the lanes summed
            folded = {n: getattr(g, n).to_numpy() for n in names}
            for n in names:
                getattr(g, n).fill(0.0)
            mixing.scatter(sim.particles_fields, g, sim.materials, sim.knobs)
            for n in names:
                serial = getattr(g, n).to_numpy()
                assert np.abs(serial).max() > 0, n
                np.testing.assert_allclose(folded[n], serial, rtol=0, atol=atol * np.abs(serial).max(), err_msg=n)
    comps = {}
    for built_to_mix in (True, False):
        scene = validate.mixing_scene()
        rates = {k: m.mixing for k, m in scene.materials.items()}
        if not built_to_mix:
            for m in scene.materials.values():
                m.mixing = 0.0
            assert not preflight.is_mixing(scene)
        with runtime.p2g_lanes_of(1), Simulation(scene) as sim:
            assert sim.grid.mixing == built_to_mix
            if not built_to_mix:
                assert not set(names) & set(sim.grid.scattered) and not sim.mixes
                for k, rate in rates.items():  # what polyalloy.live does for materials.NAME.mixing
                    scene.materials[k] = scene.materials[k].replace(mixing=rate)
                sim.upload_materials()
                sim.update_limits()
                assert sim.mixes
            sim.advance_to(0.05)
            comps[built_to_mix] = sim.particles()["comp"]
    assert np.count_nonzero((comps[True] > 0) & (comps[True] < 1)) > 10  # it mixed
    np.testing.assert_array_equal(comps[False], comps[True])


def test_insulated_box_conserves_thermal_and_latent_energy(validation_case):
    """Molten and frozen polyalloy blocks meet on an adiabatic floor with the air off: heat
    flows (the cold block warms through its brittle point) and sum(m H) stays within 0.5%."""
    assert_checks(validation_case("thermal_energy"))
