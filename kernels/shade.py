"""Surface renderer, second half: shading and compositing in linear HDR, then tone mapping.

``compose`` draws one frame per pixel: the scenery (a procedural environment: sky from horizon
to zenith with soft area lights; a chequered floor at the bottom of the domain with the key
light's shadow; the colliders, sphere-traced through the one shape table of ``kernels.sdf``;
the domain's glass edges), then the liquid where its smoothed surface is nearer. The liquid's
normal comes from the smoothed depth (van der Laan et al. 2009: of the two one-sided
differences per axis, the one with the smaller depth step, so silhouettes do not bleed) and,
near the silhouette, where the filter flattens the depth, from the coverage extruded to a
rounded rim, so that edges face sideways like a drop's and catch the Fresnel reflection.

Looks: *chrome* mirrors the scene (floor and colliders traced along the reflected ray, else the
environment) with Schlick's Fresnel (reflectance at normal incidence = the base colour);
*frost* (frozen polyalloy) turns it rough and bluish-white: the environment's lights widen as
spherical Gaussians (their sharpness adds the roughness in quadrature, energy kept), a
diffuse ice layer scatters the light, and a grain of ice crystals varies it; *incandescence*
adds blackbody emission by temperature (Planck's law integrated against the CIE 1931
colour-matching functions, Wyman, Sloan & Shirley 2013 multi-lobe fit, tabulated once);
*molten* steel is a weak mirror that glows; *cryo* (nitrogen) is a pale translucent liquid whose
opacity follows its thickness (Beer-Lambert). The result is exposed and tone mapped with the
ACES filmic fit of Narkowicz (2015), then sRGB encoded.
"""
import math

import taichi as ti

from polyalloy.kernels.render import BASE, CRYO_W, FAR, FROST, MOLTEN_W, TEMP, THICK, key_visibility
from polyalloy.kernels.control import NO_TEXTURE, texture_color
from polyalloy.kernels.sdf import BOX, N_PARAMS, primitive_sdf, shape_normal, union_sdf

MAX_LIGHTS = 4  # lights of an environment (polyalloy.scene.Environment checks it)
NORMAL_STEP = 1e-4  # m; central-difference step of collider normals
HIT_PX = 0.5  # a primary ray hits a collider within this many pixel footprints of it
HIT_REFLECT = 2e-3  # a reflected ray hits a collider within this fraction of its length
MARCH_FAR = 60.0  # m; rays stop looking for colliders beyond this
FLOOR_HAZE = 12.0  # m; the floor fades into the horizon colour over this distance
EDGE_COLOR = (0.55, 0.6, 0.68)  # the glass tank's edges (linear RGB)
EDGE_PX = 1.0  # width of the tank's edges (px)
EDGE_OPACITY = 0.5
TANK_TINT = 0.15  # how much the inside of the 2D domain box darkens towards the ground colour
BEVEL_PX = 5.0  # width (px) of the rounded rim of a 2D collider
SHADOW_OPACITY = 0.35  # fraction of the key light one particle in a shadow-map column absorbs
CONTACT_DARK = 0.55  # ambient light lost under the body (contact shadow), at full key-light shadow
CHROME_ROUGHNESS = 0.02  # rad; polished liquid metal
FROST_ROUGHNESS = 0.45  # rad; frost's blur of reflections
FROST_COLOR = (0.72, 0.84, 1.0)  # albedo of the frost layer (linear RGB)
FROST_REFLECTANCE = 0.06  # what is left of a mirror under full frost
FROST_GRAIN = 1.5e-3  # m; size of the ice crystals
FROST_GRAIN_CONTRAST = 0.35  # albedo variation between crystals
MOLTEN_REFLECTANCE = 0.08  # liquid steel's oxide-dimmed mirror
MOLTEN_GLOW = 1.6  # emission of molten steel relative to glowing polyalloy at the same temperature
GLOW_GAIN = 0.35  # emitted radiance (luminance) at GLOW_REFERENCE K
GLOW_REFERENCE = 1800.0  # K
GLOW_COMPRESSION = 0.25  # exponent on the physical luminance ratio: glow reads from ~900 K, not just >1500 K
CRYO_TINT = (0.78, 0.88, 1.0)  # what nitrogen scatters (linear RGB)
CRYO_DEPTH = 0.03  # m of nitrogen that scatter 63% of the light (Beer-Lambert length)
CRYO_REFLECTANCE = 0.02  # water-like dielectric at normal incidence
DIFFUSE_ROUGHNESS = 1.2  # rad; the environment blurred this much stands in for irradiance
ALPHA_EDGE = (0.3, 0.7)  # coverage over which the liquid's silhouette fades in (anti-aliasing)
BB_T0, BB_T1, BB_N = 500.0, 12000.0, 512  # blackbody table: temperature range (K) and entries


