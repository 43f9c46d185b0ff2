"""A fixed physical stretch of flux for the model's inputs.

Every pixel of every band and every spectral pixel is mapped by the same function
of its flux in nJy, ``asinh(flux / softening)``, with a softening fixed per
modality kind (not per object, per band or per image). Nothing is normalised per
object, so:

- absolute brightness survives: an object twice as bright gives different inputs;
- colours survive: the stretched values of two bands are the same function of
  their fluxes for every band, so a flux ratio between bands is recoverable from
  the inputs (`inverse_asinh_stretch`) whichever bands they are.

The stretch is linear for ``|flux| << softening`` (noise stays Gaussian-looking)
and logarithmic for ``|flux| >> softening`` (bright cores do not dominate).
The functions work on numpy arrays, torch tensors and Python floats alike and
return the same kind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "IMAGE_SOFTENING_NJY",
    "SPECTRUM_SOFTENING_NJY",
    "asinh_stretch",
    "inverse_asinh_stretch",
    "stretched_ivar",
    "input_weight",
    "model_inputs",
]

#: Softening of the image stretch in nJy per model pixel (0.04"). Deep NIRCam fields
#: reach 5-sigma point-source depths of ~29.5-30 AB (wide fields ~28.6-29.5) in
#: r = 0.1" apertures (~20 model pixels): 1 sigma in the aperture is ~0.7-2.6 nJy,
#: i.e. ~0.15-0.6 nJy per uncorrelated 0.04" pixel. 0.5 nJy puts the background
#: noise of any survey in the linear part of the stretch and galaxy cores (tens to
#: thousands of nJy per pixel) in the logarithmic part.
IMAGE_SOFTENING_NJY = 0.5

#: Softening of the spectrum stretch in nJy (f_nu per model pixel). PRISM reaches
#: S/N = 10 per resolution element at 132 nJy at 3 um in 10 ks, so sigma ~ 13 nJy per
#: resolution element; at 3 um (R ~ 100, lambda / R ~ 0.03 um) a resolution element
#: covers ~2.3 pixels of the ~512-pixel log grid over 0.6-5.3 um, giving ~20 nJy per
#: pixel. Continuum of faint targets sits near the linear part, lines and bright
#: continua in the logarithmic part.
SPECTRUM_SOFTENING_NJY = 20.0


def _is_torch(value: Any) -> bool:
    # Avoid importing torch for numpy callers; a tensor's class lives in torch.
    return type(value).__module__.startswith("torch")


def _check_softening(softening: Any) -> float:
    if hasattr(softening, "unit"):
        import astropy.units as u

        softening = softening.to_value(u.nJy)
    softening = float(softening)
    if not math.isfinite(softening) or softening <= 0:
        raise ValueError(f"softening must be a positive finite flux in nJy, got {softening}")
    return softening


def _as_njy(flux: Any) -> Any:
    if hasattr(flux, "unit") and not _is_torch(flux):
        import astropy.units as u

        return flux.to_value(u.nJy)
    return flux


def asinh_stretch(flux_njy: Any, softening: Any) -> Any:
    """The stretch ``asinh(flux / softening)``, the same for every band and object.

    Parameters
    ----------
    flux_njy : array, tensor, float or `~astropy.units.Quantity`
        Flux in nJy (per pixel for images); a Quantity is converted to nJy.
    softening : float or `~astropy.units.Quantity`
        Positive softening in nJy, e.g. ``IMAGE_SOFTENING_NJY``.

    Returns
    -------
    stretched : same kind as ``flux_njy`` (numpy array for a Quantity)
        Dimensionless stretched flux.

    Raises
    ------
    ValueError
        If the softening is not positive and finite.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.preprocessing import asinh_stretch, inverse_asinh_stretch
    >>> s = asinh_stretch(np.array([0.0, 1.0, 100.0]), softening=1.0)
    >>> np.round(s, 3)
    array([0.   , 0.881, 5.298])
    >>> np.round(inverse_asinh_stretch(s, softening=1.0), 6)
    array([  0.,   1., 100.])
    """
    softening = _check_softening(softening)
    flux_njy = _as_njy(flux_njy)
    # Beyond |f| = 1e18 b, asinh(f / b) = sign(f) (log 2 + log|f| - log b) to machine precision;
    # using it there avoids overflow of f / b for tiny softenings and huge fluxes.
    if _is_torch(flux_njy):
        import torch

        flux = flux_njy if flux_njy.is_floating_point() else flux_njy.to(torch.float32)
        threshold = min(1e18 * softening, torch.finfo(flux.dtype).max / 2)
        big = flux.abs() > threshold
        safe = torch.where(big, torch.zeros_like(flux), flux)
        asymptote = torch.sign(flux) * (math.log(2.0) + torch.log(flux.abs()) - math.log(softening))
        return torch.where(big, asymptote, torch.asinh(safe / softening))
    flux = np.asarray(flux_njy)
    flux = flux.astype(np.result_type(flux, np.float32), copy=False)
    threshold = min(1e18 * softening, float(np.finfo(flux.dtype).max) / 2)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        big = np.abs(flux) > threshold
        asymptote = np.sign(flux) * (np.log(2.0) + np.log(np.abs(flux)) - np.log(softening))
        result = np.where(big, asymptote, np.arcsinh(np.where(big, 0, flux) / softening))
    return result.astype(flux.dtype, copy=False)


def inverse_asinh_stretch(stretched: Any, softening: Any) -> Any:
    """Inverse of `asinh_stretch`: ``softening * sinh(stretched)`` in nJy.

    Parameters
    ----------
    stretched : array, tensor or float
        Dimensionless stretched flux.
    softening : float or `~astropy.units.Quantity`
        Positive softening in nJy, the one used by `asinh_stretch`.

    Returns
    -------
    flux_njy : tensor for a tensor input, else numpy array (or scalar)
        Flux in nJy, at least float32.

    Raises
    ------
    ValueError
        If the softening is not positive and finite.
    """
    softening = _check_softening(softening)
    if _is_torch(stretched):
        import torch

        return softening * torch.sinh(stretched)
    return softening * np.sinh(np.asarray(stretched, dtype=np.result_type(stretched, np.float32)))


def stretched_ivar(flux_njy: Any, ivar: Any, softening: Any) -> Any:
    """Inverse variance of the stretched flux, propagated through the stretch's derivative.

    ``d asinh(f / b) / df = 1 / sqrt(b^2 + f^2)``, so the stretched inverse variance is
    ``ivar * (b^2 + f^2)`` (first order). Values too large for the dtype are clipped to
    its largest finite number and NaN ivar gives 0, so the result is never inf or NaN.

    Parameters
    ----------
    flux_njy, ivar : array or tensor
        Flux in nJy and its inverse variance in 1/nJy^2.
    softening : float
        Softening in nJy.

    Returns
    -------
    ivar_stretched : same kind as ``ivar``

    Examples
    --------
    >>> from jwst_embed.preprocessing import stretched_ivar
    >>> [round(float(stretched_ivar(f, 4.0, softening=0.5)), 6) for f in (0.0, 10.0)]
    [1.0, 401.0]
    """
    softening = _check_softening(softening)
    flux_njy = _as_njy(flux_njy)
    if _is_torch(flux_njy) or _is_torch(ivar):
        import torch

        flux_njy = torch.as_tensor(flux_njy)
        ivar = torch.as_tensor(ivar, device=flux_njy.device)
        dtype = torch.promote_types(ivar.dtype, torch.float32)
        # (sqrt(ivar) * hypot(b, f))^2 overflows only where the true value is above the dtype's range.
        value = (
            torch.sqrt(ivar.to(dtype))
            * torch.hypot(flux_njy.to(dtype), torch.tensor(softening, dtype=dtype))
        ) ** 2
        return torch.nan_to_num(value, nan=0.0, posinf=torch.finfo(dtype).max)
    ivar = np.asarray(ivar)
    dtype = np.result_type(ivar, np.float32)
    # 0 * inf (no information about an infinite flux) and negative ivar give NaN, then 0.
    with np.errstate(over="ignore", invalid="ignore"):
        value = (
            np.sqrt(ivar.astype(dtype))
            * np.hypot(np.asarray(flux_njy, dtype=dtype), dtype.type(softening))
        ) ** 2
    return np.nan_to_num(value, nan=0.0, posinf=np.finfo(dtype).max)


def input_weight(ivar: Any, mask: Any, softening: Any) -> Any:
    """Bounded weight channel in [0, 1]: ``r / (1 + r)`` with ``r = softening * sqrt(ivar)``.

    ``r`` is the softening in units of the noise: 0.5 where the noise equals the
    softening, towards 1 for deeper data, 0 where masked or ivar = 0. Unlike ivar
    itself it is bounded, so it can be fed to a network next to the stretched flux.

    Parameters
    ----------
    ivar : array or tensor
        Inverse variance in 1/nJy^2; zero, negative or non-finite values give weight 0.
    mask : array or tensor of bool
        True = bad, same shape as ``ivar``; masked pixels get weight 0.
    softening : float or `~astropy.units.Quantity`
        Positive softening in nJy, e.g. ``IMAGE_SOFTENING_NJY``.

    Returns
    -------
    weight : same kind as ``ivar``
        In [0, 1], at least float32; 0 where masked or ivar is not positive and finite.

    Raises
    ------
    ValueError
        If the softening is not positive and finite.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.preprocessing import input_weight
    >>> input_weight(np.array([0.0, 1.0, 100.0]), np.array([False, False, True]), softening=1.0)
    array([0. , 0.5, 0. ])
    """
    softening = _check_softening(softening)
    if _is_torch(ivar):
        import torch

        mask = torch.as_tensor(mask, device=ivar.device, dtype=torch.bool)
        good = ~mask & torch.isfinite(ivar) & (ivar > 0)
        snr = softening * torch.sqrt(torch.where(good, ivar, torch.zeros_like(ivar)))
        snr = torch.clamp(snr, max=1e30)  # keep r / (1 + r) finite and below 1
        return torch.where(good, snr / (1 + snr), torch.zeros_like(snr))
    ivar = np.asarray(ivar)
    dtype = np.result_type(ivar, np.float32)
    ivar = ivar.astype(dtype)
    good = ~np.asarray(mask, dtype=bool) & np.isfinite(ivar) & (ivar > 0)
    snr = np.minimum(softening * np.sqrt(np.where(good, ivar, 0)), 1e30).astype(dtype)
    return np.where(good, snr / (1 + snr), 0).astype(dtype)


def model_inputs(values: Any, ivar: Any, mask: Any, softening: Any) -> tuple[Any, Any]:
    """The two input channels of an encoder: stretched flux and a weight.

    Parameters
    ----------
    values : array or tensor
        Flux in nJy (per pixel for images), any shape.
    ivar : array or tensor
        Inverse variance in 1/nJy^2, same shape.
    mask : array or tensor of bool
        True = bad, same shape.
    softening : float
        ``IMAGE_SOFTENING_NJY`` for images, ``SPECTRUM_SOFTENING_NJY`` for spectra.

    Returns
    -------
    stretched : same kind as ``values``
        ``asinh(values / softening)``, 0 where masked or not finite.
    weight : same kind
        `input_weight`: in [0, 1], 0 where masked.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.preprocessing import model_inputs
    >>> flux = np.array([1.0, 50.0, np.nan])
    >>> stretched, weight = model_inputs(flux, np.ones(3), np.array([False, False, True]), softening=1.0)
    >>> np.round(stretched, 3), weight
    (array([0.881, 4.605, 0.   ]), array([0.5, 0.5, 0. ]))
    """
    stretched = asinh_stretch(values, softening)
    weight = input_weight(ivar, mask, softening)
    if _is_torch(stretched):
        import torch

        mask = torch.as_tensor(mask, device=stretched.device, dtype=torch.bool)
        bad = mask | ~torch.isfinite(stretched)
        return torch.where(bad, torch.zeros_like(stretched), stretched), weight
    bad = np.asarray(mask, dtype=bool) | ~np.isfinite(stretched)
    return np.where(bad, 0, stretched).astype(stretched.dtype), weight
