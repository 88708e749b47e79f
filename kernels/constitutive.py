"""Constitutive models as ``@ti.func``: the Kirchhoff stress of each material kind and the
plastic return mapping. One blended entry point, ``kirchhoff_stress``, dispatches on the
material kind read from the material table.
"""
import taichi as ti

from polyalloy.kernels.heat import frozen_weight
from polyalloy.kernels.kinds import ELASTIC, FLUID, PLASTIC, POLYALLOY  # noqa: F401  (re-exported)

# The closed-form von Mises return (``stretch_power``) serves states whose smallest squared stretch is at
# least this share of the largest (singular values within 10x of each other, a deviatoric Hencky strain up
# to ~1.9): there the cubic's eigenvalues keep ~1e-5 of their size. Anything more distorted takes the SVD.
CLOSED_RETURN_RANGE = 1e-2


@ti.func
def fluid_stress(J, C, bulk, viscosity):
    """Weakly compressible liquid: tau = J sigma with sigma = K (J - 1) I + eta (C + C^T),
    the linear equation of state p = K (1 - J) and a Newtonian viscous term (C ~ grad v)."""
    dim = ti.static(C.n)
    return J * (bulk * (J - 1.0) * ti.Matrix.identity(float, dim) + viscosity * (C + C.transpose()))


@ti.func
def corotated_stress(F, mu, lam):
    """Fixed-corotated elasticity (Stomakhin et al. 2012): tau = 2 mu (F - R) F^T + lam (J - 1) J I."""
    dim = ti.static(F.n)
    U, sig, V = ti.svd(F)
    R = U @ V.transpose()
    J = 1.0
    for d in ti.static(range(dim)):
        J *= sig[d, d]
    return 2.0 * mu * (F - R) @ F.transpose() + lam * (J - 1.0) * J * ti.Matrix.identity(float, dim)


@ti.func
def polyalloy_stress(mats: ti.template(), mat: ti.i32, F, C, T, f, damage):
    """Polyalloy: fixed-corotated stress whose moduli blend from mimetic to frozen by the frozen
    weight s(T) and fade with the liquid fraction f, plus f times the molten liquid's stress.
    Damage d removes the tensile principal stresses of the frozen share: a fully damaged
    frozen particle resists compression only (it cannot hold a crack closed), with the Hencky
    stress of the rubble model (``polyalloy_stress_svd``)."""
    U, sig, V = ti.svd(F)
    return polyalloy_stress_svd(mats, mat, U, sig, C, T, f, damage)


@ti.func
def polyalloy_moduli(mats: ti.template(), mat: ti.i32, sig, T, f):
    """The frozen weight s(T), the Lame moduli mu, lam (Pa) blended from mimetic to frozen and
    faded by the liquid fraction f, and J = det F from the singular values ``sig``."""
    s = frozen_weight(mats, mat, T)
    solid = 1.0 - f
    mu = ((1.0 - s) * mats.mu[mat] + s * mats.mu_f[mat]) * solid
    lam = ((1.0 - s) * mats.lam[mat] + s * mats.lam_f[mat]) * solid
    J = 1.0
    for d in ti.static(range(sig.n)):
        J *= sig[d, d]
    return s, mu, lam, J


@ti.func
def is_rubble(mats: ti.template(), mat: ti.i32, T, damage):
    """Whether a polyalloy particle is rubble: fully damaged and mostly frozen (s > 1/2), so that
    its return mapping (``rubble_return``) and its stress are the Hencky Drucker-Prager model."""
    return damage >= 1.0 and frozen_weight(mats, mat, T) > 0.5


