"""Preview renderer: particles as shaded sphere impostors in a z-buffer, colliders by sphere
tracing the shape table, the domain box drawn as a glass tank (3D) or an outline (2D).

A frame is ``splat_particles`` (the nearest impostor depth per pixel, then the lowest particle
index at that depth, so the picture never depends on thread order), in 3D ``cast_shadows``
(the lowest particle over each floor column, for contact shadows), then one shading kernel
(``shade_pinhole`` or ``shade_side``) that composites everything into 8-bit sRGB. Colours are
linear RGB; the key light is fixed to the camera so what faces the viewer is always lit.
"""
import math

import taichi as ti

from polyalloy.kernels.heat import FROZEN

FROST = (0.78, 0.9, 1.0)  # linear RGB that frozen polyalloy tints toward

from polyalloy.kernels.sdf import BOX, N_PARAMS, primitive_sdf, shape_normal, union_sdf

FAR = 1e30  # depth (m) of an empty pixel
NO_OWNER = 2147483647  # owner of a pixel no particle covers (above any particle index)
NEAR = 1e-3  # m; impostors closer to the eye than this are not drawn
MAX_SPLAT_PX = 48.0  # cap on an impostor's screen radius, so a particle at the lens cannot stall a frame
DEPTH_TIE = 1e-6  # relative depth tolerance when the second splat pass finds the pixel's nearest particle
MARCH_STEPS = 64  # sphere-tracing steps per pixel for the colliders
HIT_PX = 0.5  # a ray hits a collider when it passes within this many pixel footprints of it
NORMAL_STEP = 1e-4  # m; central-difference step of collider normals
KEY_LIGHT = (-0.45, 0.75, 0.5)  # towards the key light, camera axes (right, up, towards the eye)
SHININESS = 48.0
SPECULAR = 0.35
WALL_COLOR = (0.2, 0.21, 0.23)  # the tank's far walls and floor (linear RGB)
EDGE_COLOR = (0.62, 0.66, 0.72)  # the tank's edges (3D) and the domain outline (2D)
EDGE_PX = 1.0  # width of the tank's edges (px)
TANK_TINT = 0.12  # how much the inside of the 2D domain box is lightened towards WALL_COLOR
BEVEL_PX = 4.0  # width (px) of the shaded rim of a 2D collider
SHADOW_FALLOFF = 0.25  # m; a contact shadow fades with the gap to the particles above by exp(-gap / this)
SHADOW_STRENGTH = 0.6  # fraction of light a surface right under particles loses


@ti.data_oriented
class Frame:
    """Image buffers, row 0 at the top: ``depth`` (nearest impostor along the view axis, m; in 2D
    towards the viewer), ``owner`` (index of that particle, NO_OWNER if none), ``rgb`` (8-bit sRGB)."""

    def __init__(self, width: int, height: int, dtype):
        self.width = width
        self.height = height
        self.depth = ti.field(dtype, shape=(height, width))
        self.owner = ti.field(ti.i32, shape=(height, width))
        self.rgb = ti.Vector.field(3, ti.u8, shape=(height, width))


@ti.data_oriented
class PinholeView:
    """A pinhole camera as 0-D fields the host sets each frame (no recompile): ``eye`` (m), unit
    axes ``right``, ``up``, ``forward``, ``focal`` length (px) of a ``width`` x ``height`` image."""

    relief = 1.0  # impostor normals tilt fully: particles read as balls

    def __init__(self, width: int, height: int, dtype):
        self.width = width
        self.height = height
        self.eye = ti.Vector.field(3, dtype, shape=())
        self.right = ti.Vector.field(3, dtype, shape=())
        self.up = ti.Vector.field(3, dtype, shape=())
        self.forward = ti.Vector.field(3, dtype, shape=())
        self.focal = ti.field(dtype, shape=())

    @ti.func
    def project(self, x, radius):
        """Screen centre (px, y down), view depth (m) and screen radius (px, 0 behind the eye) of a ball."""
        rel = x - self.eye[None]
        z = rel.dot(self.forward[None])
        c = ti.Vector([0.0, 0.0])
        r = 0.0
        if z > NEAR:
            f = self.focal[None] / z
            c = ti.Vector([0.5 * self.width + f * rel.dot(self.right[None]),
                           0.5 * self.height - f * rel.dot(self.up[None])])
            r = ti.min(f * radius, MAX_SPLAT_PX)
        return c, z, r

    @ti.func
    def ray(self, i, j):
        """Unit world direction through the centre of pixel column ``i``, row ``j``."""
        f = self.focal[None]
        sx = (i + 0.5 - 0.5 * self.width) / f
        sy = (0.5 * self.height - j - 0.5) / f
        return (self.forward[None] + sx * self.right[None] + sy * self.up[None]).normalized()

    @ti.func
    def to_camera(self, n):
        """A world direction in camera axes (right, up, towards the eye)."""
        return ti.Vector([n.dot(self.right[None]), n.dot(self.up[None]), -n.dot(self.forward[None])])


