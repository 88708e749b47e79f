"""Stand: the metal man stands on a floor and waits to be poked, the playground of ``polyalloy live``.

A 1.8 m mimetic polyalloy man (``polyalloy.body.Humanoid``, held by the controller) on a
floor whose temperature is a live knob (0: adiabatic; below 150 K it freezes his feet).
Nothing happens until someone shoots, pulls, heats or chills him or drags a slider: with
the controller's gain at 0 he slumps into a puddle, at 1 he stands up again. 2D (a side
view, the default: fast enough to tweak on a laptop CPU) or 3D. Options: ``dim``.
"""
from polyalloy.body import Humanoid
from polyalloy.materials import Polyalloy
from polyalloy.scene import Camera, Scene
from polyalloy.shapes import Plane

FLOOR = 0.05  # m


def build(quality: str = "preview", dim: int = 2) -> Scene:
    dx = {"preview": 0.04 if dim == 3 else 0.025, "film": 0.02 if dim == 3 else 0.01}[quality]
    scene = Scene(name="stand", dim=dim, domain=((0, 0, 0), (2.0, 2.1, 1.0)), dx=dx, duration=10.0, fps=30,
                  camera=Camera(position=(1.0, 1.2, 4.6), look_at=(1.0, 0.9, 0.5), fov=40))
    scene.add_material("polyalloy", Polyalloy())
    scene.add_collider("floor", Plane(point=(0, FLOOR, 0), normal=(0, 1, 0)), friction=0.5)
    man = Humanoid(position=(1.0, FLOOR, 0.5))
    scene.add_body("man", man, "polyalloy", template=man)
    return scene


def claims(scene):
    from polyalloy.claims import Claim

    top = lambda sim: float(sim.particles()["x"][:, 1].max())  # noqa: E731
    # he stands: his head (1.8 m above the floor) stays within 2 cells of its height; the
    # controller holds the shape to a few mm (bars measures 0.0007 shape error), so 2 dx is loose
    return [Claim("stands", "the man keeps his height while nobody pokes him", top, ">=",
                  FLOOR + 1.8 - 2 * scene.dx, when="always", unit="m")]
