"""Reader for the official JWST pipeline 1D product (``*_x1d.fits``, table ``EXTRACT1D``).

The table is parsed by specutils' own ``"JWST x1d"`` loader (``FLUX`` for
point sources, ``SURF_BRIGHT`` for extended ones, chosen by ``SRCTYPE``);
this module adds the mask and the metadata every jwst_embed reader gives.
"""

from __future__ import annotations

import os

import astropy.units as u
from astropy.io import fits
from specutils import Spectrum

from ._spectrum import as_existing_path, build_spectrum, header_meta

__all__ = ["read_jwst_x1d"]


def read_jwst_x1d(path: str | os.PathLike) -> Spectrum:
    """Read a single-spectrum JWST pipeline ``x1d`` file.

    Parameters
    ----------
    path : str or os.PathLike
        An ``*_x1d.fits`` file with one ``EXTRACT1D`` table (a point-source
        ``FLUX``/``FLUX_ERROR`` or extended ``SURF_BRIGHT``/``SB_ERROR``
        spectrum, as ``SRCTYPE`` says).

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Spectral axis in um, flux and `~astropy.nddata.StdDevUncertainty` in
        the file's unit (Jy, or MJy/sr for extended sources), ``mask`` True
        at bad pixels. ``meta`` holds ``format="jwst-x1d"``,
        ``source_file``, ``spectral_mode`` (from ``GRATING``), and
        ``object_id`` / ``ra`` / ``dec`` from ``SOURCEID`` / ``SRCRA`` /
        ``SRCDEC`` where present, plus the merged ``header``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file has no ``EXTRACT1D`` table or holds several spectra
        (read those with ``specutils.SpectrumList.read(path, format="JWST x1d multi")``).
    """
    source = as_existing_path(path)
    with fits.open(source, memmap=False) as hdul:
        n_tables = sum(hdu.name == "EXTRACT1D" for hdu in hdul)
    if n_tables != 1:
        raise ValueError(f"{source.name} holds {n_tables} EXTRACT1D tables; read_jwst_x1d reads files with "
                         "exactly one (use specutils.SpectrumList.read(path, format='JWST x1d multi') for more)")
    try:
        loaded = Spectrum.read(source, format="JWST x1d")
    except RuntimeError as exc:  # specutils' loader signals several spectra or a bad SRCTYPE this way
        raise ValueError(f"{source.name}: {exc}") from exc
    header = loaded.meta["header"]
    if loaded.uncertainty is None:
        raise ValueError(f"{source.name}: EXTRACT1D table has no error column (FLUX_ERROR or ERROR)")
    flux = loaded.flux
    error = u.Quantity(loaded.uncertainty.array, loaded.uncertainty.unit or flux.unit)
    meta = header_meta(header, id_keys=("SOURCEID", "SRCNAME"))
    meta.update(format="jwst-x1d", header=header)
    return build_spectrum(loaded.spectral_axis, flux, error, meta, source)
