"""`ImageGrid`: the model's square, north-up image grid, and `DEFAULT_IMAGE_GRID`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

__all__ = ["ImageGrid", "DEFAULT_IMAGE_GRID"]


def as_arcsec(value: Any, name: str) -> float:
    """An angle (Quantity in angle or angle/pixel, or a number in arcsec) as positive float arcsec."""
    if isinstance(value, u.Quantity):
        unit = value.unit
        if unit.is_equivalent(u.arcsec / u.pix):
            value = value * u.pix
        try:
            arcsec = value.to_value(u.arcsec)
        except u.UnitsError:
            raise u.UnitConversionError(
                f"{name} must be an angle (e.g. 0.03 * u.arcsec), got {value!r}"
            ) from None
    else:
        try:
            arcsec = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number in arcsec or an angle Quantity, got {value!r}"
            ) from None
    if np.ndim(arcsec) != 0 or not np.isfinite(arcsec) or arcsec <= 0:
        raise ValueError(f"{name} must be a positive finite angle, got {value!r}")
    return float(arcsec)


@dataclass(frozen=True)
class ImageGrid:
    """The model's image grid: a square of ``n_pixels`` pixels of ``pixel_scale``.

    The grid is north up, east left (a standard TAN projection centred on the
    object); the centre of the grid lies at pixel coordinate ``(n_pixels - 1) / 2``
    (0-based), i.e. on a pixel corner for an even ``n_pixels``.

    Parameters
    ----------
    n_pixels : int
        Side of the square grid in pixels.
    pixel_scale : `~astropy.units.Quantity`
        Angular size of one pixel (angle, or angle per pixel).

    Examples
    --------
    >>> from jwst_embed.preprocessing import ImageGrid
    >>> grid = ImageGrid(n_pixels=32)
    >>> grid.to_dict()
    {'n_pixels': 32, 'pixel_scale_arcsec': 0.04}
    >>> ImageGrid.from_dict(grid.to_dict()) == grid
    True
    """

    n_pixels: int = 64
    pixel_scale: u.Quantity = 0.04 * u.arcsec

    def __post_init__(self) -> None:
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, int | np.integer):
            raise TypeError(f"ImageGrid.n_pixels must be an integer, got {self.n_pixels!r}")
        if self.n_pixels < 1:
            raise ValueError(f"ImageGrid.n_pixels must be positive, got {self.n_pixels}")
        object.__setattr__(self, "n_pixels", int(self.n_pixels))
        scale = as_arcsec(self.pixel_scale, "ImageGrid.pixel_scale")
        object.__setattr__(self, "pixel_scale", scale * u.arcsec)

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape ``(n_pixels, n_pixels)``."""
        return (self.n_pixels, self.n_pixels)

    @property
    def pixel_area(self) -> u.Quantity:
        """Area of one pixel in arcsec^2."""
        return self.pixel_scale**2

    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML/JSON-serialisable description of the grid."""
        return {
            "n_pixels": self.n_pixels,
            "pixel_scale_arcsec": float(self.pixel_scale.to_value(u.arcsec)),
        }

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ImageGrid:
        """Inverse of `to_dict` (``pixel_scale`` given as a Quantity is also accepted)."""
        config = dict(config)
        if "pixel_scale_arcsec" in config:
            config["pixel_scale"] = config.pop("pixel_scale_arcsec") * u.arcsec
        unknown = set(config) - {"n_pixels", "pixel_scale"}
        if unknown:
            raise ValueError(
                f"unknown ImageGrid keys {sorted(unknown)}; valid: n_pixels, pixel_scale_arcsec"
            )
        return cls(**config)

    def to_wcs(self, center: SkyCoord) -> WCS:
        """The celestial WCS (RA---TAN/DEC--TAN, north up, east left) of the grid at ``center``.

        Useful to attach to model outputs or to check where a sky position lands.
        """
        if not isinstance(center, SkyCoord) or not center.isscalar:
            raise TypeError(f"center must be a scalar SkyCoord, got {center!r}")
        icrs = center.icrs
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.crval = [icrs.ra.deg, icrs.dec.deg]
        # FITS pixels are 1-based: the centre (n - 1) / 2 (0-based) is (n + 1) / 2.
        wcs.wcs.crpix = [(self.n_pixels + 1) / 2, (self.n_pixels + 1) / 2]
        scale_deg = self.pixel_scale.to_value(u.deg)
        wcs.wcs.cdelt = [-scale_deg, scale_deg]
        return wcs


#: The default model grid: 64 x 64 pixels of 0.04" (2.56" on a side).
DEFAULT_IMAGE_GRID = ImageGrid()
