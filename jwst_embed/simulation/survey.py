"""The mock JWST survey: priors over the galaxy population, and batches of simulated objects.

This module draws who is in the survey (redshift, stellar mass, star-forming or quiescent,
morphology class, survey depth and spectroscopic exposure time), hands the physical parameters to
the SED/PRISM simulator (`~jwst_embed.simulation.spectra`) and the image renderer
(`~jwst_embed.simulation.images`), and returns the result either as a dictionary of tensors
(`MockSurvey.sample`) or as model-ready `~jwst_embed.preprocessing.Batch` objects
(`MockSurvey.batches`). Everything is batched torch on one device; the same seed gives the same
objects on the same device.

The population is that of a *spectroscopic follow-up* survey rather than a volume-limited one:
redshifts are spread to cover 0.2-15 (half from a field-like distribution peaking near z~2, half
uniform in log(1+z)), and stellar masses follow a Schechter function whose faint end is flattened by
one power of M (targets are selected by brightness), so that the model sees massive, rare and
high-redshift galaxies often enough to learn them.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import torch

from ..bands import get_band
from ..devices import resolve_device
from ..preprocessing.images import DEFAULT_IMAGE_GRID, ImageGrid
from ..preprocessing.spectra import DEFAULT_SPECTRAL_GRID, SpectralGrid
from .sample_batch import sample_to_batch

__all__ = ["SurveyConfig", "MockSurvey", "SIMULATOR_VERSION", "batch_generator"]

#: Version of the simulator; written into every mock file so results can be traced.
SIMULATOR_VERSION = "0.3"

# Library coverage: the SPS library and IGM table are built for these redshifts.
_LIBRARY_Z_MIN, _LIBRARY_Z_MAX = 0.0, 20.0


@dataclass
class SurveyConfig:
    """Configuration of the mock survey (every field has a working default).

    Parameters
    ----------
    bands : tuple of str
        NIRCam bands to render.
    include_spectra : bool
        Whether to simulate PRISM spectra.
    redshift_min, redshift_max : float
        Redshift range (within 0-20, the library's coverage).
    log_mass_min, log_mass_max : float
        Stellar-mass range, log10(M/Msun).
    depth_min_ab, depth_max_ab : float
        Range of 5-sigma point-source depths (AB) drawn per object, spanning wide (~28.6) to
        deep (~30) JWST fields.
    exposure_min_s, exposure_max_s : float
        Range of PRISM exposure times, drawn log-uniformly per object.
    spectrum_fraction : float
        Fraction of objects that have a spectrum (the others only have images); 1 keeps all.
    prism_noise : {"native", "white"}
        PRISM noise as real spectra have it (drawn on native pixels with a per-object
        sensitivity shape, outliers and gaps, then resampled: correlated) or independent per
        model pixel from one fixed curve (the simulator before version 0.2).
    prism_noise_options : dict
        Keyword arguments of `~jwst_embed.simulation.prism_noise.NativePixelNoise`.
    agn_fraction_low_z, agn_fraction_high_z : float
        Fraction of objects hosting an active nucleus below z = 2 and above z = 4 (reddened
        power law, broad lines, dense-gas Balmer break: Little Red Dots at high z;
        ``jwst_embed.simulation.agn``); 0 and 0 switch nuclei off.
    dusty_fraction : float
        Fraction of star-forming galaxies with A_V 1.5-4 at any redshift.
    compact_sharpening : float
        PRISM resolving-power factor of point sources; objects are interpolated between 1
        (half-light radius >= 0.3") and this value (<= 0.05"), since a compact source fills
        less of the shutter than the uniform illumination of the JDox resolving power.
    dla_fraction : float
        Share of galaxies with a damped Lyman-alpha absorber (N_HI 10^20.3-10^23 cm^-2) at
        z >= 8, rising linearly from 0 at z = 5 (``jwst_embed.simulation.absorbers``).
    calibration_options : dict
        Keyword arguments of `~jwst_embed.simulation.sample_calibration` (flux
        tilts and wavelength shifts of the PRISM spectra); ``{"tilt_sigma": 0,
        "curvature_sigma": 0, "shift_sigma_pixels": 0}`` switches them off.
    neighbour_fraction : float
        Probability that a cutout holds a neighbouring source (and again for a second one;
        `~jwst_embed.simulation.add_neighbours`).
    image_artefacts : bool
        Mosaic edges, masked snowballs and unflagged hot pixels in the cutouts
        (`~jwst_embed.simulation.add_artefacts`).
    image_grid, spectral_grid
        Model grids (from `jwst_embed.preprocessing`).
    """

    bands: tuple[str, ...] = ("F115W", "F150W", "F277W", "F444W")
    include_spectra: bool = True
    redshift_min: float = 0.2
    redshift_max: float = 15.0
    log_mass_min: float = 7.5
    log_mass_max: float = 11.8
    depth_min_ab: float = 28.6
    depth_max_ab: float = 30.0
    exposure_min_s: float = 3.0e3
    exposure_max_s: float = 1.0e5
    spectrum_fraction: float = 1.0
    prism_noise: str = "native"
    prism_noise_options: dict = field(default_factory=dict)
    agn_fraction_low_z: float = 0.03
    agn_fraction_high_z: float = 0.10
    dusty_fraction: float = 0.1
    compact_sharpening: float = 1.3
    dla_fraction: float = 0.5
    calibration_options: dict = field(default_factory=dict)
    neighbour_fraction: float = 0.3
    image_artefacts: bool = True
    image_grid: ImageGrid = field(default_factory=lambda: DEFAULT_IMAGE_GRID)
    spectral_grid: SpectralGrid = field(default_factory=lambda: DEFAULT_SPECTRAL_GRID)

    def __post_init__(self) -> None:
        self.bands = tuple(get_band(b).name for b in self.bands)  # validates, normalises case
        if not self.bands and not self.include_spectra:
            raise ValueError("SurveyConfig: no bands and no spectra; nothing to simulate")
        if not (_LIBRARY_Z_MIN < self.redshift_min < self.redshift_max <= _LIBRARY_Z_MAX):
            raise ValueError(
                f"SurveyConfig: redshift range [{self.redshift_min}, {self.redshift_max}] must satisfy "
                f"{_LIBRARY_Z_MIN} < redshift_min < redshift_max <= {_LIBRARY_Z_MAX} "
                "(the stellar-population library and IGM table cover z <= 20)"
            )
        if not (5.0 <= self.log_mass_min < self.log_mass_max <= 12.5):
            raise ValueError(
                f"SurveyConfig: log-mass range [{self.log_mass_min}, {self.log_mass_max}] must lie in 5-12.5"
            )
        if not (self.depth_min_ab <= self.depth_max_ab):
            raise ValueError("SurveyConfig: depth_min_ab must not exceed depth_max_ab")
        if not (0 < self.exposure_min_s <= self.exposure_max_s):
            raise ValueError("SurveyConfig: need 0 < exposure_min_s <= exposure_max_s")
        if not (0.0 <= self.spectrum_fraction <= 1.0):
            raise ValueError(f"SurveyConfig: spectrum_fraction {self.spectrum_fraction} not in [0, 1]")
        if self.prism_noise not in ("native", "white"):
            raise ValueError(f"SurveyConfig: prism_noise must be 'native' or 'white', got {self.prism_noise!r}")
        for name in ("agn_fraction_low_z", "agn_fraction_high_z", "dusty_fraction", "dla_fraction", "neighbour_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SurveyConfig: {name} {getattr(self, name)} not in [0, 1]")
        if not 1.0 <= self.compact_sharpening <= 2.0:
            raise ValueError(f"SurveyConfig: compact_sharpening {self.compact_sharpening} not in [1, 2]")
        self.prism_noise_options = dict(self.prism_noise_options)
        self.calibration_options = dict(self.calibration_options)
        from .calibration import sample_calibration

        unknown = set(self.calibration_options) - set(inspect.signature(sample_calibration).parameters) - {"n", "generator"}
        if unknown:
            raise ValueError(f"SurveyConfig: unknown calibration_options {sorted(unknown)}")

    def to_dict(self) -> dict:
        """A JSON-serialisable dictionary (for file metadata and checkpoints)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["bands"] = list(self.bands)
        out["image_grid"] = self.image_grid.to_dict()
        out["spectral_grid"] = self.spectral_grid.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict) -> SurveyConfig:
        """Inverse of `to_dict`; unknown keys raise a `ValueError`."""
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"SurveyConfig: unknown keys {sorted(unknown)}; known keys: {sorted(known)}")
        if "image_grid" in values and isinstance(values["image_grid"], dict):
            values["image_grid"] = ImageGrid.from_dict(values["image_grid"])
        if "spectral_grid" in values and isinstance(values["spectral_grid"], dict):
            values["spectral_grid"] = SpectralGrid.from_dict(values["spectral_grid"])
        if "bands" in values:
            values["bands"] = tuple(values["bands"])
        return cls(**values)


