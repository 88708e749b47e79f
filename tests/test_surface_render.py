"""Surface renderer: silhouette, smoothness, reflection, Fresnel, glow, frost, camera keys, presets.

One ball of polyalloy particles is rendered by one renderer (its kernels compile once); each
test changes only what it measures (environment, temperature, phase, settings) and puts it back.
"""
import dataclasses
import math

import numpy as np
import pytest

from polyalloy.errors import ConfigError
from polyalloy.kernels import render as kr
from polyalloy.kernels import shade as ks
from polyalloy.kernels.heat import FROZEN, MIMETIC, MOLTEN
from polyalloy.materials import Polyalloy
from polyalloy.render import PRESETS, QUALITY, SurfaceRenderer
from polyalloy.scene import Camera, Environment, Light, Scene
from polyalloy.shapes import Sphere

W, H = 320, 240
CENTRE, RADIUS = (0.5, 0.5, 0.5), 0.16  # m; 15 particle spacings across the radius
EYE_DISTANCE, FOV = 2.5, 30.0
CHROME = (0.8, 0.8, 0.8)
DIM = (0.05, 0.05, 0.05)
SMOOTH_ENV = Environment(zenith=DIM, horizon=DIM, ground=DIM, floor=DIM, floor_alt=DIM,  # one broad soft light
                         lights=[Light(direction=(-0.5, 0.6, 1.0), color=(0.5, 0.5, 0.5), size=40.0)])


def _scene(dim: int = 3) -> Scene:
    eye = (CENTRE[0], CENTRE[1], CENTRE[2] + EYE_DISTANCE)
    scene = Scene(name="surface_test", dim=dim, domain=((0, 0, 0), (1, 1, 1)), dx=1 / 48,
                  camera=Camera(position=eye, look_at=CENTRE, fov=FOV))
    scene.add_material("metal", Polyalloy())
    scene.add_body("ball", Sphere(centre=CENTRE, radius=RADIUS), "metal", color=CHROME)
    return scene


@pytest.fixture(scope="module")
def ball(runtime):
    from polyalloy.simulation import Simulation

    sim = Simulation(_scene())
    return sim, SurfaceRenderer(sim, W, H, "preview")


def _disc_radius_px() -> float:
    focal = 0.5 * H / math.tan(math.radians(FOV) / 2)
    return focal * math.tan(math.asin(RADIUS / EYE_DISTANCE))


def _radius_map() -> np.ndarray:
    """Distance of each pixel centre from the ball's projected centre, in units of its radius."""
    j, i = np.mgrid[0:H, 0:W]
    return np.hypot(i + 0.5 - W / 2, j + 0.5 - H / 2) / _disc_radius_px()


