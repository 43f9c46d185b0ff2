"""NIRCam images: the cutouts in JADES HLSP files, and cutouts from i2d mosaics.

Every image leaves this module as `~astropy.nddata.NDData` with data in
**nJy per pixel** (the unit is written ``nJy``; "per pixel" is implied by
the pixel grid), a boolean ``mask`` (True = bad), the WCS of the pixels
returned, and ``meta["band"]`` / ``meta["pixel_scale"]`` (arcsec).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D, NDData, NoOverlapError, StdDevUncertainty
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_area, proj_plane_pixel_scales

from ..bands import get_band
from ._spectrum import as_existing_path

__all__ = ["cutout", "read_cutouts", "NoCutoutsError"]


class NoCutoutsError(ValueError):
    """A FITS file holds no image named after a NIRCam band (it is not a cutout file)."""


def _header_wcs(header: fits.Header) -> WCS:
    """WCS of an image header, without astropy's notes on harmless fixes.

    JWST headers routinely trigger FITSFixedWarning ("datfix": MJD-OBS set from
    DATE-OBS); the fixes do not touch the celestial transformation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _pixel_scale(wcs: WCS) -> u.Quantity:
    """Mean pixel side of a celestial WCS, in arcsec."""
    scales = proj_plane_pixel_scales(wcs.celestial) * u.deg
    return scales.mean().to(u.arcsec)


def _pixel_area(wcs: WCS | None, header: Mapping[str, Any]) -> u.Quantity:
    """Solid angle of one pixel: PIXAR_SR, else PIXAR_A2, else the WCS at its reference pixel."""
    if header.get("PIXAR_SR"):
        return float(header["PIXAR_SR"]) * u.sr
    if header.get("PIXAR_A2"):
        return (float(header["PIXAR_A2"]) * u.arcsec**2).to(u.sr)
    if wcs is None or not wcs.has_celestial:
        raise ValueError("cannot convert surface brightness to flux per pixel: no PIXAR_SR/PIXAR_A2 "
                         "keyword and no celestial WCS to compute the pixel area from")
    return (proj_plane_pixel_area(wcs.celestial) * u.deg**2).to(u.sr)


def _to_njy_per_pixel(unit: u.UnitBase | None, wcs: WCS | None, header: Mapping[str, Any],
                      what: str) -> float:
    """Factor that turns pixel values in ``unit`` into nJy per pixel."""
    if unit is None:
        raise u.UnitsError(f"{what} has no unit (BUNIT); cannot convert it to nJy per pixel")
    unit = u.Unit(unit)
    if unit.is_equivalent(u.nJy):
        return float(unit.to(u.nJy))
    if unit.is_equivalent(u.nJy / u.sr):
        return float((1 * unit * _pixel_area(wcs, header)).to_value(u.nJy))
    raise u.UnitsError(f"{what} has unit {unit}, which is neither a flux density per pixel (e.g. nJy) "
                       "nor a surface brightness (e.g. MJy/sr)")


def _band_from_header(*headers: Mapping[str, Any]) -> str | None:
    """NIRCam band from PUPIL (medium filters sit in the pupil wheel) or FILTER, if known."""
    for key in ("PUPIL", "FILTER"):
        for header in headers:
            value = header.get(key)
            if isinstance(value, str) and value.strip():
                try:
                    return get_band(value).name
                except ValueError:  # CLEAR, GRISMR, a wide filter paired with a pupil filter ...
                    continue
    return None


def read_cutouts(path: str | os.PathLike) -> dict[str, NDData]:
    """Read the NIRCam cutouts stored in a JADES HLSP file.

    Every 2D image HDU whose name is a NIRCam band (``F090W``, ``F150W``,
    ``F277W``, ``F444W`` in JADES DR4) is read.

    Parameters
    ----------
    path : str or os.PathLike
        A JADES DR4 HLSP ``x1d`` file (or any FITS file with band-named
        image HDUs carrying a celestial WCS and a flux unit).

    Returns
    -------
    cutouts : dict of str -> `~astropy.nddata.NDData`
        Band name -> image in nJy per pixel with its WCS, ``mask`` True at
        NaN/inf pixels (set to 0), no uncertainty (the files carry none),
        and ``meta`` with ``band``, ``pixel_scale`` (arcsec), ``source_file``
        and the HDU ``header``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    NoCutoutsError
        If the file holds no band-named image (a `ValueError`).
    ValueError
        If an image has no celestial WCS.
    astropy.units.UnitsError
        If an image has no flux unit.

    Examples
    --------
    >>> from jwst_embed.io import read_cutouts
    >>> cutouts = read_cutouts("hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits")  # doctest: +SKIP
    >>> sorted(cutouts), cutouts["F150W"].unit  # doctest: +SKIP
    (['F090W', 'F150W', 'F277W', 'F444W'], Unit("nJy"))
    """
    source = as_existing_path(path)
    try:
        cutouts = _read_band_images(source)
    except (NoCutoutsError, u.UnitsError):
        raise
    except (ValueError, IndexError, OSError, EOFError) as error:
        if source.name in str(error):  # our own messages name the file and the problem already
            raise
        # e.g. numpy's "cannot reshape array" from an image cut short: say which file and why
        raise ValueError(
            f"{source.name}: could not read its NIRCam cutouts ({type(error).__name__}: {error}); the file may "
            "be truncated or damaged"
        ) from error
    return cutouts


