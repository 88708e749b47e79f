"""Surface renderer, first half: particles -> a smooth liquid surface in screen space.

Method: screen-space fluid rendering (van der Laan, Green & Sainz 2009, "Screen space fluid
rendering with curvature flow"): every particle is splatted as a sphere into a depth buffer,
the depth is smoothed, and normals are taken from the smoothed depth (``kernels/shade.py``).
Chosen over ray marching a splatted density field because its cost follows the pixels and the
particles' footprints (no 3D grid to fill, no march through empty space), so a 640x360 preview
of ~70k particles takes a fraction of a second on two CPU cores and the same kernels scale to
1080p on a GPU; a 2D scene is the same pipeline seen orthographically (its particles are
extruded to spheres in the image plane). The smoothing is a separable bilateral filter
(Gaussian in screen space, Gaussian in depth) sized in *world* units, a few sphere radii,
instead of the paper's curvature flow: curvature flow needs more iterations the larger a
particle is in pixels (film frames are 3x preview ones), whereas a world-sized kernel removes
the per-particle bumps in the same one or two passes at any resolution or distance; its depth
term keeps sheets that overlap on screen apart. The silhouette is smoothed too: a Gaussian of
the covered-pixel mask (sigma ~ half a sphere radius) thresholded at 1/2 gives the liquid's
alpha, so the edge follows the particles' mean boundary instead of their scalloped union.

A frame is ``splat_spheres`` (the nearest sphere depth per pixel by atomic min, the lowest
particle index at that depth as owner, the summed chord length as thickness in integer units:
order-independent, so a frame never depends on thread timing), ``gather_surface`` (the owner's
look into a per-pixel vector), ``smooth_surface`` along x then y (once per pass of the quality
preset), in 3D ``cast_shadows`` (particles projected along the key light onto the floor), then
``kernels.shade.compose``.
"""
import taichi as ti

from polyalloy.kernels.heat import FROZEN

FAR = 1e30  # depth (m) of an empty pixel
NO_OWNER = 2147483647  # owner of a pixel no particle covers (above any particle index)
NEAR = 1e-3  # m; spheres closer to the eye than this are not drawn
MAX_SPLAT_PX = 64.0  # cap on a sphere's screen radius, so a particle at the lens cannot stall a frame
DEPTH_TIE = 1e-6  # relative depth tolerance when the second splat pass finds the pixel's nearest particle
TAPS_PER_SIGMA = 6.0  # filter taps per sigma at least; wide (film) kernels sample every few pixels
THICKNESS_UNIT = 1e-5  # m per integer unit of the thickness buffer
SIDE_EYE = 1.0  # m; the 2D side view looks along -z from this plane, particles lie at z = 0

# the per-pixel look vector: base colour, temperature, frost, look weights, thickness
BASE, TEMP, FROST, MOLTEN_W, CRYO_W, THICK = 0, 3, 4, 5, 6, 7
N_LOOK = 8
METAL, MOLTEN, CRYO = 0, 1, 2  # looks of a particle source: chrome, glowing molten steel, pale cryogenic liquid


def frame_bytes(width: int, height: int, real: int) -> int:
    """Bytes of a ``Frame`` of ``width`` x ``height`` px with ``real``-byte floats, and of the RGB copy
    that ``SurfaceRenderer.render`` returns (checked before allocating)."""
    per_pixel = real + 3 * 4 + 2 * (real * (3 + N_LOOK) + 4) + 3 + 3  # Frame fields, buffers a and b, rgb, copy
    return width * height * per_pixel


@ti.data_oriented
class SurfaceBuffer:
    """One stage of the surface: ``depth`` (m), ``look`` (the N_LOOK vector per pixel), ``ok`` (1
    where it holds a surface), ``cov`` (coverage 0..1 blurred a little: the liquid's alpha) and ``relief``
    (coverage blurred more: the 2D view's height profile)."""

    def __init__(self, width: int, height: int, dtype):
        self.depth = ti.field(dtype, shape=(height, width))
        self.look = ti.Vector.field(N_LOOK, dtype, shape=(height, width))
        self.ok = ti.field(ti.i32, shape=(height, width))
        self.cov = ti.field(dtype, shape=(height, width))
        self.relief = ti.field(dtype, shape=(height, width))


