"""Materials: documented SI parameters on the host, one row each in the device material table.

Each class names a constitutive model of ``kernels.constitutive``; particles of several
materials share one grid and look their parameters up by material id. Moduli are
art-directed (softer than real metal or water) so that a preview runs at a usable time
step; the stable step follows from them (``kernels.constitutive.wave_speed`` of each particle's
state, and ``kinematic_viscosity``) and is chosen automatically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from polyalloy.errors import ConfigError
from polyalloy.kernels.kinds import ELASTIC, FLUID, PLASTIC, POLYALLOY  # noqa: F401  (the kinds, defined once)

NO_TRANSITION = 1.0e30  # K: the melting point of a material without a phase change


def _check_range(obj, name: str, lo: float, hi: float, lo_open: bool = False):
    v = getattr(obj, name)
    ok = isinstance(v, (int, float)) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{type(obj).__name__}.{name} = {v!r} is out of range {bracket}{lo:g}, {hi:g}]")


@dataclass
class Material:
    """Base: ``density`` (kg/m^3) and the thermal properties every material has.

    ``specific_heat`` c_s (J/(kg K)) below the transition and ``specific_heat_liquid`` c_l
    above it (None: the same), ``conductivity`` k (W/(m K); 0 insulates), ``melting_point``
    T_m (K; None: no phase change) with ``latent_heat`` L (J/kg). Specific enthalpy (J/kg)
    from 0 K: c_s T below T_m, a plateau of width L at T_m, and c_s T_m + L + c_l (T - T_m)
    above it. Particles store it relative to its value at a reference temperature T_ref near
    the material's working range (``thermal``), so that f32 keeps the small changes a heat
    source makes; ``kernels.heat`` evaluates the curve in that form. ``mixing`` D (m^2/s): how
    fast this material, while liquid, exchanges composition with the liquids it touches (an
    eddy diffusivity; ``kernels.mixing``); 0, the default, keeps it apart.
    """

    density: float = 1000.0
    specific_heat: float = 1000.0
    specific_heat_liquid: float | None = None
    conductivity: float = 0.0
    melting_point: float | None = None
    latent_heat: float = 0.0
    mixing: float = 0.0
    kind = -1

    def __post_init__(self):
        _check_range(self, "density", 0.0, 1e5, lo_open=True)
        _check_range(self, "specific_heat", 0.0, 1e6, lo_open=True)
        if self.specific_heat_liquid is not None:
            _check_range(self, "specific_heat_liquid", 0.0, 1e6, lo_open=True)
        _check_range(self, "conductivity", 0.0, 1e9)
        if self.melting_point is not None:
            _check_range(self, "melting_point", 0.0, 1e5, lo_open=True)
        _check_range(self, "latent_heat", 0.0, 1e8)
        _check_range(self, "mixing", 0.0, 10.0)

    def thermal(self, T_ref: float = 293.15) -> dict:
        """Thermal columns of the device row (SI) for enthalpy stored relative to its value at
        ``T_ref`` (K): ``T_ref``, ``h_solidus`` (the stored enthalpy at the solid end of the
        melting plateau) and ``H_ref`` (the enthalpy from 0 K at T_ref, for the host's energy
        accounts; not on the device)."""
        c_l = self.specific_heat if self.specific_heat_liquid is None else self.specific_heat_liquid
        T_m = NO_TRANSITION if self.melting_point is None else self.melting_point
        c_s, L = self.specific_heat, self.latent_heat
        H_ref = c_s * T_ref if T_ref <= T_m else c_s * T_m + L + c_l * (T_ref - T_m)
        return dict(c_s=c_s, c_l=c_l, conductivity=self.conductivity, T_m=T_m, latent=L, T_ref=T_ref,
                    h_solidus=c_s * T_m - H_ref, H_ref=H_ref)

    def diffusivity(self) -> float:
        """Largest thermal diffusivity k / (rho c) (m^2/s), for the explicit conduction step."""
        th = self.thermal()
        return self.conductivity / (self.density * min(th["c_s"], th["c_l"]))

    def kinematic_viscosity(self) -> float:
        """Largest kinematic viscosity eta / rho (m^2/s) of any phase, for the explicit viscous step."""
        return self.row()["viscosity"] / self.density

    def moduli(self) -> dict:
        """Parameters of the device row: ``mu``, ``lam`` (Lame, Pa), ``bulk`` (Pa), ``viscosity`` (Pa s),
        ``theta_c``/``theta_s`` (plastic compression/stretch limits) and ``hardening``."""
        raise NotImplementedError

    def row(self, T_ref: float = 293.15) -> dict:
        """The device row (``kernels.fields.MATERIAL_KEYS``), enthalpy relative to ``T_ref`` (K)."""
        r = dict(kind=self.kind, density=self.density, mu=0.0, lam=0.0, bulk=0.0, viscosity=0.0,
                 theta_c=0.0, theta_s=0.0, hardening=0.0, mu_f=0.0, lam_f=0.0, yield_strain=0.0,
                 fracture_strain=0.0, rubble_alpha=0.0, T_b=0.0, band=0.0, hysteresis=0.0, boils=0.0,
                 mixing=self.mixing)
        r.update(self.moduli())
        r.update(self.thermal(T_ref))
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


def drucker_prager_alpha(friction_angle: float) -> float:
    """The Drucker-Prager cone's slope alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi)) for a friction
    angle phi in degrees (Klar et al. 2016): the deviatoric Hencky strain may reach alpha times
    the pressure's share before the material slides."""
    sin_phi = math.sin(math.radians(friction_angle))
    return math.sqrt(2.0 / 3.0) * 2.0 * sin_phi / (3.0 - sin_phi)


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


