"""Materials: documented SI parameters on the host, one row each in the device material table.

Each class names a constitutive model of ``kernels.constitutive``; particles of several
materials share one grid and look their parameters up by material id. Moduli are
art-directed (softer than real metal or water) so that a preview runs at a usable time
step; the stable step follows from them (``wave_speed``) and is chosen automatically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from polyalloy.errors import ConfigError

FLUID, ELASTIC, PLASTIC = 0, 1, 2


def _check_range(obj, name: str, lo: float, hi: float, lo_open: bool = False):
    v = getattr(obj, name)
    ok = isinstance(v, (int, float)) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{type(obj).__name__}.{name} = {v!r} is out of range {bracket}{lo:g}, {hi:g}]")


@dataclass
class Material:
    """Base: ``density`` in kg/m^3."""

    density: float = 1000.0
    kind = -1

    def __post_init__(self):
        _check_range(self, "density", 0.0, 1e5, lo_open=True)

    def moduli(self) -> dict:
        """Parameters of the device row: ``mu``, ``lam`` (Lame, Pa), ``bulk`` (Pa), ``viscosity`` (Pa s),
        ``theta_c``/``theta_s`` (plastic compression/stretch limits) and ``hardening``."""
        raise NotImplementedError

    def wave_speed(self) -> float:
        """Speed of the fastest elastic wave (m/s): sqrt((lambda + 2 mu) / rho), or sqrt(K / rho)."""
        m = self.row()
        return math.sqrt(max(m["lam"] + 2 * m["mu"], m["bulk"]) / self.density)

    def row(self) -> dict:
        r = dict(kind=self.kind, density=self.density, mu=0.0, lam=0.0, bulk=0.0, viscosity=0.0,
                 theta_c=0.0, theta_s=0.0, hardening=0.0)
        r.update(self.moduli())
        return r

    def replace(self, **changes) -> "Material":
        names = {f.name for f in fields(self)}
        for k in changes:
            if k not in names:
                raise ConfigError(f"{type(self).__name__} has no parameter {k!r}; it has {', '.join(sorted(names))}")
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


@dataclass
class Fluid(Material):
    """Weakly compressible liquid: pressure p = K (1 - J) with J the volume ratio, plus a
    Newtonian viscous stress 2 eta sym(grad v). ``bulk_modulus`` K (Pa), ``viscosity`` eta (Pa s)."""

    bulk_modulus: float = 2.0e5
    viscosity: float = 1.0e-3

    def __post_init__(self):
        super().__post_init__()
        _check_range(self, "bulk_modulus", 0.0, 1e12, lo_open=True)
        _check_range(self, "viscosity", 0.0, 1e9)

    kind = FLUID

    def moduli(self):
        return dict(bulk=self.bulk_modulus, viscosity=self.viscosity)


def _lame(E: float, nu: float) -> tuple[float, float]:
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


@dataclass
class Elastic(Material):
    """Fixed-corotated hyperelastic solid (Stomakhin et al. 2012): ``youngs_modulus`` E (Pa),
    ``poisson_ratio`` nu (-)."""

    youngs_modulus: float = 1.0e5
    poisson_ratio: float = 0.3

    kind = ELASTIC

    def __post_init__(self):
        super().__post_init__()
        _check_range(self, "youngs_modulus", 0.0, 1e12, lo_open=True)
        _check_range(self, "poisson_ratio", -0.99, 0.49)

    def moduli(self):
        mu, lam = _lame(self.youngs_modulus, self.poisson_ratio)
        return dict(mu=mu, lam=lam)


@dataclass
class ElastoPlastic(Elastic):
    """Fixed-corotated solid whose singular values of F are clamped to [1 - theta_c, 1 + theta_s]
    (Stomakhin et al. 2013, snow); the clamped part becomes permanent deformation. ``hardening``
    xi stiffens compressed material by exp(xi (1 - Jp)); 0 gives perfect plasticity."""

    yield_compression: float = 2.5e-2
    yield_stretch: float = 7.5e-3
    hardening: float = 0.0

    kind = PLASTIC

    def __post_init__(self):
        super().__post_init__()
        _check_range(self, "yield_compression", 0.0, 1.0, lo_open=True)
        _check_range(self, "yield_stretch", 0.0, 10.0, lo_open=True)
        _check_range(self, "hardening", 0.0, 50.0)

    def moduli(self):
        m = super().moduli()
        m.update(theta_c=self.yield_compression, theta_s=self.yield_stretch, hardening=self.hardening)
        return m


MATERIALS = {"fluid": Fluid, "elastic": Elastic, "elastoplastic": ElastoPlastic}