@ti.data_oriented
class Environment:
    """The procedural environment as fields the host sets (no recompile): ``zenith``, ``horizon``,
    ``ground``, ``floor``, ``floor_alt`` (linear RGB), ``tile`` (m), ``exposure``, and
    ``n_lights`` lights: ``light_dir`` (unit, towards the light), ``light_color`` (radiance),
    ``light_width`` (squared angular size, rad^2). ``blackbody`` holds the emission table:
    per temperature step, linear RGB of unit luminance and the luminance relative to GLOW_REFERENCE."""

    def __init__(self, dtype):
        for name in ("zenith", "horizon", "ground", "floor", "floor_alt"):
            setattr(self, name, ti.Vector.field(3, dtype, shape=()))
        self.tile = ti.field(dtype, shape=())
        self.exposure = ti.field(dtype, shape=())
        self.n_lights = ti.field(ti.i32, shape=())
        self.light_dir = ti.Vector.field(3, dtype, shape=MAX_LIGHTS)
        self.light_color = ti.Vector.field(3, dtype, shape=MAX_LIGHTS)
        self.light_width = ti.field(dtype, shape=MAX_LIGHTS)
        self.blackbody = ti.Vector.field(4, dtype, shape=BB_N)


@ti.data_oriented
class Stage:
    """The scene's geometry besides the particles: the domain box ``lo``..``hi`` (m, compile-time;
    also ``centre`` and ``half`` padded like a shape-table row), the floor height ``floor_y`` (m)
    and ``collider_color`` per collider (linear RGB)."""

    def __init__(self, lo, hi, n_colliders: int, dtype):
        self.dim = len(lo)
        self.lo = tuple(float(v) for v in lo)
        self.hi = tuple(float(v) for v in hi)
        self.floor_y = self.lo[1]
        self.centre = tuple(0.5 * (a + b) for a, b in zip(self.lo, self.hi))
        self.half = tuple(0.5 * (b - a) for a, b in zip(self.lo, self.hi)) + (0.0,) * (N_PARAMS - self.dim)
        self.collider_color = ti.Vector.field(3, dtype, shape=max(1, n_colliders))


# --- blackbody emission ------------------------------------------------------------------------
@ti.func
def lobe(x, mu, s1, s2):
    """Piecewise Gaussian of Wyman, Sloan & Shirley 2013 (width s1 below mu, s2 above), nm."""
    s = s1 if x < mu else s2
    return ti.exp(-0.5 * (x - mu) * (x - mu) / (s * s))


@ti.func
def cie_xyz(lam):
    """CIE 1931 2-degree colour-matching functions at wavelength ``lam`` (nm), the multi-lobe fit
    of Wyman, Sloan & Shirley, "Simple analytic approximations to the CIE XYZ colour matching
    functions", JCGT 2(2), 2013."""
    x = 1.056 * lobe(lam, 599.8, 37.9, 31.0) + 0.362 * lobe(lam, 442.0, 16.0, 26.7) - 0.065 * lobe(lam, 501.1, 20.4, 26.2)
    y = 0.821 * lobe(lam, 568.8, 46.9, 40.5) + 0.286 * lobe(lam, 530.9, 16.3, 31.1)
    z = 1.217 * lobe(lam, 437.0, 11.8, 36.0) + 0.681 * lobe(lam, 459.0, 26.0, 13.8)
    return ti.Vector([x, y, z])


