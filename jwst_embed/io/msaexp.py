"""Reader for msaexp ``spec.fits`` files, as served by the DAWN JWST Archive (DJA).

The 1D spectrum is the binary table ``SPEC1D`` with columns ``wave`` [um],
``flux`` and ``err`` [uJy] (optimal extraction); the same file holds the 2D
``SCI``/``WHT`` spectra, which are not read here.
"""

from __future__ import annotations

import os

from astropy.io import fits
from specutils import Spectrum

from ._spectrum import as_existing_path, build_spectrum, header_meta, table_column

__all__ = ["read_msaexp"]


def read_msaexp(path: str | os.PathLike) -> Spectrum:
    """Read the 1D spectrum of an msaexp / DJA ``spec.fits`` file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``*.spec.fits`` file with a ``SPEC1D`` table.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Spectral axis in um, flux and `~astropy.nddata.StdDevUncertainty` in
        the file's unit (uJy), ``mask`` True at bad pixels (msaexp writes
        NaN flux and infinite or zero error outside the trace).
        ``meta`` holds ``format="msaexp"``, ``source_file``,
        ``spectral_mode``, and ``object_id`` (``SRCNAME``), ``ra``/``dec``
        (``SRCRA``/``SRCDEC``) and ``redshift`` where the header has them,
        plus the ``SPEC1D`` ``header``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file has no ``SPEC1D`` table or it lacks a column.
    """
    source = as_existing_path(path)
    with fits.open(source, memmap=False) as hdul:
        if "SPEC1D" not in hdul:
            raise ValueError(f"{source.name} has no SPEC1D table; is it an msaexp spec.fits file?")
        table = hdul["SPEC1D"]
        wavelength = table_column(table, "wave", source)
        flux = table_column(table, "flux", source)
        error = table_column(table, "err", source)
        header = hdul[0].header.copy()
        header.extend(table.header, strip=True, update=True)
    # TARG_RA/TARG_DEC point at the visit's target, not at this source: not used.
    meta = header_meta(header, id_keys=("SRCNAME", "SOURCEID", "SRCID"))
    meta.update(format="msaexp", header=header)
    return build_spectrum(wavelength, flux, error, meta, source)