@ti.func
def polyalloy_stress_svd(mats: ti.template(), mat: ti.i32, U, sig, C, T, f, damage):
    """``polyalloy_stress`` from a known SVD F = U sig V^T (the stress does not need V). Rubble
    (``is_rubble``) takes the Hencky stress of its return mapping instead, tau_d = 2 mu eps_d +
    lam tr(eps) with eps = log(sig) (Klar et al. 2016), without a tension cut: the returned
    state then lies on the Drucker-Prager cone |dev tau| <= -alpha tr(tau)."""
    dim = ti.static(U.n)
    s, mu, lam, J = polyalloy_moduli(mats, mat, sig, T, f)
    principal = ti.Matrix.zero(float, dim, dim)
    if is_rubble(mats, mat, T, damage):
        eps = ti.Vector.zero(float, dim)
        for d in ti.static(range(dim)):
            eps[d] = ti.log(ti.max(sig[d, d], 1e-4))
        for d in ti.static(range(dim)):
            principal[d, d] = 2.0 * mu * eps[d] + lam * eps.sum()
    else:
        for d in ti.static(range(dim)):
            tau_d = 2.0 * mu * (sig[d, d] - 1.0) * sig[d, d] + lam * (J - 1.0) * J
            if tau_d > 0.0:
                tau_d *= 1.0 - s * damage
            principal[d, d] = tau_d
    tau = U @ principal @ U.transpose()
    if f > 0.0:
        tau += f * fluid_stress(J, C, mats.bulk[mat], mats.viscosity[mat])
    return tau


@ti.func
def stretch_squares(F):
    """Squared singular values of F (the eigenvalues of b = F F^T), in closed form: the 2x2
    quadratic, or in 3D the trigonometric solution of the characteristic cubic. A few dozen
    flops against the ~400 ns of an iterative 3x3 SVD on this CPU. Near a double root the cubic
    keeps about half of f32's digits (the singular values to 2e-4 in the test, against 1e-7 for
    distinct roots), which is enough for the yield and fracture checks. These are the
    magnitudes of the singular values: the sign of det F is not in b."""
    dim = ti.static(F.n)
    b = F @ F.transpose()
    lam = ti.Vector.zero(float, dim)
    if ti.static(dim == 2):
        mean = 0.5 * (b[0, 0] + b[1, 1])
        half = ti.sqrt(0.25 * (b[0, 0] - b[1, 1]) ** 2 + b[0, 1] ** 2)
        lam = ti.Vector([mean + half, mean - half])
    else:
        q = (b[0, 0] + b[1, 1] + b[2, 2]) / 3.0
        off = b[0, 1] ** 2 + b[0, 2] ** 2 + b[1, 2] ** 2
        p = ti.sqrt(((b[0, 0] - q) ** 2 + (b[1, 1] - q) ** 2 + (b[2, 2] - q) ** 2 + 2.0 * off) / 6.0)
        lam = ti.Vector([q, q, q])
        if p > 1e-12 * q:
            B = (b - q * ti.Matrix.identity(float, 3)) / p
            r = ti.min(ti.max(0.5 * B.determinant(), -1.0), 1.0)
            phi = ti.acos(r) / 3.0
            hi = q + 2.0 * p * ti.cos(phi)
            lo = q + 2.0 * p * ti.cos(phi + 2.0 * 3.14159265358979 / 3.0)
            lam = ti.Vector([hi, 3.0 * q - hi - lo, lo])
    return ti.max(lam, 0.0)


@ti.func
def left_stretch(b, sig):
    """V = sqrt(b) for b = F F^T = V^2, given V's eigenvalues ``sig`` (the singular values of F,
    on a diagonal): 2D from Cayley-Hamilton, V = (b + s1 s2 I) / (s1 + s2); 3D the formula of
    Hoger & Carlson (1984), V = (-b^2 + (I1^2 - I2) b + I1 I3 I) / (I1 I2 - I3) with I1, I2, I3
    the invariants of V. No eigenvectors are needed."""
    dim = ti.static(b.n)
    eye = ti.Matrix.identity(float, dim)
    V = eye
    if ti.static(dim == 2):
        V = (b + sig[0, 0] * sig[1, 1] * eye) / (sig[0, 0] + sig[1, 1])
    else:
        s1, s2, s3 = sig[0, 0], sig[1, 1], sig[2, 2]
        i1 = s1 + s2 + s3
        i2 = s1 * s2 + s2 * s3 + s3 * s1
        i3 = s1 * s2 * s3
        V = (-(b @ b) + (i1 * i1 - i2) * b + i1 * i3 * eye) / (i1 * i2 - i3)
    return V