def batch_generator(seed: int, batch_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A random generator for one batch of a stream, independent of every other batch.

    Seeding each batch from ``(seed, batch_index)`` makes a stream reproducible and resumable at any
    batch without replaying the ones before it.

    Parameters
    ----------
    seed : int
        Survey seed.
    batch_index : int
        Index of the batch in the stream.
    device : str or torch.device
        Device of the generator (CUDA generators draw different numbers than CPU ones).

    Returns
    -------
    generator : `torch.Generator`
    """
    digest = hashlib.sha256(f"jwst_embed-survey:{int(seed)}:{int(batch_index)}".encode()).digest()
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return generator


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


class MockSurvey:
    """A generator of mock JWST galaxies: NIRCam images and PRISM spectra with labels.

    Parameters
    ----------
    config : `SurveyConfig`, optional
        Survey configuration; defaults work.
    device : str or torch.device
        Where to simulate (``"cuda"`` makes tens of thousands of objects per second; ``"auto"``:
        CUDA if available, else the CPU).
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`, optional
        A loaded stellar-population library; by default it is loaded from the user cache
        (and built there on first use, which needs the ``sim`` extra).

    Examples
    --------
    >>> from jwst_embed.simulation import MockSurvey  # doctest: +SKIP
    >>> survey = MockSurvey()  # doctest: +SKIP
    >>> sample = survey.sample(256, seed=1)  # doctest: +SKIP
    >>> sample["images"].shape  # doctest: +SKIP
    torch.Size([256, 4, 64, 64])
    """

    def __init__(self, config: SurveyConfig | None = None, device: str | torch.device = "cpu", library=None):
        from .images import ImageRenderer
        from .prism import SpectrumSimulator
        from .sps import load_library

        self.config = config if config is not None else SurveyConfig()
        # the simulator is plain torch (no MPS kernels checked): "auto" is CUDA or the CPU
        self.device = resolve_device(device, allow_mps=False)
        self.library = library if library is not None else load_library(device=self.device)
        self.spectrum_simulator = SpectrumSimulator(
            self.library,
            spectral_grid=self.config.spectral_grid,
            bands=self.config.bands,
            device=self.device,
            noise=self.config.prism_noise,
            noise_options=self.config.prism_noise_options or None,
            compact_sharpening=self.config.compact_sharpening,
        )
        self.image_renderer = (
            ImageRenderer(bands=self.config.bands, grid=self.config.image_grid, device=self.device)
            if self.config.bands
            else None
        )

    # ------------------------------------------------------------------ priors
    def _draw_redshift(self, n: int, generator: torch.Generator) -> torch.Tensor:
        cfg, dev = self.config, self.device
        lo, hi = math.log1p(cfg.redshift_min), math.log1p(cfg.redshift_max)
        # Half: uniform in log(1+z), so z > 8 is common enough to learn. Half: field-like, a
        # log-normal in (1+z) centred at z ~ 2 with width ~0.35 in ln(1+z), truncated to the range.
        uniform_part = _uniform(n, lo, hi, generator, dev)
        field_like = math.log(3.0) + 0.35 * torch.randn(n, generator=generator, device=dev)
        field_like = field_like.clamp(lo, hi)
        pick_field = torch.rand(n, generator=generator, device=dev) < 0.5
        return torch.expm1(torch.where(pick_field, field_like, uniform_part))

    def _draw_log_mass(self, redshift: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Schechter mass function, faint end flattened by one power of M (brightness selection).

        M* ~ 10^10.8 at z < 2 falling slowly beyond, alpha steepening from -1.4 to -2 with z (cf.
        Weaver et al. 2023, Navarro-Carrera et al. 2024). Sampled by inverse transform on a grid.
        """
        cfg, dev = self.config, self.device
        grid = torch.linspace(cfg.log_mass_min, cfg.log_mass_max, 256, device=dev)
        log_mstar = 10.8 - 0.1 * (redshift - 2.0).clamp(min=0.0)
        alpha = (-1.4 - 0.1 * redshift).clamp(min=-2.0)
        x = grid[None, :] - log_mstar[:, None]
        # dN/dlogM of a Schechter function times M^-1 ... flattened: (alpha + 1 + 1) power
        log_density = (alpha[:, None] + 1.0 + 1.0) * x * math.log(10.0) - torch.pow(10.0, x)
        density = torch.exp(log_density - log_density.max(dim=1, keepdim=True).values)
        cdf = torch.cumsum(density, dim=1)
        cdf = cdf / cdf[:, -1:]
        u = torch.rand(redshift.shape[0], 1, generator=generator, device=dev)
        index = torch.searchsorted(cdf, u).clamp(max=grid.numel() - 1).squeeze(1)
        step = grid[1] - grid[0]
        jitter = (torch.rand(redshift.shape[0], generator=generator, device=dev) - 0.5) * step
        return (grid[index] + jitter).clamp(cfg.log_mass_min, cfg.log_mass_max)

    def _draw_star_forming(self, redshift, log_mass, generator) -> torch.Tensor:
        """Quiescent fraction rising with mass, falling with redshift (~0 beyond z ~ 5)."""
        mass_term = torch.sigmoid((log_mass - (10.3 + 0.25 * redshift)) / 0.3)
        quiescent_fraction = 0.8 * mass_term * torch.exp(-redshift / 2.5)
        return torch.rand(redshift.shape[0], generator=generator, device=self.device) >= quiescent_fraction

    # ------------------------------------------------------------------ simulation
    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> dict:
        """Simulate ``n`` objects.

        Parameters
        ----------
        n : int
            Number of objects (> 0).
        seed : int, optional
            Seed; ignored when ``generator`` is given. One of the two is required.
        generator : `torch.Generator`, optional
            Generator on ``self.device``.

        Returns
        -------
        sample : dict of `torch.Tensor`
            ``"images"`` (with neighbours and artefacts), ``"images_noiseless"`` (the target alone),
            ``"images_ivar"``, ``"images_mask"`` (N, n_bands, H, W),
            ``"spectrum"``, ``"spectrum_noiseless"``, ``"spectrum_ivar"``, ``"spectrum_mask"`` (N, L),
            ``"has_spectrum"`` (N,), the labels ``"redshift"``, ``"log_mass"``, ``"log_sfr"``,
            ``"morphology"``, ``"star_forming"``, the structural parameters, ``"band_flux"``,
            ``"depth_ab"`` and ``"exposure_s"``.
        """
        from .absorbers import sample_dla_columns
        from .agn import sample_agn_parameters
        from .calibration import sample_calibration
        from .image_scene import add_artefacts, add_neighbours
        from .morphology import morphology_fractions, sample_structure
        from .prism import slit_throughput
        from .sed import sample_sed_parameters

        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"number of objects must be a positive integer, got {n!r}")
        if generator is None:
            if seed is None:
                raise ValueError("give a seed or a generator")
            generator = batch_generator(seed, 0, self.device)
        cfg, dev = self.config, self.device

        redshift = self._draw_redshift(n, generator)
        log_mass = self._draw_log_mass(redshift, generator)
        star_forming = self._draw_star_forming(redshift, log_mass, generator)
        probabilities = morphology_fractions(redshift, star_forming)
        morphology = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
        structure = sample_structure(morphology, log_mass, redshift, generator)
        sed_parameters = sample_sed_parameters(
            redshift, log_mass, star_forming, generator, dusty_fraction=cfg.dusty_fraction
        )
        agn = None
        if cfg.agn_fraction_low_z > 0 or cfg.agn_fraction_high_z > 0:
            agn = sample_agn_parameters(
                redshift, generator, cfg.agn_fraction_low_z, cfg.agn_fraction_high_z
            )

        exposure_s = torch.exp(
            _uniform(n, math.log(cfg.exposure_min_s), math.log(cfg.exposure_max_s), generator, dev)
        )
        radius = _effective_radius(structure)
        throughput = slit_throughput(radius, _effective_sersic_n(structure))
        # 1 for a point source (r_e <= 0.05"), 0 from r_e = 0.3" up: sharper PRISM lines
        compactness = ((0.3 - radius) / 0.25).clamp(0.0, 1.0)
        dla_log_column = sample_dla_columns(redshift, generator, cfg.dla_fraction) if cfg.dla_fraction > 0 else None
        calibration = sample_calibration(n, generator, **cfg.calibration_options) if _calibrated(cfg) else None
        # Parameters come from our own priors: skip the per-call validation (it syncs with the GPU).
        spectra = self.spectrum_simulator.simulate(
            sed_parameters, exposure_s, throughput, generator, validate=False, compactness=compactness,
            agn=agn, dla_log_column=dla_log_column, calibration=calibration,
        )

        out: dict[str, torch.Tensor] = {
            "redshift": redshift,
            "log_mass": spectra["log_mass"],
            "log_sfr": spectra["log_sfr"],
            "star_forming": star_forming,
            "morphology": morphology,
            "exposure_s": exposure_s,
            "slit_throughput": throughput,
            "band_flux": spectra["band_flux"],
        }
        for key, value in structure.items():
            if key != "morphology":
                out[key] = value
        for key, value in sed_parameters.items():
            if key not in ("redshift", "log_mass"):
                out[f"sed_{key}"] = value
        if agn is not None:
            out.update(agn)
        if dla_log_column is not None:
            out["dla_log_column"] = dla_log_column
        if calibration is not None:
            out.update(calibration)

        if cfg.include_spectra:
            has_spectrum = torch.rand(n, generator=generator, device=dev) < cfg.spectrum_fraction
            out["has_spectrum"] = has_spectrum
            for key in ("spectrum", "spectrum_noiseless", "spectrum_ivar", "spectrum_mask"):
                out[key] = spectra[key]
        if self.image_renderer is not None:
            n_bands = len(cfg.bands)
            # One depth per object (the field), with a band-to-band scatter of 0.2 mag.
            base_depth = _uniform(n, cfg.depth_min_ab, cfg.depth_max_ab, generator, dev)
            depth_ab = base_depth[:, None] + 0.2 * torch.randn(n, n_bands, generator=generator, device=dev)
            images = self.image_renderer.render(structure, spectra["band_flux"], depth_ab, generator)
            if cfg.neighbour_fraction > 0:
                # in the observed images only: images_noiseless stays the target alone (its truth)
                neighbours = add_neighbours(images["images_noiseless"], generator, cfg.neighbour_fraction)
                images["images"] = torch.where(images["images_mask"], images["images"], images["images"] + neighbours)
            if cfg.image_artefacts:
                images.update(add_artefacts(images["images"], images["images_ivar"], images["images_mask"], generator))
            out["depth_ab"] = depth_ab
            for key in ("images", "images_noiseless", "images_ivar", "images_mask"):
                out[key] = images[key]
        return out

    def to_batch(self, sample: dict):
        """Turn a `sample` dictionary into a model-ready `~jwst_embed.preprocessing.Batch`."""
        return sample_to_batch(sample, self.config)

    def batches(
        self, batch_size: int, seed: int, start: int = 0, n_batches: int | None = None
    ) -> Iterator:
        """Stream `~jwst_embed.preprocessing.Batch` objects without writing files.

        Parameters
        ----------
        batch_size : int
            Objects per batch.
        seed : int
            Survey seed; batch ``k`` depends only on ``(seed, k)``.
        start : int
            Index of the first batch (to resume a stream).
        n_batches : int, optional
            Stop after this many batches; by default the stream is endless.

        Yields
        ------
        batch : `~jwst_embed.preprocessing.Batch`
        """
        index = start
        while n_batches is None or index < start + n_batches:
            generator = batch_generator(seed, index, self.device)
            yield self.to_batch(self.sample(batch_size, generator=generator))
            index += 1

    def metadata(self, seed: int) -> dict:
        """The record written beside simulated data: versions, seed and configuration."""
        return {
            "simulator_version": SIMULATOR_VERSION,
            "library_version": getattr(self.library, "version", "unknown"),
            "seed": int(seed),
            "device": str(self.device),
            "config": self.config.to_dict(),
        }


def _calibrated(config: SurveyConfig) -> bool:
    """Whether any calibration systematic is on (none: no draws, the generator's stream as before)."""
    from .calibration import sample_calibration

    defaults = {name: p.default for name, p in inspect.signature(sample_calibration).parameters.items()
                if p.default is not inspect.Parameter.empty}  # fmt: skip
    return any(value != 0 for value in {**defaults, **config.calibration_options}.values())


def _effective_radius(structure: dict) -> torch.Tensor:
    """Flux-weighted half-light radius proxy (arcsec) for the slit-loss estimate."""
    bulge_fraction = structure["bulge_fraction"]
    return bulge_fraction * structure["bulge_re_arcsec"] + (1 - bulge_fraction) * structure["disk_re_arcsec"]


def _effective_sersic_n(structure: dict) -> torch.Tensor:
    bulge_fraction = structure["bulge_fraction"]
    return bulge_fraction * structure["bulge_n"] + (1 - bulge_fraction) * structure["disk_n"]

