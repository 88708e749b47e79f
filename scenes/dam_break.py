"""Dam break: a column of water collapses in a closed box and sloshes against the far wall.

The classic MPM/SPH validation case (Martin & Moyce 1952): the surge front runs along
the floor at about 2 sqrt(g H) once the column falls. Shows: weakly compressible fluid,
domain walls, the sparse grid (the empty half of the box costs nothing at first).
Options: ``dim`` (2 or 3).
"""
from polyalloy.materials import Fluid
from polyalloy.scene import Camera, Scene
from polyalloy.shapes import Box

CHROME = (0.78, 0.8, 0.83)  # reflectance at normal incidence (polished chrome ~0.55-0.8)


def build(quality: str = "preview", dim: int = 3) -> Scene:
    dx = {"preview": 1 / 48 if dim == 3 else 1 / 128, "film": 1 / 128 if dim == 3 else 1 / 512}[quality]
    scene = Scene(name="dam_break", dim=dim, domain=((0, 0, 0), (1.0, 0.8, 0.5)), dx=dx,
                  duration=2.0, fps=30,
                  camera=Camera(position=(1.1, 1.0, 1.8), look_at=(0.5, 0.28, 0.25), fov=40))
    scene.add_material("water", Fluid(density=1000.0, bulk_modulus=1.0e5, viscosity=1.0e-3))
    scene.add_body("column", Box(centre=(0.15, 0.25, 0.25), half_size=(0.15, 0.25, 0.25)), "water",
                   color=CHROME)  # drawn as liquid metal, the look of the project
    return scene
