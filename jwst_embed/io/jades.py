"""Readers for the JADES NIRSpec products: the DR4 HLSP x1d files and the collaboration 1D files.

JADES DR4 HLSP ``*_x1d.fits`` (MAST, DOI 10.17909/8tdj-8n28)
    Binary tables ``EXTRACT5PIX1D`` and ``EXTRACT3PIX1D`` with columns
    ``WAVELENGTH`` [um], ``FLUX`` and ``FLUX_ERR`` [erg s-1 cm-2 AA-1]; the
    NIRCam cutouts in the same file are read by `jwst_embed.io.read_cutouts`.
JADES collaboration 1D (``*_1D.fits``, ESA NIPS pipeline)
    Image HDUs ``DATA`` and ``ERR`` in W m-3 (that is W m-2 m-1, 1e-7 of
    erg s-1 cm-2 AA-1; the primary ``UNIT`` keyword says so) and
    ``WAVELENGTH`` in metres; ``EXTR3``/``EXTR3ERR`` hold a 3-pixel extraction.
"""

from __future__ import annotations

import os

import astropy.units as u
import numpy as np
from astropy.io import fits
from specutils import Spectrum

from ._spectrum import as_existing_path, build_spectrum, header_meta, parse_unit, table_column

__all__ = ["HLSP_EXTRACTIONS", "JADES_1D_EXTRACTIONS", "read_jades_hlsp", "read_jades_1d"]

#: Extraction tables of a JADES DR4 HLSP x1d file (aperture height in pixels).
HLSP_EXTRACTIONS = ("EXTRACT5PIX1D", "EXTRACT3PIX1D")

#: Flux HDU -> error HDU of a JADES collaboration 1D file.
JADES_1D_EXTRACTIONS = {"DATA": "ERR", "EXTR3": "EXTR3ERR"}

# The collaboration 1D files have no BUNIT; their primary UNIT keyword reads "m-3 W".
_JADES_1D_DEFAULT_UNIT = u.W / u.m**3
_F_LAMBDA = u.erg / u.s / u.cm**2 / u.AA


def read_jades_hlsp(path: str | os.PathLike, extraction: str = "EXTRACT5PIX1D") -> Spectrum:
    """Read the 1D spectrum of a JADES DR4 HLSP ``x1d`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``hlsp_jades_jwst_nirspec_*_x1d.fits`` file.
    extraction : {"EXTRACT5PIX1D", "EXTRACT3PIX1D"}
        Which extraction table to read: the 5-pixel (default) or 3-pixel
        aperture.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Spectral axis in um, flux and `~astropy.nddata.StdDevUncertainty` in
        the file's unit (erg s-1 cm-2 AA-1), ``mask`` True at bad pixels.
        ``meta`` holds ``format="jades-hlsp"``, ``extraction``,
        ``source_file``, ``spectral_mode``, ``object_id``, ``ra``, ``dec``
        and the merged FITS ``header``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``extraction`` is unknown or the file lacks that table.
    """
    source = as_existing_path(path)
    key = str(extraction).strip().upper()
    if key not in HLSP_EXTRACTIONS:
        raise ValueError(f"unknown JADES HLSP extraction {extraction!r}; choose one of {HLSP_EXTRACTIONS}")
    with fits.open(source, memmap=False) as hdul:
        if key not in hdul:
            raise ValueError(f"{source.name} has no {key} table; is it a JADES DR4 HLSP x1d file?")
        table, primary = hdul[key], hdul[0].header
        wavelength = table_column(table, "WAVELENGTH", source)
        flux = table_column(table, "FLUX", source)
        error = table_column(table, "FLUX_ERR", source)
        header = primary.copy()
        header.extend(table.header, strip=True, update=True)
        meta = header_meta(table.header, primary, id_keys=("SOURCEID", "TARGET"))
    meta.update(format="jades-hlsp", extraction=key, header=header)
    return build_spectrum(wavelength, flux, error, meta, source)


def read_jades_1d(path: str | os.PathLike, extraction: str = "DATA") -> Spectrum:
    """Read a JADES collaboration 1D spectrum (``DATA``/``ERR``/``WAVELENGTH`` HDUs).

    Parameters
    ----------
    path : str or os.PathLike
        A ``*_prism_clear_v*_1D.fits`` file.
    extraction : {"DATA", "EXTR3"}
        Flux HDU to read (with its error HDU ``ERR`` or ``EXTR3ERR``).

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Spectral axis in um; flux and uncertainty in the file's own unit,
        W m-3 (an f_lambda: 1 W m-3 = 1e-7 erg s-1 cm-2 AA-1), ``mask``
        True at bad pixels. ``meta`` holds ``format="jades-1d"``,
        ``extraction``, ``source_file``, ``spectral_mode`` and the primary
        ``header``. These files carry no object id or position in their
        headers, so none is given.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If an HDU is missing or ``extraction`` is unknown.
    astropy.units.UnitsError
        If the file declares a flux unit that is not an f_lambda.
    """
    source = as_existing_path(path)
    key = str(extraction).strip().upper()
    if key not in JADES_1D_EXTRACTIONS:
        raise ValueError(f"unknown JADES 1D extraction {extraction!r}; choose one of {tuple(JADES_1D_EXTRACTIONS)}")
    with fits.open(source, memmap=False) as hdul:
        missing = [name for name in (key, JADES_1D_EXTRACTIONS[key], "WAVELENGTH") if name not in hdul]
        if missing:
            raise ValueError(f"{source.name} lacks the HDU(s) {missing} of a JADES 1D file")
        primary = hdul[0].header.copy()
        flux_hdu, error_hdu, wave_hdu = hdul[key], hdul[JADES_1D_EXTRACTIONS[key]], hdul["WAVELENGTH"]
        unit_text = flux_hdu.header.get("BUNIT") or primary.get("UNIT")
        unit = parse_unit(unit_text, f"HDU {key}", source) if unit_text else _JADES_1D_DEFAULT_UNIT
        if not unit.is_equivalent(_F_LAMBDA):
            raise u.UnitsError(f"{source.name}: HDU {key} has unit {unit}, expected an f_lambda such as W m-3")
        wave_unit = parse_unit(wave_hdu.header.get("BUNIT") or "m", "HDU WAVELENGTH", source)
        wavelength = np.asarray(wave_hdu.data, dtype=float) * wave_unit
        flux = np.asarray(flux_hdu.data, dtype=float) * unit
        error = np.asarray(error_hdu.data, dtype=float) * unit
    meta = header_meta(primary, id_keys=(), ra_keys=(), dec_keys=())
    meta.update(format="jades-1d", extraction=key, header=primary)
    return build_spectrum(wavelength, flux, error, meta, source)
