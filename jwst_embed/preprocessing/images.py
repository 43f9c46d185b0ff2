"""Images: from `~astropy.nddata.NDData` in any flux unit to the model's pixel grid.

Two steps:

1. `image_to_njy` (module ``image_units``) converts the data to nJy per input
   pixel (spectral flux density per pixel, or surface brightness times the pixel
   area), the uncertainty to an inverse variance in 1/nJy^2, and collects every
   bad pixel (NaN, inf, masked, ivar <= 0) into one boolean mask (True = bad).
2. `preprocess_image` (this module) resamples onto the model grid (`ImageGrid`,
   module ``image_grid``; default 64 x 64 pixels of 0.04"), north up and east
   left, centred on the cutout centre or a given sky position. The resampling is
   area weighted: each output pixel receives the integral of the input surface
   brightness over the output pixel's area on the sky, so total flux is conserved.
   An output pixel is masked when any input pixel it draws on is masked or when
   it is not wholly on the input (so one bad input pixel masks the output pixels
   within about one input pixel of it).

How the resampling works: the WCS is replaced by its local affine approximation
around the output centre (fitted through the full WCS at 3 x 3 points spread over
the output footprint, so scale, rotation, flips and skew are all kept; over a
few arcsec the non-linear terms of a TAN projection are < 1e-6 pixel). Each output
pixel is split into k x k sub-pixels (k >= 3, and sub-pixels at most 1/2 of an
input pixel unless the output pixels are > 5 times coarser), each sub-pixel centre is mapped to input pixel coordinates,
the surface brightness there is interpolated bilinearly between input pixel
centres (constant beyond the outermost centres), and the sub-pixel contributes
it times ``area_out / k^2``. The integral of the bilinear surface over the plane
equals the sum of the input pixels, so flux is conserved, and for resolved
sources it is second-order accurate (unlike treating each input pixel as a flat
box, which leaves errors of a few per cent of the peak under rotation). This is
a sparse matrix ``W`` (output pixels x input pixels), built once per input shape
and affine transform and cached; the flux is ``W @ f`` and the variance
``(W * W) @ var``. When the output pixels *are* input pixels (same scale and orientation,
centres aligned to 1e-5 pixel: a cutout already on the model grid), they are copied.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import ICRS, SkyCoord
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame
from scipy import sparse

from jwst_embed.bands import get_band

# ImageGrid and DEFAULT_IMAGE_GRID live in image_grid (and in its __all__); they are
# re-exported here because other modules import them from this one.
from .image_grid import DEFAULT_IMAGE_GRID, ImageGrid
from .image_units import celestial_wcs, image_to_njy, safe_reciprocal

__all__ = [
    "ImageArrays",
    "preprocess_image",
    "preprocess_images",
]


@dataclass
class ImageArrays:
    """Images on the model grid.

    Attributes
    ----------
    flux : `numpy.ndarray`
        ``(H, W)`` or ``(N, H, W)`` float32, nJy per model pixel; 0 where masked.
    ivar : `numpy.ndarray`
        Same shape, float32 inverse variance in 1/nJy^2; 0 where masked.
    mask : `numpy.ndarray`
        Same shape, bool, True = bad (off the input image or from a masked input pixel).
    band : str or None
        Canonical NIRCam band name, or None when unknown.
    """

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    band: str | None = None


# --- resampling -------------------------------------------------------------------------------

_MATRIX_CACHE: OrderedDict[tuple, tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]] = (
    OrderedDict()
)
_MATRIX_CACHE_SIZE = 32


def _is_icrs(wcs: WCS) -> bool:
    try:
        return isinstance(wcs_to_celestial_frame(wcs), ICRS)
    except ValueError:
        return False


def _pixel_to_icrs(wcs: WCS, x: float, y: float) -> tuple[float, float]:
    """ICRS (RA, Dec) in degrees of input pixel (x, y) (0-based)."""
    if _is_icrs(wcs):
        world = wcs.pixel_to_world_values(x, y)
        return float(world[wcs.wcs.lng]), float(world[wcs.wcs.lat])
    icrs = wcs.pixel_to_world(x, y).icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def _icrs_to_pixel(
    wcs: WCS, ra_deg: np.ndarray, dec_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if _is_icrs(wcs):
        # Fast path (no SkyCoord machinery): world values in the WCS's own axis order.
        world = [None, None]
        world[wcs.wcs.lng], world[wcs.wcs.lat] = ra_deg, dec_deg
        x, y = wcs.world_to_pixel_values(*world)
    else:
        x, y = wcs.world_to_pixel(SkyCoord(ra_deg, dec_deg, unit="deg", frame="icrs"))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _affine_from_wcs(
    wcs: WCS, center: tuple[float, float], grid: ImageGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Input pixel ``(x, y)`` of the output centre and the 2x2 Jacobian d(x, y)/d(col, row).

    ``center`` is ICRS (RA, Dec) in degrees. The output grid is a gnomonic projection
    about it, north up, east left; the map is fitted through the full WCS at 3 x 3
    points over the output footprint.
    """
    half = grid.n_pixels * grid.pixel_scale.to_value(u.arcsec) / 2
    steps = np.array([-half, 0.0, half])
    xi, eta = (
        a.ravel() for a in np.meshgrid(steps, steps)
    )  # tangent-plane offsets (east, north), arcsec
    ra0, dec0 = np.deg2rad(center[0]), np.deg2rad(center[1])
    xi_rad, eta_rad = np.deg2rad(xi / 3600), np.deg2rad(eta / 3600)
    # Inverse gnomonic projection about (ra0, dec0).
    denominator = np.cos(dec0) - eta_rad * np.sin(dec0)
    ra = np.rad2deg(ra0 + np.arctan2(xi_rad, denominator))
    dec = np.rad2deg(
        np.arctan2(np.sin(dec0) + eta_rad * np.cos(dec0), np.hypot(xi_rad, denominator))
    )
    x, y = _icrs_to_pixel(wcs, ra, dec)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(
            f"the image WCS cannot map the output grid around (RA, Dec) = ({center[0]:.6f}, {center[1]:.6f}) deg to pixels"
        )
    # Output pixel (col, row) relative to the centre: east left (xi = -col), north up (eta = row).
    scale = grid.pixel_scale.to_value(u.arcsec)
    design = np.column_stack([np.ones_like(xi), -xi / scale, eta / scale])
    coeffs, *_ = np.linalg.lstsq(design, np.column_stack([x, y]), rcond=None)
    origin = coeffs[0]  # (x, y) at the output centre
    jacobian = coeffs[1:].T  # [[dx/dcol, dx/drow], [dy/dcol, dy/drow]]
    return origin, jacobian


