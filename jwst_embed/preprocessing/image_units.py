"""Image units: from `~astropy.nddata.NDData` in any flux unit to nJy per input pixel.

`image_to_njy` converts the data to nJy per input pixel (spectral flux density per
pixel, or surface brightness times the pixel area, taken from the celestial WCS or
``meta["pixel_scale"]``), the uncertainty (standard deviation, variance or inverse
variance) to an inverse variance in 1/nJy^2, and collects every bad pixel (NaN, inf,
masked, ivar <= 0) into one boolean mask (True = bad). Without an uncertainty, a
constant noise is estimated from the background.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import astropy.units as u
import numpy as np
from astropy.nddata import (
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from ..metrics import NMAD_SCALE
from .image_grid import as_arcsec

__all__ = ["image_to_njy"]

log = logging.getLogger(__name__)


def celestial_wcs(nddata: Any) -> WCS | None:
    """The 2D celestial astropy WCS of ``nddata``, or None when it has none."""
    wcs = getattr(nddata, "wcs", None)
    if wcs is None:
        return None
    if not isinstance(wcs, WCS):
        # APE-14 wrappers (e.g. an NDData slice) keep the FITS WCS underneath.
        wcs = getattr(wcs, "low_level_wcs", wcs)
        wcs = getattr(wcs, "_wcs", wcs)
    if not isinstance(wcs, WCS):
        raise TypeError(
            f"image WCS of type {type(wcs).__name__} is not supported; pass an astropy.wcs.WCS "
            "or set wcs=None and meta['pixel_scale'] (arcsec)"
        )
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    if celestial.naxis != 2:
        return None
    return celestial


def _pixel_scale_arcsec(nddata: Any, wcs: WCS | None) -> float:
    if wcs is not None:
        area_deg2 = proj_plane_pixel_area(wcs)
        if not np.isfinite(area_deg2) or area_deg2 <= 0:
            raise ValueError(
                f"image WCS has a degenerate pixel area ({area_deg2} deg^2); check CDELT/PC/CD"
            )
        return math.sqrt(area_deg2) * 3600.0
    meta = getattr(nddata, "meta", None) or {}
    scale = meta.get("pixel_scale", None) if hasattr(meta, "get") else None
    if scale is None:
        raise ValueError(
            "image has no celestial WCS and no meta['pixel_scale']; attach a WCS "
            "(NDData(data, wcs=WCS(header), ...)) or set meta={'pixel_scale': 0.03} (arcsec per pixel)"
        )
    return as_arcsec(scale, "meta['pixel_scale']")


def _data_unit(nddata: Any) -> u.UnitBase:
    unit = getattr(nddata, "unit", None)
    if unit is None or u.Unit(unit) == u.dimensionless_unscaled:
        raise u.UnitConversionError(
            "image has no flux unit; set one, e.g. NDData(data, unit='nJy') for flux per pixel "
            "or unit='MJy/sr' for surface brightness (JWST i2d files use BUNIT = 'MJy/sr')"
        )
    return u.Unit(unit)


def _njy_per_pixel_factor(unit: u.UnitBase, pixel_area_sr: float) -> float:
    """Factor that turns values in ``unit`` into nJy per pixel."""
    if unit.is_equivalent(u.nJy):
        return float(unit.to(u.nJy))
    if unit.is_equivalent(u.nJy / u.sr):
        return float(unit.to(u.nJy / u.sr)) * pixel_area_sr
    if unit.is_equivalent(u.nJy / u.pix):
        return float((unit * u.pix).to(u.nJy))
    raise u.UnitConversionError(
        f"image unit {unit.to_string()!r} is neither a flux density per pixel (e.g. nJy, uJy, Jy) "
        "nor a surface brightness (e.g. MJy/sr, uJy/arcsec2); convert the data or fix its unit"
    )


def _variance_in_data_unit(
    uncertainty: NDUncertainty, unit: u.UnitBase, shape: tuple[int, ...]
) -> np.ndarray:
    """The variance, in ``unit**2``, from any of the three astropy uncertainty classes."""
    array = np.asarray(uncertainty.array, dtype=np.float64)
    if array.shape != shape:
        try:
            array = np.broadcast_to(array, shape)
        except ValueError:
            raise ValueError(
                f"image uncertainty has shape {array.shape}, data has shape {shape}"
            ) from None
    negative = np.count_nonzero(np.isfinite(array) & (array < 0))
    if negative:
        raise ValueError(
            f"image uncertainty ({type(uncertainty).__name__}) is negative at {negative} pixel(s): an "
            "uncertainty cannot be negative (mark bad pixels with NaN or the mask instead)"
        )
    own_unit = uncertainty.unit
    # Each class: the unit its array should have, and the power of the flux unit it carries.
    kinds = {StdDevUncertainty: 1, VarianceUncertainty: 2, InverseVariance: -2}
    for kind, power in kinds.items():
        if isinstance(uncertainty, kind):
            expected_unit = unit**power
            factor = 1.0
            if own_unit is not None:
                try:
                    factor = float(u.Unit(own_unit).to(expected_unit))
                except u.UnitsError:
                    raise u.UnitConversionError(
                        f"image uncertainty ({kind.__name__}) has unit {u.Unit(own_unit).to_string()!r}, "
                        f"which does not convert to {expected_unit.to_string()!r} (data unit {unit.to_string()!r})"
                    ) from None
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                if power == 1:
                    return (array * factor) ** 2
                if power == 2:
                    return array * factor
                return safe_reciprocal(array * factor)
    raise TypeError(
        f"image uncertainty of type {type(uncertainty).__name__} is not supported; use "
        "StdDevUncertainty, VarianceUncertainty or InverseVariance"
    )


def safe_reciprocal(array: np.ndarray) -> np.ndarray:
    """1 / array with 0 -> inf and non-finite -> NaN, without warnings."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(np.isfinite(array), 1.0 / array, np.nan)