@ti.data_oriented
class SideView:
    """An orthographic side view (x right, y up) as 0-D fields: ``corner`` (world point at the
    image's bottom-left, m) and ``scale`` (px/m) of a ``width`` x ``height`` image."""

    relief = 0.35  # impostor normals tilt a little: discs read as a filled body with slight shading

    def __init__(self, width: int, height: int, dtype):
        self.width = width
        self.height = height
        self.corner = ti.Vector.field(2, dtype, shape=())
        self.scale = ti.field(dtype, shape=())

    @ti.func
    def project(self, x, radius):
        """Screen centre (px, y down), depth (0) and screen radius (px) of a disc at ``x``."""
        s = self.scale[None]
        c = ti.Vector([(x[0] - self.corner[None][0]) * s, self.height - (x[1] - self.corner[None][1]) * s])
        return c, 0.0, ti.min(radius * s, MAX_SPLAT_PX)

    @ti.func
    def world(self, i, j):
        """World point (m) at the centre of pixel column ``i``, row ``j``."""
        s = self.scale[None]
        return self.corner[None] + ti.Vector([(i + 0.5) / s, (self.height - j - 0.5) / s])


@ti.data_oriented
class Stage:
    """Everything drawn besides particle positions: the domain box ``lo``..``hi`` (m, compile-time;
    also as ``centre`` and ``half`` sizes padded like a shape-table row), ``body_color`` per body
    and ``collider_color`` per collider (linear RGB), the background gradient ``sky_top`` /
    ``sky_bottom`` (0-D), and in 3D ``lowest``: the lowest particle height (m) over each
    ``cell``-wide column of the box floor, for contact shadows."""

    def __init__(self, lo, hi, n_bodies: int, n_colliders: int, cell: float, dtype):
        self.dim = len(lo)
        self.lo = tuple(float(v) for v in lo)
        self.hi = tuple(float(v) for v in hi)
        self.cell = float(cell)
        self.centre = tuple(0.5 * (a + b) for a, b in zip(self.lo, self.hi))
        self.half = tuple(0.5 * (b - a) for a, b in zip(self.lo, self.hi)) + (0.0,) * (N_PARAMS - self.dim)
        self.body_color = ti.Vector.field(3, dtype, shape=max(1, n_bodies))
        self.collider_color = ti.Vector.field(3, dtype, shape=max(1, n_colliders))
        self.sky_top = ti.Vector.field(3, dtype, shape=())
        self.sky_bottom = ti.Vector.field(3, dtype, shape=())
        if self.dim == 3:
            self.columns = tuple(max(1, math.ceil((self.hi[k] - self.lo[k]) / self.cell)) for k in (0, 2))
            self.lowest = ti.field(dtype, shape=self.columns)


@ti.func
def footprint(frame: ti.template(), c, r):
    """Pixel rows [j0, j1) and columns [i0, i1) whose centres may lie within ``r`` px of ``c``
    (an empty range when the disc is off screen)."""
    i0, i1, j0, j1 = 0, 0, 0, 0
    if r > 0.0 and c[0] > -r and c[0] < frame.width + r and c[1] > -r and c[1] < frame.height + r:
        i0 = ti.max(ti.cast(ti.floor(c[0] - r), ti.i32), 0)
        i1 = ti.min(ti.cast(ti.floor(c[0] + r), ti.i32) + 1, frame.width)
        j0 = ti.max(ti.cast(ti.floor(c[1] - r), ti.i32), 0)
        j1 = ti.min(ti.cast(ti.floor(c[1] + r), ti.i32) + 1, frame.height)
    return i0, i1, j0, j1


