"""The resolving power of NIRSpec PRISM/CLEAR, which both the line spread and the native pixels follow.

Its own module so that the spectrum simulator (`jwst_embed.simulation.prism`) and the native-pixel
noise (`jwst_embed.simulation.prism_noise`) both import it from below.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

__all__ = ["RESOLVING_POWER_TABLE", "resolving_power"]

#: JDox PRISM/CLEAR resolving power: (wavelength um, R).
RESOLVING_POWER_TABLE = (
    (0.6, 64.0),
    (1.2, 30.0),
    (2.0, 49.0),
    (3.0, 101.0),
    (4.0, 180.0),
    (5.0, 286.0),
    (5.3, 323.0),
)


def resolving_power(wavelength_um, sharpening: float = 1.0) -> np.ndarray:
    """PRISM resolving power lambda / FWHM at ``wavelength_um`` (array-like, um).

    Parameters
    ----------
    wavelength_um : array-like
        Wavelengths in um (a Quantity is converted).
    sharpening : float, optional
        Factor for compact sources (~1.3 for a point source; 1 = JDox nominal).

    Returns
    -------
    R : `numpy.ndarray`

    Examples
    --------
    >>> float(resolving_power(3.0))
    101.0
    """
    if isinstance(wavelength_um, u.Quantity):
        wavelength_um = wavelength_um.to_value(u.um)
    if not sharpening > 0:
        raise ValueError(f"sharpening must be positive, got {sharpening}")
    table = np.asarray(RESOLVING_POWER_TABLE)
    return sharpening * np.interp(np.asarray(wavelength_um, dtype=float), table[:, 0], table[:, 1])
