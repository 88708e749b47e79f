"""Analytic colliders: whatever the shape (plane, box, sphere, capsule, cylinder, a union, a moving
box), particles thrown at it reach it and are stopped or turned, by the grid's boundary condition
rather than by G2P's push-out (the net that keeps any particle from ending inside); the surface
modes (sticky, slip, separate with Coulomb friction) give the tangential motion they promise.
"""
import numpy as np
import pytest

from conftest import DX, centre_of_mass, collider_distance, make_scene, run_frames
from polyalloy import metrics
from polyalloy.materials import Elastic, Fluid
from polyalloy.shapes import Box, Capsule, Cylinder, Plane, Sphere
from polyalloy.simulation import Simulation

G = 9.81  # m/s^2
SPEED = 5.0  # m/s, how fast the particles are thrown

SHAPES_2D = {
    "plane": Plane(point=(0.6, 0.5, 0), normal=(-1.0, 0.3, 0)),
    "box": Box(centre=(0.62, 0.5, 0), half_size=(0.08, 0.16, 0), rotation=30.0),
    "sphere": Sphere(centre=(0.62, 0.5, 0), radius=0.12),
    "capsule": Capsule(a=(0.6, 0.36, 0), b=(0.66, 0.64, 0), radius=0.06),
    "cylinder": Cylinder(centre=(0.62, 0.5, 0), radius=0.07, half_height=0.16, rotation=20.0),
    "union": Sphere(centre=(0.62, 0.44, 0), radius=0.09) | Box(centre=(0.6, 0.6, 0), half_size=(0.05, 0.12, 0)),
    "moving_box": Box(centre=(0.8, 0.5, 0), half_size=(0.06, 0.16, 0), velocity=(-1.0, 0, 0)),
}


def closest_approach(sim: Simulation, frames: int) -> np.ndarray:
    """Run ``frames`` frames; return the closest any particle came to each collider (so that a
    test can tell that contact happened). No particle ends a substep inside a collider by
    construction (G2P's push-out puts it back on the surface), so that is not what is tested:
    what can break is the grid's boundary condition, which should do the stopping
    (``metrics.push_impulse`` says how much the push-out had to catch)."""
    owners = range(len(sim.scene.colliders))
    assert collider_distance(sim).min() > DX[sim.dim]  # the bodies start clear of the colliders
    return np.min(run_frames(sim, frames, lambda s: [collider_distance(s, o).min() for o in owners]), axis=0)


# Share of a slug's momentum that the push-out, not the grid's boundary condition, took from it
# in 7 frames (2D, no gravity). Measured with the boundary condition 0.32-0.49 over the seven
# shapes; with it switched off (update_grid without collide_node) 0.60-1.37. A fraction of the
# slug's own momentum leaves no room for a 10x margin: this bound sits between the two.
PUSH_SHARE = 0.55


@pytest.mark.parametrize("shape", list(SHAPES_2D))
def test_a_collider_stops_particles_thrown_at_it_through_the_grid_2d(shape):
    scene = make_scene(2, gravity=0.0)
    scene.add_material("water", Fluid(bulk_modulus=1e5))
    scene.add_collider(shape, SHAPES_2D[shape], surface="separate")
    scene.add_body("slug", Box(centre=(0.22, 0.5, 0), half_size=(0.08, 0.1, 0)), "water", velocity=(SPEED, 0, 0))
    sim = Simulation(scene)
    closest = closest_approach(sim, 7)
    assert closest[0] < 0.25 * DX[2]  # particles did reach the surface
    assert centre_of_mass(sim)[1][0] < 0.5 * SPEED  # and the collider stopped or turned them
    momentum = SPEED * sim.particles()["mass"].sum()
    assert metrics.push_impulse(sim) < PUSH_SHARE * momentum  # through the grid, mostly


