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
from polyalloy import SimulationError, metrics, validate
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
    assert sim.grid_mass() == pytest.approx(sim.total_mass(), rel=validate.TOLERANCE["grid_mass"])


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
    np.testing.assert_allclose(sim.grid_momentum(), p, rtol=0, atol=validate.TOLERANCE["grid_momentum"] * scale)
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
        np.testing.assert_allclose(p, p0, rtol=0, atol=validate.TOLERANCE["momentum_drift"] * scale)
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
    assert err["drop"] <= validate.FALL_DROP and err["speed"] <= validate.TOLERANCE["fall_speed"], err


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


def test_a_liquid_keeps_its_volume_as_diag_j_and_moves_as_with_an_isotropic_f():
    """A liquid keeps only its volume change, stored as F = diag(J, 1) (``project_deformation``;
    it was J^(1/d) I, a pow per particle). Its stress reads only det F, so the form must not
    change the motion: the dam break 40 substeps into its collapse, run once as it is and once with
    every F rewritten to det(F)^(1/2) I after each substep, keeps its particles within 1e-4 dx of
    the other run's (measured: 5.7e-6 dx, rounding), while the water compresses by up to 6%."""
    from polyalloy.kernels import fields as kf

    def build():
        scene = dam_break.build(dim=2)
        scene.set("dx", 1 / 48)
        sim = Simulation(scene)
        sim.advance_to(0.1)
        return sim

    as_is, isotropic = build(), build()
    n = as_is.n_particles
    for _ in range(40):
        dt = as_is.stable_dt()
        as_is.substep(dt)
        isotropic.substep(dt)
        F = isotropic.particles_fields.F.to_numpy()
        J = np.linalg.det(F[:n].astype(np.float64))
        F[:n] = np.sqrt(J)[:, None, None] * np.eye(2)
        kf.put(isotropic.particles_fields.F, F)
    F = as_is.particles_fields.F.to_numpy()[:n]
    np.testing.assert_array_equal(F[:, 0, 1], 0.0)
    np.testing.assert_array_equal(F[:, 1, 0], 0.0)
    np.testing.assert_array_equal(F[:, 1, 1], 1.0)
    J = F[:, 0, 0]
    assert 0.8 < J.min() and J.max() < 1.2 and np.abs(J - 1.0).max() > 1e-2, (J.min(), J.max())
    a, b = as_is.particles()["x"], isotropic.particles()["x"]
    assert np.abs(a - b).max() < 1e-4 * as_is.scene.dx, np.abs(a - b).max() / as_is.scene.dx


def _with_lanes(scene, dx, lanes):
    """A simulation of ``scene`` at ``dx`` built with ``lanes`` P2G lanes (``Grid.lanes``)."""
    from polyalloy import runtime

    scene.set("dx", dx)
    with runtime.p2g_lanes_of(lanes):
        sim = Simulation(scene)
    assert sim.grid.lanes == lanes
    return sim