@ti.func
def impostor_depth(z, radius, d2, r2):
    """Depth (m) of a ball's front surface (radius m, centre depth z) at squared screen offset d2 (px^2)."""
    return z - radius * ti.sqrt(ti.max(1.0 - d2 / r2, 0.0))


@ti.kernel
def splat_particles(frame: ti.template(), view: ti.template(), parts: ti.template(), radius: float):
    """Z-buffer the particles as balls of ``radius`` (m): the nearest depth per pixel, then the
    lowest index among the particles at that depth as the pixel's owner."""
    for j, i in frame.depth:
        frame.depth[j, i] = FAR
        frame.owner[j, i] = NO_OWNER
    for p in range(parts.n[None]):
        if not parts.alive[p]:
            continue
        c, z, r = view.project(parts.x[p], radius)
        i0, i1, j0, j1 = footprint(frame, c, r)
        for j in range(j0, j1):
            for i in range(i0, i1):
                d2 = (i + 0.5 - c[0]) ** 2 + (j + 0.5 - c[1]) ** 2
                if d2 < r * r:
                    ti.atomic_min(frame.depth[j, i], impostor_depth(z, radius, d2, r * r))
    for p in range(parts.n[None]):
        if not parts.alive[p]:
            continue
        c, z, r = view.project(parts.x[p], radius)
        i0, i1, j0, j1 = footprint(frame, c, r)
        for j in range(j0, j1):
            for i in range(i0, i1):
                d2 = (i + 0.5 - c[0]) ** 2 + (j + 0.5 - c[1]) ** 2
                if d2 < r * r:
                    depth = impostor_depth(z, radius, d2, r * r)
                    if depth <= frame.depth[j, i] + DEPTH_TIE * (1.0 + ti.abs(depth)):
                        ti.atomic_min(frame.owner[j, i], p)


@ti.func
def floor_column(stage: ti.template(), x):
    """Index of the shadow-map column above world point ``x`` (clamped to the map)."""
    a = ti.cast(ti.floor((x[0] - stage.lo[0]) / stage.cell), ti.i32)
    b = ti.cast(ti.floor((x[2] - stage.lo[2]) / stage.cell), ti.i32)
    return ti.Vector([ti.min(ti.max(a, 0), stage.columns[0] - 1), ti.min(ti.max(b, 0), stage.columns[1] - 1)])


@ti.kernel
def cast_shadows(stage: ti.template(), parts: ti.template()):
    """Lowest particle height (m) over each floor column of the box (FAR where there is none)."""
    for I in ti.grouped(stage.lowest):
        stage.lowest[I] = FAR
    for p in range(parts.n[None]):
        if parts.alive[p]:
            x = parts.x[p]
            ti.atomic_min(stage.lowest[floor_column(stage, x)], x[1])


@ti.func
def contact_shadow(stage: ti.template(), x):
    """Light left (1 - SHADOW_STRENGTH .. 1) at an upward surface point under particles, averaged
    over 3x3 columns and fading with the gap (m) to the lowest particle above."""
    I = floor_column(stage, x)
    dark = 0.0
    for o in ti.static(ti.grouped(ti.ndrange((-1, 2), (-1, 2)))):
        J = ti.min(ti.max(I + o, 0), ti.Vector(stage.columns) - 1)
        gap = stage.lowest[J] - x[1]
        if gap > -stage.cell:
            dark += ti.exp(-ti.max(gap, 0.0) / SHADOW_FALLOFF)
    return 1.0 - SHADOW_STRENGTH * dark / 9.0


@ti.func
def lit(color, n):
    """Lambert + Blinn-Phong under the camera-fixed key light plus a sky/ground ambient;
    ``n`` is the unit normal in camera axes (right, up, towards the eye)."""
    light = ti.Vector(KEY_LIGHT, dt=float).normalized()
    half = (light + ti.Vector([0.0, 0.0, 1.0])).normalized()
    diffuse = ti.max(n.dot(light), 0.0)
    spec = ti.max(n.dot(half), 0.0) ** SHININESS
    return color * (0.22 + 0.1 * n[1] + 0.75 * diffuse) + SPECULAR * spec