@ti.func
def sinh_ratio(a, h):
    """sinh(a h) / sinh(h), and a at h = 0: the series 1 + (a^2 - 1) h^2 / 6 + (a^2 - 1)(3 a^2 - 7) h^4 / 360
    (times a) below |h| = 0.1 (its next term is below 1e-9 there), the exponentials above (f32 cancellation
    below ~1e-6 of the result)."""
    r = a
    if ti.abs(h) < 0.1:
        h2 = h * h
        r = a * (1.0 + (a * a - 1.0) * h2 / 6.0 * (1.0 + (3.0 * a * a - 7.0) * h2 / 60.0))
    else:
        r = (ti.exp(a * h) - ti.exp(-a * h)) / (ti.exp(h) - ti.exp(-h))
    return r


@ti.func
def stretch_power(b, x, a):
    """b^a for a symmetric positive definite b = F F^T whose eigenvalues are exp(x) (``x``: their logs,
    largest first, as ``stretch_squares`` orders them), without eigenvectors: the polynomial in b that
    interpolates t^a at the eigenvalues (Newton's form; b^a = p(b) since p and t^a agree on b's spectrum).
    Its divided differences are taken in log space, t^a[l_i, l_j] = exp((a - 1)(x_i + x_j)/2)
    sinh(a h) / sinh(h) with h = (x_i - x_j)/2 (``sinh_ratio``), so a double root costs no digits; the
    second one divides by l_0 - l_2, the widest gap, and multiplies (b - l_0)(b - l_1), which is as small
    as that gap squared. The result is a symmetric function of the eigenvalues, so the cubic's error near a
    double root (~2e-4, split between the two) enters only squared."""
    dim = ti.static(b.n)
    eye = ti.Matrix.identity(float, dim)
    l0 = ti.exp(x[0])
    d01 = ti.exp((a - 1.0) * 0.5 * (x[0] + x[1])) * sinh_ratio(a, 0.5 * (x[0] - x[1]))
    B0 = b - l0 * eye
    out = ti.exp(a * x[0]) * eye + d01 * B0
    if ti.static(dim == 3):
        d12 = ti.exp((a - 1.0) * 0.5 * (x[1] + x[2])) * sinh_ratio(a, 0.5 * (x[1] - x[2]))
        d012 = (d01 - d12) / ti.max(l0 - ti.exp(x[2]), 1e-30)
        out += d012 * (B0 @ (b - ti.exp(x[1]) * eye))
    return out


@ti.func
def von_mises_return(mats: ti.template(), mat: ti.i32, F, sq):
    """Polyalloy's mimetic return mapping (``polyalloy_return``: the deviatoric Hencky strain capped at
    ``yield_strain``, the volume kept) without an SVD, for det F > 0 and the squared singular values
    ``sq`` of F (largest first, ``stretch_squares``). The new log-stretches are mean + k dev with
    k = yield_strain / |dev|, so sig_new / sig = c l^a on each principal axis (l = sig^2, a = -(1 - k)/2,
    c = exp((1 - k) mean)), and F_new = U diag(sig_new / sig) U^T F = c b^a F with b = F F^T
    (``stretch_power``): no rotation is needed. Returns F_new and its singular values on a diagonal."""
    dim = ti.static(F.n)
    x = ti.log(sq)
    eps = 0.5 * x
    mean = eps.sum() / dim
    dev = eps - mean
    k = mats.yield_strain[mat] / dev.norm()
    sig = ti.Matrix.identity(float, dim)
    for d in ti.static(range(dim)):
        sig[d, d] = ti.exp(mean + k * dev[d])
    G = ti.exp((1.0 - k) * mean) * stretch_power(F @ F.transpose(), x, -0.5 * (1.0 - k))
    return G @ F, sig


@ti.func
def polyalloy_stress_stretch(mats: ti.template(), mat: ti.i32, F, sig, C, T, f):
    """``polyalloy_stress`` of an undamaged particle from F and its singular values alone:
    U diag(2 mu (s - 1) s) U^T = 2 mu (b - V) with b = F F^T and V = sqrt(b) (``left_stretch``),
    so no rotation (and no SVD) is needed while no tension has to be cut."""
    dim = ti.static(F.n)
    s, mu, lam, J = polyalloy_moduli(mats, mat, sig, T, f)
    b = F @ F.transpose()
    tau = 2.0 * mu * (b - left_stretch(b, sig)) + lam * (J - 1.0) * J * ti.Matrix.identity(float, dim)
    if f > 0.0:
        tau += f * fluid_stress(J, C, mats.bulk[mat], mats.viscosity[mat])
    return tau


