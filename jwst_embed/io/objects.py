"""Read one object per file (a spectrum, NIRCam cutouts, or both) into the embedder's inputs."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from .images import NoCutoutsError, read_cutouts
from .spectra import identify_spectrum_format, read_spectrum

__all__ = ["read_objects", "UnreadableInputWarning"]


class UnreadableInputWarning(UserWarning):
    """Part of a file (its spectrum or its cutouts) could not be read; the rest was used."""


def read_objects(paths: Sequence[str | os.PathLike], bands: Sequence[str] | None = None, spectra: bool = True):
    """Read spectra and cutouts of one object per file, as ``embed(images=..., spectra=...)`` takes them.

    Parameters
    ----------
    paths : sequence of path-like
        FITS files in any format `jwst_embed.io` reads; each may hold a spectrum, NIRCam cutouts
        (JADES HLSP files) or both.
    bands : sequence of str, optional
        Bands to use (an empty tuple: none); default every band found.
    spectra : bool
        Use the spectra.

    Returns
    -------
    images : dict of str to list of (`~astropy.nddata.NDData` or None)
        Per band found, one entry per file (None where a file lacks the band).
    spectra : list of (`~specutils.Spectrum` or None) or None
        One entry per file; None when no file has a spectrum.

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    ValueError
        A file gives neither a spectrum nor a wanted image (the message says why).

    Warns
    -----
    UnreadableInputWarning
        A file's spectrum or cutouts are present but unreadable (e.g. an image without a
        celestial WCS, a truncated table) while the rest of it is read: the warning names the
        file, the problem and the inputs used instead; nothing is dropped silently.

    Examples
    --------
    >>> from jwst_embed.io import read_objects
    >>> images, spectra = read_objects(["obj1_x1d.fits", "obj2.spec.fits"])  # doctest: +SKIP
    """
    spectrum_list, cutout_list = [], []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such file: {path}")
        spectrum, cutouts, problems, unreadable = None, {}, [], []
        if spectra:
            try:
                identify_spectrum_format(path)
            except ValueError as error:  # not a spectrum file
                problems.append(str(error))
            else:
                try:
                    spectrum = read_spectrum(path)
                except (ValueError, OSError, KeyError, IndexError) as error:  # a damaged spectrum file
                    unreadable.append(f"spectrum unreadable ({error})")
        if bands != ():
            try:
                cutouts = read_cutouts(path)
            except NoCutoutsError as error:  # a file without images
                problems.append(str(error))
            except (ValueError, OSError) as error:  # images there but unusable; OSError: not FITS
                unreadable.append(f"cutouts unreadable ({error})")
        if bands:
            cutouts = {band: image for band, image in cutouts.items() if band in bands}
        if spectrum is None and not cutouts:
            raise ValueError(f"{path} gives no usable spectrum or image: {'; '.join(problems + unreadable)}")
        if unreadable:
            used = ", ".join([*sorted(cutouts), *(["PRISM spectrum"] if spectrum is not None else [])])
            warnings.warn(f"{path}: {'; '.join(unreadable)}; using {used} only", UnreadableInputWarning, stacklevel=2)
        spectrum_list.append(spectrum)
        cutout_list.append(cutouts)
    found = sorted({band for cutouts in cutout_list for band in cutouts})
    images = {band: [cutouts.get(band) for cutouts in cutout_list] for band in (bands or found) if band in found}
    return images, (spectrum_list if any(s is not None for s in spectrum_list) else None)
