"""PRISM noise as real spectra have it: drawn on the detector's pixels, then resampled.

A real PRISM spectrum reaches the model as ~470 native pixels (about 2.3 per resolution
element) resampled onto the 512-pixel model grid by the package's own flux-conserving
resampler (`jwst_embed.preprocessing.resample`). At 1 um one native pixel spans about three
model pixels, so the noise on the model grid is correlated (lag-1 correlation ~0.7 at
0.6-2 um) while the propagated inverse variance is per pixel. Real error arrays also differ
from one fixed sensitivity curve by a factor of ~3 at both ends, from programme to programme
(background, slit position, extraction), and are never exact.

`NativePixelNoise` reproduces this for batches of noiseless model-grid spectra:

1. **Native pixels**: edges with ``dlambda = lambda / (2.3 R(lambda))`` from 0.55 to 5.5 um
   (`native_pixel_edges`), i.e. the sampling of the DJA / msaexp PRISM extractions.
2. **Sensitivity shape per object**: the reference per-pixel sigma (S/N = 10 per resolution
   element at 132 nJy, 3 um, 10 ks, shaped by `~jwst_embed.simulation.prism.SENSITIVITY_SHAPE`)
   times ``exp(a * blue(lambda) + b * red(lambda))`` with ramps that are 1 at 0.6 um (blue)
   and 5.3 um (red) and 0 beyond 2 um and below 3 um, ``a, b`` uniform in
   ``[-ln s, ln s]`` (``s = sensitivity_scatter``, 3 by default), plus a log-normal per-pixel
   scatter of the sigma (``pixel_sigma_scatter``).
3. **Error arrays that are not exact**: the noise drawn is the reported sigma times a factor
   uniform in ``error_scale_range`` (per object).
4. **Outliers and gaps**: a fraction of native pixels (uniform in 0-``outlier_fraction``) gets
   a spike of 5-30 sigma that the error array does not know about; with probability
   ``gap_probability`` a stretch of 0.05-0.4 um is masked (a detector gap, a bad region); with
   probability ``truncation_probability`` each end of the coverage is cut (the spectrum
   starts at 0.6-1.0 um or stops at 4.0-5.3 um, as for shutters off the array centre); and
   ``bad_pixel_fraction`` of the native pixels are flagged at random.
5. **Resampling**: flux, noise and variance go through the overlap matrix of
   `jwst_embed.preprocessing.resample` exactly as a real spectrum does (valid native pixels
   only, weights renormalised), so the mock inverse variance is what preprocessing a real
   file gives.

Everything is batched torch on one device; draws come from the caller's generator.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from jwst_embed.preprocessing.resample import build_resampler
from jwst_embed.preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID, SpectralGrid
from jwst_embed.simulation.prism_resolution import resolving_power

__all__ = ["NATIVE_PIXELS_PER_RESEL", "NativePixelNoise", "native_pixel_edges"]

#: Native PRISM pixels per resolution element (lambda / R), as sampled by msaexp / DJA spectra.
NATIVE_PIXELS_PER_RESEL = 2.3

_NATIVE_RANGE_UM = (0.55, 5.5)
_BLUE_RAMP_UM = (0.6, 2.0)
_RED_RAMP_UM = (3.0, 5.3)


@functools.lru_cache(maxsize=4)
def native_pixel_edges(pixels_per_resel: float = NATIVE_PIXELS_PER_RESEL) -> np.ndarray:
    """Edges (um) of the native PRISM pixels: ``dlambda = lambda / (pixels_per_resel R)``.

    Parameters
    ----------
    pixels_per_resel : float, optional
        Pixels per resolution element of the JDox resolving power.

    Returns
    -------
    edges : `numpy.ndarray`
        Increasing edges from 0.55 um to about 5.5 um (~470 pixels for the default).

    Examples
    --------
    >>> edges = native_pixel_edges()
    >>> 440 < edges.size - 1 < 500, bool(np.all(np.diff(edges) > 0))
    (True, True)
    """
    if not pixels_per_resel > 0:
        raise ValueError(f"pixels_per_resel must be positive, got {pixels_per_resel}")
    edges = [_NATIVE_RANGE_UM[0]]
    while edges[-1] < _NATIVE_RANGE_UM[1]:
        wavelength = edges[-1]
        step = wavelength / (pixels_per_resel * float(resolving_power(wavelength)))
        # half a step ahead, then the step at the pixel centre (second-order accurate)
        centre = wavelength + 0.5 * step
        edges.append(wavelength + centre / (pixels_per_resel * float(resolving_power(centre))))
    edges = np.asarray(edges[:-1], dtype=float)
    return edges


def _ramp(log_wavelength: torch.Tensor, start_um: float, stop_um: float) -> torch.Tensor:
    """0 at ``start_um``, 1 at ``stop_um``, clamped, linear in log wavelength."""
    start, stop = math.log(start_um), math.log(stop_um)
    return ((log_wavelength - start) / (stop - start)).clamp(0.0, 1.0)


class NativePixelNoise:
    """Draw PRISM noise on native pixels and resample it onto the model grid.

    Parameters
    ----------
    reference_sigma_native : callable
        ``f(wavelength_um: ndarray) -> ndarray``: 1-sigma noise (nJy) per *native* pixel at
        the reference exposure for the nominal sensitivity curve.
    spectral_grid : `~jwst_embed.preprocessing.SpectralGrid`, optional
        Model grid.
    sensitivity_scatter : float, optional
        Largest factor (>= 1) by which the blue and red ends of the sigma curve are scaled,
        independently per object.
    pixel_sigma_scatter : float, optional
        Log-normal scatter (natural log) of sigma from native pixel to native pixel.
    error_scale_range : tuple of float, optional
        Range of the per-object ratio of true to reported noise.
    outlier_fraction : float, optional
        Largest fraction of native pixels with unflagged spikes.
    gap_probability, truncation_probability : float, optional
        Probability of one masked gap, and of cutting each end of the coverage.
    bad_pixel_fraction : float, optional
        Fraction of native pixels flagged bad at random.
    device : str or `torch.device`, optional

    Examples
    --------
    >>> import numpy as np, torch
    >>> noise = NativePixelNoise(lambda wavelength: np.full(wavelength.shape, 5.0))
    >>> out = noise.draw(torch.full((3, 512), 100.0), torch.ones(3), torch.Generator().manual_seed(0))
    >>> sorted(out), tuple(out["spectrum"].shape)
    (['spectrum', 'spectrum_ivar', 'spectrum_mask'], (3, 512))
    """

    def __init__(
        self,
        reference_sigma_native,
        spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
        sensitivity_scatter: float = 3.0,
        pixel_sigma_scatter: float = 0.15,
        error_scale_range: tuple[float, float] = (0.9, 1.3),
        outlier_fraction: float = 0.005,
        gap_probability: float = 0.15,
        truncation_probability: float = 0.15,
        bad_pixel_fraction: float = 0.005,
        device: str | torch.device = "cpu",
    ) -> None:
        if not sensitivity_scatter >= 1.0:
            raise ValueError(f"sensitivity_scatter must be >= 1, got {sensitivity_scatter}")
        low, high = (float(v) for v in error_scale_range)
        if not 0 < low <= high:
            raise ValueError(f"error_scale_range must satisfy 0 < low <= high, got {error_scale_range}")
        for name, value in (
            ("pixel_sigma_scatter", pixel_sigma_scatter),
            ("outlier_fraction", outlier_fraction),
            ("gap_probability", gap_probability),
            ("truncation_probability", truncation_probability),
            ("bad_pixel_fraction", bad_pixel_fraction),
        ):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.device = torch.device(device)
        self.sensitivity_scatter = float(sensitivity_scatter)
        self.pixel_sigma_scatter = float(pixel_sigma_scatter)
        self.error_scale_range = (low, high)
        self.outlier_fraction = float(outlier_fraction)
        self.gap_probability = float(gap_probability)
        self.truncation_probability = float(truncation_probability)
        self.bad_pixel_fraction = float(bad_pixel_fraction)

        edges = native_pixel_edges()
        centres = np.sqrt(edges[1:] * edges[:-1])
        # The package's own resampler, built on the native pixel centres as for a real file.
        operator = build_resampler(centres, spectral_grid)

        def dense(matrix) -> torch.Tensor:
            return torch.as_tensor(matrix.toarray().T, dtype=torch.float32, device=self.device)

        self.overlap_t = dense(operator.overlap)  # (n_native, L)
        self.overlap_sq_t = dense(operator.overlap_sq)
        self.covered = torch.as_tensor(np.array(operator.covered), device=self.device)
        self.native_wavelength = torch.as_tensor(centres, dtype=torch.float32, device=self.device)
        self.reference_sigma = torch.as_tensor(
            np.asarray(reference_sigma_native(centres), dtype=float),
            dtype=torch.float32,
            device=self.device,
        )
        log_wavelength = self.native_wavelength.log()
        # 1 at 0.6 um falling to 0 at 2 um; 0 below 3 um rising to 1 at 5.3 um
        self.blue_ramp = 1.0 - _ramp(log_wavelength, *_BLUE_RAMP_UM)
        self.red_ramp = _ramp(log_wavelength, *_RED_RAMP_UM)

    @property
    def n_native(self) -> int:
        """Number of native pixels."""
        return self.native_wavelength.numel()

    def _uniform(self, shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator, device=self.device)

    def native_sigma(self, exposure_factor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, n_native) reported 1-sigma per native pixel: reference x shape x scatter / sqrt(t)."""
        n = exposure_factor.shape[0]
        log_s = math.log(self.sensitivity_scatter)
        blue = self._uniform((n, 1), -log_s, log_s, generator)
        red = self._uniform((n, 1), -log_s, log_s, generator)
        jitter = self.pixel_sigma_scatter * torch.randn(
            (n, self.n_native), generator=generator, device=self.device
        )
        log_shape = blue * self.blue_ramp + red * self.red_ramp + jitter
        return self.reference_sigma * torch.exp(log_shape) * exposure_factor[:, None].sqrt()

    def valid_pixels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, n_native) bool: native pixels kept (coverage cuts, one gap, random bad pixels)."""
        wavelength = self.native_wavelength[None, :]
        dev = self.device
        start = torch.where(
            torch.rand((n, 1), generator=generator, device=dev) < self.truncation_probability,
            self._uniform((n, 1), 0.6, 1.0, generator),
            torch.zeros((n, 1), device=dev),
        )
        stop = torch.where(
            torch.rand((n, 1), generator=generator, device=dev) < self.truncation_probability,
            self._uniform((n, 1), 4.0, 5.3, generator),
            torch.full((n, 1), 99.0, device=dev),
        )
        gap_start = self._uniform((n, 1), 0.8, 4.5, generator)
        gap_width = self._uniform((n, 1), 0.05, 0.4, generator)
        has_gap = torch.rand((n, 1), generator=generator, device=dev) < self.gap_probability
        in_gap = has_gap & (wavelength >= gap_start) & (wavelength < gap_start + gap_width)
        bad = torch.rand((n, self.n_native), generator=generator, device=dev) < self.bad_pixel_fraction
        return (wavelength >= start) & (wavelength < stop) & ~in_gap & ~bad

    def draw(
        self,
        noiseless: torch.Tensor,
        exposure_factor: torch.Tensor,
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """Noisy spectra, inverse variance and mask on the model grid.

        Parameters
        ----------
        noiseless : `torch.Tensor`
            (B, L) noiseless f_nu (nJy) on the model grid.
        exposure_factor : `torch.Tensor`
            (B,) variance factor relative to the reference exposure (``1e4 s / exposure``).
        generator : `torch.Generator`
            Random source on this device.

        Returns
        -------
        out : dict of `torch.Tensor`
            ``"spectrum"`` (B, L) nJy (0 where masked), ``"spectrum_ivar"`` (B, L) 1/nJy^2 as
            preprocessing a real spectrum propagates it (0 where masked), ``"spectrum_mask"``
            (B, L) bool, True = no valid native pixel behind the model pixel.
        """
        n = noiseless.shape[0]
        dtype = noiseless.dtype
        sigma = self.native_sigma(exposure_factor.to(self.device, torch.float32), generator)
        valid = self.valid_pixels(n, generator).float()
        error_scale = self._uniform((n, 1), *self.error_scale_range, generator)
        noise = sigma * error_scale * torch.randn(sigma.shape, generator=generator, device=self.device)
        # unflagged spikes: cosmic-ray residuals, hot pixels, contamination
        rate = self._uniform((n, 1), 0.0, self.outlier_fraction, generator)
        spike = torch.rand(sigma.shape, generator=generator, device=self.device) < rate
        amplitude = self._uniform(sigma.shape, 5.0, 30.0, generator) * torch.where(
            torch.rand(sigma.shape, generator=generator, device=self.device) < 0.5, -1.0, 1.0
        )
        noise = noise + torch.where(spike, amplitude * sigma, torch.zeros_like(sigma))

        weight = valid @ self.overlap_t  # sum of overlaps of the valid native pixels
        noise_sum = (valid * noise) @ self.overlap_t
        variance_sum = (valid * sigma.square()) @ self.overlap_sq_t
        usable = self.covered[None, :] & (weight > 0) & (variance_sum > 0)
        safe_weight = torch.where(usable, weight, torch.ones_like(weight))
        noise_model = noise_sum / safe_weight
        ivar = torch.where(usable, safe_weight.square() / variance_sum.clamp_min(1e-30), 0.0)
        # A model pixel fed by a sliver of a valid native pixel next to a masked one would carry
        # that sliver's noise at full weight: the resampler renormalises, so keep it (as real data).
        mask = ~usable
        spectrum = torch.where(mask, torch.zeros_like(noiseless), noiseless + noise_model.to(dtype))
        return {"spectrum": spectrum, "spectrum_ivar": ivar.to(dtype), "spectrum_mask": mask}