@ti.data_oriented
class Frame:
    """Image buffers, row 0 at the top: ``depth`` (nearest sphere along the view axis, m),
    ``owner`` (index of that particle, NO_OWNER if none), ``thickness`` (summed chord length of
    the spheres, THICKNESS_UNIT), ``covered`` (1 within the cover radius of a particle), ``a`` / ``b`` (SurfaceBuffers: a pass smooths ``a`` along x into
    ``b``, then ``b`` along y back into ``a``, which the shading reads), ``zmin`` (nearest depth of the frame, m) and ``rgb`` (8-bit sRGB)."""

    def __init__(self, width: int, height: int, dtype):
        self.width = width
        self.height = height
        self.depth = ti.field(dtype, shape=(height, width))
        self.owner = ti.field(ti.i32, shape=(height, width))
        self.thickness = ti.field(ti.i32, shape=(height, width))
        self.covered = ti.field(ti.i32, shape=(height, width))
        self.a = SurfaceBuffer(width, height, dtype)
        self.b = SurfaceBuffer(width, height, dtype)
        self.zmin = ti.field(dtype, shape=())
        self.rgb = ti.Vector.field(3, ti.u8, shape=(height, width))


@ti.data_oriented
class PinholeView:
    """A pinhole camera as 0-D fields the host sets each frame (no recompile): ``eye`` (m), unit
    axes ``right``, ``up``, ``forward``, ``focal`` length (px) of a ``width`` x ``height`` image."""

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
        """Origin and unit world direction of the ray through the centre of pixel column ``i``, row ``j``."""
        f = self.focal[None]
        sx = (i + 0.5 - 0.5 * self.width) / f
        sy = (0.5 * self.height - j - 0.5) / f
        return self.eye[None], (self.forward[None] + sx * self.right[None] + sy * self.up[None]).normalized()

    @ti.func
    def distance(self, d, depth):
        """Distance (m) along the unit ray ``d`` to the point at view depth ``depth``."""
        return depth / d.dot(self.forward[None])

    @ti.func
    def pixels_per_metre(self, depth):
        return self.focal[None] / ti.max(depth, NEAR)

    @ti.func
    def to_world(self, n):
        """A direction in camera axes (right, up, towards the eye) in world axes."""
        return n[0] * self.right[None] + n[1] * self.up[None] - n[2] * self.forward[None]


@ti.data_oriented
class SideView:
    """An orthographic side view of a 2D scene (x right, y up, looking along -z from z = SIDE_EYE)
    as 0-D fields: ``corner`` (world point at the image's bottom-left, m) and ``scale`` (px/m)."""

    def __init__(self, width: int, height: int, dtype):
        self.width = width
        self.height = height
        self.corner = ti.Vector.field(2, dtype, shape=())
        self.scale = ti.field(dtype, shape=())

    @ti.func
    def project(self, x, radius):
        """Screen centre (px, y down), depth (m) and screen radius (px) of the sphere at ``x`` (z = 0)."""
        s = self.scale[None]
        c = ti.Vector([(x[0] - self.corner[None][0]) * s, self.height - (x[1] - self.corner[None][1]) * s])
        return c, SIDE_EYE, ti.min(radius * s, MAX_SPLAT_PX)

    @ti.func
    def ray(self, i, j):
        s = self.scale[None]
        w = self.corner[None] + ti.Vector([(i + 0.5) / s, (self.height - j - 0.5) / s])
        return ti.Vector([w[0], w[1], SIDE_EYE]), ti.Vector([0.0, 0.0, -1.0])

    @ti.func
    def distance(self, d, depth):
        return depth

    @ti.func
    def pixels_per_metre(self, depth):
        return self.scale[None]

    @ti.func
    def to_world(self, n):
        return n


