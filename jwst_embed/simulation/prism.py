"""NIRSpec PRISM/CLEAR as seen by the mock survey: resolution, sampling, noise, slit loss.

Resolving power
    ``R(lambda)`` is interpolated linearly in the JDox table
    (0.6 um: 64, 1.2: 30, 2: 49, 3: 101, 4: 180, 5: 286, 5.3: 323), which
    describes a uniformly illuminated shutter; compact sources are sharper by a
    factor (``sharpening``, ~1.3 for point sources). Here ``lambda / R`` is the
    FWHM of the Gaussian line-spread function *before* sampling onto the model
    grid (the JDox value already includes PRISM's own two-detector-pixel
    sampling). The matrix of `line_spread_matrix` convolves the fine SED with
    that Gaussian and averages it over each model pixel; where model pixels are
    wider than lambda / R (beyond ~4.3 um on the default 512-pixel grid) the
    pixels, not the LSF, limit what is seen.

Noise
    Background-limited: S/N = 10 per resolution element for 132 nJy at 3 um in
    10 ks, sigma scaling as 1/sqrt(exposure). The wavelength dependence follows
    a smooth curve shaped like the JDox PRISM continuum sensitivity (best at
    2-4 um, ~3x worse at 0.6 um and ~2x at 5.3 um; `SENSITIVITY_SHAPE`).
    ``noise="native"`` (the default) draws it as real spectra have it: on the
    native PRISM pixels, with a sensitivity shape varied per object, outliers and
    gaps, resampled onto the model grid by the package's own resampler, so that it
    is correlated between model pixels (`jwst_embed.simulation.prism_noise`).
    ``noise="white"`` draws independent noise per model pixel from the one fixed
    curve, ``sigma_pixel = sigma_resel * sqrt(n_pixels_per_resel)`` with
    ``n = (lambda / R_nominal) / dlambda_pixel``. An optional source photon-noise
    term can take a fraction of the variance at the reference flux (added per
    model pixel in both modes).

Slit loss
    `slit_throughput` is the fraction of a PSF-convolved circular Sersic profile
    that falls in a centred 0.20" x 0.46" shutter (Monte-Carlo table,
    interpolated); the survey multiplies the spectrum by it.
"""

from __future__ import annotations

import functools
import math

import astropy.units as u
import numpy as np
import torch

from jwst_embed.preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID, SpectralGrid
from jwst_embed.simulation.absorbers import dla_transmission
from jwst_embed.simulation.calibration import apply_calibration, model_pixels_per_native_pixel
from jwst_embed.simulation.prism_noise import NATIVE_PIXELS_PER_RESEL, NativePixelNoise
from jwst_embed.simulation.prism_resolution import RESOLVING_POWER_TABLE, resolving_power
from jwst_embed.simulation.sed import SEDModel
from jwst_embed.simulation.sps import StellarPopulationLibrary

__all__ = [
    "RESOLVING_POWER_TABLE",
    "SENSITIVITY_SHAPE",
    "PrismInstrument",
    "SpectrumSimulator",
    "line_spread_matrix",
    "resolving_power",
    "slit_throughput",
]

#: Relative 1-sigma continuum noise per resolution element, (wavelength um, factor), 1 at 3 um.
#: A smooth stand-in for the shape of the JDox PRISM sensitivity curve.
SENSITIVITY_SHAPE = (
    (0.5, 4.0),
    (0.6, 3.0),
    (0.8, 1.8),
    (1.0, 1.35),
    (1.5, 1.05),
    (2.0, 0.95),
    (3.0, 1.0),
    (4.0, 1.1),
    (4.5, 1.25),
    (5.0, 1.6),
    (5.3, 2.2),
    (5.6, 3.0),
)

REFERENCE_FLUX_NJY = 132.0
REFERENCE_SNR = 10.0
REFERENCE_WAVELENGTH_UM = 3.0
REFERENCE_EXPOSURE_S = 1.0e4
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