def _read_band_images(source) -> dict[str, NDData]:
    cutouts: dict[str, NDData] = {}
    with fits.open(source, memmap=False) as hdul:
        for hdu in hdul:
            if not isinstance(hdu, (fits.ImageHDU, fits.PrimaryHDU)) or hdu.data is None or hdu.data.ndim != 2:
                continue
            try:
                band = get_band(hdu.name).name
            except ValueError:
                continue
            header = hdu.header.copy()
            wcs = _header_wcs(header)
            if not wcs.has_celestial:
                raise ValueError(f"{source.name}: image HDU {hdu.name} has no celestial WCS")
            factor = _to_njy_per_pixel(u.Unit(header["BUNIT"]) if header.get("BUNIT") else None,
                                       wcs, header, f"{source.name}[{hdu.name}]")
            data = np.asarray(hdu.data, dtype=np.float32) * np.float32(factor)
            mask = ~np.isfinite(data)
            data[mask] = 0.0
            meta = {"band": band, "pixel_scale": _pixel_scale(wcs), "source_file": str(source), "header": header}
            cutouts[band] = NDData(data, unit=u.nJy, mask=mask, wcs=wcs, meta=meta)
    if not cutouts:
        raise NoCutoutsError(f"{source.name} holds no image HDU named after a NIRCam band (e.g. F150W)")
    return cutouts


def _nddata_arrays(mosaic: NDData):
    """(sci, (err, err unit) or None, wht or None, mask or None, wcs, unit, header-like meta)."""
    meta = mosaic.meta if mosaic.meta is not None else {}
    header = meta.get("header", meta)
    err = None
    if mosaic.uncertainty is not None:
        stddev = mosaic.uncertainty.represent_as(StdDevUncertainty)
        err = (np.asarray(stddev.array), stddev.unit if stddev.unit is not None else mosaic.unit)
    mask = None if mosaic.mask is None else np.asarray(mosaic.mask, dtype=bool)
    return np.asarray(mosaic.data), err, meta.get("weight"), mask, mosaic.wcs, mosaic.unit, header


def _file_arrays(hdul: fits.HDUList):
    """Same as `_nddata_arrays` for an open i2d file (arrays stay memory-mapped)."""
    sci_hdu = hdul["SCI"] if "SCI" in hdul else hdul[0]
    header = fits.Header(hdul[0].header)
    header.extend(sci_hdu.header, strip=True, update=True)
    unit = u.Unit(header["BUNIT"]) if header.get("BUNIT") else None
    err = None
    if "ERR" in hdul:
        err_bunit = hdul["ERR"].header.get("BUNIT")
        err = (hdul["ERR"].data, u.Unit(err_bunit) if err_bunit else unit)
    wht = hdul["WHT"].data if "WHT" in hdul else None
    return sci_hdu.data, err, wht, None, _header_wcs(sci_hdu.header), unit, header