@ti.func
def planck(lam, T):
    """Spectral radiance of a blackbody at ``T`` K, wavelength ``lam`` nm, up to a constant:
    lam^-5 / (exp(c2 / (lam T)) - 1) with lam in um and c2 = 14388 um K."""
    um = lam * 1e-3
    return 1.0 / (um ** 5 * (ti.exp(ti.min(14388.0 / (um * T), 80.0)) - 1.0))


@ti.func
def xyz_to_linear_srgb(c):
    """CIE XYZ -> linear sRGB (IEC 61966-2-1, D65)."""
    return ti.Vector([3.2406 * c[0] - 1.5372 * c[1] - 0.4986 * c[2],
                      -0.9689 * c[0] + 1.8758 * c[1] + 0.0415 * c[2],
                      0.0557 * c[0] - 0.2040 * c[1] + 1.0570 * c[2]])


@ti.func
def blackbody_xyz(T):
    """XYZ of a blackbody at ``T`` K: Planck against the CIE functions, 380..780 nm in 5 nm steps."""
    acc = ti.Vector([0.0, 0.0, 0.0])
    for k in range(81):
        lam = 380.0 + 5.0 * k
        acc += planck(lam, T) * cie_xyz(lam)
    return acc


@ti.kernel
def tabulate_blackbody(env: ti.template()):
    """Fill ``env.blackbody``: per entry, the linear sRGB of unit luminance (out-of-gamut parts
    clipped) and the luminance relative to a blackbody at GLOW_REFERENCE."""
    ref = blackbody_xyz(GLOW_REFERENCE)[1]
    for k in range(BB_N):
        T = BB_T0 + (BB_T1 - BB_T0) * k / (BB_N - 1)
        c = blackbody_xyz(T)
        rgb = ti.max(xyz_to_linear_srgb(c / c[1]), 0.0)
        rgb /= ti.Vector([0.2126, 0.7152, 0.0722]).dot(rgb)
        env.blackbody[k] = ti.Vector([rgb[0], rgb[1], rgb[2], c[1] / ref])


@ti.func
def incandescence(env: ti.template(), T):
    """Emitted radiance (linear RGB) of a surface at ``T`` K: blackbody colour at a brightness
    that compresses the physical luminance ratio to GLOW_REFERENCE by GLOW_COMPRESSION."""
    e = ti.Vector([0.0, 0.0, 0.0])
    if T > BB_T0:
        u = ti.min((T - BB_T0) / (BB_T1 - BB_T0) * (BB_N - 1), BB_N - 1.001)
        k = ti.cast(ti.floor(u), ti.i32)
        b = ti.math.mix(env.blackbody[k], env.blackbody[k + 1], u - k)
        e = ti.Vector([b[0], b[1], b[2]]) * GLOW_GAIN * ti.pow(ti.max(b[3], 0.0), GLOW_COMPRESSION)
    return e


# --- environment, floor and colliders ------------------------------------------------------------
@ti.func
def sky(env: ti.template(), d, rough):
    """Radiance of the environment at infinity in unit direction ``d``, blurred by ``rough`` (rad):
    the sky gradient plus each light as a spherical Gaussian whose width grows with the roughness
    (the lobe keeps its energy: amplitude scales by width / (width + rough^2))."""
    y = d[1]
    c = ti.math.mix(env.horizon[None], env.ground[None], 1.0 - ti.exp(-12.0 * ti.max(-y, 0.0)))
    if y > 0.0:
        c = ti.math.mix(env.horizon[None], env.zenith[None], ti.pow(y, 0.45))
    for k in range(env.n_lights[None]):
        w = env.light_width[k] + rough * rough
        c += env.light_color[k] * (env.light_width[k] / w) * ti.exp((d.dot(env.light_dir[k]) - 1.0) / w)
    return c


