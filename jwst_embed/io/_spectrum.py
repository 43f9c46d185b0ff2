"""Shared plumbing of the spectrum readers: path checks, masks, metadata.

Every format reader ends in `build_spectrum`, so the rules for what a
bad pixel is and what goes into ``meta`` live in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum

from ..bands import get_spectral_mode

__all__ = [
    "as_existing_path",
    "build_spectrum",
    "header_meta",
    "parse_unit",
    "spectral_mode_from_header",
    "table_column",
]


def as_existing_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a `~pathlib.Path`, raising if it is not an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    return path


def parse_unit(text: str | None, what: str, source: Path) -> u.UnitBase:
    """Parse a unit string from a FITS header, naming the file and column when it fails."""
    if text is None or not str(text).strip():
        raise u.UnitsError(f"{source.name}: {what} has no unit in the file")
    try:
        return u.Unit(str(text).strip())
    except ValueError as exc:
        raise u.UnitsError(f"{source.name}: cannot parse the unit {text!r} of {what}") from exc


def table_column(hdu: Any, name: str, source: Path) -> u.Quantity:
    """Column ``name`` of a FITS binary-table HDU as a Quantity with its TUNIT."""
    names = [column.name for column in hdu.columns]
    matches = [column for column in hdu.columns if column.name.upper() == name.upper()]
    if not matches:
        raise ValueError(f"{source.name}: table {hdu.name} has no column {name!r} (columns: {names})")
    column = matches[0]
    unit = parse_unit(column.unit, f"column {column.name} of {hdu.name}", source)
    return np.asarray(hdu.data[column.name], dtype=float) * unit


def _first(headers: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> Any:
    """First value found for any of ``keys`` in any of ``headers`` (in that order)."""
    for key in keys:
        for header in headers:
            value = header.get(key)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                return value
    return None


def spectral_mode_from_header(*headers: Mapping[str, Any]) -> str | None:
    """Name of the NIRSpec spectral mode (e.g. ``"PRISM"``) if the headers say which one.

    Looks at ``GRATING`` (pipeline, HLSP, msaexp) and ``GWA_POS`` (ESA/NIPS
    products). Returns None for a disperser jwst_embed does not know yet.
    """
    disperser = _first(headers, ("GRATING", "GWA_POS"))
    if disperser is None:
        return None
    try:
        return get_spectral_mode(str(disperser)).name
    except ValueError:
        return None


def header_meta(*headers: Mapping[str, Any], id_keys: Iterable[str] = ("SOURCEID", "SRCNAME", "TARGET"),
                ra_keys: Iterable[str] = ("SRCRA", "RA"), dec_keys: Iterable[str] = ("SRCDEC", "DEC"),
                ) -> dict[str, Any]:
    """Object id, position, redshift and spectral mode, where the headers carry them.

    Nothing is invented: a key is absent from the result when no header has it.
    """
    meta: dict[str, Any] = {}
    object_id = _first(headers, id_keys)
    if object_id is not None:
        meta["object_id"] = str(object_id).strip()
    ra, dec = _first(headers, ra_keys), _first(headers, dec_keys)
    if ra is not None and dec is not None:
        meta["ra"] = float(ra) * u.deg
        meta["dec"] = float(dec) * u.deg
    redshift = _first(headers, ("REDSHIFT", "Z_SPEC", "ZSPEC", "Z"))
    if redshift is not None:
        meta["redshift"] = float(redshift)
    mode = spectral_mode_from_header(*headers)
    if mode is not None:
        meta["spectral_mode"] = mode
    return meta


def build_spectrum(wavelength: u.Quantity, flux: u.Quantity, error: u.Quantity,
                   meta: dict[str, Any], source: Path) -> Spectrum:
    """Assemble a `~specutils.Spectrum` with a mask, from arrays read off a file.

    A pixel is masked (True) where the flux or its error is NaN or infinite,
    or the error is not positive. Masked pixels carry flux 0 and error 0
    (finite numbers, so nothing downstream meets NaN); their weight is set by
    the mask alone. The spectral axis is in um and increasing.
    """
    wavelength = u.Quantity(wavelength).to(u.um)
    flux = u.Quantity(flux)
    try:
        error = u.Quantity(error).to(flux.unit)
    except u.UnitConversionError as exc:
        raise u.UnitsError(f"{source.name}: flux unit {flux.unit} and error unit {error.unit} differ") from exc
    values = np.asarray(flux.value, dtype=float)
    sigma = np.asarray(error.value, dtype=float)
    lam = np.asarray(wavelength.value, dtype=float)
    if not (lam.ndim == values.ndim == sigma.ndim == 1 and lam.size == values.size == sigma.size):
        raise ValueError(f"{source.name}: wavelength, flux and error must be 1D arrays of one length, "
                         f"got shapes {lam.shape}, {values.shape}, {sigma.shape}")
    if lam.size < 2 or not np.all(np.isfinite(lam)):
        raise ValueError(f"{source.name}: wavelength array is empty or holds NaN/inf")
    steps = np.diff(lam)
    if np.all(steps < 0):  # some products store the axis red to blue
        lam, values, sigma = lam[::-1], values[::-1], sigma[::-1]
    elif not np.all(steps > 0):
        raise ValueError(f"{source.name}: wavelengths are not strictly increasing")

    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(values) | ~np.isfinite(sigma) | ~(sigma > 0)
    if mask.all():
        raise ValueError(f"{source.name}: every pixel of the spectrum is NaN/inf or has error <= 0")
    values = np.where(mask, 0.0, values)
    sigma = np.where(mask, 0.0, sigma)

    meta = {**meta, "source_file": str(source)}
    return Spectrum(flux=values * flux.unit, spectral_axis=lam * u.um,
                    uncertainty=StdDevUncertainty(sigma * flux.unit), mask=mask, meta=meta)