@ti.func
def polyalloy_wave_speed(mats: ti.template(), mat: ti.i32, T, f):
    """Speed (m/s) of the fastest elastic wave of a polyalloy particle in its current state:
    sqrt(M / rho) with the P-wave modulus M = (1 - f)(lambda + 2 mu) + f K, since the stress
    (``polyalloy_stress_svd``) adds the solid share and the liquid share, so their stiffnesses add."""
    s = frozen_weight(mats, mat, T)
    modulus = ((1.0 - s) * (mats.lam[mat] + 2.0 * mats.mu[mat]) + s * (mats.lam_f[mat] + 2.0 * mats.mu_f[mat]))
    return ti.sqrt((modulus * (1.0 - f) + f * mats.bulk[mat]) / mats.density[mat])


@ti.func
def wave_speed(mats: ti.template(), mat: ti.i32, T, f):
    """Fastest elastic wave (m/s) of any material: sqrt(max(lambda + 2 mu, K) / rho)."""
    c = 0.0
    if ti.static(mats.has(POLYALLOY)):
        if mats.kind[mat] == POLYALLOY:
            c = polyalloy_wave_speed(mats, mat, T, f)
    if ti.static(mats.has(FLUID, ELASTIC, PLASTIC)):
        if mats.kind[mat] != POLYALLOY:
            c = ti.sqrt(ti.max(mats.lam[mat] + 2.0 * mats.mu[mat], mats.bulk[mat]) / mats.density[mat])
    return c


@ti.func
def kirchhoff_stress(mats: ti.template(), mat: ti.i32, F, C, Jp, T, f, damage):
    """Kirchhoff stress (Pa) of a particle of material ``mat`` with deformation gradient ``F``,
    affine velocity ``C``, plastic volume ratio ``Jp``, temperature ``T`` (K), liquid
    fraction ``f`` and damage (polyalloy only). Only the table's kinds are compiled in."""
    kind = mats.kind[mat]
    tau = ti.Matrix.zero(float, F.n, F.n)
    if ti.static(mats.has(FLUID)):
        if kind == FLUID:
            tau = fluid_stress(F.determinant(), C, mats.bulk[mat], mats.viscosity[mat])
    if ti.static(mats.has(POLYALLOY)):
        if kind == POLYALLOY:
            tau = polyalloy_stress(mats, mat, F, C, T, f, damage)
    if ti.static(mats.has(ELASTIC, PLASTIC)):
        if kind == ELASTIC or kind == PLASTIC:
            hardening = 1.0
            if kind == PLASTIC:
                hardening = ti.exp(mats.hardening[mat] * (1.0 - Jp))
            tau = corotated_stress(F, mats.mu[mat] * hardening, mats.lam[mat] * hardening)
    return tau


@ti.func
def rubble_return(mats: ti.template(), mat: ti.i32, sig, Jp):
    """Return mapping of fully damaged frozen polyalloy, a cohesionless granular solid: the
    Drucker-Prager sand model of Klar et al. (2016) in Hencky strain eps = log(sig), with the
    volume correction of Tampubolon et al. (2017). ``Jp`` (>= 1) is the dilation the rubble
    opened and was let off: it is added back to the trial strain, so loose rubble must close
    that volume before it pushes back (without it every particle would keep its rest volume
    however far apart the pieces lie, and the rubble would spring apart like a gas). In
    expansion (tr eps >= 0) the stress is zero and the volume goes into Jp; in compression the
    deviatoric strain is returned to the cone |dev| <= -alpha tr(eps) (d lam + 2 mu) / (2 mu),
    alpha from the friction angle, which is the stress cone |dev tau| <= -alpha tr(tau) of the
    Hencky stress that ``polyalloy_stress_svd`` gives rubble (the frozen moduli's ratio lam / mu
    is the blended one's: both phases share one Poisson ratio). Returns the new singular values and Jp."""
    dim = ti.static(sig.n)
    eps = ti.Vector.zero(float, dim)
    for d in ti.static(range(dim)):
        eps[d] = ti.log(ti.max(sig[d, d], 1e-4)) + ti.log(Jp) / dim
    trace = eps.sum()
    Jp_new = 1.0
    if trace >= 0.0:
        Jp_new = ti.min(ti.exp(trace), 1e3)  # bounded: a lone grain stays a grain, not a ghost
        eps = ti.Vector.zero(float, dim)
    else:
        dev = eps - trace / dim
        norm = dev.norm()
        mu, lam = mats.mu_f[mat], mats.lam_f[mat]
        slide = norm + (dim * lam + 2.0 * mu) / (2.0 * mu) * trace * mats.rubble_alpha[mat]
        if slide > 0.0:
            eps -= (slide / norm) * dev
    sig_new = ti.Matrix.identity(float, dim)
    for d in ti.static(range(dim)):
        sig_new[d, d] = ti.exp(eps[d])
    return sig_new, Jp_new


