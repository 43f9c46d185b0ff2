"""Calibration systematics of PRISM spectra: flux-calibration and slit-loss tilts, wavelength shifts.

A reduced PRISM spectrum is not the source's spectrum times one number. The path-loss
correction assumes a source position and profile in the shutter; the PSF grows with
wavelength, so an error in either changes the throughput slowly from blue to red; the flux
calibration itself carries a smooth residual; and a source off the shutter centre along the
dispersion direction shifts every wavelength by a fraction of a detector pixel. Spectra that
are scaled to photometry by a low-order polynomial inherit all of this, to ~10-20% across the
range (e.g. the DJA / msaexp path-loss and the JADES slit-loss corrections).

The mock survey draws, per object:

- a smooth multiplicative factor ``exp(tilt x + curvature (x^2 - 1/3))`` with ``x`` = ln(lambda)
  mapped to -1 (0.6 um) ... 1 (5.3 um), ``tilt`` and ``curvature`` normal with standard
  deviations ``tilt_sigma`` and ``curvature_sigma`` (0.15 and 0.05: ~15% from end to middle);
- a wavelength shift of ``s`` native PRISM pixels (`~jwst_embed.simulation.prism_noise`:
  ``lambda / (2.3 R)``), ``s`` normal with standard deviation ``shift_sigma_pixels`` (0.1): the
  largest in ln(lambda) at ~1.2 um, where the resolving power is lowest (0.0013 in ln(lambda) for
  0.1 pixel).

Both act on the spectrum as the instrument delivers it (before noise); band fluxes and labels
are not touched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from jwst_embed.simulation.prism_noise import NATIVE_PIXELS_PER_RESEL
from jwst_embed.simulation.prism_resolution import resolving_power

__all__ = ["CALIBRATION_KEYS", "apply_calibration", "model_pixels_per_native_pixel", "sample_calibration"]

#: Per-object parameters of `sample_calibration` and `apply_calibration`.
CALIBRATION_KEYS = ("calibration_tilt", "calibration_curvature", "wavelength_shift_pixels")

_RANGE_UM = (0.6, 5.3)


def sample_calibration(
    n: int,
    generator: torch.Generator,
    tilt_sigma: float = 0.15,
    curvature_sigma: float = 0.05,
    shift_sigma_pixels: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Draw calibration systematics for ``n`` spectra.

    Parameters
    ----------
    n : int
        Number of spectra.
    generator : `torch.Generator`
        Random source (its device is used).
    tilt_sigma, curvature_sigma : float, optional
        Standard deviations of the linear and quadratic terms of ln(flux factor) over the
        range (0 switches a term off).
    shift_sigma_pixels : float, optional
        Standard deviation of the wavelength shift, in native PRISM pixels.

    Returns
    -------
    params : dict of `torch.Tensor`
        (n,) tensors under ``CALIBRATION_KEYS``.

    Raises
    ------
    ValueError
        If a standard deviation is negative.

    Examples
    --------
    >>> import torch
    >>> params = sample_calibration(3, torch.Generator().manual_seed(0))
    >>> sorted(params), tuple(params["calibration_tilt"].shape)
    (['calibration_curvature', 'calibration_tilt', 'wavelength_shift_pixels'], (3,))
    """
    sigmas = (tilt_sigma, curvature_sigma, shift_sigma_pixels)
    if min(sigmas) < 0:
        raise ValueError(f"standard deviations must not be negative, got {sigmas}")
    draws = torch.randn(3, n, generator=generator, device=generator.device)
    return {key: sigma * draw for key, sigma, draw in zip(CALIBRATION_KEYS, sigmas, draws, strict=True)}


