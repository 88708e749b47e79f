"""Constitutive models as ``@ti.func``: the Kirchhoff stress of each material kind and the
plastic return mapping. One blended entry point, ``kirchhoff_stress``, dispatches on the
material kind read from the material table.
"""
import taichi as ti

FLUID, ELASTIC, PLASTIC = 0, 1, 2  # keep in step with polyalloy.materials


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
def kirchhoff_stress(mats: ti.template(), mat: ti.i32, F, C, Jp):
    """Kirchhoff stress (Pa) of a particle of material ``mat`` with deformation gradient ``F``,
    affine velocity ``C`` and plastic volume ratio ``Jp``."""
    kind = mats.kind[mat]
    tau = ti.Matrix.zero(float, F.n, F.n)
    if kind == FLUID:
        tau = fluid_stress(F.determinant(), C, mats.bulk[mat], mats.viscosity[mat])
    else:
        hardening = 1.0
        if kind == PLASTIC:
            hardening = ti.exp(mats.hardening[mat] * (1.0 - Jp))
        tau = corotated_stress(F, mats.mu[mat] * hardening, mats.lam[mat] * hardening)
    return tau


@ti.func
def project_deformation(mats: ti.template(), mat: ti.i32, F, Jp):
    """After F = (I + dt C) F: a liquid keeps only its volume change (F = J^(1/d) I, so no
    shear memory); an elasto-plastic solid clamps the singular values of F to
    [1 - theta_c, 1 + theta_s] (Stomakhin et al. 2013) and moves the excess volume into Jp."""
    dim = ti.static(F.n)
    kind = mats.kind[mat]
    F_new = F
    Jp_new = Jp
    if kind == FLUID:
        J = F.determinant()
        F_new = ti.Matrix.identity(float, dim) * ti.pow(ti.max(J, 1e-6), 1.0 / dim)
    elif kind == PLASTIC:
        U, sig, V = ti.svd(F)
        for d in ti.static(range(dim)):
            s = ti.min(ti.max(sig[d, d], 1.0 - mats.theta_c[mat]), 1.0 + mats.theta_s[mat])
            Jp_new *= sig[d, d] / s
            sig[d, d] = s
        F_new = U @ sig @ V.transpose()
    return F_new, Jp_new