def _linear(image) -> np.ndarray:
    """sRGB u8 -> linear RGB floats."""
    c = image.astype(float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _luminance(image) -> np.ndarray:
    return _linear(image) @ np.array([0.2126, 0.7152, 0.0722])


def _render(sim, renderer, environment=None, T=None, phase=None, base=None, **settings):
    """Render with a changed environment / particle temperature (K) / phase / base colour /
    render settings, then restore the originals."""
    parts, scene = sim.particles_fields, sim.scene
    saved = (scene.environment, parts.T.to_numpy(), parts.phase.to_numpy(), parts.color.to_numpy(),
             renderer.settings)
    try:
        if environment is not None:
            scene.environment = environment
        if T is not None:
            parts.T.from_numpy(np.full_like(saved[1], T))
        if phase is not None:
            parts.phase.from_numpy(np.full_like(saved[2], phase))
        if base is not None:
            parts.color.from_numpy(np.tile(np.asarray(base, saved[3].dtype), (len(saved[3]), 1)))
        renderer.settings = dataclasses.replace(renderer.settings, **settings)
        return renderer.render()
    finally:
        scene.environment = saved[0]
        parts.T.from_numpy(saved[1])
        parts.phase.from_numpy(saved[2])
        parts.color.from_numpy(saved[3])
        renderer.settings = saved[4]


def test_sphere_silhouette_matches_the_analytic_projection_within_5_percent(ball):
    sim, renderer = ball
    renderer.render()
    area = (renderer.alpha() > 0.5).sum()
    assert abs(area / (math.pi * _disc_radius_px() ** 2) - 1.0) < 0.05


def test_side_view_disc_matches_the_domain_scale_within_5_percent(runtime):
    from polyalloy.simulation import Simulation

    sim = Simulation(_scene(dim=2))
    renderer = SurfaceRenderer(sim, W, H, "preview")
    renderer.render()
    scale = float(renderer.view.scale[None])
    area = (renderer.alpha() > 0.5).sum()
    assert abs(area / (math.pi * (RADIUS * scale) ** 2) - 1.0) < 0.05
    sim.close()


def test_shading_is_smooth_inside_the_silhouette_and_needs_the_filter(ball):
    """No per-particle dots, measured on the upper part of the ball (inside 0.8 of its radius,
    above its equator, which mirrors the horizon: a true edge). A perfect mirror ball of
    radius R px turns its reflected ray by 2 / sqrt(R^2 - rho^2) rad per px at rho px from its
    centre: at most 3.3 / R = 0.12 rad/px here (R = 28.7 px). The test sky is one soft light
    (a spherical Gaussian of amplitude 0.5 and width 40 deg) whose radiance changes by at most
    0.41 per rad; the tone curve's slope there is ~1.1. So an ideal image steps by at most
    ~0.05 per px (linear luminance); the bound 0.08 leaves 1.5x for the reconstruction. A
    particle-sized bump (R / 15 ~ 2 px) tilts the normal by ~0.5 rad across itself, steps of
    ~0.5 per px: the same ball rendered without the filter shows them."""
    sim, renderer = ball
    rows = np.mgrid[0:H, 0:W][0]
    region = (_radius_map() < 0.8) & (rows < H / 2 - 0.2 * _disc_radius_px())

    def worst_step(image):
        lum = _luminance(image)
        step = np.maximum(np.abs(np.diff(lum, axis=0))[:, :-1], np.abs(np.diff(lum, axis=1))[:-1, :])
        return np.percentile(step[region[:-1, :-1]], 99)

    smoothed = worst_step(_render(sim, renderer, SMOOTH_ENV))
    raw = worst_step(_render(sim, renderer, SMOOTH_ENV, passes=0))
    assert smoothed < 0.08 < raw


def test_changing_the_environment_colour_changes_the_body(ball):
    sim, renderer = ball
    body = _radius_map() < 0.9
    warm = dataclasses.replace(SMOOTH_ENV, zenith=(0.6, 0.2, 0.05), horizon=(0.9, 0.5, 0.2), ground=(0.5, 0.2, 0.1))
    cool = dataclasses.replace(SMOOTH_ENV, zenith=(0.05, 0.2, 0.6), horizon=(0.2, 0.5, 0.9), ground=(0.1, 0.2, 0.5))
    a = _linear(_render(sim, renderer, warm))[body].mean(axis=0)
    b = _linear(_render(sim, renderer, cool))[body].mean(axis=0)
    assert a[0] > 1.5 * a[2] and b[2] > 1.5 * b[0]


def test_fresnel_makes_grazing_pixels_brighter_than_facing_ones(ball):
    """Under a uniform grey environment a grey metal (reflectance 0.25 at normal incidence)
    shows only its Fresnel curve: the rim (rho 0.85..0.97 of the radius, upper half: it sees
    the sky, not the floor) is brighter than the middle (rho < 0.4). On a perfect sphere Schlick
    gives 1.28x; a screen-space surface loses some of the silhouette's slope (the rim is
    reconstructed from the coverage, ~1.18x), so the bound is 1.1x."""
    sim, renderer = ball
    grey = (0.5, 0.5, 0.5)
    uniform = Environment(zenith=grey, horizon=grey, ground=grey, floor=(1, 1, 1), floor_alt=(1, 1, 1), lights=[])
    lum = _luminance(_render(sim, renderer, uniform, base=(0.25, 0.25, 0.25)))
    rho = _radius_map()
    upper = np.mgrid[0:H, 0:W][0] < H / 2
    rim = lum[(rho > 0.85) & (rho < 0.97) & upper].mean()
    middle = lum[rho < 0.4].mean()
    assert rim > 1.1 * middle


def _hue(rgb) -> float:
    r, g, b = rgb
    return math.degrees(math.atan2(math.sqrt(3) * (g - b), 2 * r - g - b)) % 360


@pytest.mark.parametrize("look", [kr.METAL, kr.MOLTEN], ids=["polyalloy", "molten_steel"])
def test_a_body_at_1800_K_glows_with_a_warm_hue(ball, look):
    sim, renderer = ball
    body = _radius_map() < 0.9
    kinds = renderer.looks.kind.to_numpy()
    renderer.looks.kind.from_numpy(np.full_like(kinds, look))
    try:
        cold = _linear(_render(sim, renderer, T=293.0, phase=MIMETIC))[body].mean(axis=0)
        hot = _linear(_render(sim, renderer, T=1800.0, phase=MOLTEN))[body].mean(axis=0)
    finally:
        renderer.looks.kind.from_numpy(kinds)
    assert hot[0] > hot[1] > hot[2] and hot[0] > 2 * hot[2]
    assert 10 < _hue(hot) < 50  # orange: between red (0) and yellow (60)
    assert hot.sum() > cold.sum()  # it emits


def test_a_frozen_body_is_bluish_white_and_rougher(ball):
    """Frost: blue above red, channels within 30% of each other (white-ish), and rough: the
    mirror's sharp highlights of the lights spread out, so the brightest pixels stand far less
    above the typical one (99.5th percentile over median luminance: chrome ~7, frost ~1.2)."""
    sim, renderer = ball
    body = _radius_map() < 0.9
    lum = np.array([0.2126, 0.7152, 0.0722])
    chrome = _linear(_render(sim, renderer, T=293.0, phase=MIMETIC))[body] @ lum
    image = _linear(_render(sim, renderer, T=100.0, phase=FROZEN))[body]
    frost = image.mean(axis=0)
    assert frost[2] > frost[0] and frost.min() > 0.7 * frost.max()

    def highlight_contrast(values):
        return np.percentile(values, 99.5) / np.median(values)

    assert highlight_contrast(image @ lum) < 0.5 * highlight_contrast(chrome)


def test_blackbody_table_is_white_at_6504_K_and_reddens_as_it_cools(runtime):
    import taichi as ti

    env = ks.Environment(ti.f32)
    ks.tabulate_blackbody(env)
    table = env.blackbody.to_numpy()

    def rgb(T):
        u = (T - ks.BB_T0) / (ks.BB_T1 - ks.BB_T0) * (ks.BB_N - 1)
        return table[int(round(u)), :3]

    white = rgb(6504.0)
    assert np.all(np.abs(white / white.mean() - 1) < 0.06)
    ratios = [rgb(T)[1] / rgb(T)[0] for T in (1000.0, 1500.0, 2000.0, 3000.0, 5000.0)]
    assert all(a < b for a, b in zip(ratios, ratios[1:]))
    luminance = [table[k, 3] for k in range(0, ks.BB_N, 32)]
    assert all(a < b for a, b in zip(luminance, luminance[1:]))


def test_camera_keys_interpolate_smoothly_and_hold_at_the_ends():
    keys = [(0.0, (0, 1, 3), (0, 0, 0)), (1.0, (2, 1, 3), (0.5, 0, 0)), (3.0, (2, 2, 1), (1, 0, 0))]
    cam = Camera(keys=keys)
    for t, position, look_at in keys:
        p, a = cam.at(t)
        assert np.allclose(p, position) and np.allclose(a, look_at)
    assert np.allclose(cam.at(-1.0)[0], keys[0][1]) and np.allclose(cam.at(9.0)[0], keys[-1][1])
    h = 1e-4
    for t in (1.0, 2.0):  # continuous velocity through a key and inside a segment
        before = (cam.at(t)[0] - cam.at(t - h)[0]) / h
        after = (cam.at(t + h)[0] - cam.at(t)[0]) / h
        assert np.allclose(before, after, atol=1e-2)
    assert np.allclose((cam.at(h)[0] - cam.at(0.0)[0]) / h, 0.0, atol=1e-2)  # eases in


@pytest.mark.parametrize("bad, needle", [
    (dict(keys=[(0.0, (0, 0, 1), (0, 0, 0)), (0.0, (1, 0, 1), (0, 0, 0))]), "strictly increasing"),
    (dict(keys=[(0.0, (0, 0, 1))]), "(t, position, look_at)"),
    (dict(keys=[(0.0, (0, 0, 0), (0, 0, 0))]), "must differ"),
    (dict(keys=[(0.0, (0, 0, float("nan")), (0, 0, 0))]), "finite"),
    (dict(fov=0.0), "fov"),
])
def test_bad_camera_is_a_one_line_config_error(bad, needle):
    with pytest.raises(ConfigError) as err:
        Camera(**bad)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_keyed_camera_pans_the_image(ball):
    sim, renderer = ball
    scene = sim.scene
    saved = scene.camera
    eye = np.array(CENTRE) + (0, 0, EYE_DISTANCE)
    scene.camera = Camera(fov=FOV, keys=[(0.0, tuple(eye), CENTRE), (1.0, tuple(eye + (0.3, 0, 0)),
                                                                       tuple(np.array(CENTRE) + (0.3, 0, 0)))])
    try:
        cols = []
        for t in (0.0, 1.0):
            sim.t = t
            renderer.render()
            cols.append(np.nonzero(renderer.alpha() > 0.5)[1].mean())
    finally:
        scene.camera, sim.t = saved, 0.0
    focal = 0.5 * H / math.tan(math.radians(FOV) / 2)
    assert abs((cols[0] - cols[1]) - focal * 0.3 / EYE_DISTANCE) < 1.0  # the ball slides left by the pan


def test_presets_and_qualities(ball):
    sim, _ = ball
    assert PRESETS == {"preview": (640, 360), "film": (1920, 1080)}
    assert set(QUALITY) == {"live", "preview", "film"}
    assert QUALITY["film"].passes > QUALITY["preview"].passes >= QUALITY["live"].passes
    assert QUALITY["film"].reflect_steps > QUALITY["preview"].reflect_steps > QUALITY["live"].reflect_steps == 0
    with pytest.raises(ConfigError, match="unknown render quality"):
        SurfaceRenderer(sim, 64, 64, "cinema")


@pytest.mark.parametrize("bad, needle", [
    (dict(lights=[Light()] * 5), "at most 4"),
    (dict(zenith=(1, 2)), "zenith"),
    (dict(exposure=0.0), "exposure"),
])
def test_bad_environment_is_a_one_line_config_error(bad, needle):
    with pytest.raises(ConfigError) as err:
        Environment(**bad)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_textured_collider_shows_its_stripes(runtime):
    """The bars of the bars scene carry the stripes that mimicking metal copies: a box with red
    and blue stripes 5 cm apart, seen face on, shows both colours in bands along its height."""
    from polyalloy.scene import Texture
    from polyalloy.shapes import Box
    from polyalloy.simulation import Simulation

    scene = _scene()
    stripes = Texture("stripes", colors=((0.9, 0.05, 0.05), (0.05, 0.05, 0.9)), period=0.05)
    scene.add_collider("bar", Box(centre=(0.2, 0.5, 0.6), half_size=(0.05, 0.3, 0.05)), color=(0.5, 0.5, 0.5),
                       texture=stripes)
    with Simulation(scene) as sim:
        image = _linear(SurfaceRenderer(sim, W, H, "preview").render())
    column = image[:, int(W * 0.5 - 0.3 / (2 * EYE_DISTANCE * math.tan(math.radians(FOV / 2))) * H), :]
    red = (column[:, 0] > 2 * column[:, 2]).sum()
    blue = (column[:, 2] > 2 * column[:, 0]).sum()
    assert red > 10 and blue > 10, (red, blue)
    # bands: the colour flips several times along the bar
    contrast = column[:, 0] - column[:, 2]
    flips = np.count_nonzero(np.diff(np.sign(contrast[np.abs(contrast) > 0.05])))
    assert flips >= 4, flips