@ti.data_oriented
class Looks:
    """Per particle source (bodies, then emitters): ``kind`` (METAL, MOLTEN or CRYO) and ``mixes``
    (1 where the source's metal mixes with others, ``kernels.mixing``: its particles then take
    the molten steel's look by the share of their mass that is not polyalloy, 1 - ``comp``, so
    a man dissolving into a pool turns into glowing steel as his metal spreads)."""

    def __init__(self, n_sources: int):
        self.kind = ti.field(ti.i32, shape=max(1, n_sources))
        self.mixes = ti.field(ti.i32, shape=max(1, n_sources))


@ti.data_oriented
class ShadowMap:
    """Particles projected along the key light onto the floor plane ``floor_y`` (m): per
    ``cell``-wide column from ``lo`` (x, z; m) ``count`` (particles) and ``lowest`` (the lowest
    particle height, m). ``light`` (0-D) is the unit direction towards the key light."""

    def __init__(self, lo, columns, cell: float, floor_y: float, dtype):
        self.lo = tuple(float(v) for v in lo)
        self.columns = tuple(int(c) for c in columns)
        self.cell = float(cell)
        self.floor_y = float(floor_y)
        self.count = ti.field(ti.i32, shape=self.columns)
        self.lowest = ti.field(dtype, shape=self.columns)
        self.light = ti.Vector.field(3, dtype, shape=())


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


@ti.kernel
def splat_spheres(frame: ti.template(), view: ti.template(), parts: ti.template(), radius: float,
                  cover_radius: float):
    """Depth-buffer the live particles as spheres of ``radius`` (m): the nearest front-surface
    depth per pixel (and of the frame), the summed chord length, the pixels within ``cover_radius``
    (m, the silhouette) of a particle, then the lowest index among the particles at the nearest
    depth as the pixel's owner."""
    for j, i in frame.depth:
        frame.depth[j, i] = FAR
        frame.owner[j, i] = NO_OWNER
        frame.thickness[j, i] = 0
        frame.covered[j, i] = 0
    frame.zmin[None] = FAR
    for p in range(parts.n[None]):
        if not parts.alive[p]:
            continue
        c, z, r = view.project(parts.x[p], radius)
        rc2 = (r * cover_radius / radius) ** 2
        i0, i1, j0, j1 = footprint(frame, c, r)
        for j in range(j0, j1):
            for i in range(i0, i1):
                d2 = (i + 0.5 - c[0]) ** 2 + (j + 0.5 - c[1]) ** 2
                if d2 < rc2:
                    frame.covered[j, i] = 1
                if d2 < r * r:
                    h = radius * ti.sqrt(1.0 - d2 / (r * r))
                    ti.atomic_min(frame.depth[j, i], z - h)
                    ti.atomic_min(frame.zmin[None], z - h)
                    ti.atomic_add(frame.thickness[j, i], ti.cast(2.0 * h / THICKNESS_UNIT, ti.i32))
    for p in range(parts.n[None]):
        if not parts.alive[p]:
            continue
        c, z, r = view.project(parts.x[p], radius)
        i0, i1, j0, j1 = footprint(frame, c, r)
        for j in range(j0, j1):
            for i in range(i0, i1):
                d2 = (i + 0.5 - c[0]) ** 2 + (j + 0.5 - c[1]) ** 2
                if d2 < r * r:
                    depth = z - radius * ti.sqrt(1.0 - d2 / (r * r))
                    if depth <= frame.depth[j, i] + DEPTH_TIE * (1.0 + ti.abs(depth)):
                        ti.atomic_min(frame.owner[j, i], p)


@ti.func
def base_color(parts: ti.template(), p):
    """The base colour (linear RGB: a metal's reflectance at normal incidence, a liquid's tint)
    of particle ``p``, the one place the renderer reads it: its colour field (its source's colour,
    changed by mimicry)."""
    return parts.color[p]


