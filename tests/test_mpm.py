"""MLS-MPM physics at tiny sizes: transfers conserve mass and momentum, free fall matches the
analytic parabola, an elastic ball bounces off a floor it never enters, a dam break collapses
inside its box, plasticity leaves a permanent set, the watchdog stops a blow-up, and the time
step follows the CFL limit.
"""
import math
import re

import numpy as np
import pytest

from conftest import DX, centre_of_mass, make_scene, run_frames
from polyalloy import SimulationError, validate
from polyalloy.kernels import fields as kf
from polyalloy.materials import Elastic, ElastoPlastic, Fluid
from polyalloy.scenes import dam_break
from polyalloy.shapes import Box
from polyalloy.simulation import Simulation

G = 9.81  # m/s^2


def set_velocities(sim: Simulation, v: np.ndarray) -> None:
    """Overwrite every particle's velocity (m/s), e.g. to give a body spin or a squeeze."""
    kf.put(sim.particles_fields.v, v.astype(sim.np_real))


# --- transfers and conservation ------------------------------------------------------------
@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def transfer_sim(request):
    """``polyalloy.validate.collision_simulation``: a liquid drop (random APIC matrix) thrown at a
    spinning steel brick, gravity off, far from the walls."""
    return validate.collision_simulation(request.param)


def test_grid_mass_after_p2g_equals_particle_mass(transfer_sim):
    sim = transfer_sim
    assert sim.grid_mass() == pytest.approx(sim.total_mass(), rel=1e-5)


def test_sampled_mass_matches_body_volume(transfer_sim):
    sim, dim = transfer_sim, transfer_sim.dim
    s = sim.particles()
    drop = (math.pi * 0.1**2 if dim == 2 else 4 / 3 * math.pi * 0.1**3) * 1000.0
    brick = 0.16 * 0.24 * (0.24 if dim == 3 else 1.0) * 7800.0
    assert s["mass"][s["body"] == 0].sum() == pytest.approx(drop, rel=0.05)
    assert s["mass"][s["body"] == 1].sum() == pytest.approx(brick, rel=0.05)


def test_grid_momentum_after_p2g_equals_particle_momentum(transfer_sim):
    sim = transfer_sim
    p, scale = sim.momentum(), validate.momentum_scale(sim)
    np.testing.assert_allclose(sim.grid_momentum(), p, rtol=0, atol=1e-5 * scale)
    assert np.abs(p).max() > 0.05 * scale  # a real, non-zero momentum was compared


def test_momentum_conserved_in_a_collision_without_gravity(transfer_sim):
    """The drop splashes on the spinning brick far from the walls: total momentum stays put."""
    sim, dim = transfer_sim, transfer_sim.dim
    p0, scale = sim.momentum(), validate.momentum_scale(sim)

    def probe(sim):
        s = sim.particles()
        drop = s["body"] == 0
        vx = float((s["mass"][drop] * s["v"][drop, 0]).sum() / s["mass"][drop].sum())
        return sim.momentum(), vx, s["x"].min(axis=0), s["x"].max(axis=0)

    substeps = sim.substeps
    record = run_frames(sim, 3, probe)
    for p, _, lo, hi in record:
        np.testing.assert_allclose(p, p0, rtol=0, atol=2e-6 * scale)
        assert np.all(lo > 3 * DX[dim]) and np.all(hi < 1.0 - 3 * DX[dim])  # no wall was touched
    assert record[-1][1] < 1.5  # the drop hit the brick and lost speed: the bodies did interact
    assert sim.substeps - substeps > 60


# --- free fall and bounce -------------------------------------------------------------------
FLOOR_Y = validate.BALL_FLOOR_Y


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def dropped_ball(request):
    """``polyalloy.validate.dropped_ball_scene``: an elastic ball released at rest 1 m above a
    separating floor; one record per frame."""
    dim = request.param
    sim = Simulation(validate.dropped_ball_scene(dim))
    y0 = centre_of_mass(sim)[0][1]
    return dim, y0, run_frames(sim, 26, validate.ball_record)


def test_free_fall_matches_analytic_parabola(dropped_ball):
    dim, y0, record = dropped_ball
    err = validate.free_fall_errors(y0, record, DX[dim])
    assert err["frames"] >= 6
    assert err["drop"] <= 0.01 and err["speed"] <= 0.01, err


def test_elastic_ball_bounces_and_never_enters_the_floor(dropped_ball):
    dim, y0, record = dropped_ball
    for r in record:
        assert r["min_y"] >= FLOOR_Y - 1e-4, r
    lowest = min(range(len(record)), key=lambda i: record[i]["y"])
    assert 0 < lowest < len(record) - 3
    assert record[lowest]["y"] < FLOOR_Y + 0.1  # it reached the floor
    assert min(r["vy"] for r in record[:lowest]) < -4.0
    after = record[lowest + 1:]
    assert max(r["vy"] for r in after) > 1.0  # vertical velocity changed sign
    assert max(r["y"] for r in after) > record[lowest]["y"] + 0.1  # the centre of mass rose again


