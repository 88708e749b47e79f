"""The field pool (``polyalloy.pool``): a simulation that reuses another's fields and compiled
kernels runs exactly as one on fresh fields, whatever size the earlier one had, and a closed
simulation cannot touch the fields that now serve another."""
import contextlib

import numpy as np
import pytest

from conftest import make_scene
from polyalloy import pool
from polyalloy.materials import Elastic, Fluid
from polyalloy.shapes import Box, Sphere
from polyalloy.simulation import Simulation


def water_and_block(size=(1.0, 1.0), centre=0.5):
    """A water drop falling onto an elastic block: P2G, stress, collisions between bodies, walls."""
    sc = make_scene(2, size=size, dx=1 / 32)
    sc.add_material("water", Fluid(density=1000.0))
    sc.add_material("rubber", Elastic(density=1100.0, youngs_modulus=2e4))
    sc.add_body("drop", Sphere(centre=(centre, 0.6), radius=0.12), "water", velocity=(0.3, 0.0))
    sc.add_body("block", Box(centre=(centre, 0.2), half_size=(0.15, 0.1)), "rubber")
    return sc


def run(scene, frames=6):
    with Simulation(scene) as sim:
        kit = sim.kit
        for _ in range(frames):
            sim.step_frame()
        return kit, sim.particles(), sim.substeps


@contextlib.contextmanager
def own_pool():
    """The test starts from an empty pool; the free kits of earlier tests are set aside, not
    destroyed, and come back after it (``pool.clear()`` would make every later test file on this
    worker compile its layouts again)."""
    kept = dict(pool._free)
    pool._free.clear()
    try:
        yield
    finally:
        pool._free.update(kept)


@own_pool()
def test_a_reused_kit_runs_exactly_as_a_fresh_one():
    fresh_kit, fresh, steps = run(water_and_block())
    # another scene first: a wider box, its drop elsewhere; same layout bucket, so it takes the kit
    other_kit, _, _ = run(water_and_block(size=(1.4, 1.0), centre=0.9))
    assert other_kit is fresh_kit
    made = pool.stats()["made"]
    again_kit, again, steps_again = run(water_and_block())
    assert again_kit is fresh_kit and pool.stats()["made"] == made  # nothing new was built or compiled
    assert steps_again == steps
    for key in ("x", "v", "T", "phase", "body"):
        assert np.array_equal(fresh[key], again[key]), key


@own_pool()
def test_layouts_that_differ_in_code_get_their_own_kits():
    plain, _, _ = run(water_and_block(), frames=1)
    hot = water_and_block()
    hot.materials["water"].conductivity = 0.6  # a conducting material: the heat paths compile in
    thermal, _, _ = run(hot, frames=1)
    assert thermal is not plain and thermal.layout.thermal and not plain.layout.thermal


def test_a_closed_simulation_cannot_reach_the_fields_of_the_next():
    sim = Simulation(water_and_block())
    sim.close()
    with Simulation(water_and_block()) as other:
        with pytest.raises(AttributeError):
            sim.step_frame()
        other.step_frame()


@pytest.mark.parametrize("n, expected", [(1, 8), (8, 8), (9, 16), (65536, 65536), (65537, 73728),
                                         (100_000, 106496)])
def test_bucket_rounds_up_by_at_most_an_eighth_above_65536(n, expected):
    assert pool.bucket(n) == expected
    assert pool.bucket(n) >= n and (n <= 65536 or pool.bucket(n) <= 1.125 * n)


def test_small_grids_share_a_cube_and_large_ones_round_per_axis():
    assert pool.grid_alloc(3, (23, 17, 11), 4) == (32, 32, 32)
    assert pool.grid_alloc(3, (40, 17, 11), 4) == (64, 64, 64)
    assert pool.grid_alloc(2, (71, 40), 4) == (256, 256)
    assert pool.grid_alloc(2, (300, 40), 4) == (512, 512)
    assert pool.grid_alloc(3, (130, 70, 40), 4) == (160, 96, 64)  # multiples of 32 nodes
