"""NIRCam point-spread functions for the mock survey: obscured Airy patterns scaled to the flight FWHM.

The PSF of each band is the Airy pattern of a circular aperture with a linear
central obscuration of ``PSF_OBSCURATION`` (0.11, JWST's secondary mirror and
its supports expressed as an equivalent circular obscuration). JWST's
diffraction limit (lambda / 6.5 m) gives FWHMs that are too small at short
wavelengths, where wavefront errors, jitter and charge diffusion broaden the
core, so ``lambda / D`` is not taken from the telescope but *scaled so that the
FWHM equals the measured flight value* (``FLIGHT_PSF_FWHM``: 0.055" at F150W,
0.094" at F277W, 0.147" at F444W, the flight values adopted for the mock survey; an obscured
Airy pattern is within ~4% of the flight PSF's FWHM). For other bands the
ratio FWHM / pivot wavelength is interpolated linearly in wavelength between
those three bands and held constant outside them (0.0366"/um below F150W,
0.0333"/um above F444W).

The model has the core, the first rings and the exact band limit of a real
telescope (the optical transfer function is zero beyond ``k = 2 pi / (lambda/D)``),
which is what makes rendering in Fourier space exact; it lacks the hexagonal
spikes and the wings from segment gaps.

The optical transfer function (OTF, the Fourier transform of the unit-flux PSF)
of an annular pupil is its normalised autocorrelation, i.e. the overlap area of
two annuli, which has a closed form (`AiryPSF.otf`).

`pixel_noise_njy` turns a 5-sigma point-source depth into the per-pixel noise of the
mock images through the PSF's encircled energy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import torch
from scipy import optimize, special

from jwst_embed.bands import Band, get_band
from jwst_embed.preprocessing.images import DEFAULT_IMAGE_GRID, ImageGrid

__all__ = [
    "PSF_OBSCURATION",
    "FLIGHT_PSF_FWHM",
    "AiryPSF",
    "psf_fwhm",
    "jwst_psf",
    "pixel_noise_njy",
    "AB_ZEROPOINT_NJY",
]

#: Linear central obscuration (secondary-mirror diameter / primary diameter) of the Airy model.
PSF_OBSCURATION = 0.11

#: AB zero point in nJy: m_AB = -2.5 log10(f / nJy) + 31.4 (3631 Jy = 0 mag).
AB_ZEROPOINT_NJY = 31.4

#: Flight PSF FWHM of three reference bands (adopted for the mock survey); others are interpolated.
FLIGHT_PSF_FWHM: dict[str, u.Quantity] = {
    "F150W": 0.055 * u.arcsec,
    "F277W": 0.094 * u.arcsec,
    "F444W": 0.147 * u.arcsec,
}


def psf_fwhm(band: str | Band) -> u.Quantity:
    """FWHM of the mock PSF of a NIRCam band.

    The flight values of ``FLIGHT_PSF_FWHM`` for F150W, F277W and F444W; for other
    bands FWHM / pivot wavelength is interpolated linearly in pivot wavelength
    between them (constant beyond the ends).

    Parameters
    ----------
    band : str or `~jwst_embed.bands.Band`
        NIRCam band.

    Returns
    -------
    fwhm : `~astropy.units.Quantity`
        In arcsec.

    Raises
    ------
    ValueError
        If the band is unknown.

    Examples
    --------
    >>> from jwst_embed.simulation.psf import psf_fwhm
    >>> psf_fwhm("F277W")
    <Quantity 0.094 arcsec>
    >>> round(float(psf_fwhm("F115W").value), 4)
    0.0423
    """
    band = get_band(band)
    if band.name in FLIGHT_PSF_FWHM:
        return FLIGHT_PSF_FWHM[band.name]
    refs = sorted((get_band(name).pivot_wavelength.to_value(u.um), fwhm.to_value(u.arcsec))
                  for name, fwhm in FLIGHT_PSF_FWHM.items())
    pivots = np.array([p for p, _ in refs])
    ratios = np.array([f / p for p, f in refs])
    pivot = band.pivot_wavelength.to_value(u.um)
    return float(np.interp(pivot, pivots, ratios) * pivot) * u.arcsec


@functools.lru_cache(maxsize=16)
def _airy_half_width(obscuration: float) -> float:
    """Half width at half maximum of the obscured Airy pattern in units of lambda/D."""
    eps = obscuration

    def amplitude(v: float) -> float:
        # Field of an annular pupil, normalised to 1 at the centre; v = pi theta / (lambda/D).
        inner = eps**2 * 2 * special.j1(eps * v) / (eps * v) if eps > 0 else 0.0
        return (2 * special.j1(v) / v - inner) / (1 - eps**2)

    v_half = optimize.brentq(lambda v: amplitude(v) ** 2 - 0.5, 0.5, 2.5, xtol=1e-12)
    return v_half / math.pi


def _disk_overlap(r1: float, r2: float, d: torch.Tensor) -> torch.Tensor:
    """Area of the intersection of two disks of radii r1, r2 whose centres are d apart."""
    d = d.clamp_min(1e-12)
    c1 = ((d * d + r1 * r1 - r2 * r2) / (2 * d * r1)).clamp(-1.0, 1.0)
    c2 = ((d * d + r2 * r2 - r1 * r1) / (2 * d * r2)).clamp(-1.0, 1.0)
    kite = ((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)).clamp_min(0.0)
    lens = r1 * r1 * torch.acos(c1) + r2 * r2 * torch.acos(c2) - 0.5 * torch.sqrt(kite)
    lens = torch.where(d >= r1 + r2, torch.zeros_like(d), lens)
    return torch.where(d <= abs(r1 - r2), torch.full_like(d, math.pi * min(r1, r2) ** 2), lens)


@dataclass(frozen=True)
class AiryPSF:
    """An obscured Airy PSF, unit total flux.

    Parameters
    ----------
    band : str
        NIRCam band name (informative).
    fwhm : `~astropy.units.Quantity`
        Full width at half maximum (angle).
    obscuration : float
        Linear central obscuration, 0 <= obscuration < 1.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.psf import jwst_psf
    >>> psf = jwst_psf("F444W")
    >>> round(float(psf.lam_over_diam.value), 4), round(psf.cutoff_wavenumber, 1)
    (0.1438, 43.7)
    >>> psf.otf(torch.tensor([0.0, 100.0]))
    tensor([1.0000, 0.0000])
    """

    band: str
    fwhm: u.Quantity
    obscuration: float = PSF_OBSCURATION

    def __post_init__(self) -> None:
        fwhm = u.Quantity(self.fwhm)
        if not fwhm.unit.is_equivalent(u.arcsec):
            raise u.UnitsError(f"AiryPSF.fwhm must be an angle, got {self.fwhm!r}")
        if not (np.isfinite(fwhm.value) and fwhm.value > 0):
            raise ValueError(f"AiryPSF.fwhm must be positive and finite, got {self.fwhm!r}")
        if not 0.0 <= self.obscuration < 1.0:
            raise ValueError(f"AiryPSF.obscuration must be in [0, 1), got {self.obscuration!r}")
        object.__setattr__(self, "fwhm", fwhm.to(u.arcsec))

    @property
    def lam_over_diam(self) -> u.Quantity:
        """The effective lambda / D (arcsec) that gives this FWHM (GalSim's ``lam_over_diam``)."""
        return self.fwhm / (2 * _airy_half_width(float(self.obscuration)))

    @property
    def cutoff_wavenumber(self) -> float:
        """Angular wavenumber (rad / arcsec) beyond which the OTF is exactly zero: 2 pi D / lambda."""
        return 2 * math.pi / float(self.lam_over_diam.to_value(u.arcsec))

    def otf(self, wavenumber: torch.Tensor) -> torch.Tensor:
        """Optical transfer function at angular wavenumber ``|k|`` (rad / arcsec).

        The autocorrelation of the annular pupil, normalised to 1 at ``k = 0``:
        ``[O(1, 1) - 2 O(1, eps) + O(eps, eps)] / (pi (1 - eps^2))`` with ``O(r1, r2)``
        the overlap of two disks whose centres are ``2 k / k_cutoff`` apart.
        """
        eps = float(self.obscuration)
        d = 2.0 * wavenumber.abs() / self.cutoff_wavenumber
        overlap = _disk_overlap(1.0, 1.0, d)
        if eps > 0:
            overlap = overlap - 2 * _disk_overlap(1.0, eps, d) + _disk_overlap(eps, eps, d)
        return (overlap / (math.pi * (1 - eps * eps))).clamp_min(0.0)

    def surface_brightness(self, radius: np.ndarray | u.Quantity) -> np.ndarray:
        """PSF surface brightness (1 / arcsec^2, unit total flux) at angular radius (arcsec)."""
        theta = np.abs(u.Quantity(radius, u.arcsec).to_value(u.arcsec))
        lod = float(self.lam_over_diam.to_value(u.arcsec))
        eps = float(self.obscuration)
        v = np.maximum(math.pi * theta / lod, 1e-12)
        inner = eps**2 * 2 * special.j1(eps * v) / (eps * v) if eps > 0 else 0.0
        amplitude = (2 * special.j1(v) / v - inner) / (1 - eps**2)
        return math.pi * (1 - eps**2) / (4 * lod**2) * amplitude**2

    def encircled_energy(self, radius: u.Quantity | float) -> float:
        """Fraction of the flux within a circle of ``radius`` (arcsec) around the centre.

        From the OTF: ``EE(R) = R * integral_0^kc OTF(k) J1(k R) dk``.
        """
        r = float(u.Quantity(radius, u.arcsec).to_value(u.arcsec))
        if not (np.isfinite(r) and r > 0):
            raise ValueError(f"encircled_energy radius must be positive, got {radius!r}")
        k = np.linspace(0.0, self.cutoff_wavenumber, 20001)
        otf = self.otf(torch.from_numpy(k)).numpy()
        return float(r * np.trapezoid(otf * special.j1(k * r), k))


def jwst_psf(band: str | Band, fwhm: u.Quantity | None = None, obscuration: float = PSF_OBSCURATION) -> AiryPSF:
    """The mock PSF of a NIRCam band.

    Parameters
    ----------
    band : str or `~jwst_embed.bands.Band`
        NIRCam band.
    fwhm : `~astropy.units.Quantity`, optional
        Override the FWHM (default `psf_fwhm`).
    obscuration : float
        Linear central obscuration (default ``PSF_OBSCURATION``).

    Returns
    -------
    `AiryPSF`

    Examples
    --------
    >>> from jwst_embed.simulation.psf import jwst_psf
    >>> jwst_psf("F150W").fwhm
    <Quantity 0.055 arcsec>
    """
    band = get_band(band)
    return AiryPSF(band=band.name, fwhm=psf_fwhm(band) if fwhm is None else fwhm, obscuration=obscuration)


@functools.lru_cache(maxsize=256)
def _noise_factor(band_name: str, fwhm_arcsec: float, obscuration: float, pixel_arcsec: float, aperture_arcsec: float) -> float:
    """sigma_pixel / F_5sigma for one band, grid and aperture."""
    psf = AiryPSF(band=band_name, fwhm=fwhm_arcsec * u.arcsec, obscuration=obscuration)
    radius = aperture_arcsec / 2
    encircled = psf.encircled_energy(radius)
    pixels_in_aperture = math.pi * radius**2 / pixel_arcsec**2
    return encircled / (5.0 * math.sqrt(pixels_in_aperture))


def pixel_noise_njy(
    depth_ab,
    band: str | Band,
    grid: ImageGrid = DEFAULT_IMAGE_GRID,
    aperture_diameter: u.Quantity = 0.2 * u.arcsec,
    psf: AiryPSF | None = None,
):
    """Per-pixel noise sigma (nJy) on the model grid for a 5-sigma point-source depth.

    Convention: the depth ``m`` is the AB magnitude of a point source detected at 5 sigma
    in a circular aperture of ``aperture_diameter`` (default 0.2", as JADES and CEERS
    quote), *after* aperture correction to total flux. With white noise of ``sigma`` per
    pixel of side ``dx`` the aperture holds ``N = pi (d/2)^2 / dx^2`` pixels, and the point
    source puts the encircled-energy fraction ``EE(d/2)`` of its total flux
    ``F_5 = 10^(-0.4 (m - 31.4))`` nJy in it, so::

        5 = F_5 EE / (sigma sqrt(N))   =>   sigma = F_5 EE / (5 sqrt(N))

    ``EE`` is that of the band's mock PSF (``jwst_embed.simulation.psf.jwst_psf``). Noise
    correlations from drizzling are ignored (this is the white-noise equivalent).

    Parameters
    ----------
    depth_ab : float, array-like, `~astropy.units.Quantity` (ABmag) or `torch.Tensor`
        5-sigma point-source depth(s) in AB magnitudes.
    band : str or `~jwst_embed.bands.Band`
        NIRCam band.
    grid : `~jwst_embed.preprocessing.ImageGrid`
        Output pixel grid (its pixel scale sets ``dx``).
    aperture_diameter : `~astropy.units.Quantity`
        Diameter of the depth aperture.
    psf : `~jwst_embed.simulation.psf.AiryPSF`, optional
        PSF for the aperture correction (default: the band's mock PSF).

    Returns
    -------
    sigma : same kind as ``depth_ab``
        Per-pixel standard deviation in nJy (a tensor for a tensor input, else a numpy
        array or float).

    Raises
    ------
    ValueError
        If a depth is not finite.

    Examples
    --------
    >>> from jwst_embed.simulation.psf import pixel_noise_njy
    >>> round(float(pixel_noise_njy(29.0, "F150W")), 3)
    0.365
    """
    band = get_band(band)
    psf = jwst_psf(band) if psf is None else psf
    aperture = float(u.Quantity(aperture_diameter, u.arcsec).to_value(u.arcsec))
    if not (np.isfinite(aperture) and aperture > 0):
        raise ValueError(f"aperture_diameter must be positive, got {aperture_diameter!r}")
    factor = _noise_factor(
        band.name, float(psf.fwhm.to_value(u.arcsec)), float(psf.obscuration),
        float(grid.pixel_scale.to_value(u.arcsec)), aperture,
    )
    if isinstance(depth_ab, torch.Tensor):
        if not bool(torch.isfinite(depth_ab).all()):
            raise ValueError("depth_ab has non-finite values; give a finite 5-sigma depth (AB mag) per band")
        return factor * torch.pow(10.0, -0.4 * (depth_ab - AB_ZEROPOINT_NJY))
    if isinstance(depth_ab, u.Quantity):
        depth_ab = depth_ab.to_value(u.ABmag)
    depth = np.asarray(depth_ab, dtype=np.float64)
    if not np.all(np.isfinite(depth)):
        raise ValueError("depth_ab has non-finite values; give a finite 5-sigma depth (AB mag) per band")
    sigma = factor * 10.0 ** (-0.4 * (depth - AB_ZEROPOINT_NJY))
    return float(sigma) if sigma.ndim == 0 else sigma
