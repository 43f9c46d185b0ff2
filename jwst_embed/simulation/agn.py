"""Active nuclei and Little Red Dots in the mock survey: reddened power laws, broad lines, dense gas.

JWST finds many compact red sources at z ~ 4-9 whose spectra galaxies alone cannot make: a
blue, nearly dust-free component beside a heavily reddened one (the "V" shape), broad Balmer
lines (FWHM ~1,000-4,000 km/s, H-alpha equivalent widths of hundreds of A), Balmer breaks from
dense gas around the nucleus rather than old stars, and strong He I. A model that never saw
them reads a broad H-alpha as [OIII] 5007. This module adds such a nucleus to a mock galaxy's
rest-frame spectrum, batched in torch:

- continuum ``f_lambda ~ lambda^beta`` (``agn_beta``), Calzetti-attenuated by ``agn_av``,
  scaled so that at 5500 A it is ``agn_fraction`` times the galaxy's own attenuated light;
- a dense-gas Balmer break: the continuum blueward of 3646 A is suppressed by
  ``agn_balmer_break`` (0-1), smoothly over the crowded high-order lines to 3800 A;
- broad H-alpha with rest equivalent width ``agn_halpha_ew`` (A) against that continuum and
  ``agn_fwhm_kms``; H-beta to H-epsilon and Paschen alpha to delta in Case B ratios, attenuated
  like the continuum; He I 10830 and 5876 at ``agn_hei`` and ``agn_hei / 3`` of H-beta.

`sample_agn_parameters` draws which objects host one and its parameters; the galaxy's stellar
mass label is unchanged (the nucleus adds light, not stars).
"""

from __future__ import annotations

import math

import torch

__all__ = ["AGN_PARAMETER_NAMES", "agn_rest_frame", "sample_agn_parameters"]

#: Keys of an AGN parameter dict; each value is a (B,) tensor (``agn_fraction`` 0 = no nucleus).
AGN_PARAMETER_NAMES = (
    "agn_fraction",
    "agn_beta",
    "agn_av",
    "agn_balmer_break",
    "agn_halpha_ew",
    "agn_fwhm_kms",
    "agn_hei",
)

# vacuum rest wavelengths (A) and Case B intensities relative to H-beta (10^4 K)
_BROAD_LINES = (
    (6564.61, 2.86),
    (4862.68, 1.0),
    (4341.69, 0.468),
    (4102.89, 0.259),
    (3971.20, 0.159),
    (18756.1, 0.332),
    (12821.6, 0.162),
    (10941.1, 0.090),
    (10052.1, 0.056),
)
_HEI = ((10833.3, 1.0), (5877.25, 1.0 / 3.0))
_HALPHA_A = 6564.61
_C_KMS = 299792.458


def _uniform(n, low, high, generator, device):
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def sample_agn_parameters(redshift: torch.Tensor, generator: torch.Generator, fraction_low_z: float = 0.03,
                          fraction_high_z: float = 0.10) -> dict[str, torch.Tensor]:
    """Draw which objects host a nucleus (more often at z > 3, where Little Red Dots live) and its parameters.

    Parameters
    ----------
    redshift : `torch.Tensor`
        (B,) redshifts.
    generator : `torch.Generator`
        Random source on the same device.
    fraction_low_z, fraction_high_z : float
        Fraction of objects with a nucleus below z = 2 and above z = 4 (linear in between).

    Returns
    -------
    params : dict of (B,) float32 tensors
        ``AGN_PARAMETER_NAMES``; ``agn_fraction`` is 0 for objects without a nucleus.

    Examples
    --------
    >>> import torch
    >>> p = sample_agn_parameters(torch.full((1000,), 6.0), torch.Generator().manual_seed(0))
    >>> 0.05 < float((p["agn_fraction"] > 0).float().mean()) < 0.15
    True
    """
    n, device, g = redshift.numel(), redshift.device, generator
    weight = ((redshift.float() - 2.0) / 2.0).clamp(0.0, 1.0)
    probability = fraction_low_z + (fraction_high_z - fraction_low_z) * weight
    hosts = torch.rand(n, generator=g, device=device) < probability
    log_fraction = _uniform(n, math.log(0.3), math.log(30.0), g, device)
    has_break = torch.rand(n, generator=g, device=device) < 0.5
    return {
        "agn_fraction": torch.where(hosts, log_fraction.exp(), torch.zeros(n, device=device)),
        "agn_beta": _uniform(n, -2.6, -1.4, g, device),
        "agn_av": _uniform(n, 0.0, 4.0, g, device),
        "agn_balmer_break": torch.where(has_break, _uniform(n, 0.3, 0.85, g, device), torch.zeros(n, device=device)),
        "agn_halpha_ew": _uniform(n, math.log(100.0), math.log(2000.0), g, device).exp(),
        "agn_fwhm_kms": _uniform(n, 1000.0, 4000.0, g, device),
        "agn_hei": _uniform(n, 0.05, 0.6, g, device),
    }