@ti.func
def polyalloy_closed_form(mats: ti.template(), mat: ti.i32, F, T, f, damage, toughness):
    """Polyalloy's return mapping in closed form, where it needs no SVD: for a particle that is
    undamaged, not inverted (det F > 0: F F^T is also its mirror image's) and not molten
    (f <= 1/2), with the trial F = (I + dt C) F either inside its limits (a principal stretch
    within ``fracture_strain`` x ``toughness`` when frozen, s > 1/2, or a deviatoric Hencky strain
    within ``yield_strain`` when mimetic: F stays) or mimetic and yielding with its stretches
    within ``CLOSED_RETURN_RANGE`` (``von_mises_return``). Returns the flag (0: take the SVD and
    ``polyalloy_return``), the new F and, when closed, its singular values on a diagonal
    (``stretch_squares``)."""
    dim = ti.static(F.n)
    closed = 0
    sig = ti.Matrix.identity(float, dim)
    if f <= 0.5 and damage <= 0.0 and F.determinant() > 0.0:
        sq = stretch_squares(F)
        if frozen_weight(mats, mat, T) > 0.5:
            closed = ti.sqrt(sq.max()) - 1.0 <= mats.fracture_strain[mat] * toughness
        else:
            eps = 0.5 * ti.log(ti.max(sq, 1e-8))
            closed = (eps - eps.sum() / dim).norm() <= mats.yield_strain[mat]
            if not closed and sq.min() >= CLOSED_RETURN_RANGE * sq.max():
                F, sig = von_mises_return(mats, mat, F, sq)
                closed = 2
        if closed == 1:
            for d in ti.static(range(dim)):
                sig[d, d] = ti.sqrt(sq[d])
    return closed > 0, F, sig


@ti.func
def polyalloy_return(mats: ti.template(), mat: ti.i32, F, U, sig, V, Jp, T, f, damage, toughness):
    """Polyalloy's return mapping and damage for a particle that ``polyalloy_closed_form`` does not
    serve, given an SVD F = U sig V^T of its trial deformation gradient (not
    needed, and not read, when molten). Molten (f > 1/2): only the volume change is kept. Frozen (s > 1/2): elastic and brittle, a
    principal stretch past ``fracture_strain`` x ``toughness`` sets the damage to 1, and fully
    damaged material is rubble (``rubble_return``, whose dilation is ``Jp``). Mimetic: von
    Mises plasticity in Hencky strain, the deviatoric part of log(singular values) capped at
    ``yield_strain`` (volume preserving). Returns the new F, Jp, damage, and U and sig of an
    SVD of the new F."""
    dim = ti.static(U.n)
    F_new = F
    if f > 0.5:
        F_new = ti.Matrix.identity(float, dim) * ti.pow(ti.max(F.determinant(), 1e-6), 1.0 / dim)
        U = ti.Matrix.identity(float, dim)
        sig = F_new
    elif frozen_weight(mats, mat, T) > 0.5:
        stretch = 0.0
        for d in ti.static(range(dim)):
            stretch = ti.max(stretch, sig[d, d] - 1.0)
        if stretch > mats.fracture_strain[mat] * toughness:
            damage = 1.0
        if is_rubble(mats, mat, T, damage):
            sig, Jp = rubble_return(mats, mat, sig, Jp)
            F_new = U @ sig @ V.transpose()
    else:
        eps = ti.Vector.zero(float, dim)
        for d in ti.static(range(dim)):
            eps[d] = ti.log(ti.max(sig[d, d], 1e-4))
        mean = eps.sum() / dim
        dev = eps - mean
        norm = dev.norm()
        if norm > mats.yield_strain[mat]:
            dev *= mats.yield_strain[mat] / norm
            for d in ti.static(range(dim)):
                sig[d, d] = ti.exp(mean + dev[d])
            F_new = U @ sig @ V.transpose()
    return F_new, Jp, damage, U, sig


