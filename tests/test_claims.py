"""The claims judge on a scripted stand-in for a simulation: every kind of moment, the worst and
first values reported, claims that fail, windows the run never reached, stateful measures; and
on a running simulation, a frame's measures sharing one read of the particles."""
import math

import pytest

from polyalloy.claims import Before, Claim, FirstTime, Judge, format_table
from polyalloy.errors import ConfigError


class FakeSim:
    def __init__(self):
        self.t = 0.0
        self.value = 0.0


def run(claims, values, dt=0.1):
    """Observe ``values`` at t = 0, dt, 2 dt, ...; the last one is the end."""
    sim, judge = FakeSim(), Judge(claims)
    for k, v in enumerate(values):
        sim.t, sim.value = k * dt, v
        judge.observe(sim)
    judge.finish(sim)
    return {r["name"]: r for r in judge.results()}


def value(sim):
    return sim.value


def test_each_moment_reports_its_deciding_value_and_time():
    r = run([Claim("end", "", value, ">=", 3.0),
             Claim("at", "", value, "==", 2.0, when=0.2),
             Claim("always", "", value, "<=", 4.0, when="always"),
             Claim("ever", "", value, ">=", 2.5, when="ever"),
             Claim("late", "", value, ">=", 1.0, when="ever", start=0.25, until=0.35)],
            [0.0, 1.0, 2.0, 3.0])
    assert r["end"]["status"] == "pass" and r["end"]["value"] == 3.0 and r["end"]["time"] == pytest.approx(0.3)
    assert r["at"]["status"] == "pass" and r["at"]["time"] == pytest.approx(0.2)
    # every frame held; the worst (closest to 4) was the last
    assert r["always"]["status"] == "pass" and r["always"]["value"] == 3.0 and r["always"]["frames"] == 4
    assert r["ever"]["status"] == "pass" and r["ever"]["met"] == pytest.approx(0.3)
    assert r["late"]["frames"] == 1 and r["late"]["status"] == "pass"
    assert r["end"]["best"] is None and r["always"]["best"] is None


def test_an_ever_claim_reports_the_first_value_that_held_and_its_best_margin():
    r = run([Claim("ever", "", value, ">=", 2.0, when="ever"),
             Claim("low", "", value, "<=", 1.0, when="ever", start=0.15)],
            [0.0, 2.5, 4.0, 3.0])
    assert r["ever"]["value"] == 2.5 and r["ever"]["met"] == pytest.approx(0.1) and r["ever"]["best"] == 4.0
    assert r["low"]["status"] == "FAIL" and r["low"]["best"] == r["low"]["value"] == 3.0  # the window's lowest


def test_claims_fail_and_report_the_failing_frame():
    r = run([Claim("always", "", value, "<=", 1.5, when="always"),
             Claim("ever", "", value, ">=", 10.0, when="ever"),
             Claim("end", "", value, "<", 0.0)],
            [0.0, 2.0, 1.0, 0.5])
    assert r["always"]["status"] == "FAIL" and r["always"]["value"] == 2.0 and r["always"]["time"] == pytest.approx(0.1)
    assert r["ever"]["status"] == "FAIL" and r["ever"]["value"] == 2.0  # the best it got
    assert r["end"]["status"] == "FAIL"
    assert "FAIL" in format_table(list(r.values()))


def test_a_moment_after_the_run_is_not_reached_and_does_not_pass():
    r = run([Claim("at", "", value, ">=", 0.0, when=5.0),
             Claim("window", "", value, ">=", 0.0, when="always", until=5.0)], [1.0, 1.0])
    assert r["at"]["status"] == "not reached" and r["at"]["value"] is None
    assert r["window"]["status"] == "not reached"
    assert Judge([]).passed()  # no claims: nothing failed


def test_stateful_measures_see_every_frame():
    cold = FirstTime(lambda sim: sim.value < 0)
    colder = FirstTime(lambda sim: sim.value < -5)
    r = run([Claim("order", "", Before(cold, colder), ">", 0.0),
             Claim("cold_by", "", cold, "<=", 0.25),
             Claim("reverse", "", Before(colder, cold), ">", 0.0)],
            [1.0, -1.0, -6.0, -6.0])
    assert r["order"]["status"] == "pass" and r["order"]["value"] == pytest.approx(0.1)
    assert r["cold_by"]["value"] == pytest.approx(0.1)
    assert r["reverse"]["status"] == "FAIL"
    never = FirstTime(lambda sim: False)
    assert run([Claim("n", "", never, "<=", 1.0)], [0.0])["n"]["value"] == "inf"


def test_bad_claims_are_config_errors():
    with pytest.raises(ConfigError, match="op"):
        Claim("x", "", value, "=>", 1.0)
    with pytest.raises(ConfigError, match="when"):
        Claim("x", "", value, ">=", 1.0, when="sometimes")
    with pytest.raises(ConfigError, match="unique"):
        Judge([Claim("x", "", value, ">=", 1.0), Claim("x", "", value, ">=", 2.0)])
    with pytest.raises(ConfigError, match="Claim"):
        Judge(["not a claim"])
    assert math.isinf(FirstTime(lambda s: False)())


def test_a_frame_s_measures_share_one_read_of_the_particles(runtime, monkeypatch):
    """On a running simulation: the judge's measures of a frame read the device once and share
    the fragment labels (``Simulation.reading``), read-only, each reader its own dict; outside
    the scope every call reads the state as it is now."""
    import numpy as np

    from conftest import make_scene
    from polyalloy import metrics
    from polyalloy.materials import Fluid
    from polyalloy.shapes import Box
    from polyalloy.simulation import Simulation

    scene = make_scene(2, name="reads")
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=2e4, viscosity=1e-3))
    scene.add_body("block", Box(centre=(0.35, 0.3), half_size=(0.1, 0.1)), "water", velocity=(1.0, 0.0))
    with Simulation(scene) as sim:
        sim.step_frame()
        reads, read = [], sim._read_particles
        monkeypatch.setattr(sim, "_read_particles", lambda retired: (reads.append(retired), read(retired))[1])
        with sim.reading():
            a, b = sim.particles(), sim.particles()
            assert metrics.fragment_labels(sim) is metrics.fragment_labels(sim)
            with pytest.raises(ValueError, match="read-only"):
                a["x"][0, 0] = 1.0
            a["mine"] = 1
            assert "mine" not in sim.particles()
            with sim.reading():  # nested: the outer scope's values
                sim.particles()
            sim.particles(retired=True)
        assert reads == [False, True]
        np.testing.assert_array_equal(a["x"], b["x"])
        sim.step_frame()
        c = sim.particles()  # outside the scope: the state now, writable
        assert reads == [False, True, False] and c["x"].flags.writeable
        assert not np.array_equal(c["x"], a["x"])
        judge = Judge([Claim("low", "", lambda s: float(s.particles()["x"][:, 1].min()), ">=", 0.0),
                       Claim("pieces", "", lambda s: len(metrics.fragments(s)), ">=", 1, when="always")])
        judge.observe(sim)
        judge.finish(sim)
        assert reads == [False, True, False, False, False]  # one read a frame (observe, then finish)
        assert judge.passed()
