"""Spectra to the model grid: f_nu in nJy, inverse variance and mask on a log-wavelength grid.

Any `~specutils.Spectrum` (f_nu, f_lambda or any other spectral flux density, on any
spectral axis unit) is converted to f_nu in nJy on a wavelength axis in um and resampled
onto a fixed `SpectralGrid` (by default 512 log-spaced pixels over 0.6-5.3 um) with the
cached sparse flux-conserving resampler of `jwst_embed.preprocessing.resample`, which
reproduces specutils' `~specutils.manipulation.FluxConservingResampler`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from tqdm.auto import tqdm

from .resample import cached_resampler, resample_valid, validate_wavelength
from .spectral_grid import DEFAULT_SPECTRAL_GRID, SpectralGrid

__all__ = ["SpectrumArrays", "preprocess_spectra"]

log = logging.getLogger(__name__)

@dataclass
class SpectrumArrays:
    """Spectra on the model grid.

    Attributes
    ----------
    flux : ndarray, shape (N, L), float32
        f_nu in nJy; 0 where masked.
    ivar : ndarray, shape (N, L), float32
        Inverse variance in 1/nJy**2; 0 where masked.
    mask : ndarray, shape (N, L), bool
        True where the pixel is bad or not covered by the input.
    grid : SpectralGrid
        The grid the arrays live on (``L == grid.n_pixels``).
    """

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    grid: SpectralGrid

    def __len__(self) -> int:
        return self.flux.shape[0]

    @property
    def wavelength(self) -> u.Quantity:
        """Pixel centres of the grid, in um."""
        return self.grid.wavelength


_NJY = u.nJy
_FLAMBDA = u.erg / u.s / u.cm**2 / u.AA


def _to_njy_factor(unit: u.UnitBase, wave_um: np.ndarray, name: str, cache: dict) -> np.ndarray:
    """Per-pixel factor converting ``unit`` to nJy at these wavelengths (conversion is linear)."""
    if isinstance(unit, u.FunctionUnitBase):
        raise u.UnitsError(f"{name} unit '{unit}' is logarithmic (magnitudes); give flux densities")
    # f_nu scales by a constant and f_lambda by a constant times lambda^2: one conversion per
    # unit serves every wavelength array (real spectra each have their own); other spectral
    # densities go through astropy at these wavelengths.
    kind = cache.get(("unit kind", unit))
    if kind is None:
        if unit.is_equivalent(_NJY):
            kind = ("f_nu", unit.to(_NJY))
        elif unit.is_equivalent(_FLAMBDA):
            kind = ("f_lambda", (1.0 * unit).to_value(_NJY, equivalencies=u.spectral_density(1.0 * u.um)))
        else:
            kind = ("other", None)
        cache[("unit kind", unit)] = kind
    if kind[0] == "f_nu":
        return np.broadcast_to(np.float64(kind[1]), wave_um.shape)
    if kind[0] == "f_lambda":
        return kind[1] * wave_um**2
    key = (unit, wave_um.tobytes())
    if key not in cache:
        try:
            factor = (1.0 * unit).to_value(_NJY, equivalencies=u.spectral_density(wave_um * u.um))
        except u.UnitsError as err:
            raise u.UnitsError(
                f"{name} unit '{unit}' is not a spectral flux density (f_nu or f_lambda); "
                "it cannot be converted to nJy"
            ) from err
        cache[key] = np.broadcast_to(np.asarray(factor, dtype=np.float64), wave_um.shape)
    return cache[key]


def _as_rows(array: np.ndarray, axis: int, n_wave: int) -> np.ndarray:
    """(..., L, ...) with the spectral axis at ``axis`` -> (N, L)."""
    return np.moveaxis(np.asarray(array), axis, -1).reshape(-1, n_wave)


def _robust_sigma(flux: np.ndarray) -> float:
    """Noise from the flux scatter, DER_SNR (Stoehr et al. 2008): robust to the continuum shape."""
    sigma = np.float64(0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        if flux.size >= 5:
            second_diff = np.abs(2.0 * flux[2:-2] - flux[:-4] - flux[4:])
            sigma = 1.482602 / np.sqrt(6.0) * np.median(second_diff)  # DER_SNR's published constant
        if not (np.isfinite(sigma) and sigma > 0) and flux.size:
            # Noiseless or too short: fall back to 1e-3 of the typical flux, then to 1 nJy.
            sigma = 1e-3 * np.median(np.abs(flux))
    return float(sigma) if np.isfinite(sigma) and sigma > 0 else 1.0


def _spectral_axis_um(spectral_axis, name: str, cache: dict) -> tuple[np.ndarray, slice]:
    """Spectral axis -> (validated increasing wavelengths in um, index order to apply)."""
    raw = np.asarray(spectral_axis.view(np.ndarray), dtype=np.float64)
    # Converting and validating a SpectralAxis costs ~0.1 ms; spectra usually share one.
    key = ("spectral_axis", spectral_axis.unit, raw.tobytes())
    if key not in cache:
        try:
            wave = u.Quantity(raw, spectral_axis.unit, copy=False).to_value(
                u.um, equivalencies=u.spectral()
            )
        except u.UnitsError as err:
            raise u.UnitsError(
                f"{name}.spectral_axis has unit '{spectral_axis.unit}', which cannot be "
                "converted to a wavelength"
            ) from err
        wave = np.asarray(wave, dtype=np.float64)
        # Frequency/energy axes (and wavelength axes stored backwards) arrive decreasing in
        # wavelength; reverse them so they are increasing.
        reverse = wave.size >= 2 and bool(np.all(np.diff(wave) < 0))
        order = slice(None, None, -1) if reverse else slice(None)
        wave = np.ascontiguousarray(wave[order])
        validate_wavelength(wave, f"{name}.spectral_axis")
        cache[key] = (wave, order)
    return cache[key]


def _spectrum_rows(spectrum, name: str, cache: dict):
    """One Spectrum -> (wave_um, flux nJy (N, L), ivar 1/nJy^2 (N, L), valid (N, L), estimated)."""
    from specutils import Spectrum

    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"{name} must be a specutils Spectrum, got {type(spectrum).__name__}")
    axis_index = spectrum.spectral_axis_index
    spectral_axis = spectrum.spectral_axis
    if spectral_axis.size == 0 or spectrum.flux.size == 0:
        raise ValueError(f"{name} is empty (no pixels)")
    wave, order = _spectral_axis_um(spectral_axis, name, cache)
    n_wave = wave.size

    flux_q = spectrum.flux
    flux_unit = flux_q.unit
    factor = _to_njy_factor(flux_unit, wave, f"{name}.flux", cache)
    flux_raw = _as_rows(flux_q.value, axis_index, n_wave)[:, order]
    valid = np.ones(flux_raw.shape, dtype=bool)
    if spectrum.mask is not None:
        valid &= ~_as_rows(np.broadcast_to(spectrum.mask, flux_q.shape), axis_index, n_wave)[
            :, order
        ].astype(bool)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        flux = flux_raw.astype(np.float64) * factor
        uncertainty = spectrum.uncertainty
        estimated = uncertainty is None
        if estimated:
            ivar = np.zeros_like(flux)
        else:
            unc = _as_rows(np.broadcast_to(uncertainty.array, flux_q.shape), axis_index, n_wave)
            unc = unc[:, order].astype(np.float64)
            unc_unit = uncertainty.unit
            if isinstance(uncertainty, StdDevUncertainty):
                std_unit = unc_unit if unc_unit is not None else flux_unit
                g = _to_njy_factor(u.Unit(std_unit), wave, f"{name}.uncertainty", cache)
                # A negative standard deviation is invalid, not a positive ivar.
                ivar = np.where(unc > 0, 1.0 / (unc * g) ** 2, 0.0)
            elif isinstance(uncertainty, VarianceUncertainty):
                std_unit = (u.Unit(unc_unit) ** 0.5) if unc_unit is not None else flux_unit
                g = _to_njy_factor(std_unit, wave, f"{name}.uncertainty", cache)
                ivar = 1.0 / (unc * g**2)
            elif isinstance(uncertainty, InverseVariance):
                std_unit = (u.Unit(unc_unit) ** -0.5) if unc_unit is not None else flux_unit
                g = _to_njy_factor(std_unit, wave, f"{name}.uncertainty", cache)
                ivar = unc / g**2
            else:
                raise TypeError(
                    f"{name}.uncertainty is a {type(uncertainty).__name__}; use "
                    "StdDevUncertainty, VarianceUncertainty or InverseVariance"
                )
            valid &= np.isfinite(ivar) & (ivar > 0)
        valid &= np.isfinite(flux)
    if not valid.any(axis=1).all():
        row = int(np.flatnonzero(~valid.any(axis=1))[0])
        which = name if flux.shape[0] == 1 else f"{name} (row {row})"
        raise ValueError(
            f"{which}: all pixels are masked or invalid (NaN/inf flux, or zero, negative or "
            "non-finite uncertainty)"
        )
    if estimated:
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            for row in range(flux.shape[0]):
                sigma = np.float64(_robust_sigma(flux[row, valid[row]]))
                ivar[row] = 1.0 / (sigma * sigma)
        # Scatter too large or too small to invert in float64 leaves nothing usable.
        valid &= np.isfinite(ivar) & (ivar > 0)
        if not valid.any(axis=1).all():
            raise ValueError(
                f"{name}: all pixels are masked or invalid (no uncertainty given, and the "
                "flux scatter is too extreme to estimate an inverse variance)"
            )
    return wave, flux, ivar, valid, estimated


def preprocess_spectra(
    spectra: Spectrum | Iterable[Spectrum],  # noqa: F821 (annotation only)
    grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
    progress: bool = False,
) -> SpectrumArrays:
    """Convert spectra to f_nu (nJy) with inverse variance and mask on the model grid.

    Each spectrum's spectral axis is converted to um (frequency or energy axes are
    reversed to increasing wavelength) and its flux to nJy with
    `~astropy.units.spectral_density`, so f_nu, f_lambda, photon flux densities and the
    like all work. Uncertainties may be `~astropy.nddata.StdDevUncertainty`,
    `~astropy.nddata.VarianceUncertainty` or `~astropy.nddata.InverseVariance`. A spectrum
    without uncertainty gets a uniform ivar from a robust estimate of its flux scatter
    (DER_SNR) and a logged warning. NaN/inf flux, zero/non-finite ivar and the Spectrum's
    own ``mask`` become masked pixels. Spectra sharing a wavelength array are resampled
    together with one cached sparse matrix (see `resample_flux`).

    Parameters
    ----------
    spectra : `~specutils.Spectrum` or iterable of them
        A Spectrum with 2-D flux contributes one output row per spectrum it holds.
    grid : SpectralGrid
        Output grid.
    progress : bool
        Show a progress bar.

    Returns
    -------
    SpectrumArrays
        float32 ``flux`` (nJy), ``ivar`` (1/nJy**2) and bool ``mask``, all (N, grid.n_pixels)
        and finite; masked pixels have flux 0 and ivar 0.

    Raises
    ------
    TypeError
        If an item is not a Spectrum or has an unsupported uncertainty type.
    astropy.units.UnitsError
        If a spectral axis is not convertible to wavelength or the flux is not a spectral
        flux density.
    ValueError
        For empty input, wavelengths that are non-finite, not monotonic or outside
        0.5-5.6 um, spectra with every pixel masked, or spectra that cover no grid pixel.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from astropy.nddata import StdDevUncertainty
    >>> from specutils import Spectrum
    >>> wave = np.linspace(0.6, 5.3, 430) * u.um
    >>> spec = Spectrum(flux=np.full(430, 1.0) * u.uJy, spectral_axis=wave,
    ...                 uncertainty=StdDevUncertainty(np.full(430, 0.1)))
    >>> arrays = preprocess_spectra(spec)
    >>> arrays.flux.shape, float(np.median(arrays.flux[~arrays.mask]))
    ((1, 512), 1000.0)
    """
    # specutils is imported here, not at module level, so that the simulator and the trainer
    # (which never see astropy spectra) do not pay for it, nor need it on a GPU node.
    from specutils import Spectrum

    if isinstance(spectra, Spectrum):
        spectra = [spectra]
    if not isinstance(grid, SpectralGrid):
        raise TypeError(f"grid must be a SpectralGrid, got {type(grid).__name__}")
    items = list(spectra)
    if not items:
        raise ValueError("spectra is empty: give at least one Spectrum")

    cache: dict = {}
    groups: dict[bytes, list] = {}  # wavelength bytes -> [(row offset, flux, ivar, valid, name)]
    n_rows, n_estimated = 0, 0
    for index, spectrum in enumerate(tqdm(items, disable=not progress, desc="spectra")):
        name = f"spectra[{index}]" if len(items) > 1 else "spectrum"
        wave, flux, ivar, valid, estimated = _spectrum_rows(spectrum, name, cache)
        n_estimated += estimated
        entry = groups.setdefault(wave.tobytes(), [wave, []])
        entry[1].append((n_rows, flux, ivar, valid, name))
        n_rows += flux.shape[0]
    if n_estimated:
        log.warning(
            "%d of %d spectra have no uncertainty; using a uniform inverse variance "
            "estimated from the flux scatter (DER_SNR)",
            n_estimated,
            len(items),
        )

    flux_out = np.zeros((n_rows, grid.n_pixels), dtype=np.float32)
    ivar_out = np.zeros((n_rows, grid.n_pixels), dtype=np.float32)
    mask_out = np.ones((n_rows, grid.n_pixels), dtype=bool)
    for wave, members in groups.values():
        operator = cached_resampler(wave, grid, members[0][4] + ".spectral_axis")
        offsets = np.concatenate([np.arange(m[0], m[0] + m[1].shape[0]) for m in members])
        flux64, ivar64, mask = resample_valid(
            operator,
            np.concatenate([m[1] for m in members]),
            np.concatenate([m[2] for m in members]),
            np.concatenate([m[3] for m in members]),
        )
        with np.errstate(over="ignore", under="ignore"):
            flux32, ivar32 = flux64.astype(np.float32), ivar64.astype(np.float32)
        # Values beyond float32 (or ivar underflowing to 0) become masked, never inf.
        mask |= ~np.isfinite(flux32) | ~np.isfinite(ivar32) | ~(ivar32 > 0)
        flux32[mask], ivar32[mask] = 0.0, 0.0
        flux_out[offsets], ivar_out[offsets], mask_out[offsets] = flux32, ivar32, mask

    empty = mask_out.all(axis=1)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        name = next(
            m[4]
            for _, members in groups.values()
            for m in members
            if m[0] <= row < m[0] + m[1].shape[0]
        )
        raise ValueError(
            f"{name}: no valid pixel falls inside the model grid "
            f"({grid.wavelength_min.value:.4g}-{grid.wavelength_max.value:.4g} um)"
        )
    return SpectrumArrays(flux=flux_out, ivar=ivar_out, mask=mask_out, grid=grid)