def _bilinear_axis(coord: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper neighbouring pixel indices and the weight of the upper one, along one axis."""
    clipped = np.clip(coord, 0.0, n - 1.0)
    lower = np.minimum(np.floor(clipped).astype(np.int64), max(n - 2, 0))
    upper = np.minimum(lower + 1, n - 1)
    fraction = clipped - lower
    if n == 1:
        fraction = np.zeros_like(clipped)
    return lower, upper, fraction


def _resampling_matrices(
    input_shape: tuple[int, int], origin: np.ndarray, jacobian: np.ndarray, n_out: int
) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
    """(W, W**2, fraction of sub-pixels on the input) for an affine output -> input map."""
    key = (input_shape, n_out, *np.round(origin, 9), *np.round(jacobian.ravel(), 12))
    cached = _MATRIX_CACHE.get(key)
    if cached is not None:
        _MATRIX_CACHE.move_to_end(key)
        return cached
    ny, nx = input_shape
    shift = origin - (n_out - 1) / 2  # input (x, y) of output pixel (0, 0)
    if np.allclose(jacobian, np.eye(2), rtol=0, atol=1e-7) and np.allclose(shift, np.round(shift), rtol=0, atol=1e-5):
        # The output pixels are input pixels (same scale and orientation, centres aligned, as for
        # a cutout already on the model grid): copy them, rather than integrate the bilinear
        # surface, which would smooth the noise of an image that needs no resampling.
        result = _aligned_matrices(input_shape, np.round(shift).astype(np.int64), n_out)
        _MATRIX_CACHE[key] = result
        if len(_MATRIX_CACHE) > _MATRIX_CACHE_SIZE:
            _MATRIX_CACHE.popitem(last=False)
        return result
    # Output-pixel area in input pixels; sub-pixels no larger than ~1/2 input pixel on a side
    # (the bilinear surface is smooth, so finer sampling changes little and costs build time).
    area_ratio = abs(float(np.linalg.det(jacobian)))
    if not np.isfinite(area_ratio) or area_ratio == 0:
        raise ValueError("degenerate image WCS: the output grid maps to zero input area")
    side = math.sqrt(area_ratio)
    # Cap the sub-pixel count at ~1M samples (coarser sub-pixels only when binning down > 4x).
    k = int(min(max(3, math.ceil(2 * side)), max(1, 1024 // n_out)))
    sub = (np.arange(k) + 0.5) / k - 0.5
    centre = (n_out - 1) / 2
    # Sub-pixel centres in output pixel coordinates relative to the grid centre.
    cols = (np.arange(n_out)[:, None] + sub[None, :]).ravel() - centre
    rows = cols
    dcol = np.broadcast_to(cols[None, :], (n_out * k, n_out * k))
    drow = np.broadcast_to(rows[:, None], (n_out * k, n_out * k))
    x = origin[0] + jacobian[0, 0] * dcol + jacobian[0, 1] * drow
    y = origin[1] + jacobian[1, 0] * dcol + jacobian[1, 1] * drow
    # A sub-pixel is on the input when it falls inside the outer edge of the edge pixels.
    inside = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    x, y = x[inside], y[inside]
    out_row = np.broadcast_to((np.arange(n_out * k) // k)[:, None], dcol.shape)[inside]
    out_col = np.broadcast_to((np.arange(n_out * k) // k)[None, :], dcol.shape)[inside]
    out_index = out_row * n_out + out_col
    # Bilinear surface brightness between input pixel centres (constant beyond the outer centres):
    # second-order accurate for resolved sources, and its integral is the sum of the input pixels.
    x0, x1, fx = _bilinear_axis(x, nx)
    y0, y1, fy = _bilinear_axis(y, ny)
    # Each sub-pixel carries (output pixel area / k^2) of the interpolated surface brightness.
    scale = area_ratio / (k * k)
    rows = np.concatenate([out_index] * 4)
    columns = np.concatenate([y0 * nx + x0, y0 * nx + x1, y1 * nx + x0, y1 * nx + x1])
    weight = scale * np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    keep = weight > 0
    matrix = sparse.csr_matrix(
        (weight[keep], (rows[keep], columns[keep])), shape=(n_out * n_out, ny * nx)
    )
    matrix.sum_duplicates()
    squared = matrix.multiply(matrix).tocsr()
    on_input = np.bincount(out_index, minlength=n_out * n_out) / (k * k)
    result = (matrix, squared, on_input)
    _MATRIX_CACHE[key] = result
    if len(_MATRIX_CACHE) > _MATRIX_CACHE_SIZE:
        _MATRIX_CACHE.popitem(last=False)
    return result


def _aligned_matrices(input_shape: tuple[int, int], shift: np.ndarray, n_out: int):
    """`_resampling_matrices` for output pixel (col, row) = input pixel (shift + (col, row))."""
    ny, nx = input_shape
    row, col = np.divmod(np.arange(n_out * n_out), n_out)
    x, y = shift[0] + col, shift[1] + row
    inside = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    index = np.flatnonzero(inside)
    matrix = sparse.csr_matrix(
        (np.ones(index.size), (index, y[inside] * nx + x[inside])), shape=(n_out * n_out, ny * nx)
    )
    return matrix, matrix.copy(), inside.astype(np.float64)


def _band_of(nddata: Any, band: Any) -> str | None:
    if band is not None:
        return get_band(band).name
    meta = getattr(nddata, "meta", None) or {}
    if not hasattr(meta, "get"):
        return None
    for key in ("band", "BAND", "FILTER", "filter"):
        value = meta.get(key, None)
        if value is not None:
            try:
                return get_band(str(value)).name
            except ValueError as err:
                raise ValueError(f"image meta[{key!r}]: {err}") from None
    # JADES HLSP cutouts name the band only in EXTNAME; other EXTNAMEs (SCI) are not bands.
    extname = meta.get("EXTNAME", None)
    if isinstance(extname, str):
        try:
            return get_band(extname).name
        except ValueError:
            return None
    return None


def preprocess_image(
    nddata: Any,
    band: str | None = None,
    grid: ImageGrid = DEFAULT_IMAGE_GRID,
    position: SkyCoord | tuple[float, float] | None = None,
) -> ImageArrays:
    """Resample one image onto the model grid, in nJy per model pixel.

    The output grid is north up, east left, centred on ``position``; each output
    pixel holds the integral of the input surface brightness (taken constant over
    each input pixel) over the output pixel, so total flux is conserved where the
    output lies on the input. The variance is ``sum(w**2 var)`` over the input
    pixels; the correlation this resampling introduces between output pixels is
    ignored. See the module docstring for the algorithm.

    Parameters
    ----------
    nddata : `~astropy.nddata.NDData`
        The image; see `image_to_njy` for units, uncertainty and mask.
    band : str, optional
        NIRCam band; validated with ``jwst_embed.bands.get_band``. When None, it
        is taken from ``meta['band']``, ``meta['FILTER']`` or a band-like
        ``meta['EXTNAME']``, else left None.
    grid : `ImageGrid`
        The output grid.
    position : `~astropy.coordinates.SkyCoord` or (x, y), optional
        Centre of the output grid: a sky position (needs a celestial WCS) or 0-based
        input pixel coordinates. Default: the centre of the input image.

    Returns
    -------
    `ImageArrays`
        ``(H, W)`` float32 flux and ivar and bool mask. Output pixels off the
        input image, or touching a masked input pixel, are masked.

    Raises
    ------
    ValueError
        Unknown band, bad position, no WCS and no pixel scale, every output pixel
        masked, and the errors of `image_to_njy`.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> from jwst_embed.preprocessing import ImageGrid, preprocess_image
    >>> image = NDData(np.ones((40, 40)), unit=u.nJy, meta={"pixel_scale": 0.02},
    ...                uncertainty=StdDevUncertainty(np.ones((40, 40))))
    >>> out = preprocess_image(image, band="F150W", grid=ImageGrid(n_pixels=16))
    >>> out.flux.shape, float(out.flux.sum()), out.band    # 16 x 16 of 4 input pixels each
    ((16, 16), 1024.0, 'F150W')
    """
    band_name = _band_of(nddata, band)
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    data, ivar, mask, scale = image_to_njy(nddata)
    wcs = celestial_wcs(nddata)
    ny, nx = data.shape
    n_out = grid.n_pixels

    if wcs is not None and (position is None or isinstance(position, SkyCoord)):
        if position is None:
            center = _pixel_to_icrs(wcs, (nx - 1) / 2, (ny - 1) / 2)
        else:
            if not position.isscalar:
                raise ValueError(f"position must be a scalar SkyCoord, got shape {position.shape}")
            icrs = position.icrs
            center = (float(icrs.ra.deg), float(icrs.dec.deg))
        origin, jacobian = _affine_from_wcs(wcs, center, grid)
    else:
        if isinstance(position, SkyCoord):
            raise ValueError(
                "position is a SkyCoord but the image has no celestial WCS; give pixel coordinates (x, y) instead"
            )
        if position is None:
            origin = np.array([(nx - 1) / 2, (ny - 1) / 2])
        else:
            origin = np.asarray(position, dtype=np.float64)
            if origin.shape != (2,) or not np.all(np.isfinite(origin)):
                raise ValueError(
                    f"position must be a SkyCoord or pixel coordinates (x, y), got {position!r}"
                )
        if wcs is not None:
            # A pixel position with a WCS: keep the WCS orientation through the affine fit.
            center = _pixel_to_icrs(wcs, *origin)
            origin, jacobian = _affine_from_wcs(wcs, center, grid)
        else:
            # No WCS: the image axes are taken as the output axes (no rotation or flip known).
            ratio = grid.pixel_scale.to_value(u.arcsec) / scale.to_value(u.arcsec)
            jacobian = np.diag([ratio, ratio])

    matrix, squared, on_input = _resampling_matrices((ny, nx), origin, jacobian, n_out)
    variance = safe_reciprocal(ivar.ravel())
    variance[mask.ravel()] = 0.0
    flux = matrix @ data.ravel()
    out_variance = squared @ variance
    touches_bad = (matrix @ mask.ravel().astype(np.float64)) > 0
    out_mask = touches_bad | (on_input < 1.0 - 1e-9)
    return _finalise(flux, out_variance, out_mask, (n_out, n_out), band_name, position)


def _finalise(flux, variance, mask, shape, band_name, position) -> ImageArrays:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        flux32 = flux.astype(np.float32)
        ivar32 = safe_reciprocal(variance).astype(np.float32)
    mask = mask | ~np.isfinite(flux32) | ~np.isfinite(ivar32) | ~(ivar32 > 0)
    if mask.all():
        if position is None:
            where = "the cutout centre"
        elif isinstance(position, SkyCoord):
            where = f"position (RA, Dec) = ({position.icrs.to_string('decimal', precision=6)}) deg"
        else:
            where = f"pixel position {tuple(np.asarray(position).tolist())}"
        raise ValueError(
            f"every pixel of the resampled image around {where} is masked: the grid falls off the input "
            "image or only on masked pixels"
        )
    flux32[mask] = 0.0
    ivar32[mask] = 0.0
    return ImageArrays(
        flux=flux32.reshape(shape),
        ivar=ivar32.reshape(shape),
        mask=mask.reshape(shape),
        band=band_name,
    )


def preprocess_images(
    images: Sequence[Any],
    band: str | None = None,
    grid: ImageGrid = DEFAULT_IMAGE_GRID,
    positions: Sequence[SkyCoord | tuple[float, float] | None] | SkyCoord | None = None,
    progress: bool = False,
) -> ImageArrays:
    """Resample a list of images of one band onto the model grid; see `preprocess_image`.

    Parameters
    ----------
    images : sequence of `~astropy.nddata.NDData`
        Images of the same band.
    band : str, optional
        The band; when None it is read from each image's meta and must agree.
    grid : `ImageGrid`
        The output grid.
    positions : sequence of SkyCoord or (x, y) or None, or a SkyCoord array, optional
        One centre per image (None = cutout centre).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    `ImageArrays`
        ``(N, H, W)`` arrays.

    Raises
    ------
    ValueError
        Empty list, lengths of ``images`` and ``positions`` differ, bands disagree, or any
        image fails (the message names its index).
    """
    if isinstance(images, Mapping) or hasattr(images, "data") or not isinstance(images, Sequence):
        raise TypeError(f"images must be a list of NDData, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is an empty list")
    if positions is None:
        positions = [None] * len(images)
    elif isinstance(positions, SkyCoord):
        positions = [positions] if positions.isscalar else list(positions)
    if len(positions) != len(images):
        raise ValueError(f"got {len(images)} images but {len(positions)} positions")
    iterator = enumerate(zip(images, positions, strict=True))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(images), desc="images")
    results = []
    for index, (image, position) in iterator:
        try:
            results.append(preprocess_image(image, band=band, grid=grid, position=position))
        except (ValueError, TypeError) as err:
            raise type(err)(f"images[{index}]: {err}") from err
    bands = {result.band for result in results}
    if len(bands) > 1:
        raise ValueError(
            f"images have different bands {sorted(map(str, bands))}; preprocess each band separately"
        )
    return ImageArrays(
        flux=np.stack([r.flux for r in results]),
        ivar=np.stack([r.ivar for r in results]),
        mask=np.stack([r.mask for r in results]),
        band=results[0].band,
    )
