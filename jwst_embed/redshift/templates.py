"""Rest-frame templates for redshift fitting: stellar populations, AGN, lines, breaks, DLAs.

A template set for JWST spectra must span more than star-forming and quiescent galaxies:
a set without broad lines reads a Little Red Dot's broad H-alpha as [OIII] 5007 (1 + z off by
6563 / 5007), and one without a fixed [OIII] / H-beta ratio cannot follow extreme emission-line
galaxies. Two kinds of template are combined non-negatively by the fitter
(`~jwst_embed.redshift.TemplateFitter`):

`SEDTemplate`
    A galaxy from the simulator's SED model (`~jwst_embed.simulation.sed.SEDModel`): a
    star-formation history, metallicity, nebular emission and Calzetti (2000) dust. It is only
    allowed at redshifts where its oldest stars are younger than the Universe.
`ComponentTemplate`
    A physical component the SED model does not make, built analytically on the library's
    rest-frame grid, allowed at every redshift:

    - ``"power_law"``: an AGN continuum ``f_lambda ~ lambda^beta`` reddened by ``dust_av``;
      with ``balmer_break`` > 0, the flux blueward of the Balmer limit (3646 A) is suppressed
      by that fraction, smoothly over the crowded high-order Balmer lines (3646-3800 A), as
      dense gas around a Little Red Dot's nucleus does;
    - ``"lines"``: emission lines (`LINES` names with relative fluxes) of Gaussian profile with
      ``fwhm_kms`` (narrow lines are unresolved at PRISM resolution, broad ones of AGN are
      1,000-4,000 km/s), reddened by ``dust_av``; each line group is one template, so the
      ratios *between* groups (e.g. [OIII] to H-beta) are free in the fit;
    - ``"dla"``: a young star-forming population (10 Myr, nebular emission) seen through a damped
      Lyman-alpha absorber of column density ``10**log_nhi`` cm^-2 (Lorentzian damping wings).

`DEFAULT_TEMPLATES` lists the default set. Line wavelengths are vacuum rest wavelengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "LINES",
    "SEDTemplate",
    "ComponentTemplate",
    "DEFAULT_TEMPLATES",
    "GALAXY_TEMPLATES",
    "rest_frame_templates",
]

#: Vacuum rest wavelengths (Angstrom) of the emission lines the component templates use.
LINES: dict[str, float] = {
    "Lya": 1215.67,
    "OII3727": 3727.09,
    "OII3730": 3729.88,
    "NeIII3870": 3870.86,
    "Heps": 3971.20,
    "Hdelta": 4102.89,
    "Hgamma": 4341.69,
    "Hbeta": 4862.68,
    "OIII4960": 4960.30,
    "OIII5008": 5008.24,
    "HeI5877": 5877.25,
    "NII6550": 6549.86,
    "Halpha": 6564.61,
    "NII6585": 6585.27,
    "SII6718": 6718.29,
    "SII6733": 6732.67,
    "SIII9071": 9071.1,
    "SIII9533": 9533.2,
    "Padelta": 10052.1,
    "HeI10833": 10833.3,
    "Pagamma": 10941.1,
    "Pabeta": 12821.6,
    "Paalpha": 18756.1,
}

# Case B recombination (T = 10^4 K, n_e = 100 cm^-3), relative to H-beta.
_BALMER = {"Halpha": 2.86, "Hbeta": 1.0, "Hgamma": 0.468, "Hdelta": 0.259, "Heps": 0.159}
_PASCHEN = {"Paalpha": 0.332, "Pabeta": 0.162, "Pagamma": 0.090, "Padelta": 0.056}

_BALMER_LIMIT_A = 3646.0
_C_KMS = 299792.458


@dataclass(frozen=True)
class SEDTemplate:
    """One rest-frame galaxy template, as parameters of the simulator's SED model.

    Parameters
    ----------
    name : str
        Short label.
    sfh_age_gyr : float
        Start of star formation (lookback, Gyr); also the age of the oldest stars,
        which sets the highest redshift at which the template is allowed.
    sfh_tau_gyr : float
        Delayed-tau timescale; large values give a nearly constant (rising) history.
    burst_fraction, burst_age_gyr : float
        A single-age burst; ``burst_fraction=1`` makes a simple stellar population.
    log_metallicity : float
        log10 Z/Zsun.
    log_u : float
        log10 ionisation parameter of the nebular emission (stars younger than 10 Myr).
    dust_av : float
        Calzetti (2000) V-band attenuation, mag.
    dust_young_extra : float
        Extra attenuation of stars younger than 10 Myr (and their nebular emission):
        ``dust_av * (1 + dust_young_extra)``.
    """

    name: str
    sfh_age_gyr: float
    sfh_tau_gyr: float = 100.0
    burst_fraction: float = 0.0
    burst_age_gyr: float = 0.0
    log_metallicity: float = -0.3
    log_u: float = -2.5
    dust_av: float = 0.0
    dust_young_extra: float = 0.0

    @property
    def oldest_age_gyr(self) -> float:
        """Age of the oldest stars in the template (Gyr)."""
        return max(self.sfh_age_gyr, self.burst_age_gyr if self.burst_fraction > 0 else 0.0)


@dataclass(frozen=True)
class ComponentTemplate:
    """One analytic rest-frame component: AGN power law, a group of lines, or a DLA galaxy.

    Parameters
    ----------
    name : str
        Short label.
    kind : {"power_law", "lines", "dla"}
        What the component is (see the module docstring).
    beta : float
        ``"power_law"``: slope of ``f_lambda ~ lambda^beta``.
    balmer_break : float
        ``"power_law"``: fraction (0-1) of the flux removed blueward of the Balmer limit.
    lines : tuple of (str, float)
        ``"lines"``: names in `LINES` and their relative fluxes.
    fwhm_kms : float
        ``"lines"``: full width at half maximum of each line (km/s).
    dust_av : float
        Calzetti (2000) V-band attenuation of the component, mag.
    log_nhi : float
        ``"dla"``: log10 of the neutral hydrogen column density (cm^-2).

    Examples
    --------
    >>> from jwst_embed.redshift import ComponentTemplate
    >>> ComponentTemplate("oiii", "lines", lines=(("OIII4960", 1.0), ("OIII5008", 2.98))).oldest_age_gyr
    0.0
    """

    name: str
    kind: str
    beta: float = -2.0
    balmer_break: float = 0.0
    lines: tuple[tuple[str, float], ...] = ()
    fwhm_kms: float = 150.0
    dust_av: float = 0.0
    log_nhi: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("power_law", "lines", "dla"):
            raise ValueError(f"ComponentTemplate {self.name!r}: unknown kind {self.kind!r}")
        unknown = [line for line, _ in self.lines if line not in LINES]
        if unknown:
            raise ValueError(f"ComponentTemplate {self.name!r}: unknown lines {unknown}; known: {sorted(LINES)}")
        if self.kind == "lines" and not self.lines:
            raise ValueError(f"ComponentTemplate {self.name!r}: a 'lines' template needs lines")
        if not 0.0 <= self.balmer_break < 1.0:
            raise ValueError(f"ComponentTemplate {self.name!r}: balmer_break must be in [0, 1)")

    @property
    def oldest_age_gyr(self) -> float:
        """0: a component carries no age constraint (allowed at every redshift)."""
        return 0.0


def _lines(names: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(names.items())


#: Galaxies from the SED model: what the mock survey's priors span, coarsely.
GALAXY_TEMPLATES: tuple[SEDTemplate, ...] = (
    # birth-cloud dominated: strong nebular lines and continuum, low and moderate metallicity
    SEDTemplate("sf_10myr_lowz", 0.01, log_metallicity=-1.0, log_u=-2.0),
    SEDTemplate("sf_10myr", 0.01, log_metallicity=-0.4, log_u=-3.0),
    # roughly constant star formation of increasing duration
    SEDTemplate("sf_50myr", 0.05, log_metallicity=-0.7, log_u=-2.3),
    SEDTemplate("sf_200myr", 0.2, log_metallicity=-0.5, log_u=-2.5),
    SEDTemplate("sf_1gyr", 1.0, log_metallicity=-0.3, log_u=-2.5),
    # dusty star formation
    SEDTemplate("sf_200myr_av1", 0.2, log_metallicity=-0.3, dust_av=1.0),
    SEDTemplate("sf_1gyr_av1", 1.0, log_metallicity=-0.2, dust_av=1.0),
    SEDTemplate("sf_1gyr_av2.5", 1.0, log_metallicity=0.0, dust_av=2.5),
    SEDTemplate(
        "sf_300myr_av3", 0.3, log_metallicity=-0.3, log_u=-2.0, dust_av=3.0, dust_young_extra=0.5
    ),
    # single-age populations: post-starburst to old quiescent
    SEDTemplate("ssp_300myr", 0.3, burst_fraction=1.0, burst_age_gyr=0.3, log_metallicity=-0.3),
    SEDTemplate("ssp_1gyr", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, log_metallicity=0.0),
    SEDTemplate("ssp_3gyr", 3.0, burst_fraction=1.0, burst_age_gyr=3.0, log_metallicity=0.0),
    SEDTemplate("ssp_10gyr", 10.0, burst_fraction=1.0, burst_age_gyr=10.0, log_metallicity=0.1),
    SEDTemplate("ssp_1gyr_av1", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, dust_av=1.0),
    # old metal-poor populations (declining histories of low-mass galaxies)
    SEDTemplate("ssp_1gyr_lowz", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, log_metallicity=-0.8),
    SEDTemplate("ssp_3gyr_lowz", 3.0, burst_fraction=1.0, burst_age_gyr=3.0, log_metallicity=-0.8),
)

#: The default template set (32 templates): galaxies, AGN continua, broad and strong narrow lines,
#: dense-gas Balmer breaks and damped Lyman-alpha.
DEFAULT_TEMPLATES: tuple[SEDTemplate | ComponentTemplate, ...] = GALAXY_TEMPLATES + (
    # AGN continua: unobscured and reddened (two together make a Little Red Dot's "V")
    ComponentTemplate("agn_blue", "power_law", beta=-2.3),
    ComponentTemplate("agn_av2", "power_law", beta=-2.0, dust_av=2.0),
    ComponentTemplate("agn_av4", "power_law", beta=-2.0, dust_av=4.0),
    # dense gas in front of a reddened nucleus: a strong Balmer break without old stars
    ComponentTemplate("agn_break_av1", "power_law", beta=-2.0, dust_av=1.0, balmer_break=0.7),
    ComponentTemplate("agn_break_av3", "power_law", beta=-2.0, dust_av=3.0, balmer_break=0.7),
    # broad lines of an AGN (Case B ratios, reddened; He I separately: it varies)
    ComponentTemplate("broad_balmer", "lines", lines=_lines(_BALMER), fwhm_kms=2500.0),
    ComponentTemplate("broad_balmer_av2", "lines", lines=_lines(_BALMER), fwhm_kms=2500.0, dust_av=2.0),
    ComponentTemplate("broad_balmer_av4", "lines", lines=_lines(_BALMER), fwhm_kms=2500.0, dust_av=4.0),
    ComponentTemplate(
        "broad_paschen_hei", "lines", fwhm_kms=2500.0,
        lines=(*_lines(_PASCHEN), ("HeI10833", 0.3), ("HeI5877", 0.1)),
    ),  # fmt: skip
    # strong narrow lines with free ratios between groups
    ComponentTemplate("oiii", "lines", lines=(("OIII4960", 1.0), ("OIII5008", 2.98))),
    ComponentTemplate("hydrogen", "lines", lines=_lines({**_BALMER, **_PASCHEN})),
    ComponentTemplate(
        "oii_neiii", "lines", lines=(("OII3727", 1.0), ("OII3730", 1.0), ("NeIII3870", 0.6))
    ),
    ComponentTemplate(
        "nii_sii", "lines",
        lines=(("NII6550", 0.34), ("NII6585", 1.0), ("SII6718", 0.6), ("SII6733", 0.45)),
    ),  # fmt: skip
    ComponentTemplate(
        "siii_hei", "lines", lines=(("SIII9071", 1.0), ("SIII9533", 2.44), ("HeI10833", 1.0))
    ),
    # young galaxies behind damped Lyman-alpha absorbers
    ComponentTemplate("dla_21.5", "dla", log_nhi=21.5),
    ComponentTemplate("dla_22.5", "dla", log_nhi=22.5),
)


def _dla_transmission(wavelength_a: torch.Tensor, log_nhi: float) -> torch.Tensor:
    """exp(-tau) of a damped Lyman-alpha absorber (Lorentzian wings; fully dark near line centre)."""
    # sigma = f (pi e^2 / m_e c) Lambda / (4 pi^2 dnu^2), f = 0.4164, Lambda = 6.265e8 s^-1
    cross_section_numerator = 0.4164 * 0.02654 * 6.265e8 / (4.0 * math.pi**2)
    lya = LINES["Lya"]
    dnu = 2.99792458e18 * (wavelength_a - lya).abs().clamp(min=1e-3) / lya**2
    tau = (10.0**log_nhi) * cross_section_numerator / dnu.square()
    return torch.exp(-tau.clamp(max=80.0))


def _line_profiles(wavelength_um: torch.Tensor, lines, fwhm_kms: float, log_step: float) -> torch.Tensor:
    """Sum of Gaussian lines of unit total flux x ratio, as L_nu on the log grid (arbitrary scale)."""
    log_wavelength = wavelength_um.log()
    # a narrow line is at least one pixel wide (unresolved on the library's grid)
    sigma = max(fwhm_kms / _C_KMS / (2.0 * math.sqrt(2.0 * math.log(2.0))), 0.5 * log_step)
    flux = torch.zeros_like(wavelength_um)
    for name, ratio in lines:
        centre = math.log(LINES[name] * 1e-4)
        profile = torch.exp(-0.5 * ((log_wavelength - centre) / sigma) ** 2)
        total = profile.sum()
        if total > 0:
            # per unit ln(lambda), f_lambda lambda = f_nu nu: L_nu ~ profile * lambda
            flux += ratio * profile / total * wavelength_um / (LINES[name] * 1e-4)
    return flux


def rest_frame_templates(templates, library) -> torch.Tensor:
    """(T, L_rest) float64 rest-frame L_nu of each template on the library's rest grid.

    Galaxy templates come from `~jwst_embed.simulation.sed.SEDModel.rest_frame` (per solar mass
    formed); components are on arbitrary scales (the fitter normalises every template).

    Parameters
    ----------
    templates : sequence of `SEDTemplate` or `ComponentTemplate`
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`

    Returns
    -------
    l_nu : `torch.Tensor`
    """
    from jwst_embed.simulation.sed import SEDModel

    model = SEDModel(library)
    wavelength = library.wavelength.double().cpu()
    wavelength_a = wavelength * 1e4
    curve = library.attenuation_curve.double().cpu()
    galaxies = [t for t in templates if isinstance(t, SEDTemplate)]
    young = SEDTemplate("dla_base", 0.01, log_metallicity=-1.0, log_u=-2.0)
    with_young = galaxies + [young]

    def column(name):
        return torch.tensor([float(getattr(t, name)) for t in with_young])

    params = {
        "redshift": torch.zeros(len(with_young)),
        "log_mass": torch.zeros(len(with_young)),
        "sfh_tau_gyr": column("sfh_tau_gyr"),
        "sfh_age_gyr": column("sfh_age_gyr"),
        "burst_fraction": column("burst_fraction"),
        "burst_age_gyr": column("burst_age_gyr"),
        "quench_age_gyr": torch.zeros(len(with_young)),
        "log_metallicity": column("log_metallicity"),
        "log_u": column("log_u"),
        "dust_av": column("dust_av"),
        "dust_young_extra": column("dust_young_extra"),
    }
    galaxy_l_nu = model.rest_frame(params)["l_nu"].double().cpu()
    rows = []
    for template in templates:
        if isinstance(template, SEDTemplate):
            rows.append(galaxy_l_nu[galaxies.index(template)])
            continue
        if not isinstance(template, ComponentTemplate):
            raise TypeError(f"templates must be SEDTemplate or ComponentTemplate, got {type(template).__name__}")
        dust = torch.pow(10.0, -0.4 * template.dust_av * curve)
        if template.kind == "power_law":
            # f_lambda ~ lambda^beta  <=>  f_nu ~ lambda^(beta + 2)
            l_nu = (wavelength / 0.5) ** (template.beta + 2.0)
            if template.balmer_break > 0:
                # 0 blueward of the Balmer limit, 1 redward of 3800 A (the crowded high-order lines)
                ramp = ((wavelength_a - _BALMER_LIMIT_A) / (3800.0 - _BALMER_LIMIT_A)).clamp(0.0, 1.0)
                l_nu = l_nu * (1.0 - template.balmer_break * (1.0 - ramp))
            # no flux beyond the Lyman limit
            l_nu = torch.where(wavelength_a < 912.0, torch.zeros_like(l_nu), l_nu)
        elif template.kind == "lines":
            l_nu = _line_profiles(wavelength, template.lines, template.fwhm_kms, library.log_wavelength_step)
        else:
            l_nu = galaxy_l_nu[-1] * _dla_transmission(wavelength_a, template.log_nhi)
        rows.append(l_nu * dust)
    return torch.stack(rows)
