"""Drop: an elastic ball falls onto a floor and bounces.

Shows: the fixed-corotated solid, a plane collider with a separating surface (the ball
may leave the floor but never enters it), the adaptive time step. Options: ``dim``.
"""
from polyalloy.materials import Elastic
from polyalloy.scene import Camera, Scene
from polyalloy.shapes import Plane, Sphere


def build(quality: str = "preview", dim: int = 3) -> Scene:
    dx = {"preview": 1 / 64 if dim == 3 else 1 / 128, "film": 1 / 160 if dim == 3 else 1 / 512}[quality]
    scene = Scene(name="drop", dim=dim, domain=((0, 0, 0), (1.0, 1.0, 1.0)), dx=dx, duration=2.0, fps=30,
                  camera=Camera(position=(0.5, 0.8, 2.6), look_at=(0.5, 0.42, 0.5), fov=40))
    scene.add_material("rubber", Elastic(density=1000.0, youngs_modulus=1.5e5, poisson_ratio=0.3))
    scene.add_collider("floor", Plane(point=(0, 0.1, 0), normal=(0, 1, 0)), surface="separate", friction=0.3)
    scene.add_body("ball", Sphere(centre=(0.5, 0.6, 0.5), radius=0.12), "rubber")
    return scene


def claims(scene):
    from polyalloy.claims import Claim, FirstTime, RelativeChange

    floor_y = 0.1
    lowest = lambda sim: float(sim.particles()["x"][:, 1].min())  # noqa: E731

    def landed(sim) -> bool:
        # within a cell of the floor, or bouncing already: released at rest, the ball's momentum
        # points up only after the floor pushed it (a stiff ball under a strong gravity can touch
        # and leave between two frames, where the claims look)
        p = sim.particles()
        return float(p["x"][:, 1].min()) < floor_y + scene.dx or float((p["mass"] * p["v"][:, 1]).sum()) > 0.0

    touch = FirstTime(landed)
    return [
        Claim("mass", "the ball's mass is conserved exactly", RelativeChange(lambda sim: sim.total_mass()), "==", 0.0, when="always"),
        Claim("floor", "no particle sinks more than half a cell into the floor", lowest, ">=",
              floor_y - 0.5 * scene.dx, when="always", unit="m"),
        Claim("lands", "the ball reaches the floor within 0.5 s", touch, "<=", 0.5, unit="s"),
    ]