@ti.func
def to_srgb8(c):
    """Linear RGB -> 8-bit sRGB (gamma 2.2), clamped."""
    g = ti.pow(ti.math.clamp(c, 0.0, 1.0), 1.0 / 2.2)
    return ti.cast(g * 255.0 + 0.5, ti.u8)


@ti.func
def sky(stage: ti.template(), j, height):
    """Background: a vertical gradient from ``sky_top`` (row 0) to ``sky_bottom``."""
    return ti.math.mix(stage.sky_top[None], stage.sky_bottom[None], (j + 0.5) / height)


@ti.func
def impostor_color(view: ti.template(), stage: ti.template(), parts: ti.template(), radius, p, i, j):
    """Shaded colour of particle ``p``'s impostor at the centre of pixel (``i``, ``j``)."""
    c, z, r = view.project(parts.x[p], radius)
    u = (i + 0.5 - c[0]) / r
    v = (c[1] - j - 0.5) / r
    w = ti.sqrt(ti.max(1.0 - u * u - v * v, 0.0))
    base = thermal_tint(stage.body_color[parts.body[p]], parts.T[p], parts.phase[p])
    return lit(base, ti.Vector([view.relief * u, view.relief * v, w]).normalized())


@ti.func
def thermal_tint(color, T, phase):
    """The preview's hint of the thermal state: frozen particles frost toward pale blue,
    anything above 800 K glows from dull red to yellow-white by 2000 K."""
    if phase == FROZEN:
        color = 0.35 * color + 0.65 * ti.Vector(FROST)
    g = ti.min(ti.max((T - 800.0) / 1200.0, 0.0), 1.0)
    if g > 0.0:
        glow = ti.Vector([1.0, 0.25 + 0.7 * g, 0.05 + 0.6 * g * g])
        color = (1.0 - ti.sqrt(g)) * color + ti.sqrt(g) * glow
    return color


@ti.func
def box_span(lo, hi, o, d):
    """Entry and exit of the ray ``o + s d`` through the box ``lo``..``hi``: (s0, axis0, s1, axis1);
    it misses when s1 <= s0."""
    s0, s1 = -FAR, FAR
    a0, a1 = 0, 0
    for k in ti.static(range(3)):
        dk = d[k]
        if ti.abs(dk) < 1e-12:
            dk = 1e-12
        sa = (lo[k] - o[k]) / dk
        sb = (hi[k] - o[k]) / dk
        if ti.min(sa, sb) > s0:
            s0, a0 = ti.min(sa, sb), k
        if ti.max(sa, sb) < s1:
            s1, a1 = ti.max(sa, sb), k
    return s0, a0, s1, a1


@ti.func
def face_normal(axis, d):
    """Normal of the box face crossed along ``axis`` by direction ``d``, facing back along the ray."""
    n = ti.Vector.zero(float, 3)
    for k in ti.static(range(3)):
        if k == axis:
            n[k] = -1.0 if d[k] > 0.0 else 1.0
    return n


@ti.func
def on_edge(lo, hi, x, width):
    """Whether the box-surface point ``x`` lies within ``width`` (m) of one of the box's edges."""
    near = 0
    for k in ti.static(range(3)):
        if ti.min(ti.abs(x[k] - lo[k]), ti.abs(x[k] - hi[k])) < width:
            near += 1
    return near >= 2


@ti.func
def surface_color(view: ti.template(), stage: ti.template(), color, n, x):
    """A wall or collider point ``x`` with world normal ``n``: lit, and shadowed when it faces up."""
    c = lit(color, view.to_camera(n))
    if n[1] > 0.5:
        c *= contact_shadow(stage, x)
    return c