SHUTTER_WIDTH_ARCSEC = 0.20
SHUTTER_LENGTH_ARCSEC = 0.46
# PSF stand-in: a diffraction core plus wings, so a point source loses ~15%.
_PSF_CORE_FWHM_ARCSEC, _PSF_WING_FWHM_ARCSEC, _PSF_WING_FRACTION = 0.10, 0.40, 0.2


def _sensitivity_shape(wavelength_um: np.ndarray) -> np.ndarray:
    table = np.asarray(SENSITIVITY_SHAPE)
    return np.exp(np.interp(np.log(wavelength_um), np.log(table[:, 0]), np.log(table[:, 1])))


def _grid_edges_um(grid: SpectralGrid) -> np.ndarray:
    return np.asarray(grid.edges.to_value(u.um), dtype=float)


def line_spread_matrix(
    input_edges_um: np.ndarray, grid: SpectralGrid = DEFAULT_SPECTRAL_GRID, sharpening: float = 1.0
) -> np.ndarray:
    """Gaussian line spread + pixel integration from a fine f_nu grid onto the model grid.

    Each fine pixel is spread by a Gaussian whose FWHM, combined in quadrature
    with the fine pixel's own width (boxcar variance w^2/12), is lambda / R;
    the result is averaged over each model pixel. The convolution acts on
    f_lambda (photons are dispersed), converted back to f_nu at the pixel centre.

    Parameters
    ----------
    input_edges_um : `numpy.ndarray`
        (L_in + 1,) increasing edges of the fine grid, um.
    grid : ``jwst_embed.preprocessing.spectra.SpectralGrid``, optional
        Output grid.
    sharpening : float, optional
        Resolving-power factor for compact sources.

    Returns
    -------
    matrix : `numpy.ndarray`
        (n_pixels, L_in): ``f_model = matrix @ f_fine`` (both f_nu).
    """
    from scipy.special import ndtr

    edges_in = np.asarray(input_edges_um, dtype=float)
    if edges_in.ndim != 1 or edges_in.size < 2 or np.any(np.diff(edges_in) <= 0):
        raise ValueError("input_edges_um must be a 1-D increasing array of at least two edges")
    centre_in = np.sqrt(edges_in[1:] * edges_in[:-1])
    width_in = np.diff(edges_in)
    fwhm = centre_in / resolving_power(centre_in, sharpening)
    sigma = np.sqrt(
        np.clip((fwhm / _FWHM_PER_SIGMA) ** 2 - width_in**2 / 12.0, (0.1 * width_in) ** 2, None)
    )
    edges_out = _grid_edges_um(grid)
    centre_out = np.sqrt(edges_out[1:] * edges_out[:-1])
    cdf = ndtr((edges_out[:, None] - centre_in[None, :]) / sigma[None, :])  # (n_out + 1, L_in)
    fraction = np.diff(cdf, axis=0)
    matrix = fraction * width_in[None, :] / np.diff(edges_out)[:, None]
    return matrix * (centre_out[:, None] / centre_in[None, :]) ** 2