def test_particles_thrown_at_colliders_reach_them_and_are_turned_3d():
    """Four lanes, one shape each (sphere, capsule, a union of a tilted box and a sphere, a
    cylinder moving towards its slug), slip and separate surfaces in turn, over a tilted
    floor, with gravity on; one slug is elastic, the others liquid."""
    scene = make_scene(3)
    scene.add_material("water", Fluid(bulk_modulus=1e5))
    scene.add_material("rubber", Elastic(youngs_modulus=1e5))
    scene.add_collider("floor", Plane(point=(0, 0.15, 0), normal=(-0.15, 1.0, 0.1)))
    lanes = {
        "sphere": (0.35, 0.3, Sphere(centre=(0.62, 0.35, 0.3), radius=0.12)),
        "capsule": (0.35, 0.72, Capsule(a=(0.6, 0.2, 0.65), b=(0.66, 0.55, 0.78), radius=0.07)),
        "union": (0.72, 0.3, Box(centre=(0.62, 0.72, 0.3), half_size=(0.05, 0.12, 0.12), rotation=(0, 30, 15))
                  | Sphere(centre=(0.65, 0.62, 0.3), radius=0.08)),
        "cylinder": (0.72, 0.72, Cylinder(centre=(0.75, 0.72, 0.72), radius=0.08, half_height=0.14,
                                         rotation=(20, 0, 0), velocity=(-1.0, 0, 0))),
    }
    for i, (name, (y, z, shape)) in enumerate(lanes.items()):
        scene.add_collider(name, shape, surface="separate" if i % 2 else "slip")
        scene.add_body(f"slug_{name}", Box(centre=(0.2, y, z), half_size=(0.07, 0.07, 0.07)),
                       "rubber" if i == 1 else "water", velocity=(SPEED, 0, 0))
    sim = Simulation(scene)
    closest = closest_approach(sim, 7)
    for collider, distance in zip(scene.colliders, closest):
        assert distance < 0.25 * DX[3], f"no particle reached the {collider.name}"


# --- surface modes --------------------------------------------------------------------------
SURFACES = {"sticky": ("sticky", 0.0), "slip": ("slip", 0.0), "separate": ("separate", 0.0),
            "separate_mu0.5": ("separate", 0.5)}


@pytest.fixture(scope="module")
def sliding_blocks():
    """An elastic block resting on a horizontal floor, launched along it at 2 m/s, once per
    surface mode; per frame: time (s), the block's mean horizontal velocity (m/s) and the
    smallest particle distance to the floor (m)."""
    out = {}
    for key, (surface, friction) in SURFACES.items():
        scene = make_scene(2, size=(2.0, 0.5))
        scene.add_material("rubber", Elastic(youngs_modulus=1e5))
        scene.add_collider("floor", Plane(point=(0, 0.1, 0)), surface=surface, friction=friction)
        scene.add_body("slider", Box(centre=(0.3, 0.15, 0), half_size=(0.1, 0.05, 0)), "rubber", velocity=(2.0, 0, 0))
        sim = Simulation(scene)
        out[key] = np.array(run_frames(sim, 8, lambda s: (s.t, centre_of_mass(s)[1][0],
                                                         float(collider_distance(s).min()))))
        weight_impulse = -sim.scene.gravity * sim.particles()["mass"].sum() * sim.t
        out[key + "/push"] = metrics.push_impulse(sim) / weight_impulse
    return out


def test_the_floor_carries_the_block_through_the_grid(sliding_blocks):
    """The floor holds the sliding block up by the grid's boundary condition: the push-out takes
    a small share of the weight's impulse m g t over the run (measured 0.014 on the sticky floor,
    0 on the others; with collide_node switched off in update_grid, 0.99 on all four: the
    push-out carried the block), and the block stays in contact (within a quarter cell)."""
    for key in SURFACES:
        assert sliding_blocks[key + "/push"] < 0.15, key
        assert sliding_blocks[key][:, 2].min() < 0.25 * DX[2], key


def test_sticky_floor_stops_the_block(sliding_blocks):
    vx = sliding_blocks["sticky"][:, 1]
    assert np.abs(vx[2:]).mean() < 0.25 * 2.0


def test_slip_and_frictionless_separate_keep_the_sliding_speed(sliding_blocks):
    for key in ("slip", "separate"):
        vx = sliding_blocks[key][:, 1]
        assert vx.min() > 0.95 * 2.0, key


def test_separate_with_friction_decelerates_as_coulomb_says(sliding_blocks):
    """A block sliding on a floor with friction mu slows at mu g: v(t) = v0 - mu g t."""
    t, vx, _ = sliding_blocks["separate_mu0.5"].T
    expected = 2.0 - 0.5 * G * t
    moving = expected > 0.3
    assert moving.sum() >= 5
    np.testing.assert_allclose(vx[moving], expected[moving], atol=0.15)
    assert vx[-1] < sliding_blocks["separate"][-1, 1] - 1.0