@dataclass
class Polyalloy(Material):
    """The mimetic polyalloy, with three phases chosen by temperature (kernels.heat):

    - *frozen* below ``brittle_point`` T_b (K): stiff fixed-corotated solid
      (``frozen_youngs_modulus``), brittle: a particle stretched past ``fracture_strain``
      (principal strain, varied +-30% per particle) is fully damaged and carries no tension.
      Fully damaged frozen material is rubble: a cohesionless Drucker-Prager granular solid
      (Hencky strain and stress) with ``rubble_friction_angle`` (degrees) that keeps the dilation it opened, so loose
      rubble falls and piles up (with a slope) instead of springing apart.
    - *mimetic* between T_b and ``melting_point``: a soft "gelatine", fixed-corotated
      (``youngs_modulus``) with volume-preserving von Mises plasticity: the deviatoric Hencky
      strain is capped at ``yield_strain``, so it flows through gaps and keeps its volume.
    - *molten* above the melting point: a weakly compressible liquid (``bulk_modulus``,
      ``viscosity``).

    Stiffness blends across ``band`` (K) around T_b and across the latent plateau, so nothing
    jumps; the stored phase (for rendering and control) switches with ``hysteresis`` (K).
    Thermal values are art-directed: the conductivity is ~1000x a real metal's so that a limb
    freezes in about a second instead of an hour.
    """

    density: float = 7000.0
    specific_heat: float = 450.0
    conductivity: float = 3.0e4
    melting_point: float | None = 1200.0
    latent_heat: float = 2.5e5
    youngs_modulus: float = 3.0e5
    poisson_ratio: float = 0.3
    yield_strain: float = 0.02
    frozen_youngs_modulus: float = 5.0e6
    fracture_strain: float = 0.05
    rubble_friction_angle: float = 45.0
    bulk_modulus: float = 2.0e5
    viscosity: float = 0.5
    brittle_point: float = 150.0
    band: float = 10.0
    hysteresis: float = 5.0

    kind = POLYALLOY

    def __post_init__(self):
        super().__post_init__()
        for name, hi in (("youngs_modulus", 1e12), ("frozen_youngs_modulus", 1e12), ("bulk_modulus", 1e12)):
            _check_range(self, name, 0.0, hi, lo_open=True)
        _check_range(self, "poisson_ratio", -0.99, 0.49)
        _check_range(self, "yield_strain", 0.0, 10.0, lo_open=True)
        _check_range(self, "fracture_strain", 0.0, 10.0, lo_open=True)
        _check_range(self, "rubble_friction_angle", 0.0, 80.0)
        _check_range(self, "viscosity", 0.0, 1e9)
        _check_range(self, "brittle_point", 0.0, 1e5, lo_open=True)
        _check_range(self, "band", 0.0, 1e3, lo_open=True)
        _check_range(self, "hysteresis", 0.0, 1e3)
        if self.melting_point is None or self.melting_point <= self.brittle_point + 2 * self.band:
            raise ConfigError(f"Polyalloy.melting_point ({self.melting_point}) must lie above brittle_point + "
                              f"2 band ({self.brittle_point + 2 * self.band:g} K)")

    def moduli(self):
        mu, lam = _lame(self.youngs_modulus, self.poisson_ratio)
        mu_f, lam_f = _lame(self.frozen_youngs_modulus, self.poisson_ratio)
        return dict(mu=mu, lam=lam, mu_f=mu_f, lam_f=lam_f, bulk=self.bulk_modulus, viscosity=self.viscosity,
                    yield_strain=self.yield_strain, fracture_strain=self.fracture_strain,
                    rubble_alpha=drucker_prager_alpha(self.rubble_friction_angle),
                    T_b=self.brittle_point, band=self.band, hysteresis=self.hysteresis)


@dataclass
class LiquidNitrogen(Fluid):
    """Liquid nitrogen: a cryogenic liquid at its boiling point, 77.4 K. Its ``melting_point``
    field holds the *boiling* point and ``latent_heat`` the heat of vaporisation (199 kJ/kg);
    a particle that has taken in all of it boils off (retires from the simulation, its energy
    kept in the budget as vapour). Conductivity art-directed (~10^4 x real: the violent
    film boiling of a real spill moves heat far faster than conduction in the still liquid)."""

    density: float = 807.0
    specific_heat: float = 2040.0
    conductivity: float = 1500.0
    melting_point: float | None = 77.4
    latent_heat: float = 1.99e5
    bulk_modulus: float = 1.0e5
    viscosity: float = 1.6e-4

    def row(self, T_ref: float = 293.15):
        r = super().row(T_ref)
        r["boils"] = 1.0
        return r


@dataclass
class MoltenSteel(Fluid):
    """Molten steel, poured at ~1800 K: a hot weakly compressible liquid and a heat source.
    Below its melting point (1700 K) its enthalpy crosses the latent plateau (it releases its
    heat of fusion) but it stays liquid mechanically. Conductivity art-directed (~1000x real)."""

    density: float = 7000.0
    specific_heat: float = 820.0
    conductivity: float = 4.0e4
    melting_point: float | None = 1700.0
    latent_heat: float = 2.7e5
    bulk_modulus: float = 2.0e5
    viscosity: float = 0.05


MATERIALS = {"fluid": Fluid, "elastic": Elastic, "elastoplastic": ElastoPlastic, "polyalloy": Polyalloy,
             "liquid_nitrogen": LiquidNitrogen, "molten_steel": MoltenSteel}
