"""Scene configuration is validated strictly: unknown keys and impossible values are ConfigErrors
that name the key and what is allowed, materials are reachable as ``materials.NAME.PARAM``, and
a scene that cannot run (no particles, too many for the memory) is refused before any field is
allocated.
"""
import time

import pytest

from conftest import make_scene
from polyalloy import ConfigError, preflight
from polyalloy import simulation as simulation_module
from polyalloy.materials import Elastic, ElastoPlastic, Fluid
from polyalloy.scene import TUNABLE, Scene
from polyalloy.scenes import dam_break, drop
from polyalloy.shapes import Box, Plane, Sphere
from polyalloy.simulation import Simulation


@pytest.fixture
def scene():
    s = make_scene(3)
    s.add_material("water", Fluid(density=1000.0, bulk_modulus=1e5, viscosity=1e-3))
    s.add_material("rubber", Elastic(youngs_modulus=1e5, poisson_ratio=0.3))
    s.add_body("drop", Sphere(centre=(0.5, 0.5, 0.5), radius=0.1), "water")
    return s


@pytest.fixture
def no_allocation(monkeypatch):
    """Make any attempt to allocate particle or grid fields fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("fields were allocated before the scene was validated")

    monkeypatch.setattr(simulation_module.kf, "Particles", refuse)
    monkeypatch.setattr(simulation_module.kf, "Grid", refuse)


# --- Scene.set ------------------------------------------------------------------------------
def test_unknown_key_names_the_key_and_lists_the_known_ones(scene):
    with pytest.raises(ConfigError) as err:
        scene.set("gravty", -3.7)
    message = str(err.value)
    assert "'gravty'" in message
    for known in ("gravity", "cfl", "dx", "materials.water.viscosity", "materials.rubber.poisson_ratio"):
        assert known in message


@pytest.mark.parametrize("key", ["materials.lava.density", "materials.water.stiffness", "materials.water",
                                 "camera.fov", "materials.water.density.extra"])
def test_unknown_nested_keys_are_rejected(scene, key):
    with pytest.raises(ConfigError, match="stiffness|unknown key"):
        scene.set(key, 1.0)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.4, float("nan"), float("inf"), "fast"])
def test_out_of_range_cfl_is_rejected(scene, value):
    with pytest.raises(ConfigError, match="cfl"):
        scene.set("cfl", value)
    assert scene.cfl == 0.4  # a rejected value leaves the scene as it was


def test_values_in_range_are_applied_and_strings_are_parsed(scene):
    scene.set("cfl", "0.25")
    scene.set("gravity", -3.7)
    scene.set("fps", "24")
    assert scene.cfl == 0.25 and scene.gravity == -3.7 and scene.fps == 24 and isinstance(scene.fps, int)
    with pytest.raises(ConfigError, match="fps"):
        scene.set("fps", "24.5")


@pytest.mark.parametrize("key", sorted(TUNABLE))
def test_every_tunable_key_has_a_checked_range(scene, key):
    lo, hi = TUNABLE[key]
    with pytest.raises(ConfigError, match=key):
        scene.set(key, hi * 2 + 1)
    scene.set(key, hi)
    assert getattr(scene, key) == hi


def test_material_parameters_are_settable(scene):
    before = scene.materials["water"]
    scene.set("materials.water.viscosity", "0.5")
    scene.set("materials.rubber.youngs_modulus", 4e5)
    water, rubber = scene.materials["water"], scene.materials["rubber"]
    assert isinstance(water, Fluid) and water.viscosity == 0.5 and water.bulk_modulus == before.bulk_modulus
    assert rubber.youngs_modulus == 4e5 and rubber.poisson_ratio == 0.3
    assert rubber.row()["mu"] == pytest.approx(4 * Elastic(youngs_modulus=1e5).row()["mu"])  # the moduli ~ E


@pytest.mark.parametrize("key, value", [("materials.rubber.poisson_ratio", 0.6),
                                        ("materials.rubber.youngs_modulus", -1.0),
                                        ("materials.water.density", 0.0),
                                        ("materials.water.viscosity", "thick")])
def test_bad_material_parameters_are_rejected(scene, key, value):
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        scene.set(key, value)
    assert scene.materials["rubber"].poisson_ratio == 0.3


def test_materials_validate_on_construction():
    with pytest.raises(ConfigError, match="poisson_ratio"):
        Elastic(poisson_ratio=0.6)
    with pytest.raises(ConfigError, match="yield_compression"):
        ElastoPlastic(yield_compression=0.0)
    with pytest.raises(ConfigError, match="bulk_modulus"):
        Fluid(bulk_modulus=float("nan"))


def test_scene_and_collider_arguments_are_validated():
    with pytest.raises(ConfigError, match="dim"):
        Scene(name="x", dim=4)
    with pytest.raises(ConfigError, match="domain"):
        Scene(name="x", dim=2, domain=((0, 0), (1, -1)))
    with pytest.raises(ConfigError, match="cfl"):
        Scene(name="x", cfl=2.0)
    s = make_scene(2)
    with pytest.raises(ConfigError, match="surface"):
        s.add_collider("floor", Plane(), surface="sticky-ish")
    with pytest.raises(ConfigError, match="friction"):
        s.add_collider("floor", Plane(), friction=-1.0)
    with pytest.raises(ConfigError, match="unknown material 'lava'"):
        s.add_body("blob", Sphere(radius=0.1), "lava")
    with pytest.raises(ConfigError, match="shatter >= 0"):
        s.gunshot(1.0, (0.5, 0.5, 0.5), (1, 0, 0), impulse=1.0, radius=0.1, shatter=-0.1)
    spacing = s.dx / s.particles_per_cell
    with pytest.raises(ConfigError, match="at least 3 particle spacings"):  # a crack network finer than the particles
        s.gunshot(1.0, (0.5, 0.5, 0.5), (1, 0, 0), impulse=1.0, radius=0.1, shatter=2 * spacing)
    s.gunshot(1.0, (0.5, 0.5, 0.5), (1, 0, 0), impulse=1.0, radius=0.1, shatter=3 * spacing)


def test_shipped_scenes_accept_their_overrides():
    for module in (dam_break, drop):
        for dim in (2, 3):
            s = module.build(dim=dim)
            assert s.dim == dim and s.bodies and s.materials
            s.set("cfl", 0.3)
            with pytest.raises(ConfigError, match="known keys"):
                s.set("no_such_key", 1)


# --- scenes that cannot run -----------------------------------------------------------------
def test_too_many_particles_is_refused_fast_and_before_allocating(no_allocation):
    s = make_scene(3, dx=1e-4)  # a 1 m cube at 0.1 mm: ~10^13 particles
    s.add_material("water", Fluid())
    s.add_body("ocean", Box(centre=(0.5, 0.5, 0.5), half_size=(0.5, 0.5, 0.5)), "water")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="particles") as err:
        Simulation(s)
    assert time.perf_counter() - start < 5.0
    assert "dx" in str(err.value)


def test_a_scene_that_does_not_fit_in_memory_is_refused_before_allocating(no_allocation, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory", lambda: 64 * 1024)  # 64 KiB free
    s = make_scene(2)
    s.add_material("water", Fluid())
    s.add_body("pond", Box(centre=(0.5, 0.3, 0), half_size=(0.4, 0.2, 0)), "water")
    with pytest.raises(ConfigError, match="needs about .* but only 0 MiB is free") as err:
        Simulation(s)
    assert "particles" in str(err.value)


def test_an_empty_scene_is_refused(no_allocation):
    with pytest.raises(ConfigError, match="no bodies"):
        Simulation(make_scene(2))


def test_bodies_that_hold_no_particles_are_refused(no_allocation):
    s = make_scene(2)
    s.add_material("water", Fluid())
    s.add_body("far away", Sphere(centre=(5.0, 5.0, 0), radius=0.2), "water")
    with pytest.raises(ConfigError, match="outside the domain"):
        Simulation(s)