@ti.func
def trace_colliders(cols: ti.template(), o, d, s_start, s_end, pixel, t):
    """Sphere-trace the colliders' union along ``o + s d`` from ``s_start`` to ``s_end`` at time ``t``:
    (s of the hit or FAR, row hit, whether the ray started inside). ``pixel`` is the footprint
    of one pixel per metre of distance."""
    s = s_start
    hit, row, inside = FAR, -1, False
    for step in range(MARCH_STEPS):
        dist, nearest = union_sdf(cols, o + s * d, t)
        if dist < HIT_PX * pixel * s:
            hit, row, inside = s, nearest, step == 0 and dist < 0.0
            break
        s += dist
        if s > s_end:
            break
    return hit, row, inside


@ti.kernel
def shade_pinhole(frame: ti.template(), view: ti.template(), stage: ti.template(), parts: ti.template(),
                  cols: ti.template(), radius: float, t: float):
    """Compose a 3D frame at time ``t`` (s): background, the tank's far walls, the colliders clipped
    to the tank, the particle impostors (nearest first), then the tank's near edges."""
    lo = ti.Vector(stage.lo, dt=float)
    hi = ti.Vector(stage.hi, dt=float)
    for j, i in frame.rgb:
        eye = view.eye[None]
        d = view.ray(i, j)
        pixel = 1.0 / view.focal[None]
        color = sky(stage, j, frame.height)
        s0, a0, s1, a1 = box_span(lo, hi, eye, d)
        outside = s0 > 0.0
        s0 = ti.max(s0, 0.0)
        owner = frame.owner[j, i]
        s_particle = FAR
        if owner < parts.n[None]:
            s_particle = frame.depth[j, i] / d.dot(view.forward[None])
        s_hit, row, inside = FAR, -1, False
        in_box = s1 > s0
        if in_box:
            far = eye + s1 * d
            color = surface_color(view, stage, ti.Vector(WALL_COLOR, dt=float), face_normal(a1, d), far)
            if on_edge(lo, hi, far, EDGE_PX * pixel * s1):
                color = ti.Vector(EDGE_COLOR, dt=float)
            s_hit, row, inside = trace_colliders(cols, eye, d, s0, ti.min(s1, s_particle), pixel, t)
        if s_hit < s_particle:
            x = eye + s_hit * d
            n = face_normal(a0, d) if inside and outside else shape_normal(cols, row, x, t, NORMAL_STEP)
            color = surface_color(view, stage, stage.collider_color[cols.owner[row]], n, x)
        elif owner < parts.n[None]:
            color = impostor_color(view, stage, parts, radius, owner, i, j)
        if in_box and outside and on_edge(lo, hi, eye + s0 * d, EDGE_PX * pixel * s0):
            color = ti.math.mix(color, ti.Vector(EDGE_COLOR, dt=float), 0.6)
        frame.rgb[j, i] = to_srgb8(color)


@ti.kernel
def shade_side(frame: ti.template(), view: ti.template(), stage: ti.template(), parts: ti.template(),
               cols: ti.template(), radius: float, t: float):
    """Compose a 2D side view at time ``t`` (s): background, the domain box lightly tinted, the
    colliders filled inside it with a bevelled rim, the particle discs, the box outline."""
    half = ti.Vector(stage.half, dt=float)
    centre = ti.Vector(stage.centre, dt=float)
    for j, i in frame.rgb:
        x = view.world(i, j)
        scale = view.scale[None]
        color = sky(stage, j, frame.height)
        box = primitive_sdf(BOX, half, x - centre)
        if box < 0.0:
            color = ti.math.mix(color, ti.Vector(WALL_COLOR, dt=float), TANK_TINT)
            dist, row = union_sdf(cols, x, t)
            if dist < 0.0:
                n = shape_normal(cols, row, x, t, NORMAL_STEP)
                bevel = ti.math.clamp(1.0 + dist * scale / BEVEL_PX, 0.0, 1.0)
                color = lit(stage.collider_color[cols.owner[row]],
                            ti.Vector([n[0] * bevel, n[1] * bevel, ti.sqrt(1.0 - bevel * bevel)]))
        owner = frame.owner[j, i]
        if owner < parts.n[None]:
            color = impostor_color(view, stage, parts, radius, owner, i, j)
        if ti.abs(box) * scale < 0.5 * EDGE_PX + 0.25:
            color = ti.Vector(EDGE_COLOR, dt=float)
        frame.rgb[j, i] = to_srgb8(color)