def agn_rest_frame(params: dict[str, torch.Tensor], library, galaxy_l_nu: torch.Tensor) -> torch.Tensor:
    """(B, L_rest) rest-frame L_nu of each object's nucleus, in the units of ``galaxy_l_nu``.

    Parameters
    ----------
    params : dict of (B,) tensors
        ``AGN_PARAMETER_NAMES``.
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`
        Its rest wavelength grid and Calzetti curve.
    galaxy_l_nu : `torch.Tensor`
        (B, L_rest) the galaxy's attenuated rest-frame L_nu (sets the nucleus' scale).

    Returns
    -------
    l_nu : `torch.Tensor`
        Zero rows for objects whose ``agn_fraction`` is 0.
    """
    dtype, device = galaxy_l_nu.dtype, galaxy_l_nu.device
    wavelength = library.wavelength.to(device, dtype)  # um
    wavelength_a = wavelength * 1e4
    log_wavelength = wavelength.log()
    curve = library.attenuation_curve.to(device, dtype)
    p = {key: params[key].to(device, dtype)[:, None] for key in AGN_PARAMETER_NAMES}
    dust = torch.pow(10.0, -0.4 * p["agn_av"] * curve[None, :])
    # f_lambda ~ lambda^beta  <=>  L_nu ~ lambda^(beta + 2); 1 at 5500 A before dust
    continuum = (wavelength[None, :] / 0.55) ** (p["agn_beta"] + 2.0)
    ramp = ((wavelength_a - 3646.0) / (3800.0 - 3646.0)).clamp(0.0, 1.0)[None, :]
    continuum = continuum * (1.0 - p["agn_balmer_break"] * (1.0 - ramp))
    continuum = torch.where(wavelength_a[None, :] < 912.0, torch.zeros_like(continuum), continuum)
    # continuum at H-alpha before dust (the lines and continuum are attenuated alike below)
    at_halpha = (_HALPHA_A / 5500.0) ** (p["agn_beta"] + 2.0)
    sigma = p["agn_fwhm_kms"] / _C_KMS / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    sigma = sigma.clamp(min=0.5 * library.log_wavelength_step)
    # H-alpha flux / L_nu(H-alpha) = EW c / lambda^2; a line of flux F is L_nu = F g(ln lambda) lambda / c
    halpha = p["agn_halpha_ew"] * at_halpha / _HALPHA_A**2  # x c, cancelled below
    lines = torch.zeros_like(continuum)
    # intensities relative to H-alpha (H-beta = H-alpha / 2.86)
    for centre_a, strength in (
        *((c, r / 2.86) for c, r in _BROAD_LINES),
        *((c, r * p["agn_hei"] / 2.86) for c, r in _HEI),
    ):
        profile = torch.exp(-0.5 * ((log_wavelength[None, :] - math.log(centre_a * 1e-4)) / sigma) ** 2)
        profile = profile / (sigma * math.sqrt(2.0 * math.pi))  # density per unit ln(lambda)
        lines = lines + halpha * strength * profile * wavelength_a[None, :]
    nucleus = (continuum + lines) * dust
    # scale: agn_fraction times the galaxy's attenuated L_nu at 5500 A
    index = int(torch.argmin((wavelength - 0.55).abs()))
    galaxy_5500 = galaxy_l_nu[:, index : index + 1].clamp(min=0.0)
    nucleus_5500 = nucleus[:, index : index + 1].clamp(min=1e-30)
    return nucleus * (p["agn_fraction"] * galaxy_5500 / nucleus_5500)
