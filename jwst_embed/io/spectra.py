"""`read_spectrum`: one entry point for every NIRSpec 1D format jwst_embed knows.

The format is recognised from the FITS extension names, not from the file
name, so renamed files still read. Each format has its own reader module
(`jwst_embed.io.jades`, `jwst_embed.io.msaexp`, `jwst_embed.io.pipeline`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import astropy.units as u
from astropy.io import fits
from specutils import Spectrum

from ._spectrum import as_existing_path
from .jades import read_jades_1d, read_jades_hlsp
from .msaexp import read_msaexp
from .pipeline import read_jwst_x1d

__all__ = ["SPECTRUM_FORMATS", "identify_spectrum_format", "read_spectrum"]

#: Known formats: name -> (what identifies it, reader).
SPECTRUM_FORMATS: dict[str, tuple[str, Callable[..., Spectrum]]] = {
    "jades-hlsp": ("JADES DR4 HLSP x1d (tables EXTRACT5PIX1D/EXTRACT3PIX1D)", read_jades_hlsp),
    "msaexp": ("DJA / msaexp spec.fits (table SPEC1D)", read_msaexp),
    "jades-1d": ("JADES collaboration 1D (image HDUs DATA, ERR, WAVELENGTH)", read_jades_1d),
    "jwst-x1d": ("JWST pipeline x1d (table EXTRACT1D)", read_jwst_x1d),
}


def _known_formats() -> str:
    return "; ".join(f"{name!r}: {description}" for name, (description, _) in SPECTRUM_FORMATS.items())


def identify_spectrum_format(path: str | os.PathLike) -> str:
    """Name the 1D spectrum format of a FITS file from its extension names.

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file.

    Returns
    -------
    format : str
        One of the keys of ``SPECTRUM_FORMATS``: ``"jades-hlsp"``,
        ``"msaexp"``, ``"jades-1d"`` or ``"jwst-x1d"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not FITS or matches none of the known formats; the
        message lists them.
    """
    source = as_existing_path(path)
    try:
        with fits.open(source, memmap=False) as hdul:
            names = {hdu.name.upper() for hdu in hdul}
    except OSError as exc:
        raise ValueError(f"{source.name} is not a readable FITS file ({exc}); "
                         f"known spectrum formats: {_known_formats()}") from exc
    if names & {"EXTRACT5PIX1D", "EXTRACT3PIX1D"}:
        return "jades-hlsp"
    if "SPEC1D" in names:
        return "msaexp"
    if {"DATA", "ERR", "WAVELENGTH"} <= names:
        return "jades-1d"
    if "EXTRACT1D" in names:
        return "jwst-x1d"
    raise ValueError(f"{source.name} is not a known 1D spectrum format (extensions: {sorted(names)}); "
                     f"known formats: {_known_formats()}")


def read_spectrum(path: str | os.PathLike, format: str | None = None, **kwargs) -> Spectrum:
    """Read a NIRSpec 1D spectrum from any format jwst_embed knows.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.
    format : str, optional
        Skip detection and use this format (a key of ``SPECTRUM_FORMATS``).
    **kwargs
        Passed to the format's reader, e.g. ``extraction="EXTRACT3PIX1D"``
        for JADES HLSP files (`~jwst_embed.io.read_jades_hlsp`) or
        ``extraction="EXTR3"`` for JADES 1D files (`~jwst_embed.io.read_jades_1d`).

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Spectral axis in um (increasing); flux in the file's own unit (f_nu
        or f_lambda, not converted: `jwst_embed.preprocessing` does that);
        `~astropy.nddata.StdDevUncertainty` in the same unit; ``mask`` True
        where flux or error is NaN/inf or the error is <= 0 (those pixels hold
        flux 0 and error 0). ``meta`` has ``format``, ``source_file``,
        ``spectral_mode`` (``"PRISM"`` where the header says so), the FITS
        ``header``, and ``object_id``, ``ra``, ``dec`` (Quantity, deg) and
        ``redshift`` only where the header has them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the format is not recognised (the message lists the known ones),
        or the file is malformed.

    Examples
    --------
    >>> from jwst_embed.io import read_spectrum
    >>> spectrum = read_spectrum("ceers-1345_933.spec.fits")  # doctest: +SKIP
    >>> spectrum.meta["format"], spectrum.flux.unit  # doctest: +SKIP
    ('msaexp', Unit("uJy"))
    """
    if format is None:
        format = identify_spectrum_format(path)
    key = str(format).strip().lower()
    if key not in SPECTRUM_FORMATS:
        raise ValueError(f"unknown spectrum format {format!r}; known formats: {_known_formats()}")
    _, reader = SPECTRUM_FORMATS[key]
    try:
        return reader(path, **kwargs)
    except (ValueError, IndexError, KeyError, OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError | u.UnitsError):
            raise
        # e.g. numpy's "cannot reshape array" from a table cut short: say which file and why
        raise ValueError(
            f"{Path(path).name}: could not read it as a {key} spectrum ({type(error).__name__}: {error}); "
            "the file may be truncated or damaged"
        ) from error