@ti.func
def lit_surface(env: ti.template(), shadow: ti.template(), albedo, x, n, v, shadows: ti.template(),
                blur: ti.i32):
    """A diffuse surface of ``albedo`` at ``x`` with unit normal ``n`` seen from direction ``v``
    (towards the eye): the blurred environment as ambient light, each light's irradiance (the key
    light's through the shadow map when ``shadows``), and a faint dielectric gloss."""
    vis = 1.0
    if ti.static(shadows):
        if n[1] > 0.3 and env.n_lights[None] > 0:
            vis = key_visibility(shadow, x, blur, SHADOW_OPACITY)
    c = albedo * sky(env, n, DIFFUSE_ROUGHNESS) * (1.0 - CONTACT_DARK * (1.0 - vis))
    for k in range(env.n_lights[None]):
        e = env.light_color[k] * 2.0 * math.pi * env.light_width[k] * ti.max(n.dot(env.light_dir[k]), 0.0)
        if k == 0:
            e *= vis
        c += albedo * e / math.pi  # Lambert; a lobe of width w carries irradiance 2 pi w L cos
    r = 2.0 * n.dot(v) * n - v
    return c + 0.04 * sky(env, r, 0.3) * vis


@ti.func
def floor_color(env: ti.template(), shadow: ti.template(), x, v, s, shadows: ti.template(), blur: ti.i32):
    """The chequered floor at world point ``x``, ``s`` m from the viewer, fading into the horizon."""
    a = ti.cast(ti.floor(x[0] / env.tile[None]) + ti.floor(x[2] / env.tile[None]), ti.i32)
    albedo = env.floor[None] if a % 2 == 0 else env.floor_alt[None]
    c = lit_surface(env, shadow, albedo, x, ti.Vector([0.0, 1.0, 0.0]), v, shadows, blur)
    return ti.math.mix(env.horizon[None], c, ti.exp(-s / FLOOR_HAZE))


@ti.func
def collider_albedo(stage: ti.template(), cols: ti.template(), row: ti.i32, x, t):
    """Colour of collider row ``row`` at its surface point ``x``: its texture there (the stripes
    or checker that mimicking metal copies, ``kernels.control.texture_color``), else its colour."""
    c = stage.collider_color[cols.owner[row]]
    if cols.texture[row] != NO_TEXTURE:
        c = texture_color(cols, row, x, t)
    return c


@ti.func
def trace_colliders(cols: ti.template(), o, d, s_end, tolerance, steps: ti.i32, t):
    """Sphere-trace the colliders' union along ``o + s d`` up to ``s_end`` at time ``t`` (s): (s of
    the hit or FAR, the row hit). A ray hits within ``tolerance * s`` of a surface."""
    s = 0.0
    hit, row = FAR, -1
    for _ in range(steps):
        dist, nearest = union_sdf(cols, o + s * d, t)
        if dist < tolerance * ti.max(s, 1e-3):
            hit, row = s, nearest
            break
        s += dist
        if s > s_end:
            break
    return hit, row


