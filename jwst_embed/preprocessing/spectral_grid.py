"""The model's spectral grid: log-spaced wavelength pixels over the PRISM range."""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np

__all__ = ["MODEL_WAVELENGTH_MIN", "MODEL_WAVELENGTH_MAX", "SpectralGrid", "DEFAULT_SPECTRAL_GRID"]

log = logging.getLogger(__name__)

#: Wavelength range the model accepts for input spectra (NIRSpec PRISM/CLEAR and margins).
MODEL_WAVELENGTH_MIN = 0.5 * u.um
MODEL_WAVELENGTH_MAX = 5.6 * u.um

WMIN_UM = MODEL_WAVELENGTH_MIN.to_value(u.um)
WMAX_UM = MODEL_WAVELENGTH_MAX.to_value(u.um)


def _scalar_um(value, name: str) -> float:
    if not isinstance(value, u.Quantity):
        raise TypeError(f"{name} must be an astropy Quantity with a length unit, got {value!r}")
    try:
        return float(value.to_value(u.um))
    except (u.UnitsError, TypeError, ValueError) as err:
        raise u.UnitsError(f"{name} has unit '{value.unit}', which is not a length") from err


@dataclass(frozen=True, eq=False)
class SpectralGrid:
    """The model's log-wavelength grid for spectra.

    Parameters
    ----------
    wavelength_min, wavelength_max : `~astropy.units.Quantity`
        Lower edge of the first pixel and upper edge of the last pixel (length units;
        stored in um). Both must lie within 0.5-5.6 um and ``wavelength_min <
        wavelength_max``.
    n_pixels : int
        Number of pixels (at least 8).

    Raises
    ------
    TypeError
        If a wavelength is not a Quantity or ``n_pixels`` not an integer.
    astropy.units.UnitsError
        If a wavelength does not have a length unit.
    ValueError
        If the range is empty, outside 0.5-5.6 um, or ``n_pixels < 8``.

    Examples
    --------
    >>> import astropy.units as u
    >>> grid = SpectralGrid(0.6 * u.um, 5.3 * u.um, 512)
    >>> grid.edges.shape, grid.wavelength.shape
    ((513,), (512,))
    >>> SpectralGrid.from_dict(grid.to_dict()) == grid
    True
    """

    wavelength_min: u.Quantity = field(default_factory=lambda: 0.6 * u.um)
    wavelength_max: u.Quantity = field(default_factory=lambda: 5.3 * u.um)
    n_pixels: int = 512

    def __post_init__(self) -> None:
        wmin = _scalar_um(self.wavelength_min, "wavelength_min")
        wmax = _scalar_um(self.wavelength_max, "wavelength_max")
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, numbers.Integral):
            raise TypeError(f"n_pixels must be an integer, got {self.n_pixels!r}")
        if self.n_pixels < 8:
            raise ValueError(f"n_pixels must be at least 8, got {self.n_pixels}")
        if not (np.isfinite(wmin) and np.isfinite(wmax) and wmin < wmax):
            raise ValueError(
                f"wavelength_min ({wmin} um) must be smaller than wavelength_max ({wmax} um)"
            )
        if wmin < WMIN_UM or wmax > WMAX_UM:
            raise ValueError(
                f"grid {wmin}-{wmax} um must lie within the model's range {WMIN_UM}-{WMAX_UM} um"
            )
        object.__setattr__(self, "wavelength_min", wmin * u.um)
        object.__setattr__(self, "wavelength_max", wmax * u.um)
        object.__setattr__(self, "n_pixels", int(self.n_pixels))
        edges = np.geomspace(wmin, wmax, self.n_pixels + 1)
        edges[0], edges[-1] = wmin, wmax
        edges.flags.writeable = False
        centres = np.sqrt(edges[:-1] * edges[1:])
        centres.flags.writeable = False
        object.__setattr__(self, "_edges_um", edges)
        object.__setattr__(self, "_wavelength_um", centres)

    def _key(self) -> tuple[float, float, int]:
        return (self.wavelength_min.value, self.wavelength_max.value, self.n_pixels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpectralGrid):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def edges(self) -> u.Quantity:
        """Pixel edges in um, ``n_pixels + 1`` values log-spaced from min to max."""
        return self._edges_um.copy() * u.um

    @property
    def wavelength(self) -> u.Quantity:
        """Pixel centres in um (geometric mean of the two edges)."""
        return self._wavelength_um.copy() * u.um

    def to_dict(self) -> dict:
        """Plain-Python description for checkpoint metadata (JSON/TOML serialisable)."""
        return {
            "wavelength_min": self.wavelength_min.value,
            "wavelength_max": self.wavelength_max.value,
            "wavelength_unit": "um",
            "n_pixels": self.n_pixels,
        }

    @classmethod
    def from_dict(cls, metadata: dict) -> SpectralGrid:
        """Inverse of `to_dict`."""
        missing = {"wavelength_min", "wavelength_max", "wavelength_unit", "n_pixels"} - set(
            metadata
        )
        if missing:
            raise ValueError(f"SpectralGrid metadata is missing keys {sorted(missing)}")
        unit = u.Unit(metadata["wavelength_unit"])
        return cls(
            float(metadata["wavelength_min"]) * unit,
            float(metadata["wavelength_max"]) * unit,
            int(metadata["n_pixels"]),
        )


DEFAULT_SPECTRAL_GRID = SpectralGrid()