@functools.lru_cache(maxsize=1)
def _slit_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte-Carlo fraction of a PSF-convolved Sersic profile inside the shutter."""
    from scipy.special import gammaincinv

    rng = np.random.default_rng(20240531)
    log_re = np.linspace(np.log(0.005), np.log(5.0), 28)
    sersic_n = np.linspace(0.3, 8.0, 14)
    n_samples = 8192
    # stratified quantiles give a smooth table from few samples
    quantile = (np.arange(n_samples) + rng.random(n_samples)) / n_samples * 0.999
    angle = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    core = _PSF_CORE_FWHM_ARCSEC / _FWHM_PER_SIGMA
    wing = _PSF_WING_FWHM_ARCSEC / _FWHM_PER_SIGMA
    psf_sigma = np.where(rng.random(n_samples) < _PSF_WING_FRACTION, wing, core)
    psf_offset = rng.normal(size=(2, n_samples)) * psf_sigma
    table = np.empty((log_re.size, sersic_n.size))
    for j, n in enumerate(sersic_n):
        b_n = gammaincinv(2.0 * n, 0.5)
        radius_over_re = (gammaincinv(2.0 * n, quantile) / b_n) ** n
        for i, lre in enumerate(log_re):
            radius = np.exp(lre) * radius_over_re
            x = radius * np.cos(angle) + psf_offset[0]
            y = radius * np.sin(angle) + psf_offset[1]
            inside = (np.abs(x) < SHUTTER_WIDTH_ARCSEC / 2) & (
                np.abs(y) < SHUTTER_LENGTH_ARCSEC / 2
            )
            # the 0.1% of light beyond the last quantile is outside the shutter
            table[i, j] = 0.999 * inside.mean()
    return log_re, sersic_n, table


@functools.lru_cache(maxsize=8)
def _slit_table_on(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # one host-to-device copy per device, not one per batch
    return torch.as_tensor(_slit_table()[2], dtype=dtype, device=device)


def slit_throughput(r_e_arcsec: torch.Tensor, sersic_n: torch.Tensor) -> torch.Tensor:
    """Fraction of a galaxy's light inside a centred 0.20" x 0.46" MSA shutter.

    The galaxy is a circular Sersic profile convolved with a PSF stand-in (80%
    Gaussian core of FWHM 0.10", 20% wings of FWHM 0.40"); the fraction comes
    from a Monte-Carlo table over log r_e (0.005-5") and n (0.3-8), bilinearly
    interpolated (inputs are clamped to the table).

    Parameters
    ----------
    r_e_arcsec : `torch.Tensor`
        (B,) half-light radii in arcsec.
    sersic_n : `torch.Tensor`
        (B,) Sersic indices.

    Returns
    -------
    throughput : `torch.Tensor`
        (B,) values in 0-1, same device and dtype as ``r_e_arcsec``.

    Examples
    --------
    >>> import torch
    >>> t = slit_throughput(torch.tensor([0.01, 0.5]), torch.tensor([1.0, 1.0]))
    >>> bool(t[0] > t[1])
    True
    """
    log_re, grid_n, table = _slit_table()
    dtype = r_e_arcsec.dtype if r_e_arcsec.is_floating_point() else torch.float32
    device = r_e_arcsec.device
    x = torch.log(r_e_arcsec.to(dtype).clamp(min=1e-6))
    y = sersic_n.to(device, dtype)
    fx = ((x - log_re[0]) / (log_re[1] - log_re[0])).clamp(0, log_re.size - 1.0001)
    fy = ((y - grid_n[0]) / (grid_n[1] - grid_n[0])).clamp(0, grid_n.size - 1.0001)
    ix, iy = fx.floor().long(), fy.floor().long()
    wx, wy = fx - ix, fy - iy
    t = _slit_table_on(device, dtype)
    low = torch.lerp(t[ix, iy], t[ix, iy + 1], wy)
    high = torch.lerp(t[ix + 1, iy], t[ix + 1, iy + 1], wy)
    return torch.lerp(low, high, wx)


class PrismInstrument:
    """PRISM observation of fine observed-frame SEDs: LSF, sampling, slit loss, noise, mask.

    Parameters
    ----------
    input_edges_um : array-like
        (L_in + 1,) edges of the fine observed grid of the SEDs, um.
    spectral_grid : ``jwst_embed.preprocessing.spectra.SpectralGrid``, optional
        Model grid of the output spectra.
    sharpening : float, optional
        Resolving-power factor for compact sources (1 = JDox nominal; ~1.3 for
        point sources).
    compact_sharpening : float, optional
        Resolving-power factor of a point source; when given, `observe` takes a
        per-object ``compactness`` (0 = extended, ``sharpening``; 1 = point source,
        ``compact_sharpening``) and interpolates between the two line spreads.
    bad_pixel_fraction : float, optional
        Fraction of pixels flagged bad at random (masked, ivar 0, value 0): model
        pixels with ``noise="white"`` (0 disables it, then every mask is False),
        native pixels with ``noise="native"``.
    source_variance_fraction : float, optional
        Fraction of the variance at the reference point (132 nJy, 3 um) due to
        the source's own photon noise; 0 (default) is purely background-limited.
    noise : {"native", "white"}, optional
        How noise is drawn (see the module docstring).
    noise_options : dict, optional
        Keyword arguments of `~jwst_embed.simulation.prism_noise.NativePixelNoise`
        (e.g. ``{"sensitivity_scatter": 1.0}`` for one fixed sensitivity shape).
    device : str or `torch.device`, optional

    Examples
    --------
    >>> import numpy as np, torch
    >>> edges = np.geomspace(0.5, 5.6, 2001)
    >>> prism = PrismInstrument(edges)
    >>> flat = torch.full((2, 2000), 132.0)
    >>> out = prism.observe(flat, torch.full((2,), 1e4), torch.ones(2), torch.Generator().manual_seed(0))
    >>> tuple(out["spectrum"].shape)
    (2, 512)
    """

    def __init__(
        self,
        input_edges_um,
        spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
        sharpening: float = 1.0,
        bad_pixel_fraction: float = 0.0,
        source_variance_fraction: float = 0.0,
        noise: str = "native",
        noise_options: dict | None = None,
        device: str | torch.device = "cpu",
        compact_sharpening: float | None = None,
    ) -> None:
        if noise not in ("native", "white"):
            raise ValueError(f"noise must be 'native' or 'white', got {noise!r}")
        if noise == "white" and noise_options:
            raise ValueError("noise_options apply to noise='native' only")
        if not 0.0 <= bad_pixel_fraction < 1.0:
            raise ValueError(f"bad_pixel_fraction must be in [0, 1), got {bad_pixel_fraction}")
        if not 0.0 <= source_variance_fraction < 1.0:
            raise ValueError(
                f"source_variance_fraction must be in [0, 1), got {source_variance_fraction}"
            )
        self.spectral_grid = spectral_grid
        self.sharpening = float(sharpening)
        self.bad_pixel_fraction = float(bad_pixel_fraction)
        self.source_variance_fraction = float(source_variance_fraction)
        self.device = torch.device(device)
        matrix = line_spread_matrix(
            np.asarray(input_edges_um, dtype=float), spectral_grid, sharpening
        )
        # transposed once: observe() does (B, L_in) @ (L_in, n_pixels)
        self.matrix_t = torch.as_tensor(
            matrix.T, dtype=torch.float32, device=self.device
        ).contiguous()
        self.compact_matrix_t = None
        if compact_sharpening is not None:
            compact = line_spread_matrix(
                np.asarray(input_edges_um, dtype=float), spectral_grid, compact_sharpening
            )
            self.compact_matrix_t = torch.as_tensor(
                compact.T, dtype=torch.float32, device=self.device
            ).contiguous()
        edges = _grid_edges_um(spectral_grid)
        wavelength = np.sqrt(edges[1:] * edges[:-1])
        # noise per resolution element at the reference exposure, then per pixel
        sigma_ref = REFERENCE_FLUX_NJY / REFERENCE_SNR
        shape = (
            _sensitivity_shape(wavelength)
            / _sensitivity_shape(np.array([REFERENCE_WAVELENGTH_UM]))[0]
        )
        pixels_per_resel = (wavelength / resolving_power(wavelength)) / np.diff(edges)
        sigma_pixel = sigma_ref * shape * np.sqrt(pixels_per_resel)
        self.pixels_per_resel = torch.as_tensor(
            pixels_per_resel, dtype=torch.float32, device=self.device
        )
        self.reference_variance = torch.as_tensor(
            sigma_pixel**2, dtype=torch.float32, device=self.device
        )
        self.wavelength = torch.as_tensor(wavelength, dtype=torch.float32, device=self.device)
        self.pixels_per_native = torch.as_tensor(
            model_pixels_per_native_pixel(spectral_grid.wavelength.to_value("um")), device=self.device
        )
        self.noise = noise
        self.native_noise = None
        if noise == "native":
            shape_at_reference = _sensitivity_shape(np.array([REFERENCE_WAVELENGTH_UM]))[0]

            def reference_sigma_native(native_wavelength):
                shape = _sensitivity_shape(native_wavelength) / shape_at_reference
                return sigma_ref * shape * math.sqrt(NATIVE_PIXELS_PER_RESEL)

            options = {"bad_pixel_fraction": self.bad_pixel_fraction, **(noise_options or {})}
            self.native_noise = NativePixelNoise(
                reference_sigma_native, spectral_grid, device=self.device, **options
            )

    def variance(self, flux: torch.Tensor, exposure_s: torch.Tensor) -> torch.Tensor:
        """(B, L) per-pixel variance in nJy^2 for slit-lossed ``flux`` (B, L) and exposures (B,) in s."""
        time_factor = (REFERENCE_EXPOSURE_S / exposure_s.to(flux.dtype))[:, None]
        alpha = self.source_variance_fraction
        relative = 1.0 - alpha
        if alpha > 0:
            relative = relative + alpha * flux.clamp(min=0.0) / REFERENCE_FLUX_NJY
        return self.reference_variance[None, :] * relative * time_factor

    def observe(
        self,
        sed: torch.Tensor,
        exposure_s: torch.Tensor,
        slit_throughput: torch.Tensor,
        generator: torch.Generator,
        compactness: torch.Tensor | None = None,
        calibration: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Observe (B, L_in) f_nu SEDs in nJy.

        Parameters
        ----------
        sed : `torch.Tensor`
            (B, L_in) nJy on the fine observed grid.
        exposure_s : `torch.Tensor`
            (B,) exposure times in s (> 0).
        slit_throughput : `torch.Tensor`
            (B,) fraction of the light inside the shutter, 0-1.
        generator : `torch.Generator`
            Noise source (same device as ``sed``).
        compactness : `torch.Tensor`, optional
            (B,) 0-1, how point-like each source is (needs ``compact_sharpening``): the
            line spread is interpolated between the extended and the point-source one.
        calibration : dict of `torch.Tensor`, optional
            (B,) flux tilts and wavelength shifts
            (`~jwst_embed.simulation.sample_calibration`), applied to the spectrum
            before the noise.

        Returns
        -------
        out : dict
            ``"spectrum_noiseless"`` (B, L) nJy (slit-lossed, calibration systematics
            applied), ``"spectrum"`` (B, L)
            noisy, ``"spectrum_ivar"`` (B, L) 1/nJy^2, ``"spectrum_mask"`` (B, L)
            bool, True = bad.
        """
        noiseless = sed @ self.matrix_t
        if compactness is not None:
            if self.compact_matrix_t is None:
                raise ValueError("compactness needs an instrument built with compact_sharpening")
            weight = compactness.to(sed.dtype).clamp(0.0, 1.0)[:, None]
            noiseless = torch.lerp(noiseless, sed @ self.compact_matrix_t, weight)
        noiseless = noiseless * slit_throughput.to(sed.dtype).clamp(0.0, 1.0)[:, None]
        if calibration is not None:
            noiseless = apply_calibration(noiseless, self.wavelength, calibration, self.pixels_per_native)
        if self.native_noise is not None:
            time_factor = REFERENCE_EXPOSURE_S / exposure_s.to(noiseless.dtype)
            background = time_factor * (1.0 - self.source_variance_fraction)
            out = self.native_noise.draw(noiseless, background, generator)
            if self.source_variance_fraction > 0:
                # the source's photon noise, per model pixel, on top of the background
                extra = self.reference_variance[None, :] * time_factor[:, None] * (
                    self.source_variance_fraction * noiseless.clamp(min=0.0) / REFERENCE_FLUX_NJY
                )
                draw = torch.randn(noiseless.shape, generator=generator, device=noiseless.device)
                good = ~out["spectrum_mask"]
                out["spectrum"] = torch.where(good, out["spectrum"] + draw * extra.sqrt(), 0.0)
                variance = 1.0 / out["spectrum_ivar"].clamp_min(1e-30) + extra
                out["spectrum_ivar"] = torch.where(good, 1.0 / variance, 0.0)
            return {"spectrum_noiseless": noiseless, **out}
        variance = self.variance(noiseless, exposure_s)
        noise = torch.randn(
            noiseless.shape, generator=generator, device=noiseless.device, dtype=noiseless.dtype
        )
        spectrum = noiseless + noise * variance.sqrt()
        ivar = 1.0 / variance
        if self.bad_pixel_fraction > 0:
            mask = (
                torch.rand(noiseless.shape, generator=generator, device=noiseless.device)
                < self.bad_pixel_fraction
            )
            spectrum = spectrum.masked_fill(mask, 0.0)
            ivar = ivar.masked_fill(mask, 0.0)
        else:
            mask = torch.zeros(noiseless.shape, dtype=torch.bool, device=noiseless.device)
        return {
            "spectrum_noiseless": noiseless,
            "spectrum": spectrum,
            "spectrum_ivar": ivar,
            "spectrum_mask": mask,
        }


class SpectrumSimulator:
    """Mock PRISM spectra and NIRCam band fluxes of galaxies, batched in torch.

    Parameters
    ----------
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`
        From ``jwst_embed.simulation.sps.load_library``.
    spectral_grid : ``jwst_embed.preprocessing.spectra.SpectralGrid``, optional
        Model grid of the spectra.
    bands : sequence of str, optional
        NIRCam bands of ``"band_flux"``.
    device : str or `torch.device`, optional
    sharpening, bad_pixel_fraction, source_variance_fraction, noise, noise_options
        Passed to `PrismInstrument`.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.sps import load_library
    >>> from jwst_embed.simulation.sed import sample_sed_parameters
    >>> sim = SpectrumSimulator(load_library())  # doctest: +SKIP
    >>> g = torch.Generator().manual_seed(0)
    >>> params = sample_sed_parameters(torch.tensor([3.0]), torch.tensor([9.5]), torch.tensor([True]), g)
    >>> out = sim.simulate(params, torch.tensor([1e4]), torch.tensor([0.8]), g)  # doctest: +SKIP
    >>> out["spectrum"].shape, out["band_flux"].shape  # doctest: +SKIP
    (torch.Size([1, 512]), torch.Size([1, 4]))
    """

    def __init__(
        self,
        library: StellarPopulationLibrary,
        spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
        bands=("F115W", "F150W", "F277W", "F444W"),
        device: str | torch.device = "cpu",
        sharpening: float = 1.0,
        bad_pixel_fraction: float = 0.0,
        source_variance_fraction: float = 0.0,
        noise: str = "native",
        noise_options: dict | None = None,
        compact_sharpening: float | None = 1.3,
    ) -> None:
        self.device = torch.device(device)
        self.sed_model = SEDModel(library, device=self.device)
        lib = self.sed_model.library
        self.bands = tuple(str(b).upper() for b in bands)
        unknown = [b for b in self.bands if b not in lib.band_names]
        if unknown:
            raise ValueError(f"unknown band(s) {unknown}; the library has {list(lib.band_names)}")
        rows = [lib.band_names.index(b) for b in self.bands]
        self.band_matrix_t = lib.band_matrix[rows].T.contiguous()
        step = lib.log_wavelength_step
        centres = lib.observed_wavelength.double().cpu().numpy()
        edges = np.concatenate([centres * math.exp(-step / 2), centres[-1:] * math.exp(step / 2)])
        self.instrument = PrismInstrument(
            edges,
            spectral_grid,
            sharpening=sharpening,
            bad_pixel_fraction=bad_pixel_fraction,
            source_variance_fraction=source_variance_fraction,
            noise=noise,
            noise_options=noise_options,
            device=self.device,
            compact_sharpening=compact_sharpening,
        )
        self.spectral_grid = spectral_grid

    @property
    def wavelength(self) -> u.Quantity:
        """Pixel centres of the output spectra."""
        return self.spectral_grid.wavelength

    def simulate(
        self,
        params: dict[str, torch.Tensor],
        exposure_s: torch.Tensor,
        slit_throughput: torch.Tensor,
        generator: torch.Generator,
        validate: bool = True,
        compactness: torch.Tensor | None = None,
        agn: dict[str, torch.Tensor] | None = None,
        dla_log_column: torch.Tensor | None = None,
        calibration: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Simulate a batch of galaxies.

        Parameters
        ----------
        params : dict of (B,) tensors
            SED parameters, keys ``jwst_embed.simulation.sed.SED_PARAMETER_NAMES``.
        exposure_s : `torch.Tensor`
            (B,) PRISM exposure times in s.
        slit_throughput : `torch.Tensor`
            (B,) shutter throughput 0-1 (see `slit_throughput`).
        generator : `torch.Generator`
            Noise source, on the simulator's device; the output is deterministic
            for a given generator state on a given device.
        validate : bool, optional
            Check inputs (one host synchronisation; switch off in GPU hot loops).
        compactness : `torch.Tensor`, optional
            (B,) 0 (extended) to 1 (point source): sharper lines for compact sources
            (see `PrismInstrument.observe`).
        agn : dict of (B,) tensors, optional
            Active nuclei (``jwst_embed.simulation.agn.sample_agn_parameters``).
        dla_log_column : `torch.Tensor`, optional
            (B,) log10 N_HI / cm^-2 of a damped Lyman-alpha absorber at each galaxy's redshift,
            0 for none (`~jwst_embed.simulation.sample_dla_columns`); it absorbs in
            the spectrum and the band fluxes alike.
        calibration : dict of `torch.Tensor`, optional
            Calibration systematics of the spectrum (see `PrismInstrument.observe`).

        Returns
        -------
        out : dict of tensors
            ``"spectrum_noiseless"``, ``"spectrum"``, ``"spectrum_ivar"``,
            ``"spectrum_mask"`` (B, L) on the spectral grid (nJy, slit-lossed);
            ``"band_flux"`` (B, n_bands) total nJy, noiseless, no slit loss;
            ``"log_sfr"``, ``"log_mass"`` (B,).

        Raises
        ------
        ValueError
            If ``validate`` and an input is out of range.
        """
        params = {name: value.to(self.device) for name, value in params.items()}
        exposure_s = exposure_s.to(self.device)
        slit_throughput = slit_throughput.to(self.device)
        if validate:
            batch = params["redshift"].shape
            if exposure_s.shape != batch or slit_throughput.shape != batch:
                raise ValueError(
                    f"exposure_s {tuple(exposure_s.shape)} and slit_throughput {tuple(slit_throughput.shape)} "
                    f"must have the batch shape {tuple(batch)}"
                )
            if not bool(torch.isfinite(exposure_s).all() and (exposure_s > 0).all()):
                raise ValueError("exposure_s must be finite and positive (seconds)")
            if not bool(((slit_throughput >= 0) & (slit_throughput <= 1)).all()):
                raise ValueError("slit_throughput must lie within 0-1")
        galaxy = self.sed_model.observed(params, validate=validate, agn=agn)
        sed = galaxy["sed"]
        if dla_log_column is not None:
            wavelength = self.sed_model.observed_wavelength
            sed = sed * dla_transmission(wavelength, params["redshift"], dla_log_column.to(self.device)).to(sed.dtype)
        out = self.instrument.observe(sed, exposure_s, slit_throughput, generator, compactness, calibration)
        out["band_flux"] = sed @ self.band_matrix_t
        out["log_sfr"] = galaxy["log_sfr"]
        out["log_mass"] = galaxy["log_mass"]
        return out