@ti.func
def scenery(env: ti.template(), stage: ti.template(), shadow: ti.template(), cols: ti.template(), o, d, t,
            tolerance, steps: ti.i32, blur: ti.i32):
    """What a 3D ray from ``o`` along ``d`` sees besides the liquid: (radiance, distance; FAR for
    the environment). Colliders nearer than the floor win."""
    color = sky(env, d, 0.0)
    s_hit = FAR
    s_floor = FAR
    if d[1] < -1e-6 and o[1] > stage.floor_y:
        s_floor = (stage.floor_y - o[1]) / d[1]
    if steps > 0 and cols.count[None] > 0:
        s_col, row = trace_colliders(cols, o, d, ti.min(s_floor, MARCH_FAR), tolerance, steps, t)
        if s_col < s_floor:
            x = o + s_col * d
            n = shape_normal(cols, row, x, t, NORMAL_STEP)
            color = lit_surface(env, shadow, collider_albedo(stage, cols, row, x, t), x, n, -d, True, blur)
            s_hit = s_col
    if s_hit == FAR and s_floor < FAR:
        color = floor_color(env, shadow, o + s_floor * d, -d, s_floor, True, blur)
        s_hit = s_floor
    return color, s_hit


@ti.func
def reflection(env: ti.template(), stage: ti.template(), shadow: ti.template(), cols: ti.template(), x, r, t,
               rough, steps: ti.i32, blur: ti.i32):
    """Radiance arriving at liquid point ``x`` from unit direction ``r``: the scene in 3D, the
    environment and the floor plane in 2D (whose colliders are not 3D shapes)."""
    c = ti.Vector([0.0, 0.0, 0.0])
    if ti.static(stage.dim == 3):
        c, _ = scenery(env, stage, shadow, cols, x, r, t, HIT_REFLECT, steps, blur)
        if rough > 0.0:  # rough reflections see the lights widened and the scenery's mean
            c = ti.math.mix(c, sky(env, r, rough), ti.min(rough / FROST_ROUGHNESS, 1.0) * 0.6)
    else:
        c = sky(env, r, rough)
        if r[1] < -1e-6:
            s = (stage.floor_y - x[1]) / r[1]
            c = floor_color(env, shadow, x + s * r, -r, s, False, blur)
    return c


# --- the liquid ------------------------------------------------------------------------------------
@ti.func
def surface_point(view: ti.template(), i, j, depth):
    o, d = view.ray(i, j)
    return o + view.distance(d, depth) * d


@ti.func
def tangent_along(frame: ti.template(), view: ti.template(), i, j, depth, p, di: ti.template(), dj: ti.template()):
    """Surface tangent (world, m per pixel) towards +(``di``, ``dj``) at pixel (``i``, ``j``): of the
    two one-sided differences, the one with the smaller depth step (zero where neither side is liquid)."""
    best = FAR
    tangent = ti.Vector([0.0, 0.0, 0.0])
    for side in ti.static((-1, 1)):
        ii, jj = i + side * di, j + side * dj
        if 0 <= ii < frame.width and 0 <= jj < frame.height:
            if frame.a.ok[jj, ii]:
                dz = frame.a.depth[jj, ii]
                if ti.abs(dz - depth) < best:
                    best = ti.abs(dz - depth)
                    tangent = (surface_point(view, ii, jj, dz) - p) * side
    return tangent


@ti.func
def liquid_normal(frame: ti.template(), view: ti.template(), i, j, depth):
    """World unit normal of the smoothed surface at pixel (``i``, ``j``), facing the eye, from the
    depth differences of ``tangent_along`` (van der Laan et al. 2009)."""
    p = surface_point(view, i, j, depth)
    c = tangent_along(frame, view, i, j, depth, p, 1, 0).cross(tangent_along(frame, view, i, j, depth, p, 0, 1))
    _, d = view.ray(i, j)
    n = -d
    if c.norm() > 1e-20:
        n = c.normalized()
        if n.dot(d) > 0.0:
            n = -n
    return n


@ti.func
def relief_depth(c, sigma_px, width_px):
    """How far inside the silhouette (0 at the edge .. 1 at ``width_px``) a pixel lies whose relief
    coverage (the covered mask blurred by a Gaussian of ``sigma_px``) is ``c``: the edge distance
    sigma Phi^-1(c), with the logistic approximation Phi(z) ~ 1 / (1 + exp(-1.702 z))."""
    cc = ti.min(ti.max(c, 1e-4), 1.0 - 1e-4)
    x = sigma_px * ti.log(cc / (1.0 - cc)) / 1.702
    return ti.min(ti.max(x / width_px, 0.0), 1.0)