def test_a_small_simulation_runs_its_substeps_on_the_calling_thread():
    """``simulation.serial_lanes``: up to ``SERIAL_WORK`` particles x 3^dim stencil nodes a
    simulation gets one P2G lane and every loop of its substeps serialised (``Grid.serial``,
    ``Particles.serial``: no dispatch to Taichi's thread pool), as on a one-thread runtime or with
    one lane asked for; above it, the runtime's lanes and the passes on the pool (one lane too
    where the grid is too large for the lanes' copies: P2G's serial loop only); lanes asked for
    (``POLYALLOY_P2G_LANES``) and a GPU's atomics (0) are kept as they are."""
    from polyalloy import runtime
    from polyalloy.simulation import SERIAL_WORK, serial_lanes

    w = SERIAL_WORK
    assert serial_lanes(4, w // 9, 2, threads=4) == (1, True) and serial_lanes(4, w // 9 + 1, 2, threads=4) == (4, False)
    assert serial_lanes(4, w // 27, 3, threads=4) == (1, True)
    assert serial_lanes(4, w // 27 + 1, 3, threads=4) == (4, False)
    assert serial_lanes(1, 10 ** 6, 3, threads=16) == (1, False)  # the budget's one lane: passes on the pool
    assert serial_lanes(1, 10 ** 6, 3, threads=1) == (1, True)  # one thread
    assert serial_lanes(1, 10 ** 6, 3, pinned=True, threads=16) == (1, True)  # one lane asked for
    # a sweep's job on one thread with a lone command's two lanes (POLYALLOY_LONE_LANES): as alone
    assert serial_lanes(2, 10, 2, threads=1) == (1, True) and serial_lanes(2, 10 ** 6, 3, threads=1) == (2, False)
    assert serial_lanes(2, 10, 2, pinned=True, threads=1) == (2, False)
    assert serial_lanes(4, 10, 2, pinned=True, threads=4) == (4, False) and serial_lanes(0, 10, 2) == (0, False)
    scene = dam_break.build(dim=2)
    scene.set("dx", 1 / 48)
    with Simulation(scene) as sim:  # ~2,300 particles, on the suite's runtime (its lanes: one a thread)
        assert sim.n_particles * 9 <= SERIAL_WORK
        assert sim.grid.lanes == 1 and sim.grid.serial and sim.particles_fields.serial
    if runtime.info().threads >= 2:
        with runtime.p2g_lanes_of(2), Simulation(scene) as sim:
            assert sim.grid.lanes == 2 and not sim.grid.serial and not sim.particles_fields.serial


def test_the_gpus_shapes_of_p2g_and_the_grid_passes_give_the_serial_run():
    """Lanes 0 is how a GPU runs (``Grid.lanes``): P2G a thread a particle with float atomics, the
    grid passes a thread a node (``fields.each_active_node``, where the CPU takes a block or a row
    of nodes an iteration). No GPU here: the same kernels run on the CPU's threads. The dam break
    at 0.1 s, 40 substeps from one state at the serial run's steps: the grid's mass after a fresh
    P2G is the particles' (measured 1.0e-7 off, asserted 1e-5), and the particles, which move up
    to 2.9 dx, stay within 1e-4 dx of the serial run's (measured: on them to the bit in that run,
    the two threads' atomics seldom meeting on one node; a GPU adds in another order). With the
    node loop of that shape cut short by one node they end 48 dx apart (tried)."""
    serial, gpu = (_with_lanes(dam_break.build(dim=2), 1 / 48, lanes) for lanes in (1, 0))
    serial.advance_to(0.1)
    gpu.load_state_dict(serial.state_dict())
    x0 = serial.particles()["x"]
    assert gpu.grid_mass() == pytest.approx(float(serial.particles()["mass"].sum()), rel=1e-5)
    for _ in range(40):
        dt = serial.stable_dt()
        serial.substep(dt)
        gpu.substep(dt)
    a, b, dx = serial.particles()["x"], gpu.particles()["x"], serial.scene.dx
    assert np.abs(a - x0).max() > 0.5 * dx  # they moved
    assert np.abs(a - b).max() < 1e-4 * dx, np.abs(a - b).max() / dx


def test_kernels_compiled_for_the_scene_s_kinds_only_give_the_same_state():
    """A water scene's kernels carry only the liquid's code (``MaterialTable.kinds``): the same
    splash with an unused elastic material beside the water (so the elastic code and the SVD
    are compiled in) ends in the same state, bit for bit; and the water-only table refuses an
    elastic row."""
    def splash(extra):
        scene = make_scene(2, name="kinds")
        scene.add_material("water", Fluid(density=1000.0, bulk_modulus=2e4, viscosity=1e-3))
        if extra:
            scene.add_material("rubber", Elastic(density=1000.0, youngs_modulus=1e5, poisson_ratio=0.3))
        scene.add_body("block", Box(centre=(0.35, 0.3), half_size=(0.15, 0.2)), "water", velocity=(1.0, 0.0))
        sim = Simulation(scene)
        start = sim.particles()["x"]
        for _ in range(3):
            sim.step_frame()
        return sim, start

    (only, x0), (both, _) = splash(False), splash(True)
    assert only.materials.kinds == {Fluid.kind} and both.materials.kinds == {Fluid.kind, Elastic.kind}
    a, b = only.particles(), both.particles()
    assert only.t == both.t > 0.0
    for key in ("x", "v"):
        np.testing.assert_array_equal(a[key], b[key])
    for key in ("F", "C", "tau"):
        n = only.n_particles
        np.testing.assert_array_equal(getattr(only.particles_fields, key).to_numpy()[:n],
                                      getattr(both.particles_fields, key).to_numpy()[:n])
    assert np.abs(a["x"] - x0).max() > 0.01  # the water moved
    with pytest.raises(ValueError, match="not among the kinds"):
        only.materials.upload([Elastic().row(293.15)])


# --- plasticity -----------------------------------------------------------------------------
def test_a_walked_stencil_gives_the_unrolled_nodes_and_weights():
    """``mpm.stencil_node`` with one axis in a run-time loop (the long 3D P2G and G2P,
    ``stencil_walk``) yields the unrolled stencil's 27 nodes, in the same order, with the same
    offsets and weights (to f32 rounding: the loop changes LLVM's contractions), and the weights
    sum to 1 (the B-spline's partition of unity) at random particle offsets."""
    import taichi as ti

    from polyalloy.kernels import mpm

    n = 64
    fx_in = ti.Vector.field(3, float, n)
    out = {walk: (ti.Vector.field(3, ti.i32, (n, 27)), ti.field(float, (n, 27))) for walk in (0, 1)}

    @ti.kernel
    def nodes(fx_in: ti.template(), offs: ti.template(), weights: ti.template(), walk: ti.template()):
        for p in range(n):
            fx = fx_in[p]
            w = mpm.quadratic_weights(fx)
            k = 0
            for i in range(3 ** walk):
                for rest in ti.static(mpm.stencil_rest(3, walk)):
                    offset, weight = mpm.stencil_node(w, i, rest)
                    offs[p, k], weights[p, k] = offset, weight
                    k += 1

    fx = np.random.default_rng(3).uniform(0.5, 1.5, (n, 3)).astype(np.float32)
    fx_in.from_numpy(fx)
    got = {}
    for walk, (offs, weights) in out.items():
        nodes(fx_in, offs, weights, walk)
        got[walk] = offs.to_numpy(), weights.to_numpy()
    assert mpm.stencil_walk(3, True) == 1 and mpm.stencil_walk(3, False) == 0 and mpm.stencil_walk(2, True) == 0
    order = np.array(list(np.ndindex(3, 3, 3)))
    for walk in (0, 1):
        offs, weights = got[walk]
        assert (offs == order[None]).all()
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-6, atol=1e-7)


def _bspline_nodes(x, corner, dx):
    """The 3^dim stencil of a particle at ``x`` in float64: node indices and quadratic B-spline
    weights (Hu et al. 2018), for the APIC test below."""
    X = (x - corner) / dx
    base = np.floor(X - 0.5).astype(int)
    fx = X - base
    w = np.array([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])
    for offset in np.ndindex(*(3,) * len(x)):
        yield base + np.array(offset), np.prod([w[o, d] for d, o in enumerate(offset)])


@pytest.mark.parametrize("dim,heavy", [(2, False), (3, False), (3, True)], ids=["2d", "3d", "3d-walked"])
def test_apic_from_the_stencil_offsets_gives_the_textbook_transfers(dim, heavy):
    """P2G's affine momentum and G2P's APIC matrix, summed from the stencil's offsets
    (``mpm.stencil_node``, ``add_times_offset``), against the textbook MLS-MPM sums in float64:
    one particle's scatter puts w_i (m v + A (x_i - x_p)) and w_i m on each node i; the gather of
    an affine grid velocity v0 + B x gives back v0 + B x_p and C = B (the quadratic B-spline's
    sum of w (x_i - x_p) is 0 and of w (x_i - x_p)(x_i - x_p)^T is dx^2 / 4 I). Unrolled (2D, the
    short 3D kernels) and with one axis walked (the long 3D ones: a controlled grid, a polyalloy
    table), at random positions. Measured in f32 (relative): P2G's momentum 9e-8 and G2P's v 1.3e-7,
    asked 1e-6; C 2-6e-6, asked 5e-5 (C's sum cancels: sum w v offset is ~50x the difference
    it leaves, as sum w v (x_i - x_p) did before)."""
    import taichi as ti

    from polyalloy.kernels import mpm
    from polyalloy.kernels.kinds import FLUID, POLYALLOY

    res, dx = 8, 0.1
    grid = kf.Grid(dim, (res,) * dim, ti.f32, control=heavy, lanes=1)
    grid.set_geometry((res,) * dim, dx, (0.0,) * dim)
    mats = kf.MaterialTable(1, ti.f32, kinds=(POLYALLOY,) if heavy else (FLUID,))
    assert mpm.stencil_walk(dim, heavy) == (1 if heavy else 0)
    n = 16
    xs = ti.Vector.field(dim, ti.f32, n)
    vs = ti.Vector.field(dim, ti.f32, n)
    affines = ti.Matrix.field(dim, dim, ti.f32, n)
    got_v = ti.Vector.field(dim, ti.f32, n)
    got_C = ti.Matrix.field(dim, dim, ti.f32, n)
    mass = 0.7

    @ti.kernel
    def scatter_one(p: ti.i32):
        base, fx = mpm.stencil_base(grid, xs[p])
        w = mpm.quadratic_weights(fx)
        zero = ti.Vector.zero(ti.f32, dim)
        mpm.scatter_stencil(grid, mats, base, w, fx, 0, mass * vs[p], affines[p], mass, 0.0, 0.0, 0.0, 0.0,
                            0.0, zero, zero, 0.0, 0.0, 0.0, False)

    @ti.kernel
    def gather_all():
        for p in range(n):
            base, fx = mpm.stencil_base(grid, xs[p])
            w = mpm.quadratic_weights(fx)
            new_v, new_C, _, _, _ = mpm.gather_stencil(grid, mats, base, w, fx, 0.0, False)
            got_v[p], got_C[p] = new_v, new_C

    rng = np.random.default_rng(11)
    x = rng.uniform(2.0 * dx, (res - 3) * dx, (n, dim))
    v = rng.normal(0.0, 1.0, (n, dim))
    A = rng.normal(0.0, 30.0, (n, dim, dim))  # kg/s: |A dx| ~ |m v|, the affine term counts
    xs.from_numpy(x.astype(np.float32))
    vs.from_numpy(v.astype(np.float32))
    affines.from_numpy(A.astype(np.float32))
    x = xs.to_numpy().astype(np.float64)  # the f32 positions the kernels see
    worst = 0.0
    for p in range(n):
        grid.v.fill(0.0)
        grid.m.fill(0.0)
        scatter_one(p)
        gv, gm = grid.v.to_numpy().astype(np.float64), grid.m.to_numpy().astype(np.float64)
        scale = mass * np.abs(v[p]).max() + np.abs(A[p]).max() * dx
        total = 0.0
        for node, weight in _bspline_nodes(x[p], 0.0, dx):
            want = weight * (mass * v[p] + A[p] @ (node * dx - x[p]))
            worst = max(worst, np.abs(gv[tuple(node)] - want).max() / scale)
            assert gm[tuple(node)] == pytest.approx(weight * mass, rel=1e-5, abs=1e-7)
            total += weight
        assert total == pytest.approx(1.0, abs=1e-12)
        assert gm.sum() == pytest.approx(mass, rel=1e-5)  # nothing off the stencil
    assert worst < 1e-6, f"P2G momentum off the textbook sum by {worst:.2e} of its scale"
    v0 = rng.normal(0.0, 1.0, dim)
    B = rng.normal(0.0, 5.0, (dim, dim))  # 1/s
    nodes = np.stack(np.meshgrid(*(np.arange(res),) * dim, indexing="ij"), axis=-1) * dx
    grid.v.from_numpy((v0 + nodes @ B.T).astype(np.float32))
    gather_all()
    want_v = v0 + x @ B.T
    v_err = np.abs(got_v.to_numpy() - want_v).max() / np.abs(want_v).max()
    C_err = np.abs(got_C.to_numpy() - B[None]).max() / np.abs(B).max()
    assert v_err < 1e-6 and C_err < 5e-5, f"G2P of an affine field: v off by {v_err:.2e}, C by {C_err:.2e}"


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
    log = sim.record_steps = []  # (t, dt) of every substep, as the device chose it

    sim.step_frame()
    slow = [dt for _, dt in log]
    limit = scene.cfl * scene.dx / wave
    assert max(slow) <= limit * (1 + 1e-6)
    assert max(slow) >= 0.95 * limit  # at rest the wave alone sets the step
    assert sim.last_dt <= limit * (1 + 1e-6)

    speed = 30.0
    set_velocities(sim, np.tile([speed, 0.0], (sim.n_particles, 1)))
    log.clear()
    sim.advance_to(sim.t + 0.01)
    steps = [dt for _, dt in log]
    fast_limit = scene.cfl * scene.dx / (speed + wave)
    # the first of these substeps still sees the speed that the last G2P recorded (at rest)
    assert max(steps[1:]) <= fast_limit * (1 + 1e-6)
    assert sim.last_dt <= fast_limit * (1 + 1e-6)
    assert max(steps[1:]) < 0.3 * max(slow)


def _host_step(sim: Simulation, t_stop: float) -> float:
    """The step the host chose before the device did: ``stable_dt`` and the split of the stretch
    left to ``t_stop`` (the old ``advance_to``, verbatim)."""
    dt = sim.stable_dt()
    remaining = t_stop - sim.t
    return remaining if remaining <= dt else (remaining / 2 if remaining < 2 * dt else dt)


def test_the_device_chooses_the_step_the_host_formula_gives():
    """The device clock's step equals, bit for bit, what the host computed from the same three
    device values (the fastest speed, the fastest wave, the non-finite count): at rest, after a
    host-side event raised the speed (the gunshot's way), near a stop (the last stretch split in
    two halves, then taken whole), and it stops for a non-finite speed or particle and for a
    collapsed step."""
    scene = make_scene(2, size=(1.0, 1.0), gravity=0.0)
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("pool", Box(centre=(0.5, 0.5, 0), half_size=(0.1, 0.1, 0)), "water")
    sim = Simulation(scene)
    sim.step_frame()
    stable = sim.stable_dt()
    cases = []
    for speed in (None, 3.0, 123.456):
        if speed is not None:
            sim.knobs.max_speed[None] = speed  # as apply_impulse raises it
        stable = sim.stable_dt()
        for stop in (sim.t + 10 * stable, sim.t + 1.5 * stable, sim.t + 0.7 * stable, sim.t + 1e-6):
            sim._start_clock(stop)
            clock = sim.read_clock()
            assert clock["state"] == kf.RUNNING
            assert clock["stable"] == stable
            assert clock["dt"] == _host_step(sim, stop), (speed, stop)
            cases.append(clock["dt"] / stable)
    assert {1.0, 0.75, 0.7} <= {round(c, 12) for c in cases}  # a whole step, the halves of 1.5 steps, the rest
    sim._start_clock(sim.t)  # at the stop
    assert sim.read_clock()["state"] == kf.DONE
    sim.knobs.max_speed[None] = 1e30  # cfl dx / 1e30: below MIN_DT
    sim._start_clock(sim.t + 1.0)
    assert sim.read_clock()["state"] == kf.COLLAPSED
    sim.knobs.max_speed[None] = math.inf
    sim._start_clock(sim.t + 1.0)
    assert sim.read_clock()["state"] == kf.BLOWN
    sim.knobs.max_speed[None] = 0.0
    sim.knobs.bad[None] = 2
    sim._start_clock(sim.t + 1.0)
    assert sim.read_clock()["state"] == kf.BLOWN


def test_frames_end_at_their_times_with_the_host_reading_every_few_substeps():
    """Every frame ends exactly at frame / fps; the steps the device logged add up to it, each
    within the CFL limit; the host read the device clock about once per ``CHUNK`` substeps
    (plus the frame's end), not three values per substep; and a gunshot between two frames,
    which raises the fastest speed on the host, shortens the very next step."""
    from polyalloy.events import Gunshot
    from polyalloy.simulation import CHUNK

    scene = make_scene(2, size=(1.0, 1.0))
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("pool", Box(centre=(0.5, 0.3, 0), half_size=(0.15, 0.1, 0)), "water")
    shot = 1.5 / scene.fps  # mid-frame: a stop inside the second frame
    scene.events.append(Gunshot(time=shot, point=(0.5, 0.3, 0.0), direction=(0.0, 1.0, 0.0), radius=0.08,
                                impulse=500.0))
    sim = Simulation(scene)
    log = sim.record_steps = []
    for frame in range(1, 4):
        sim.step_frame()
        assert sim.t == pytest.approx(frame / scene.fps, abs=1e-12)
    t = 0.0
    for t_step, dt in log:
        assert t_step == t and dt > 0
        t += dt
    assert t == sim.t and sim.substeps == len(log) and sim.last_dt == log[-1][1]
    stops = [1 / scene.fps, shot, 2 / scene.fps, 3 / scene.fps]
    assert all(any(abs(t_step - s) < 1e-12 for t_step, _ in log) for s in stops[:-1])  # substeps start on every stop
    assert sim.clock_reads <= math.ceil(len(log) / CHUNK) + 3 * len(stops)  # measured 2 per stop here
    after = [dt for t_step, dt in log if t_step >= shot - 1e-12]
    before = [dt for t_step, dt in log if t_step < shot - 1e-12]
    assert after[0] < 0.5 * max(before)  # the kick (about 25 m/s against a 10 m/s wave) is in the first step after it


def test_a_very_viscous_liquid_falls_without_blowing_up():
    """The explicit viscous stress is stable only for dt <= rho dx^2 / (2 dim eta): a syrup of
    eta = 1000 Pa s at dx = 1/128 m needs 1.5e-5 s, where the wave limit alone gives 3e-4 s
    (with the wave limit alone, the velocities were 17x g t off by t = 0.01 s and then blew up)."""
    scene = make_scene(2, size=(0.5, 0.5), dx=1 / 128)
    scene.add_material("syrup", Fluid(density=1000.0, bulk_modulus=1e5, viscosity=1000.0))
    scene.add_body("drop", Box(centre=(0.25, 0.3, 0), half_size=(0.05, 0.08, 0)), "syrup")
    sim = Simulation(scene)
    limit = 1000.0 * scene.dx ** 2 / (2 * 2 * 1000.0)
    assert sim.stable_dt() <= limit * (1 + 1e-6)
    sim.advance_to(0.01)
    v = sim.particles()["v"]
    # a falling body does not shear, so the syrup falls freely (relative to g t, measured 6.2e-6 and 2.2e-7)
    assert np.abs(v[:, 1] + G * sim.t).max() < 6e-5 * G * sim.t
    assert np.abs(v[:, 0]).max() < 2e-6 * G * sim.t


def test_an_emitter_fill_steps_at_its_own_wave_speed():
    """A soft pool (c = 3.2 m/s) and an emitter that pours a stiff solid (c = 360 m/s) at
    t = 0.02 s: the substep after the fill must already obey the stiff material's CFL limit
    (before, it took the pool's wave speed: a step 58x too long)."""
    scene = make_scene(2, size=(1.0, 1.0), gravity=0.0)
    scene.add_material("soft", Fluid(density=1000.0, bulk_modulus=1e4))
    scene.add_material("stiff", Elastic(density=1000.0, youngs_modulus=1e8))
    scene.add_body("pool", Box(centre=(0.3, 0.3, 0), half_size=(0.1, 0.1, 0)), "soft")
    scene.pour("drop", Box(centre=(0.7, 0.7, 0), half_size=(0.03, 0.03, 0)), "stiff", rate=1.0,
               start=0.02, end=0.021)
    sim = Simulation(scene)
    stiff = math.sqrt(1e8 * 0.7 / (1.3 * 0.4) / 1000.0)  # m/s: sqrt((lambda + 2 mu) / rho) at nu = 0.3
    steps = sim.record_steps = []
    sim.advance_to(0.021)
    after = [dt for t, dt in steps if t >= 0.02 - 1e-12]
    assert after and max(after) <= scene.cfl * scene.dx / stiff * (1 + 1e-4)


def _jet_scene(**jet):
    """A water drop and a jet (an emitter) asked to pour 3x what its stream carries away (0.3 m^2/s
    through a 0.1 m mouth at 1 m/s), no gravity; ``jet``: more of the pour's settings."""
    scene = make_scene(2, size=(1.0, 1.0), gravity=0.0)
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("drop", Box(centre=(0.9, 0.1, 0), half_size=(0.02, 0.02, 0)), "water")
    scene.pour("jet", Box(centre=(0.2, 0.5, 0), half_size=(0.02, 0.05, 0)), "water", rate=0.3,
               velocity=(1.0, 0, 0), start=0.0, end=0.2, **jet)
    return scene


def test_an_emitter_pours_only_into_free_space():
    """A jet asked to pour 3x what its stream carries away (0.3 m^2/s through a 0.1 m mouth at
    1 m/s, no gravity): each fill waits until the last one has left the emitter, so the jet
    keeps the liquid's density (measured 0.97 of it over the jet's bounding box, 27.8 kg poured)
    where fills on the timer piled up inside each other to 2.5x (63 kg)."""
    scene = _jet_scene()
    sim = Simulation(scene)
    sim.advance_to(0.25)
    s = sim.particles()
    jet = s["body"] == 1
    x, mass = s["x"][jet], s["mass"][jet].sum()
    area = np.prod(x.max(axis=0) - x.min(axis=0) + scene.dx / 2)
    assert mass / area < 1.1 * 1000.0
    assert mass >= 0.1 * 1.0 * 0.2 * 1000.0  # at least what the stream carries away in 0.2 s


def test_a_waiting_fill_s_scan_finds_the_first_particle_inside_from_its_start_and_none_when_empty():
    """``events.live_in_region`` (an emitter's check while its fill waits: whether any live
    particle is inside) scans from a given particle, wrapping around, and stops at the first live
    one inside: from every start it gives the first of the particles that the host finds in the
    jet's box at or after the start (else the first before it); -1 once they are dead."""
    from polyalloy.kernels import events as kev

    sim = Simulation(_jet_scene())
    sim.advance_to(0.01)  # the first fill has gone in and is still in the jet; the next ones wait
    pf, jet, n = sim.particles_fields, sim.fills[0][4], sim.n_particles
    x, flags = pf.x.to_numpy()[:n], pf.alive.to_numpy()
    alive = flags[:n].astype(bool)
    box = (np.abs(x[:, 0] - 0.2) < 0.02) & (np.abs(x[:, 1] - 0.5) < 0.05)
    inside = np.flatnonzero(box & alive)
    assert 10 < len(inside) < n
    for start in (0, int(inside[0]), int(inside[0]) + 1, int(inside[-1]), int(inside[-1]) + 1, n - 1):
        after = inside[inside >= start]
        assert kev.live_in_region(pf, sim.body_shapes, jet, sim.t, start) == \
            (after[0] if len(after) else inside[0]), start
    flags[:n][box] = 0
    kf.put(pf.alive, flags)
    assert kev.live_in_region(pf, sim.body_shapes, jet, sim.t, 0) == -1


def test_a_fill_that_goes_past_a_waiting_one_keeps_the_energy_budget():
    """The jet's fills wait for it to clear while a second pour's fills go in on time, so slots of
    waiting fills lie below the live count: they are neither thermal energy nor boiled-off vapour
    (counted as vapour, they put the freeze beat's budget 28% off)."""
    scene = _jet_scene(temperature=350.0)
    scene.pour("tap", Box(centre=(0.5, 0.8, 0), half_size=(0.05, 0.02, 0)), "water", rate=0.05,
               velocity=(0, -1.0, 0), start=0.05, end=0.2, temperature=280.0)
    sim = Simulation(scene)
    worst, waited = 0.0, 0
    while sim.t < 0.25:
        sim.step_frame()
        waited = max(waited, int(sim.waiting_slots().sum()))
        worst = max(worst, metrics.energy_budget(sim)["relative_imbalance"])
    assert waited > 0  # some fill did wait below the live count
    assert worst < 1e-9  # measured 0 (nothing conducts: the accounts are sums of the same numbers); 1.0 with the bug


def test_first_step_accounts_for_the_initial_velocity():
    """A body launched at t = 0 must not take its first step at the at-rest limit."""
    scene = make_scene(2, size=(4.0, 1.0), gravity=0.0)
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5))
    scene.add_body("jet", Box(centre=(0.5, 0.5, 0), half_size=(0.05, 0.05, 0)), "water", velocity=(30.0, 0, 0))
    sim = Simulation(scene)
    assert sim.stable_dt() <= scene.cfl * scene.dx / (30.0 + 10.0) * (1 + 1e-6)