def _robust_sigma(values: np.ndarray) -> float:
    """Sigma-clipped (3 sigma, 5 iterations) MAD standard deviation of the background."""
    sample = values
    sigma = 0.0
    for _ in range(5):
        median = np.median(sample)
        sigma = NMAD_SCALE * float(np.median(np.abs(sample - median)))
        if sigma <= 0 or not np.isfinite(sigma):
            break
        kept = sample[np.abs(sample - median) < 3.0 * sigma]
        if kept.size == sample.size or kept.size < 10:
            break
        sample = kept
    return sigma


def image_to_njy(nddata: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, u.Quantity]:
    """Convert an image to nJy per pixel with inverse variance and a bad-pixel mask.

    Parameters
    ----------
    nddata : `~astropy.nddata.NDData`
        Or anything with ``.data``, ``.unit`` and optional ``.wcs``, ``.uncertainty``,
        ``.mask`` and ``.meta``. The unit is a flux density per pixel (nJy, uJy,
        mJy, Jy, ...) or a surface brightness (MJy/sr, uJy/arcsec2, ...), which is
        converted through the pixel area. The pixel area comes from the celestial
        WCS (`~astropy.wcs.utils.proj_plane_pixel_area`) or, without one, from
        ``meta["pixel_scale"]`` (arcsec per pixel, or an angle Quantity).
        The uncertainty may be `~astropy.nddata.StdDevUncertainty`,
        `~astropy.nddata.VarianceUncertainty` or `~astropy.nddata.InverseVariance`
        in any unit convertible to the data's. Without one, a constant noise is
        estimated from the background (sigma-clipped MAD over the unmasked pixels;
        source Poisson noise is then ignored) and a message is logged.

    Returns
    -------
    data : `numpy.ndarray`
        float64 nJy per input pixel; 0 where masked.
    ivar : `numpy.ndarray`
        float64 inverse variance in 1/nJy^2; 0 where masked.
    mask : `numpy.ndarray`
        bool, True where the input was masked, NaN or inf, or had ivar <= 0 or inf.
    pixel_scale : `~astropy.units.Quantity`
        Side of an input pixel (square root of its area) in arcsec.

    Raises
    ------
    astropy.units.UnitsError
        If the image has no unit, or one that is not a flux or surface brightness,
        or an uncertainty in a unit that does not convert.
    ValueError
        If the data are not a non-empty 2D array, if there is neither a WCS nor
        ``meta["pixel_scale"]``, if no usable noise estimate exists, or if every
        pixel is masked.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> from jwst_embed.preprocessing import image_to_njy
    >>> image = NDData(np.ones((4, 4)), unit=u.uJy, uncertainty=StdDevUncertainty(np.full((4, 4), 0.01)),
    ...                meta={"pixel_scale": 0.03})
    >>> data, ivar, mask, scale = image_to_njy(image)
    >>> round(float(data[0, 0]), 6), round(float(ivar[0, 0]), 6), bool(mask.any()), scale   # 10 nJy noise
    (1000.0, 0.01, False, <Quantity 0.03 arcsec>)
    """
    if not hasattr(nddata, "data"):
        raise TypeError(
            f"image must be an NDData (or have .data, .unit, .wcs), got {type(nddata).__name__}"
        )
    raw = nddata.data
    if isinstance(raw, u.Quantity):
        raise TypeError(
            "image data must be a plain array with the unit on the NDData (NDData(q.value, unit=q.unit))"
        )
    try:
        data = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"image data must be numeric, got dtype {np.asarray(raw).dtype}") from None
    if data.ndim != 2:
        raise ValueError(f"image data must be 2D (rows, columns), got shape {data.shape}")
    if data.size == 0:
        raise ValueError(f"image data are empty (shape {data.shape})")

    unit = _data_unit(nddata)
    wcs = celestial_wcs(nddata)
    scale_arcsec = _pixel_scale_arcsec(nddata, wcs)
    pixel_area_sr = float(((scale_arcsec * u.arcsec) ** 2).to_value(u.sr))
    factor = _njy_per_pixel_factor(unit, pixel_area_sr)

    mask = ~np.isfinite(data)
    user_mask = getattr(nddata, "mask", None)
    if user_mask is not None:
        user_mask = np.asarray(user_mask, dtype=bool)
        try:
            mask |= np.broadcast_to(user_mask, data.shape)
        except ValueError:
            raise ValueError(
                f"image mask has shape {user_mask.shape}, data has shape {data.shape}"
            ) from None

    with np.errstate(over="ignore", invalid="ignore"):
        data = data * factor
    mask |= ~np.isfinite(data)

    uncertainty = getattr(nddata, "uncertainty", None)
    if uncertainty is not None:
        variance = _variance_in_data_unit(uncertainty, unit, data.shape)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            variance = variance * (factor * factor)
        ivar = safe_reciprocal(variance)
    else:
        good = data[~mask]
        if good.size < 10:
            raise ValueError(
                f"image has no uncertainty and only {good.size} unmasked pixels, too few to estimate "
                "the noise; pass uncertainty=StdDevUncertainty(...)"
            )
        sigma = _robust_sigma(good)
        # A noise a million times below the bright pixels is no noise (a model image, or
        # exponential wings mistaken for sky); its inverse variance would overflow float32
        # downstream. The 98th percentile, not the peak: a bright star in a real cutout
        # (a few dozen pixels) can reach 10^7 times the sky noise.
        if not np.isfinite(sigma) or sigma <= 1e-6 * np.percentile(np.abs(good), 98):
            raise ValueError(
                "image has no uncertainty and its background has zero scatter (noiseless image?); "
                "pass uncertainty=StdDevUncertainty(...)"
            )
        log.info(
            "image has no uncertainty; using a constant noise of %.4g nJy/pixel from the background MAD",
            sigma,
        )
        ivar = np.full(data.shape, 1.0 / (sigma * sigma))

    mask |= ~np.isfinite(ivar) | ~(ivar > 0)
    if mask.all():
        raise ValueError(
            f"every pixel of the image (shape {data.shape}) is masked (NaN/inf values, mask, or ivar <= 0)"
        )
    data[mask] = 0.0
    ivar = np.where(mask, 0.0, ivar)
    return data, ivar, mask, scale_arcsec * u.arcsec