@ti.func
def relief_height(frame: ti.template(), j, i, sigma_px, width_px):
    """Height (in units of the width) of the liquid extruded from its coverage at pixel (``j``,
    ``i``): a quarter circle across the rim, so the silhouette faces sideways like a ball's."""
    u = relief_depth(frame.a.relief[j, i], sigma_px, width_px)
    return ti.sqrt(u * (2.0 - u))


@ti.func
def relief_normal(frame: ti.template(), view: ti.template(), i, j, sigma_px, width_px):
    """World unit normal of the liquid's coverage extruded towards the eye (``relief_height``):
    facing the eye inside, turning sideways over the last ``width_px`` before the silhouette."""
    i0, i1 = ti.max(i - 1, 0), ti.min(i + 1, frame.width - 1)
    j0, j1 = ti.max(j - 1, 0), ti.min(j + 1, frame.height - 1)
    hx = width_px * (relief_height(frame, j, i1, sigma_px, width_px)
                     - relief_height(frame, j, i0, sigma_px, width_px)) / (i1 - i0)
    hy = width_px * (relief_height(frame, j0, i, sigma_px, width_px)
                     - relief_height(frame, j1, i, sigma_px, width_px)) / (j1 - j0)
    return view.to_world(ti.Vector([-hx, -hy, 1.0]).normalized())