def model_pixels_per_native_pixel(wavelength_um) -> np.ndarray:
    """How many pixels of a log-wavelength grid one native PRISM pixel spans, at each pixel.

    Parameters
    ----------
    wavelength_um : array-like
        (L,) pixel centres of a grid uniform in ln(lambda), um.

    Returns
    -------
    ratio : `numpy.ndarray`
        (L,) ``(1 / (2.3 R)) / step``, ``step`` the grid's ln(lambda) step.

    Examples
    --------
    >>> import numpy as np
    >>> ratio = model_pixels_per_native_pixel(np.geomspace(0.6, 5.3, 512))
    >>> bool(ratio.max() > 3 > ratio[-1])
    True
    """
    wave = np.asarray(wavelength_um, dtype=np.float64)
    step = np.log(wave[-1] / wave[0]) / (wave.size - 1)
    return 1.0 / (NATIVE_PIXELS_PER_RESEL * resolving_power(wave)) / step


def apply_calibration(
    spectrum: torch.Tensor,
    wavelength_um: torch.Tensor,
    params: dict[str, torch.Tensor],
    pixels_per_native: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply flux tilts and wavelength shifts to spectra on a log-wavelength grid.

    Parameters
    ----------
    spectrum : `torch.Tensor`
        (B, L) f_nu on a grid uniform in ln(lambda) (the model grid).
    wavelength_um : `torch.Tensor`
        (L,) pixel centres, um.
    params : dict of `torch.Tensor`
        (B,) tensors under ``CALIBRATION_KEYS`` (`sample_calibration`).
    pixels_per_native : `torch.Tensor`, optional
        (L,) `model_pixels_per_native_pixel` of the grid, computed once by a caller that
        calibrates many batches (on a GPU it saves a copy to the host per call).

    Returns
    -------
    spectrum : `torch.Tensor`
        (B, L): the spectrum seen at ``lambda - shift(lambda)`` (linear interpolation between
        pixels, the end pixels held beyond the grid) times the smooth factor.

    Examples
    --------
    >>> import torch
    >>> wave = torch.logspace(torch.log10(torch.tensor(0.6)), torch.log10(torch.tensor(5.3)), 512)
    >>> flat = torch.ones(1, 512)
    >>> params = {"calibration_tilt": torch.tensor([0.1]), "calibration_curvature": torch.tensor([0.0]),
    ...           "wavelength_shift_pixels": torch.tensor([0.0])}
    >>> out = apply_calibration(flat, wave, params)
    >>> [round(float(v), 3) for v in (out[0, 0], out[0, -1])]
    [0.905, 1.105]
    """
    dtype, device = spectrum.dtype, spectrum.device
    n_pixels = spectrum.shape[1]
    log_wave = torch.log(wavelength_um.to(device=device, dtype=torch.float64))
    lo, hi = math.log(_RANGE_UM[0]), math.log(_RANGE_UM[1])
    x = (2.0 * (log_wave - lo) / (hi - lo) - 1.0).to(dtype)  # -1 at 0.6 um, 1 at 5.3 um
    tilt = params["calibration_tilt"].to(device=device, dtype=dtype)[:, None]
    curvature = params["calibration_curvature"].to(device=device, dtype=dtype)[:, None]
    factor = torch.exp(tilt * x[None, :] + curvature * (x * x - 1.0 / 3.0)[None, :])

    # the spectrum at pixel i is read at position i - s * (model pixels per native pixel at i)
    if pixels_per_native is None:
        pixels_per_native = torch.as_tensor(model_pixels_per_native_pixel(wavelength_um.detach().cpu().numpy()))
    ratio = pixels_per_native.to(device=device, dtype=torch.float64)
    shift = params["wavelength_shift_pixels"].to(device=device, dtype=torch.float64)[:, None]
    position = torch.arange(n_pixels, device=device, dtype=torch.float64)[None, :] - shift * ratio[None, :]
    position = position.clamp(0.0, n_pixels - 1.0)
    lower = position.floor().long().clamp(max=n_pixels - 2)
    frac = (position - lower).to(dtype)
    shifted = torch.lerp(spectrum.gather(1, lower), spectrum.gather(1, lower + 1), frac)
    return shifted * factor
