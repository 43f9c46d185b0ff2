"""Readers for real JWST files, returning astropy objects.

Spectra come back as `specutils.Spectrum` (um spectral axis, the file's own
flux unit, `~astropy.nddata.StdDevUncertainty`, a boolean mask) and images as
`~astropy.nddata.NDData` in nJy per pixel with WCS, uncertainty and mask.
"""

from .images import NoCutoutsError, cutout, read_cutouts
from .jades import read_jades_1d, read_jades_hlsp
from .msaexp import read_msaexp
from .objects import UnreadableInputWarning, read_objects
from .pipeline import read_jwst_x1d
from .spectra import SPECTRUM_FORMATS, identify_spectrum_format, read_spectrum

__all__ = [
    "NoCutoutsError",
    "UnreadableInputWarning",
    "read_objects",
    "SPECTRUM_FORMATS",
    "cutout",
    "identify_spectrum_format",
    "read_cutouts",
    "read_jades_1d",
    "read_jades_hlsp",
    "read_jwst_x1d",
    "read_msaexp",
    "read_spectrum",
]