@ti.func
def hash01(q):
    """A pseudo-random number in [0, 1) from an integer 3-vector (one of Inigo Quilez' hashes)."""
    h = (q[0] * 73856093) ^ (q[1] * 19349663) ^ (q[2] * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ti.cast((h ^ (h >> 16)) & 0xFFFF, float) / 65536.0


@ti.func
def schlick(f0, cos_theta):
    """Schlick's approximation of the Fresnel reflectance (per channel)."""
    return f0 + (1.0 - f0) * ti.pow(1.0 - ti.min(ti.max(cos_theta, 0.0), 1.0), 5.0)


@ti.func
def shade_liquid(env: ti.template(), stage: ti.template(), shadow: ti.template(), cols: ti.template(), s, x, n,
                 v, behind, t, steps: ti.i32, blur: ti.i32):
    """Radiance of the liquid with look vector ``s`` at ``x`` (normal ``n``, towards the eye
    ``v``) over the scenery radiance ``behind``: metal, molten and cryo looks blended by weight,
    frost and glow on top."""
    base = ti.Vector([s[BASE], s[BASE + 1], s[BASE + 2]])
    frost = ti.min(ti.max(s[FROST], 0.0), 1.0)
    molten = ti.min(ti.max(s[MOLTEN_W], 0.0), 1.0)
    cryo = ti.min(ti.max(s[CRYO_W], 0.0), 1.0 - molten)
    metal = 1.0 - molten - cryo
    cos_v = n.dot(v)
    r = 2.0 * cos_v * n - v
    rough = ti.math.mix(CHROME_ROUGHNESS, FROST_ROUGHNESS, frost)
    mirror = reflection(env, stage, shadow, cols, x, r, t, rough * frost, steps, blur)
    glow = incandescence(env, s[TEMP])
    f0 = metal * ti.math.mix(base, ti.Vector([FROST_REFLECTANCE] * 3), frost) + molten * MOLTEN_REFLECTANCE \
        + cryo * CRYO_REFLECTANCE
    fresnel = schlick(f0, cos_v)
    c = fresnel * mirror + (metal + MOLTEN_GLOW * molten) * glow
    if frost > 0.0:
        grain = hash01(ti.cast(ti.floor(x / FROST_GRAIN), ti.i32))
        albedo = ti.Vector(FROST_COLOR) * (1.0 + FROST_GRAIN_CONTRAST * (grain - 0.5))
        c += metal * frost * (1.0 - fresnel) * lit_surface(env, shadow, albedo, x, n, v, False, blur)
    if cryo > 0.0:
        opacity = 1.0 - ti.exp(-s[THICK] / CRYO_DEPTH)
        scatter = ti.Vector(CRYO_TINT) * sky(env, n, DIFFUSE_ROUGHNESS)
        c += cryo * (1.0 - fresnel) * ti.math.mix(behind * ti.Vector(CRYO_TINT), scatter, opacity)
    return c


# --- the frame ---------------------------------------------------------------------------------------
@ti.func
def box_span(lo, hi, o, d):
    """Entry and exit distances of the ray ``o + s d`` through the box ``lo``..``hi`` (misses when
    the exit is not beyond the entry)."""
    s0, s1 = -FAR, FAR
    for k in ti.static(range(3)):
        dk = d[k]
        if ti.abs(dk) < 1e-12:
            dk = 1e-12
        sa = (lo[k] - o[k]) / dk
        sb = (hi[k] - o[k]) / dk
        s0 = ti.max(s0, ti.min(sa, sb))
        s1 = ti.min(s1, ti.max(sa, sb))
    return s0, s1


@ti.func
def on_edge(lo, hi, x, width):
    """Whether the box-surface point ``x`` lies within ``width`` (m) of one of the box's edges."""
    near = 0
    for k in ti.static(range(3)):
        if ti.min(ti.abs(x[k] - lo[k]), ti.abs(x[k] - hi[k])) < width:
            near += 1
    return near >= 2


@ti.func
def tank_edges(stage: ti.template(), o, d, pixel, color, s_front):
    """``color`` with the glass tank's edges drawn over it (those nearer than ``s_front`` on the near side)."""
    lo = ti.Vector(stage.lo)
    hi = ti.Vector(stage.hi)
    s0, s1 = box_span(lo, hi, o, d)
    if s1 > ti.max(s0, 0.0):
        if s1 < s_front and on_edge(lo, hi, o + s1 * d, EDGE_PX * pixel * s1):
            color = ti.math.mix(color, ti.Vector(EDGE_COLOR), EDGE_OPACITY)
        if s0 > 0.0 and on_edge(lo, hi, o + s0 * d, EDGE_PX * pixel * s0):
            color = ti.math.mix(color, ti.Vector(EDGE_COLOR), EDGE_OPACITY)
    return color


@ti.func
def side_scenery(env: ti.template(), stage: ti.template(), shadow: ti.template(), cols: ti.template(), view: ti.template(),
                 i, j, blur: ti.i32, t):
    """The 2D side view's backdrop: the sky above the floor line, the floor's front below, the
    domain box darkened, the colliders filled with a rounded rim, the box outline."""
    o, d = view.ray(i, j)
    x = ti.Vector([o[0], o[1]])
    scale = view.scale[None]
    elevation = (x[1] - stage.floor_y) / (stage.hi[1] - stage.lo[1])
    color = sky(env, ti.Vector([0.0, 0.6 * elevation, 1.0]).normalized(), 0.0)
    if elevation < 0.0:
        color = env.floor_alt[None] * sky(env, ti.Vector([0.0, 1.0, 0.0]), DIFFUSE_ROUGHNESS)
    box = primitive_sdf(BOX, ti.Vector(stage.half), x - ti.Vector(stage.centre))
    if box < 0.0:
        color = ti.math.mix(color, env.ground[None], TANK_TINT)
        dist, row = union_sdf(cols, x, t)
        if dist < 0.0:
            n2 = shape_normal(cols, row, x, t, NORMAL_STEP)
            bevel = ti.math.clamp(1.0 + dist * scale / BEVEL_PX, 0.0, 1.0)
            n = ti.Vector([n2[0] * bevel, n2[1] * bevel, ti.sqrt(1.0 - bevel * bevel)])
            color = lit_surface(env, shadow, collider_albedo(stage, cols, row, x, t), o, n, -d, False, blur)
    if ti.abs(box) * scale < 0.5 * EDGE_PX + 0.25:
        color = ti.Vector(EDGE_COLOR)
    return color


@ti.func
def tonemap(c):
    """ACES filmic curve, Narkowicz 2015 fit, per channel (linear HDR -> linear 0..1)."""
    c = ti.max(c, 0.0)
    return ti.math.clamp((c * (2.51 * c + 0.03)) / (c * (2.43 * c + 0.59) + 0.14), 0.0, 1.0)


@ti.func
def to_srgb8(c):
    """Linear 0..1 -> 8-bit sRGB (the IEC 61966-2-1 transfer curve)."""
    g = ti.Vector([0.0, 0.0, 0.0])
    for k in ti.static(range(3)):
        g[k] = 12.92 * c[k] if c[k] <= 0.0031308 else 1.055 * ti.pow(c[k], 1.0 / 2.4) - 0.055
    return ti.cast(ti.math.clamp(g, 0.0, 1.0) * 255.0 + 0.5, ti.u8)


@ti.kernel
def compose(frame: ti.template(), view: ti.template(), env: ti.template(), stage: ti.template(),
            shadow: ti.template(), cols: ti.template(), t: float, steps: ti.i32, reflect_steps: ti.i32,
            blur: ti.i32, relief_sigma: float, relief: float):
    """Draw the frame at time ``t`` (s) into ``frame.rgb``: the scenery, the liquid over it where
    nearer (alpha: the smoothed coverage around 1/2), the tank's edges, tone mapped. ``steps`` and
    ``reflect_steps`` bound the sphere tracing of primary and reflected rays, ``blur`` the
    shadow map's filter (columns each side); ``relief`` (m): the width of the rounded rim at the
    liquid's silhouette, found in the coverage blurred by ``relief_sigma`` (m; a 2D view's
    liquid is extruded to this rim, a 3D one's normals turn to it from the depth's)."""
    for j, i in frame.rgb:
        o, d = view.ray(i, j)
        color = ti.Vector([0.0, 0.0, 0.0])
        s_scene = FAR
        pixel = 0.0
        if ti.static(stage.dim == 3):
            pixel = 1.0 / view.focal[None]
            color, s_scene = scenery(env, stage, shadow, cols, o, d, t, HIT_PX * pixel, steps, blur)
        else:
            color = side_scenery(env, stage, shadow, cols, view, i, j, blur, t)
        s = frame.a.look[j, i]
        depth = frame.a.depth[j, i]
        alpha = ti.math.smoothstep(ALPHA_EDGE[0], ALPHA_EDGE[1], frame.a.cov[j, i])
        s_front = s_scene
        if frame.a.ok[j, i] and alpha > 0.0:
            s_liquid = view.distance(d, depth)
            if s_liquid < s_scene:
                x = o + s_liquid * d
                sigma_px = ti.max(relief_sigma * view.pixels_per_metre(frame.zmin[None]), 0.3)
                width_px = ti.max(relief * view.pixels_per_metre(depth), 1.0)
                n = relief_normal(frame, view, i, j, sigma_px, width_px)
                if ti.static(stage.dim == 3):  # the depth's normal inside, the relief's at the silhouette
                    inside = relief_depth(frame.a.relief[j, i], sigma_px, width_px)
                    n = ti.math.mix(n, liquid_normal(frame, view, i, j, depth), inside).normalized()
                liquid = shade_liquid(env, stage, shadow, cols, s, x, n, -d, color, t, reflect_steps, blur)
                color = ti.math.mix(color, liquid, alpha)
                s_front = s_liquid
        if ti.static(stage.dim == 3):
            color = tank_edges(stage, o, d, pixel, color, s_front)
        frame.rgb[j, i] = to_srgb8(tonemap(color * env.exposure[None]))
