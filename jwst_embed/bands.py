"""NIRCam imaging filters and NIRSpec spectral modes known to jwst_embed.

Each NIRCam band is one imaging modality of the model and each spectral
mode one spectral modality. A band is identified inside the model by its
pivot wavelength, so the numbers here are part of the model's input.

Pivot wavelengths are the values published in the JWST User Documentation
(JDox, "NIRCam Filters" table, from the flight throughput curves); the test
suite recomputes them from the throughput curves shipped with ``astro-sedpy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u

__all__ = [
    "Band",
    "SpectralMode",
    "NIRCAM_BANDS",
    "SPECTRAL_MODES",
    "SHORT_WAVE_PIXEL_SCALE",
    "LONG_WAVE_PIXEL_SCALE",
    "get_band",
    "get_spectral_mode",
]

#: Native NIRCam detector pixel scales.
SHORT_WAVE_PIXEL_SCALE = 0.031 * u.arcsec
LONG_WAVE_PIXEL_SCALE = 0.063 * u.arcsec


@dataclass(frozen=True)
class Band:
    """A NIRCam imaging filter.

    Parameters
    ----------
    name : str
        Upper-case filter name, e.g. ``"F150W"``.
    pivot_wavelength : `~astropy.units.Quantity`
        Pivot wavelength of the filter throughput.
    pixel_scale : `~astropy.units.Quantity`
        Native detector pixel scale (angle per pixel).
    channel : str
        ``"SW"`` (short wave, 0.6-2.3 um) or ``"LW"`` (long wave, 2.4-5 um).
    width_class : str
        ``"wide"``, ``"medium"`` or ``"double-wide"`` (F150W2, F322W2).

    Examples
    --------
    >>> from jwst_embed import NIRCAM_BANDS
    >>> band = NIRCAM_BANDS["F444W"]
    >>> band.name, band.channel, band.width_class
    ('F444W', 'LW', 'wide')
    """

    name: str
    pivot_wavelength: u.Quantity
    pixel_scale: u.Quantity
    channel: str
    width_class: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class SpectralMode:
    """A NIRSpec disperser/filter combination.

    Parameters
    ----------
    name : str
        Mode name, e.g. ``"PRISM"`` (PRISM/CLEAR).
    wavelength_min, wavelength_max : `~astropy.units.Quantity`
        Nominal wavelength coverage of the mode.

    Examples
    --------
    >>> from jwst_embed import SPECTRAL_MODES
    >>> mode = SPECTRAL_MODES["PRISM"]
    >>> print(mode.name, mode.wavelength_min, mode.wavelength_max)
    PRISM 0.6 um 5.3 um
    """

    name: str
    wavelength_min: u.Quantity
    wavelength_max: u.Quantity

    def __str__(self) -> str:
        return self.name


# name: (pivot wavelength in um, width class); JDox NIRCam filter table.
_NIRCAM_PIVOTS = {
    "F070W": (0.704, "wide"),
    "F090W": (0.901, "wide"),
    "F115W": (1.154, "wide"),
    "F140M": (1.404, "medium"),
    "F150W": (1.501, "wide"),
    "F150W2": (1.671, "double-wide"),
    "F162M": (1.626, "medium"),
    "F182M": (1.845, "medium"),
    "F200W": (1.990, "wide"),
    "F210M": (2.093, "medium"),
    "F250M": (2.503, "medium"),
    "F277W": (2.786, "wide"),
    "F300M": (2.996, "medium"),
    "F322W2": (3.247, "double-wide"),
    "F335M": (3.365, "medium"),
    "F356W": (3.563, "wide"),
    "F360M": (3.621, "medium"),
    "F410M": (4.092, "medium"),
    "F430M": (4.280, "medium"),
    "F444W": (4.421, "wide"),
    "F460M": (4.624, "medium"),
    "F480M": (4.834, "medium"),
}


def _make_band(name: str, pivot_um: float, width_class: str) -> Band:
    # The SW/LW split is at the dichroic (~2.35 um); every filter lies clearly on one side.
    short_wave = pivot_um < 2.35
    return Band(
        name=name,
        pivot_wavelength=pivot_um * u.um,
        pixel_scale=SHORT_WAVE_PIXEL_SCALE if short_wave else LONG_WAVE_PIXEL_SCALE,
        channel="SW" if short_wave else "LW",
        width_class=width_class,
    )


#: Every NIRCam wide, medium and double-wide filter, ordered by pivot wavelength: a dict
#: from filter name to `Band`.
#:
#: >>> from jwst_embed import NIRCAM_BANDS
#: >>> list(NIRCAM_BANDS)[:3]
#: ['F070W', 'F090W', 'F115W']
#: >>> NIRCAM_BANDS["F444W"].pivot_wavelength
#: <Quantity 4.421 um>
NIRCAM_BANDS: dict[str, Band] = {
    name: _make_band(name, pivot, kind)
    for name, (pivot, kind) in sorted(_NIRCAM_PIVOTS.items(), key=lambda item: item[1][0])
}

#: NIRSpec spectral modes (PRISM/CLEAR for now; gratings later): a dict from mode name to
#: `SpectralMode`.
#:
#: >>> from jwst_embed import SPECTRAL_MODES
#: >>> mode = SPECTRAL_MODES["PRISM"]
#: >>> mode.wavelength_min, mode.wavelength_max
#: (<Quantity 0.6 um>, <Quantity 5.3 um>)
SPECTRAL_MODES: dict[str, SpectralMode] = {
    "PRISM": SpectralMode("PRISM", 0.6 * u.um, 5.3 * u.um),
}

# Aliases a user may type for the same mode.
_MODE_ALIASES = {"PRISM/CLEAR": "PRISM", "CLEAR-PRISM": "PRISM", "PRISM_CLEAR": "PRISM", "CLEAR_PRISM": "PRISM"}


def get_band(name: str | Band) -> Band:
    """Look up a NIRCam band by name, case-insensitively.

    Parameters
    ----------
    name : str or `Band`
        Filter name such as ``"F150W"`` or ``"f444w"``; an optional
        ``"NIRCAM_"`` or ``"JWST_"`` prefix is accepted.

    Returns
    -------
    band : `Band`

    Raises
    ------
    ValueError
        If the name is not a known NIRCam filter; the message lists the valid names.

    Examples
    --------
    >>> from jwst_embed.bands import get_band
    >>> band = get_band("f150w")
    >>> band.name, band.pivot_wavelength, band.channel
    ('F150W', <Quantity 1.501 um>, 'SW')
    """
    if isinstance(name, Band):
        return name
    if not isinstance(name, str):
        raise TypeError(f"band name must be a string, got {type(name).__name__} ({name!r})")
    key = name.strip().upper()
    for prefix in ("JWST_", "NIRCAM_"):
        key = key.removeprefix(prefix)
    try:
        return NIRCAM_BANDS[key]
    except KeyError:
        valid = ", ".join(NIRCAM_BANDS)
        raise ValueError(f"unknown NIRCam band {name!r}; valid bands are: {valid}") from None


def get_spectral_mode(name: str | SpectralMode) -> SpectralMode:
    """Look up a NIRSpec spectral mode by name, case-insensitively.

    Parameters
    ----------
    name : str or `SpectralMode`
        ``"PRISM"`` (also ``"PRISM/CLEAR"``, ``"clear-prism"``).

    Returns
    -------
    mode : `SpectralMode`

    Raises
    ------
    ValueError
        If the mode is unknown; the message lists the valid names.

    Examples
    --------
    >>> from jwst_embed.bands import get_spectral_mode
    >>> get_spectral_mode("prism/clear").wavelength_max
    <Quantity 5.3 um>
    """
    if isinstance(name, SpectralMode):
        return name
    if not isinstance(name, str):
        raise TypeError(f"spectral mode must be a string, got {type(name).__name__} ({name!r})")
    key = name.strip().upper()
    key = _MODE_ALIASES.get(key, key)
    try:
        return SPECTRAL_MODES[key]
    except KeyError:
        valid = ", ".join(SPECTRAL_MODES)
        raise ValueError(f"unknown spectral mode {name!r}; valid modes are: {valid}") from None