# --- dam break ------------------------------------------------------------------------------
def test_dam_break_collapses_inside_the_box():
    scene = dam_break.build(dim=2)
    scene.set("dx", 1 / 64)
    sim = Simulation(scene)
    lo, hi = (np.asarray(c) for c in scene.domain)
    x = sim.particles()["x"]
    front0, com0 = x[:, 0].max(), centre_of_mass(sim)[0]

    def probe(sim):
        x = sim.particles()["x"]
        assert np.all(np.isfinite(x))
        assert np.all(x >= lo - 1e-6) and np.all(x <= hi + 1e-6), f"a particle left the box at t = {sim.t:.3f} s"
        return x[:, 0].max(), centre_of_mass(sim)[0]

    record = run_frames(sim, 12, probe)
    fronts = [f for f, _ in record]
    assert fronts[-1] > front0 + 0.3  # the surge runs along the floor
    assert all(b >= a - 0.01 for a, b in zip(fronts, fronts[1:]))
    assert record[-1][1][1] < com0[1] - 0.05  # the column fell
    assert record[-1][1][0] > com0[0] + 0.05


# --- plasticity -----------------------------------------------------------------------------
def test_plastic_block_keeps_its_squash_and_elastic_block_recovers():
    """Both blocks start with the same volume-preserving squeeze (stretch x, squash y) in zero
    gravity, away from every wall; only the elastic one springs back to square."""
    scene = make_scene(2, size=(1.0, 0.6), gravity=0.0)
    scene.add_material("rubber", Elastic(youngs_modulus=5e4, poisson_ratio=0.3))
    scene.add_material("clay", ElastoPlastic(youngs_modulus=5e4, poisson_ratio=0.3))
    centres = np.array([[0.25, 0.3], [0.75, 0.3]])
    for centre, name in zip(centres, ("rubber", "clay")):
        scene.add_body(name, Box(centre=(*centre, 0), half_size=(0.08, 0.08, 0)), name)
    sim = Simulation(scene)
    s = sim.particles()
    r = s["x"] - centres[s["body"]]
    set_velocities(sim, 10.0 * np.stack([r[:, 0], -r[:, 1]], axis=1))

    def aspect(sim):
        s = sim.particles()
        out = []
        for b in (0, 1):
            x = s["x"][s["body"] == b]
            extent = np.percentile(x, 98, axis=0) - np.percentile(x, 2, axis=0)
            out.append(extent[1] / extent[0])
        return out

    start = aspect(sim)
    record = np.array(run_frames(sim, 15, aspect))
    rubber, clay = record[:, 0] / start[0], record[:, 1] / start[1]
    assert rubber.min() < 0.95  # the squeeze did deform the elastic block ...
    assert abs(rubber[-8:].mean() - 1.0) < 0.08  # ... and it springs back, oscillating about square
    assert np.all(clay[-8:] < 0.7)  # the clay stays flattened
    assert np.ptp(clay[-8:]) < 0.05  # and at rest: a permanent set, not an oscillation
    Jp = sim.particles_fields.Jp.to_numpy()[: sim.n_particles]
    body = sim.particles()["body"]
    assert np.all(Jp[body == 0] == 1.0)
    assert np.mean(np.abs(Jp[body == 1] - 1.0) > 1e-3) > 0.5


# --- watchdog and time step -----------------------------------------------------------------
def test_watchdog_stops_a_blow_up_with_the_frame_in_its_message():
    scene = make_scene(2, dx=1 / 32)
    scene.add_material("adamant", Elastic(youngs_modulus=1e12))
    scene.add_body("brick", Box(centre=(0.5, 0.5, 0), half_size=(0.1, 0.1, 0)), "adamant", velocity=(0.5, 1.0, 0))
    sim = Simulation(scene)
    with pytest.raises(SimulationError) as err:
        for _ in range(20):
            sim.substep(0.05)  # about 10^5 times the stable step
        sim.step_frame()
    message = str(err.value)
    assert re.search(r"frame \d+", message), message
    assert "NaN" in message or "Inf" in message
    assert np.all(np.isfinite(sim.particles()["x"]))  # bad particles are frozen, not scattered as NaN


def test_time_step_follows_the_cfl_limit_and_shrinks_when_fast():
    scene = make_scene(2, size=(4.0, 1.0), gravity=0.0, cfl=0.4)
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("pool", Box(centre=(0.5, 0.5, 0), half_size=(0.1, 0.1, 0)), "water")
    sim = Simulation(scene)
    wave = math.sqrt(1e5 / 1000.0)  # m/s, sound speed of the liquid
    steps = []
    substep = sim.substep
    sim.substep = lambda dt: (steps.append(dt), substep(dt))

    sim.step_frame()
    slow = list(steps)
    limit = scene.cfl * scene.dx / wave
    assert max(slow) <= limit * (1 + 1e-6)
    assert max(slow) >= 0.95 * limit  # at rest the wave alone sets the step
    assert sim.last_dt <= limit * (1 + 1e-6)

    speed = 30.0
    set_velocities(sim, np.tile([speed, 0.0], (sim.n_particles, 1)))
    steps.clear()
    sim.advance_to(sim.t + 0.01)
    fast_limit = scene.cfl * scene.dx / (speed + wave)
    # the first of these substeps still sees the speed that the last G2P recorded (at rest)
    assert max(steps[1:]) <= fast_limit * (1 + 1e-6)
    assert sim.last_dt <= fast_limit * (1 + 1e-6)
    assert max(steps[1:]) < 0.3 * max(slow)


def test_first_step_accounts_for_the_initial_velocity():
    """A body launched at t = 0 must not take its first step at the at-rest limit."""
    scene = make_scene(2, size=(4.0, 1.0), gravity=0.0)
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("jet", Box(centre=(0.5, 0.5, 0), half_size=(0.05, 0.05, 0)), "water", velocity=(30.0, 0, 0))
    sim = Simulation(scene)
    assert sim.stable_dt() <= scene.cfl * scene.dx / (30.0 + 10.0) * (1 + 1e-6)