@ti.func
def polyalloy_deformation(mats: ti.template(), mat: ti.i32, F, Jp, T, f, damage, toughness, plain=0):
    """Polyalloy's return mapping and damage after F = (I + dt C) F (``polyalloy_closed_form``,
    then an SVD and ``polyalloy_return`` where that does not serve). Returns the new F, Jp, the
    damage, U and sig of an SVD of the new F, and ``rotated``: 0 when the closed form served, so
    only sig was found, without the SVD; its stress then comes from ``polyalloy_stress_stretch``,
    which needs no U. ``plain`` = 1 skips the closed form (the SVD path, the reference). (G2P does
    the same steps with its one SVD shared by every material kind; this entry point serves tests
    and host tools.)"""
    dim = ti.static(F.n)
    closed = 0
    sig = ti.Matrix.identity(float, dim)
    if not plain:
        closed, F, sig = polyalloy_closed_form(mats, mat, F, T, f, damage, toughness)
    U = ti.Matrix.identity(float, dim)
    rotated = 0
    if not closed:
        U0, sig0, V0 = U, sig, U
        if f <= 0.5:
            U0, sig0, V0 = ti.svd(F)
        F, Jp, damage, U, sig = polyalloy_return(mats, mat, F, U0, sig0, V0, Jp, T, f, damage, toughness)
        rotated = 1
    return F, Jp, damage, U, sig, rotated


@ti.func
def project_deformation(mats: ti.template(), mat: ti.i32, F, U, sig, V, Jp):
    """After F = (I + dt C) F, given an SVD F = U sig V^T (of a solid; unused for a liquid): a
    liquid keeps only its volume change J, as F = diag(J, 1, ..., 1) (no shear memory; its stress
    reads only det F, and this form spares the pow of J^(1/d) I: 11% of a water G2P on the CPU,
    docs/benchmark.md); an elasto-plastic solid clamps the singular values to [1 - theta_c,
    1 + theta_s] (Stomakhin et al. 2013) and moves the excess volume into Jp. Returns the new F,
    Jp and singular values (on a diagonal)."""
    dim = ti.static(F.n)
    kind = mats.kind[mat]
    F_new = F
    Jp_new = Jp
    if ti.static(mats.has(FLUID)):
        if kind == FLUID:
            F_new = ti.Matrix.identity(float, dim)
            F_new[0, 0] = ti.max(F.determinant(), 1e-6)
    if ti.static(mats.has(PLASTIC)):
        if kind == PLASTIC:
            for d in ti.static(range(dim)):
                s = ti.min(ti.max(sig[d, d], 1.0 - mats.theta_c[mat]), 1.0 + mats.theta_s[mat])
                Jp_new *= sig[d, d] / s
                sig[d, d] = s
            F_new = U @ sig @ V.transpose()
    return F_new, Jp_new, sig


@ti.func
def solid_stress(mats: ti.template(), mat: ti.i32, F, U, sig, V, C, Jp):
    """Kirchhoff stress (Pa) of a liquid, elastic or elasto-plastic particle whose F has the SVD
    U sig V^T (ignored for a liquid): ``fluid_stress``, or fixed-corotated with R = U V^T and the
    moduli hardened by exp(hardening (1 - Jp)) for a plastic solid."""
    dim = ti.static(F.n)
    kind = mats.kind[mat]
    tau = ti.Matrix.zero(float, dim, dim)
    if ti.static(mats.has(FLUID)):
        if kind == FLUID:
            tau = fluid_stress(F.determinant(), C, mats.bulk[mat], mats.viscosity[mat])
    if ti.static(mats.has(ELASTIC, PLASTIC)):
        if kind == ELASTIC or kind == PLASTIC:
            hardening = 1.0
            if kind == PLASTIC:
                hardening = ti.exp(mats.hardening[mat] * (1.0 - Jp))
            J = 1.0
            for d in ti.static(range(dim)):
                J *= sig[d, d]
            R = U @ V.transpose()
            tau = (2.0 * mats.mu[mat] * hardening * (F - R) @ F.transpose()
                   + mats.lam[mat] * hardening * (J - 1.0) * J * ti.Matrix.identity(float, dim))
    return tau