# --- launches --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,start", [("bars", 2.0), ("foundry", 1.0), ("dam_break", 0.2)])
def test_a_substep_in_two_launches_gives_the_per_pass_state_to_the_bit(name, start):
    """``kernels.substep`` runs a substep's passes in two launches; ``Simulation.fused`` off launches
    each pass on its own (the bench's per-kernel times). From one state, 0.05 s on the device
    clock by either way gives the same bits in every particle field and the same clock: bars
    (heat, the walking controller, mimicry: at 2 s he is in the striped bars), foundry (the liquids'
    mixing) and the dam break (water alone), each in 2D."""
    from polyalloy.scene import load_scene

    sim = Simulation(load_scene(name, "preview", {"dim": 2}))
    assert sim.fused
    sim.advance_to(start)
    state = sim.state_dict()
    runs = {}
    for fused in (True, False):
        sim.load_state_dict(state)
        sim.fused = fused
        sim.advance_to(start + 0.05)
        runs[fused] = (sim.state_dict(), sim.read_clock())
    (a, clock_a), (b, clock_b) = runs[True], runs[False]
    fields = [k for k in a if k.startswith("field/particles_fields/")]
    assert {"field/particles_fields/x", "field/particles_fields/tau", "field/particles_fields/comp"} <= set(fields)
    for key in fields:
        assert np.array_equal(a[key], b[key]), key
    assert clock_a == clock_b and clock_a["steps"] > 10
    assert not np.array_equal(a["field/particles_fields/x"], state["field/particles_fields/x"])  # it moved
    changed = {"bars": "color", "foundry": "comp", "dam_break": "v"}[name]  # the pass that scene adds acted
    assert not np.array_equal(a[f"field/particles_fields/{changed}"], state[f"field/particles_fields/{changed}"])