@ti.kernel
def gather_surface(frame: ti.template(), looks: ti.template(), parts: ti.template()):
    """Per pixel, the depth and the look of its owner particle into ``frame.a`` (``ok`` = 1 where
    a sphere lies) and the covered mask as the coverage to be blurred."""
    for j, i in frame.depth:
        s = ti.Vector.zero(float, N_LOOK)
        ok = 0
        p = frame.owner[j, i]
        if p != NO_OWNER:
            kind = looks.kind[parts.body[p]]
            c = base_color(parts, p)
            for k in ti.static(range(3)):
                s[BASE + k] = c[k]
            s[TEMP] = parts.T[p]
            s[FROST] = 1.0 if parts.phase[p] == FROZEN else 0.0
            s[MOLTEN_W] = 1.0 if kind == MOLTEN else 0.0
            if looks.mixes[parts.body[p]]:
                s[MOLTEN_W] = 1.0 - parts.comp[p]
            s[CRYO_W] = 1.0 if kind == CRYO else 0.0
            s[THICK] = frame.thickness[j, i] * THICKNESS_UNIT
            ok = 1
        frame.a.depth[j, i] = frame.depth[j, i]
        frame.a.look[j, i] = s
        frame.a.ok[j, i] = ok
        frame.a.cov[j, i] = ti.cast(frame.covered[j, i], float)
        frame.a.relief[j, i] = ti.cast(frame.covered[j, i], float)


@ti.func
def gauss(x2):
    """exp(-x2 / 2) for the filters' weights, as 1 / (its reciprocal's 3-term Taylor series): within
    3% over the kernels' +-2.5 sigma and a division instead of an exponential."""
    h = 0.5 * x2
    return 1.0 / (1.0 + h * (1.0 + h * (0.5 + h / 6.0)))


@ti.func
def tap(frame: ti.template(), j, i, axis: ti.template(), k):
    """The pixel ``k`` steps from (``j``, ``i``) along ``axis`` (0: x, 1: y), clamped to the frame."""
    jj, ii = j, i
    if ti.static(axis == 0):
        ii = ti.min(ti.max(i + k, 0), frame.width - 1)
    else:
        jj = ti.min(ti.max(j + k, 0), frame.height - 1)
    return jj, ii


@ti.func
def gaussian_along(frame: ti.template(), f: ti.template(), j, i, axis: ti.template(), sigma_px):
    """Gaussian blur (sigma in px, edges clamped) of scalar field ``f`` at pixel (``j``, ``i``) along ``axis``."""
    stride = ti.max(ti.cast(sigma_px / TAPS_PER_SIGMA, ti.i32), 1)
    half = ti.cast(ti.ceil(2.5 * sigma_px / stride), ti.i32)
    acc, wsum = 0.0, 0.0
    for m in range(-half, half + 1):
        k = m * stride
        jj, ii = tap(frame, j, i, axis, k)
        w = gauss(k * k / (sigma_px * sigma_px))
        acc += w * f[jj, ii]
        wsum += w
    return acc / wsum