def cutout(mosaic: str | os.PathLike | NDData, position: SkyCoord,
           size: int | u.Quantity | tuple, band: str | None = None) -> NDData:
    """Cut a stamp out of a NIRCam i2d mosaic, in nJy per pixel.

    Parameters
    ----------
    mosaic : str, os.PathLike or `~astropy.nddata.NDData`
        An ``*_i2d.fits`` file (extensions ``SCI``, and ``ERR``, ``WHT`` when
        present) or an NDData with a celestial WCS and a unit (its
        ``uncertainty``, ``mask`` and an optional ``meta["weight"]`` array
        are used).
    position : `~astropy.coordinates.SkyCoord`
        Sky position of the cutout centre.
    size : int, `~astropy.units.Quantity` or tuple
        Cutout size: pixels (int, or Quantity in ``u.pix``) or an angle;
        a scalar gives a square, a pair is ``(ny, nx)``.
    band : str, optional
        NIRCam band; by default taken from the ``PUPIL``/``FILTER`` keyword.

    Returns
    -------
    stamp : `~astropy.nddata.NDData`
        Data in nJy per pixel (unit ``nJy``): MJy/sr is multiplied by the
        pixel solid angle (``PIXAR_SR``, else ``PIXAR_A2``, else from the
        WCS). ``uncertainty`` is `~astropy.nddata.StdDevUncertainty` in nJy;
        ``mask`` is True where SCI or ERR is NaN/inf, ERR <= 0, WHT <= 0, or
        the stamp runs off the mosaic; masked pixels hold 0. ``wcs`` is the
        cutout's WCS; ``meta`` has ``band`` (or None), ``pixel_scale``
        (arcsec), ``position`` and ``source_file`` (for file input).

    Raises
    ------
    TypeError
        If ``position`` is not a SkyCoord.
    ValueError
        If the mosaic has no celestial WCS, the position lies outside the
        mosaic, or no pixel of the stamp holds valid data.
    astropy.units.UnitsError
        If the mosaic's unit is missing or not a flux density or surface brightness.

    Examples
    --------
    A flat 0.01 MJy/sr mosaic with 0.03" pixels (a file path works the same way):

    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.nddata import NDData
    >>> from astropy.wcs import WCS, FITSFixedWarning
    >>> from jwst_embed.io import cutout
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> wcs.wcs.crval, wcs.wcs.crpix = [53.16, -27.78], [50, 50]
    >>> wcs.wcs.cdelt = [-0.03 / 3600, 0.03 / 3600]
    >>> mosaic = NDData(np.full((100, 100), 0.01), unit="MJy/sr", wcs=wcs, meta={"FILTER": "F150W"})
    >>> stamp = cutout(mosaic, SkyCoord(53.16, -27.78, unit="deg"), 1.5 * u.arcsec)
    >>> stamp.data.shape, stamp.unit, stamp.meta["band"]
    ((50, 50), Unit("nJy"), 'F150W')
    >>> round(float(stamp.data[0, 0]), 4)  # 0.01 MJy/sr x (0.03 arcsec)^2 in nJy
    0.2115
    """
    if not isinstance(position, SkyCoord):
        raise TypeError(f"position must be an astropy SkyCoord, got {type(position).__name__}")
    if not position.isscalar:
        raise ValueError("position must be a single (scalar) SkyCoord; call cutout once per object")
    if isinstance(mosaic, NDData):
        stamp = _cut(*_nddata_arrays(mosaic), "the NDData mosaic", position, size)
    else:
        source = as_existing_path(mosaic)
        # memmap: an i2d mosaic can be gigabytes; only the stamp's pixels are read.
        with fits.open(source, memmap=True) as hdul:
            stamp = _cut(*_file_arrays(hdul), source.name, position, size)
        stamp.meta["source_file"] = str(source)
    if band is not None:
        stamp.meta["band"] = get_band(band).name
    return stamp


def _cut(sci, err, wht, in_mask, wcs, unit, header, name: str, position: SkyCoord, size) -> NDData:
    """The work of `cutout` once the mosaic's arrays are in hand."""
    if not isinstance(wcs, WCS) or not wcs.has_celestial:
        raise ValueError(f"{name} has no celestial FITS WCS (astropy.wcs.WCS); cannot cut by sky position")
    if sci is None or np.ndim(sci) != 2:
        raise ValueError(f"{name}: the science image must be 2D, got shape {np.shape(sci)}")
    factor = _to_njy_per_pixel(unit, wcs, header, name)

    ny, nx = np.shape(sci)
    x, y = wcs.celestial.world_to_pixel(position)
    if not (np.isfinite(x) and np.isfinite(y) and -0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
        raise ValueError(f"position {position.to_string('decimal')} falls outside {name} "
                         f"(pixel x={float(x):.1f}, y={float(y):.1f}; the mosaic is {nx} x {ny} pixels)")
    try:
        # The geometry only: a zero-stride stand-in costs nothing whatever the mosaic's size or dtype.
        geometry = Cutout2D(np.broadcast_to(np.float32(0.0), (ny, nx)), position, size,
                            wcs=wcs.celestial, mode="partial", fill_value=np.nan)
    except NoOverlapError as exc:  # only reachable for odd sizes; the centre test above comes first
        raise ValueError(f"position {position.to_string('decimal')} does not overlap {name}") from exc

    def take(array: Any, fill: float) -> np.ndarray:
        out = np.full(geometry.shape, fill, dtype=np.float64)
        out[geometry.slices_cutout] = np.asarray(array[geometry.slices_original], dtype=np.float64)
        return out

    data = take(sci, np.nan) * factor
    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(data)
        error = None
        if err is not None:
            err_values, err_unit = err
            error = take(err_values, np.nan) * _to_njy_per_pixel(err_unit, wcs, header, f"{name} ERR")
            mask |= ~np.isfinite(error) | ~(error > 0)
        if wht is not None:
            weight = take(np.asarray(wht), 0.0)
            mask |= ~np.isfinite(weight) | ~(weight > 0)
        if in_mask is not None:
            mask |= take(in_mask, 1.0).astype(bool)
    if mask.all():
        raise ValueError(f"no valid pixel in the {geometry.shape} cutout of {name} at "
                         f"{position.to_string('decimal')} (all NaN, zero weight or masked)")
    data[mask] = 0.0
    uncertainty = None
    if error is not None:
        error[mask] = 0.0
        uncertainty = StdDevUncertainty(error, unit=u.nJy)

    meta = {"band": _band_from_header(header), "pixel_scale": _pixel_scale(geometry.wcs), "position": position}
    return NDData(data, unit=u.nJy, uncertainty=uncertainty, mask=mask, wcs=geometry.wcs, meta=meta)