# --- P2G in lanes ---------------------------------------------------------------------------
def test_p2g_lanes_give_the_serial_grid_to_rounding_and_repeat_bit_for_bit():
    """P2G on L CPU threads scatters L index ranges of the particles into L copies of the
    scattered channels and sums them (``Grid.lanes``). On the 2D freeze beat at 0.3 s (heat,
    phases, the walking controller: every channel), from one state (particles nudged off home,
    random velocities, the lower half frozen), a fresh P2G with 2 and 3 lanes gives every channel
    of the serial P2G (1 lane) to f32 rounding (measured: at most 3.6e-7 of each channel's largest
    value, asserted at 4e-6), lists the marked blocks in the grid's order, leaves the lanes' copies
    zeroed, and 40 substeps on, in which the particles move up to 3.6 dx, stay within 1e-4 dx of
    the serial run's (measured 8.6e-6 dx). The same lane count gives the same bits again. The
    reach of each lane but the last (``Grid.lane_reach``) is one more than its alive particles'
    highest stencil base along x. With the particles shuffled, so that every lane's particles lie
    everywhere and lanes 1 and up add (nearly) all of theirs into their copies, the grid is the
    serial one again (``test_p2g_lanes_add_into_the_grid_itself_beyond_the_lanes_before_them``
    has the particles that go into the grid itself)."""
    from polyalloy.kernels import fieldio
    from polyalloy.scenes import freeze

    def build(lanes):
        return _with_lanes(freeze.build(dim=2), 1 / 24, lanes)

    serial = build(1)
    serial.advance_to(0.3)  # walking: the controller's homes move
    state = serial.state_dict()
    n, spacing = serial.n_particles, serial.scene.spacing
    rng = np.random.default_rng(1)
    x = state["field/particles_fields/x"].copy()
    x[:n] += rng.normal(0.0, 0.1 * spacing, (n, 2))
    v = state["field/particles_fields/v"].copy()
    v[:n] = rng.normal(0.0, 0.2, (n, 2))
    cold = state["field/particles_fields/T"].copy()
    cold[:n][x[:n, 1] < np.median(x[:n, 1])] = 80.0
    grids, runs = {}, {}
    for key, lanes in (("1", 1), ("2", 2), ("3", 3), ("3 again", 3)):
        sim = serial if lanes == 1 else build(lanes)
        sim.load_state_dict(dict(state, **{"field/particles_fields/x": x, "field/particles_fields/v": v, "field/particles_fields/T": cold}))
        sim.grid_mass()  # a fresh P2G and the block list
        grids[key] = fieldio.group(sim.grid).read()
        g = sim.grid
        if lanes >= 2:  # each lane's reach but the last's: its highest stencil base along x, plus one
            base = np.clip(_stencil_base_x(g, x[:n]), 0, g.extent[None][0] - 3)
            alive = state["field/particles_fields/alive"][:n] != 0
            ranges = [(lane * n // lanes, (lane + 1) * n // lanes) for lane in range(lanes - 1)]
            reach = [int(base[a:b][alive[a:b]].max()) + 1 for a, b in ranges]
            assert g.lane_reach.to_numpy().tolist() == reach, key
        # the blocks listed once each, in the grid's order (the boundary heat account sums in it)
        listed = np.ravel_multi_index(g.block_list.to_numpy()[: g.n_active[None]].T, g.n_blocks)
        assert listed.size > 1 and np.all(np.diff(listed) > 0), key
        assert np.array_equal(listed, np.flatnonzero(g.block_mask.to_numpy().ravel())), key
        sim.load_state_dict(dict(state, **{"field/particles_fields/x": x, "field/particles_fields/v": v}))
        for _ in range(40):
            sim.substep(sim.stable_dt())
        runs[key] = sim.particles()["x"]
        if sim is not serial:
            sim.close()  # "3 again" takes the 3 lanes' fields and kernels (closed by the next build it compiled anew)
    assert np.abs(runs["1"] - x[:n]).max() > spacing  # they did move
    g1, stride = grids["1"], serial.grid.lane_stride
    for name in serial.grid.scattered:
        scale = np.abs(g1[name]).max()
        assert scale > 0, name
        for key, lanes in (("2", 2), ("3", 3)):
            # the channel holds every lane's copy along axis 0, lane 0's the grid itself
            assert grids[key][name].shape[0] == lanes * stride == lanes * g1[name].shape[0], name
            np.testing.assert_allclose(grids[key][name][:stride], g1[name], rtol=0, atol=4e-6 * scale, err_msg=name)
            assert not grids[key][name][stride:].any(), name  # the sum zeroes every copy for the next P2G
    for key in ("2", "3"):
        assert np.abs(runs[key] - runs["1"]).max() < 1e-4 * spacing
    np.testing.assert_array_equal(runs["3"], runs["3 again"])
    for name in grids["3"]:
        np.testing.assert_array_equal(grids["3"][name], grids["3 again"][name])
    # the particles in a random order: lanes 1 and up add (nearly) all of theirs into their copies
    order = np.concatenate([rng.permutation(n), np.arange(n, len(x))])
    mixed = {k: (a[order] if k.startswith("field/particles_fields/") and np.ndim(a) and len(a) == len(x) else a)
             for k, a in dict(state, **{"field/particles_fields/x": x, "field/particles_fields/v": v,
                                        "field/particles_fields/T": cold}).items()}
    sim = build(2)
    sim.load_state_dict(mixed)
    sim.grid_mass()
    grid = fieldio.group(sim.grid).read()
    g = sim.grid
    alive = mixed["field/particles_fields/alive"][n // 2:n] != 0
    direct = np.mean(_stencil_base_x(g, x[order[n // 2:n]])[alive] >= g.lane_reach[0] + 3)  # lane 1's into the grid
    sim.close()
    assert direct < 0.05, direct
    for name in serial.grid.scattered:
        np.testing.assert_allclose(grid[name][:stride], g1[name], rtol=0, atol=4e-6 * np.abs(g1[name]).max(),
                                   err_msg=name)


def _stencil_base_x(grid, x):
    """``kernels.mpm.stencil_base`` along x of positions ``x``, in its f32 arithmetic (unclamped)."""
    f32 = np.float32
    return np.floor((x[:, 0].astype(f32) - f32(grid.corner[None][0])) * f32(grid.inv_spacing[None]) - f32(0.5))


def test_p2g_lanes_add_into_the_grid_itself_beyond_the_lanes_before_them():
    """A P2G lane adds into the grid itself the particles whose stencils lie beyond every node of
    the lanes before it (``kernels.mpm.lane_reaches_pass``), the rest into its copy (a grid without
    heat: zeroed where the lane first marks a block, so the copy still holds them after the sum).
    The 2D dam break at 0.1 s (water sampled in x order: lane 1 holds the right half of the
    column), a fresh P2G on 2 lanes: lane 0's reach is its highest stencil base along x plus one;
    41% of lane 1's particles lie beyond it (measured; asserted above 20%: a count of the state,
    not a noisy figure), and lane 1's copy holds the mass of the other 59% and no more (to f32
    rounding: the kernel took both paths); the grid is the serial one to f32 rounding (measured
    1.9e-7 of each channel's largest value, asserted at 2e-6); 40 substeps on, in which the
    particles move up to 2.9 dx, they stay within 5e-5 dx of the serial run's (measured 4.3e-6
    dx), and the same again repeats bit for bit. A NaN or infinite position at lane 0's largest x
    or its last particle does not lower its reach below what the other particles set."""
    from polyalloy.kernels import fieldio

    serial, laned = (_with_lanes(dam_break.build(dim=2), 1 / 48, lanes) for lanes in (1, 2))
    serial.advance_to(0.1)
    state = serial.state_dict()
    n, dx = serial.n_particles, serial.scene.dx
    x0, mass = serial.particles()["x"], serial.particles()["mass"]
    assert len(x0) == n  # every particle alive: slot p is particle p
    grids = {}
    for key, sim in (("serial", serial), ("laned", laned), ("again", laned)):
        sim.load_state_dict(state)
        sim.grid_mass()
        grids[key] = fieldio.group(sim.grid).read()
    g, stride = laned.grid, laned.grid.lane_stride
    base = _stencil_base_x(g, x0)
    assert g.lane_reach.to_numpy().tolist() == [int(base[: n // 2].max()) + 1]
    into_copy = base[n // 2:] < g.lane_reach[0] + 3
    assert 0.2 < 1.0 - into_copy.mean() < 1.0, into_copy.mean()
    assert grids["laned"]["m"][stride:].sum() == pytest.approx(mass[n // 2:][into_copy].sum(), rel=1e-5)
    for name in serial.grid.scattered:
        scale = np.abs(grids["serial"][name]).max()
        err = np.abs(grids["laned"][name][:stride] - grids["serial"][name]).max() / scale
        assert err < 2e-6, (name, err)
        np.testing.assert_array_equal(grids["laned"][name], grids["again"][name])
    for bad in (np.nan, np.inf, -np.inf):  # a particle of lane 0 off the map (a platform may clamp it either way)
        for p in (int(np.argmax(x0[: n // 2, 0])), n // 2 - 1):
            x = state["field/particles_fields/x"].copy()
            x[p, 0] = bad
            laned.load_state_dict(dict(state, **{"field/particles_fields/x": x}))
            laned.grid_mass()
            assert g.lane_reach[0] >= int(np.delete(base[: n // 2], p).max()) + 1, (bad, p)
    paths = {}
    for key, sim in (("serial", serial), ("laned", laned), ("again", laned)):
        sim.load_state_dict(state)
        for _ in range(40):
            sim.substep(sim.stable_dt())
        paths[key] = sim.particles()["x"]
    laned.close()
    assert np.abs(paths["serial"] - x0).max() > 0.5 * dx  # they moved
    assert np.abs(paths["laned"] - paths["serial"]).max() < 5e-5 * dx, np.abs(paths["laned"] - paths["serial"]).max() / dx
    np.testing.assert_array_equal(paths["laned"], paths["again"])


# --- P2G in block order (kernels.order) -------------------------------------------------------
def _block_keys(grid, x, alive):
    """``kernels.order.block_key`` of positions ``x`` in its f32 arithmetic: the block of each
    stencil's clamped lower corner, axis 0 slowest; ``grid.total_blocks`` where not ``alive``."""
    f32 = np.float32
    corner = grid.corner.to_numpy().astype(f32)
    base = np.floor((x.astype(f32) - corner) * f32(grid.inv_spacing[None]) - f32(0.5)).astype(np.int64)
    base = np.clip(base, 0, grid.extent.to_numpy() - 3) // grid.block
    key = np.zeros(len(x), np.int64)
    for d in range(grid.dim):
        key = key * grid.n_blocks[d] + base[:, d]
    return np.where(alive, key, grid.total_blocks)


def _shuffled_dam_break(lanes):
    """The 2D dam break at 0.1 s, its slots shuffled (every particle field permuted alike: 96% of
    neighbouring slots in different blocks, as in a scene long in motion), and a simulation of it
    built with ``lanes`` P2G lanes; returns (state, sim)."""
    sim = _with_lanes(dam_break.build(dim=2), 1 / 48, lanes)
    sim.advance_to(0.1)
    state, n = sim.state_dict(), sim.n_particles
    perm = np.random.default_rng(7).permutation(n)
    for key, v in state.items():
        if key.startswith("field/particles_fields/") and v.ndim >= 1 and v.shape[0] >= n:
            v = v.copy()
            v[:n] = v[perm]
            state[key] = v
    return state, sim


def test_the_block_order_sorts_every_slot_by_its_stencils_block_and_keeps_a_blocks_slots_in_order():
    """``kernels.order.sort_by_block`` on the shuffled 2D dam break (9,856 slots), three of them
    dead and one at a NaN position: ``Particles.order`` is a permutation of the slots, their blocks
    (the f32 oracle ``_block_keys``) never decrease along it, the dead come last, each block's
    slots keep their slot order (the CPU's serial placing: the same order every run), and
    ``n_sorted`` is ``n``; neighbours in different blocks: 96% of the slots before, 2.6% of the
    entries after (measured; asserted over 90% and under 10%)."""
    from polyalloy.kernels import order

    state, sim = _shuffled_dam_break(1)
    n = sim.n_particles
    alive, x = state["field/particles_fields/alive"].copy(), state["field/particles_fields/x"].copy()
    alive[[5, 600, n - 1]] = 0
    x[17] = np.nan
    sim.load_state_dict(dict(state, **{"field/particles_fields/alive": alive, "field/particles_fields/x": x}))
    assert sim.particles_fields.n_sorted[None] == 0  # a run in slot order loads no order
    order.sort_by_block(sim.particles_fields, sim.grid)
    o = sim.particles_fields.order.to_numpy()[:n]
    assert sim.particles_fields.n_sorted[None] == n
    np.testing.assert_array_equal(np.sort(o), np.arange(n))
    keys = _block_keys(sim.grid, np.nan_to_num(x[:n]), alive[:n].astype(bool))  # slot 17's: left out below
    ko = keys[o]
    live = ko != sim.grid.total_blocks
    assert sorted(o[~live].tolist()) == [5, 600, n - 1] and not live[-3:].any()
    nan_at = int(np.flatnonzero(o == 17)[0])
    ko_wo = np.delete(ko, nan_at)
    assert np.all(np.diff(ko_wo) >= 0)
    o_wo = np.delete(o, nan_at)
    same = ko_wo[1:] == ko_wo[:-1]
    assert np.all(o_wo[1:][same] > o_wo[:-1][same])
    before = np.mean(keys[1:] != keys[:-1])
    after = np.mean(ko_wo[1:] != ko_wo[:-1])
    assert before > 0.9 and after < 0.1, (before, after)


def test_p2g_in_block_order_gives_the_slot_orders_grid_on_every_lane_count_and_runs_the_same():
    """P2G through ``Particles.order`` (``mpm.slot_at``) adds the same sums in another order. The
    shuffled 2D dam break, a fresh P2G in slot order and in block order, serial, on 2 lanes and with
    a GPU's atomics (lanes 0): every scattered channel the slot order's to f32 rounding (measured
    at most 3.1e-7 of the channel's largest value; asserted 2e-6) but not to the bit (the sums'
    order did change); on 2 lanes lane 0's reach is the highest stencil base of the slots it visits,
    ``order``'s first half. Then 40 substeps sorted every 4 (the host's ``sort_every``, its count
    back at 0 and the order whole after them): within 5e-5 dx of the slot order's run (measured
    2.9e-6, 4.3e-6 and 5.7e-6 dx) and not on it, the particles having moved up to 2.9 dx, and on a
    CPU's lanes again to the bit."""
    from polyalloy.kernels import fieldio, order

    for lanes in (1, 2, 0):
        state, sim = _shuffled_dam_break(lanes)
        n, dx, g = sim.n_particles, sim.scene.dx, sim.grid
        grids = {}
        for key in ("slots", "blocks"):
            sim.load_state_dict(state)
            if key == "blocks":
                order.sort_by_block(sim.particles_fields, g)
            sim.grid_mass()
            grids[key] = fieldio.group(g).read()
            if key == "blocks" and lanes == 2:
                visited = sim.particles_fields.order.to_numpy()[: n // 2]
                x = state["field/particles_fields/x"][:n]
                assert g.lane_reach[0] == int(_stencil_base_x(g, x[visited]).max()) + 1
        rows = g.lane_stride if lanes >= 2 else None
        errs = []
        for name in g.scattered:
            scale = np.abs(grids["slots"][name][:rows]).max()
            errs.append(np.abs(grids["blocks"][name][:rows] - grids["slots"][name][:rows]).max() / scale)
        assert 0.0 < max(errs) < 2e-6, (lanes, errs)
        paths = {}
        for key, every in (("slots", 0), ("blocks", 4), ("again", 4)):
            sim.load_state_dict(state)
            sim.sort_every, sim.since_sort = every, 0
            for _ in range(40):
                sim.substep(sim.stable_dt())
            paths[key] = sim.particles()["x"]
            if every:
                assert sim.since_sort == 0 and sim.particles_fields.n_sorted[None] == n
        sim.close()
        x0 = state["field/particles_fields/x"][:n]
        moved = np.abs(paths["slots"] - x0).max() / dx
        off = np.abs(paths["blocks"] - paths["slots"]).max() / dx
        assert moved > 0.5 and 0.0 < off < 5e-5, (lanes, moved, off)
        if lanes:  # a GPU's atomics add in any order
            np.testing.assert_array_equal(paths["blocks"], paths["again"])


def test_slots_switched_on_after_a_sort_are_scattered_and_a_pooled_order_is_dropped():
    """P2G visits the slots past ``n_sorted`` in their own order and finds a slot that was dead at
    the sort in the dead bin: the 2D dam break with its last 300 slots not yet switched on (``n``
    300 lower) and two slots dead, sorted; then the 300 switched on (``events.activate``, as an
    emitter's fill) and the two revived: a fresh P2G gives the slot order's grid (every scattered
    channel to f32 rounding; reading ``order`` past ``n_sorted`` scatters 300 stale slots instead).
    The next simulation of that layout (on the pool's zeroed fields) starts in slot order."""
    from polyalloy.kernels import events as kev
    from polyalloy.kernels import fieldio, order

    state, sim = _shuffled_dam_break(1)
    n, pf = sim.n_particles, sim.particles_fields
    alive = state["field/particles_fields/alive"].copy()
    alive[[5, 600]] = 0
    alive[n - 300:n] = 0
    sim.load_state_dict(dict(state, **{"field/particles_fields/alive": alive,
                                       "field/particles_fields/n": np.array(n - 300, np.int32)}))
    order.sort_by_block(pf, sim.grid)
    assert pf.n_sorted[None] == n - 300
    kev.activate(pf, n - 300, n)
    kev.activate(pf, 5, 6)
    kev.activate(pf, 600, 601)
    assert pf.n[None] == n
    mass = state["field/particles_fields/mass"][:n]
    assert sim.grid_mass() == pytest.approx(float(mass.sum()), rel=1e-5)
    blocks = fieldio.group(sim.grid).read()
    pf.n_sorted[None] = 0
    sim.grid_mass()
    slots = fieldio.group(sim.grid).read()
    for name in sim.grid.scattered:
        err = np.abs(blocks[name] - slots[name]).max() / np.abs(slots[name]).max()
        assert err < 2e-6, (name, err)
    sim.close()
    again = _with_lanes(dam_break.build(dim=2), 1 / 48, 1)
    assert again.particles_fields.n_sorted[None] == 0
    assert again.grid_mass() == pytest.approx(float(again.particles()["mass"].sum()), rel=1e-5)
    again.close()


def test_a_run_in_block_order_pours_every_fill_and_resumes_to_the_bit():
    """An emitter switches slots on between two sorts: P2G visits them past ``n_sorted`` in slot
    order. The jet (a fill of 65 slots a frame, ~61 substeps a frame) sorted every 40 substeps:
    at every frame to 0.25 s the grid after a fresh P2G holds every live particle's mass (to f32
    rounding: asserted 1e-5), twice with a fill in since the last sort (asserted at least once);
    the jet pours the slot order's mass; the run from a state taken at 0.1 s (the order and
    ``since_sort`` 23 in it) ends on the uninterrupted run's positions to the bit; and that state
    loaded by a run in slot order drops its order."""
    def run(every, until, state=None):
        sim, past = Simulation(_jet_scene()), 0
        sim.sort_every = every
        if state is not None:
            sim.load_state_dict(state)
        while sim.t < until - 1e-9:
            sim.step_frame()
            pf = sim.particles_fields
            past += pf.n[None] > pf.n_sorted[None] > 0
            assert sim.grid_mass() == pytest.approx(float(sim.particles()["mass"].sum()), rel=1e-5), sim.t
        return sim, past

    (sorted_run, _), (slots, _) = run(40, 0.1), run(0, 0.25)
    state = sorted_run.state_dict()
    assert state["field/particles_fields/n_sorted"] > 0 and sorted_run.since_sort > 0
    sorted_run, past = run(40, 0.25)
    assert past >= 1
    resumed, _ = run(40, 0.25, state)
    np.testing.assert_array_equal(resumed.particles()["x"], sorted_run.particles()["x"])
    a, b = sorted_run.particles(), slots.particles()
    assert a["mass"][a["body"] == 1].sum() == pytest.approx(b["mass"][b["body"] == 1].sum(), rel=1e-6)
    slots.load_state_dict(state)
    assert slots.particles_fields.n_sorted[None] == 0