@ti.kernel
def smooth_surface(frame: ti.template(), view: ti.template(), src: ti.template(), dst: ti.template(),
                   axis: ti.template(), first: ti.template(), sigma: float, depth_sigma: float,
                   cover_sigma: float, relief_sigma: float, max_px: float):
    """One separable pass along ``axis`` (0: x, 1: y) from ``src`` to ``dst``: a bilateral filter of
    the depth with a screen Gaussian of ``sigma`` m (in px at the pixel's depth, at most
    ``max_px``) and a depth Gaussian of ``depth_sigma`` m; an empty pixel takes the plain Gaussian
    mean of its covered neighbours (filling gaps; the coverage decides whether it shows). The
    ``first`` pass also filters the look with the same weights and blurs the covered mask by
    Gaussians of ``cover_sigma`` and ``relief_sigma`` m (in px at the frame's nearest depth)
    into ``cov`` and ``relief``; later passes smooth the depth alone."""
    cover_px = ti.max(cover_sigma * view.pixels_per_metre(frame.zmin[None]), 0.3)
    relief_px = ti.max(relief_sigma * view.pixels_per_metre(frame.zmin[None]), 0.3)
    for j, i in dst.ok:
        ok_c = src.ok[j, i]
        z_c = src.depth[j, i] if ok_c else frame.zmin[None]
        s_px = ti.min(ti.max(sigma * view.pixels_per_metre(z_c), 0.3), max_px)
        stride = ti.max(ti.cast(s_px / TAPS_PER_SIGMA, ti.i32), 1)
        half = ti.cast(ti.ceil(2.0 * s_px / stride), ti.i32)
        depth, look = 0.0, ti.Vector.zero(float, N_LOOK)
        wsum = 0.0
        for m in range(-half, half + 1):
            k = m * stride
            jj, ii = tap(frame, j, i, axis, k)
            if src.ok[jj, ii]:
                z = src.depth[jj, ii]
                w = gauss(k * k / (s_px * s_px))
                if ok_c:
                    w *= gauss(((z - z_c) / depth_sigma) ** 2)
                depth += w * z
                if ti.static(first):
                    look += w * src.look[jj, ii]
                wsum += w
        dst.ok[j, i] = 0
        dst.depth[j, i] = src.depth[j, i]
        if wsum > 1e-12:
            dst.ok[j, i] = 1
            dst.depth[j, i] = depth / wsum
        if ti.static(first):
            dst.look[j, i] = src.look[j, i]
            if wsum > 1e-12:
                dst.look[j, i] = look / wsum
            dst.cov[j, i] = gaussian_along(frame, src.cov, j, i, axis, cover_px)
            dst.relief[j, i] = gaussian_along(frame, src.relief, j, i, axis, relief_px)


@ti.func
def shadow_column(shadow: ti.template(), x):
    """Shadow-map column (may lie outside the map) hit by the key-light ray through world point ``x``."""
    L = shadow.light[None]
    f = x - L * ((x[1] - shadow.floor_y) / ti.max(L[1], 1e-3))
    return ti.Vector([ti.cast(ti.floor((f[0] - shadow.lo[0]) / shadow.cell), ti.i32),
                      ti.cast(ti.floor((f[2] - shadow.lo[1]) / shadow.cell), ti.i32)])


@ti.kernel
def cast_shadows(shadow: ti.template(), parts: ti.template()):
    """Count the particles along the key light over each floor column and keep the lowest height."""
    for I in ti.grouped(shadow.count):
        shadow.count[I] = 0
        shadow.lowest[I] = FAR
    for p in range(parts.n[None]):
        if parts.alive[p]:
            c = shadow_column(shadow, parts.x[p])
            if 0 <= c[0] < shadow.columns[0] and 0 <= c[1] < shadow.columns[1]:
                ti.atomic_add(shadow.count[c], 1)
                ti.atomic_min(shadow.lowest[c], parts.x[p][1])


@ti.func
def key_visibility(shadow: ti.template(), x, blur: ti.i32, opacity):
    """Fraction of the key light reaching world point ``x`` (0..1): particles between it and the
    light, counted over (2 blur + 1)^2 columns, each absorbing ``opacity`` of what passes."""
    c = shadow_column(shadow, x)
    n = 0.0
    taps = 0.0
    for a in range(-blur, blur + 1):
        for b in range(-blur, blur + 1):
            k = c + ti.Vector([a, b])
            taps += 1.0
            if 0 <= k[0] < shadow.columns[0] and 0 <= k[1] < shadow.columns[1]:
                if shadow.lowest[k] > x[1] - shadow.cell:
                    n += shadow.count[k]
    return ti.exp(-opacity * n / taps)
