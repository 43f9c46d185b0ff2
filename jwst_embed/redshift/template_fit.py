"""Redshifts by chi-squared fitting of PRISM spectra with non-negative template sums.

The EAZY / msaexp approach. The rest-frame templates (`~jwst_embed.redshift.templates`) are
galaxies from the package's own stellar-population library and the simulator's SED model, and
analytic components for what that model does not make (AGN continua, broad and strong narrow
lines with free ratios between groups, dense-gas Balmer breaks, damped Lyman-alpha). For every
trial redshift (0-20) each template is

1. attenuated by the Inoue (2014) IGM transmission at that redshift (the library's table,
   interpolated as the simulator does);
2. redshifted onto the library's observed grid
   (`~jwst_embed.simulation.sed.SEDModel.redshift_to_observed`);
3. broadened to the PRISM resolution and integrated over the model pixels
   (the matrix of `~jwst_embed.simulation.prism.PrismInstrument`);

giving a cube (n_z, n_templates, L) computed once per fitter. A galaxy template is only allowed
at redshifts where its oldest stars are younger than the Universe (Planck18); a component
wherever it has flux on the grid.

Each spectrum is then fitted at every trial redshift by the non-negative combination of the
templates that minimises ``chi2 = sum ivar (f - sum_k c_k T_k)^2``, solved exactly on the
normal equations by a batched Lawson-Hanson active-set method in float64 torch (all objects
of a chunk and all redshifts at once). The best redshift is refined below the grid step by
a parabola through the three lowest chi2 values; ``p(z) ~ exp(-chi2 / 2)`` (with chi2
divided by ``max(1, chi2_min / dof)`` when ``rescale_chi2``, since no template set matches
every galaxy: the usual stand-in for EAZY's template error) gives the 16th and 84th
percentiles. `TemplateFitter.chi2_at` evaluates chi2 at chosen (object, redshift) pairs only,
which is what the joint network x template redshift (`~jwst_embed.redshift.joint`) uses.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from jwst_embed.preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID, SpectralGrid

from .nnls import nnls_normal_equations
from .normal_equations import column_chi2, pair_chi2, unconstrained_column_chi2
from .templates import DEFAULT_TEMPLATES, ComponentTemplate, SEDTemplate, rest_frame_templates

#: Local minima of the coarse chi2 curve refined on the full redshift grid.
_N_MINIMA = 5

#: Highest redshift of the fitter (the IGM table of the library reaches z = 20).
Z_MAX = 20.0

__all__ = [
    "Z_MAX",
    "TemplateFitter",
    "default_redshift_grid",
    "nnls_normal_equations",
]


def default_redshift_grid(z_max: float = Z_MAX, n: int = 880) -> np.ndarray:
    """Trial redshifts uniform in log(1 + z) from 0 to ``z_max``.

    Parameters
    ----------
    z_max : float, optional
        Highest redshift (at most 20, the IGM table's range).
    n : int, optional
        Number of redshifts (at least 3).

    Returns
    -------
    z : `numpy.ndarray`
        (n,) increasing redshifts; the step in dz / (1 + z) is ``ln(1 + z_max) / (n - 1)``.

    Examples
    --------
    >>> z = default_redshift_grid(15.0, 801)
    >>> float(z[0]), round(float(z[-1]), 6), round(float(np.log1p(z[1]) - np.log1p(z[0])), 6)
    (0.0, 15.0, 0.003466)
    """
    if not 0 < z_max <= Z_MAX:
        raise ValueError(f"z_max must lie in (0, {Z_MAX:g}], got {z_max}")
    if int(n) < 3:
        raise ValueError(f"the redshift grid needs at least 3 points, got {n}")
    return np.expm1(np.linspace(0.0, math.log1p(z_max), int(n)))


class TemplateFitter:
    """Redshifts of PRISM spectra by chi-squared fitting of non-negative template sums.

    Parameters
    ----------
    z_grid : array-like, optional
        Trial redshifts (increasing, 0-20); default `default_redshift_grid` (880 values
        uniform in log(1 + z) over 0-20, a step of 0.0035 in ln(1 + z)).
    templates : "default", "galaxies" or sequence of templates, optional
        Rest-frame templates (`~jwst_embed.redshift.SEDTemplate`,
        `~jwst_embed.redshift.ComponentTemplate`); default
        `~jwst_embed.redshift.DEFAULT_TEMPLATES`, ``"galaxies"`` the 16 galaxy templates only
        (`~jwst_embed.redshift.GALAXY_TEMPLATES`, the set before AGN and line components).
    spectral_grid : `~jwst_embed.preprocessing.SpectralGrid`, optional
        Model grid of the spectra to fit (512 pixels over 0.6-5.3 um by default).
    sharpening : float, optional
        PRISM resolving-power factor (1 = JDox nominal, as the mock survey).
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`, optional
        Loaded library; default ``jwst_embed.simulation.sps.load_library``.
    rescale_chi2 : bool, optional
        Divide chi2 by ``max(1, chi2_min / dof)`` before forming p(z), so that a template
        mismatch widens the interval instead of giving a spuriously sharp p(z).
    chunk_size : int, optional
        Objects fitted together (memory ~ chunk_size * n_z * 3 kB).
    refine : int, optional
        Coarse-to-fine factor: the fit runs on every ``refine``-th trial redshift, then on
        the full grid around the five lowest coarse minima (chi2 elsewhere is interpolated
        between coarse points). 1 fits every redshift (about 3x slower).

    Attributes
    ----------
    z_grid : `numpy.ndarray`
        (n_z,) trial redshifts.
    template_cube : `torch.Tensor`
        (n_z, n_templates, L) float64 templates on the model grid, each normalised to unit
        mean flux density.
    allowed : `torch.Tensor`
        (n_z, n_templates) bool: template younger than the Universe at that redshift.

    Examples
    --------
    >>> fitter = TemplateFitter(z_grid=default_redshift_grid(15.0, 200))  # doctest: +SKIP
    >>> table = fitter.fit(flux_njy, ivar, mask)  # doctest: +SKIP
    >>> table.colnames  # doctest: +SKIP
    ['z', 'z_lo', 'z_hi', 'chi2_min', 'n_pixels', 'fit_ok', 'chi2', 'pz']
    """

    def __init__(
        self,
        z_grid=None,
        templates="default",
        spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
        sharpening: float = 1.0,
        library=None,
        rescale_chi2: bool = True,
        chunk_size: int = 32,
        refine: int = 4,
    ) -> None:
        z_grid = default_redshift_grid() if z_grid is None else np.asarray(z_grid, dtype=float)
        if z_grid.ndim != 1 or z_grid.size < 3:
            raise ValueError(
                f"z_grid must be 1-D with at least 3 redshifts, got shape {z_grid.shape}"
            )
        if not np.all(np.isfinite(z_grid)) or np.any(np.diff(z_grid) <= 0):
            raise ValueError("z_grid must be finite and strictly increasing")
        if z_grid[0] < 0 or z_grid[-1] > Z_MAX:
            raise ValueError(
                f"z_grid must lie within 0-{Z_MAX:g} (the IGM table's range), got {z_grid[0]}-{z_grid[-1]}"
            )
        if isinstance(templates, str):
            from .templates import GALAXY_TEMPLATES

            named = {"default": DEFAULT_TEMPLATES, "galaxies": GALAXY_TEMPLATES}
            if templates not in named:
                raise ValueError(
                    f"templates must be 'default', 'galaxies' or a sequence of templates, got {templates!r}"
                )
            templates = named[templates]
        templates = tuple(templates)
        if not templates or not all(isinstance(t, SEDTemplate | ComponentTemplate) for t in templates):
            raise TypeError("templates must be a non-empty sequence of SEDTemplate or ComponentTemplate")
        if int(refine) < 1:
            raise ValueError(f"refine must be a positive integer, got {refine}")
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.z_grid = z_grid
        self.templates = templates
        self.spectral_grid = spectral_grid
        self.sharpening = float(sharpening)
        self.rescale_chi2 = bool(rescale_chi2)
        self.chunk_size = int(chunk_size)
        self.refine = int(refine)
        self.template_cube, self.allowed = self._build_cube(library)

    # -- templates -------------------------------------------------------------------
    def _build_cube(self, library) -> tuple[torch.Tensor, torch.Tensor]:
        from jwst_embed.simulation.prism import PrismInstrument
        from jwst_embed.simulation.sed import SEDModel, age_of_universe
        from jwst_embed.simulation.sps import load_library

        library = load_library() if library is None else library.to("cpu")
        model = SEDModel(library)
        n_t = len(self.templates)
        rest = rest_frame_templates(self.templates, library)  # (T, L_rest); IGM per z below

        z = torch.as_tensor(self.z_grid, dtype=torch.float64)
        # Inoue (2014) IGM: the library's table, linearly interpolated in z as SEDModel does
        table = library.igm_transmission.double()
        position = (z / model.igm_redshift_step).clamp(0.0, model.igm_position_max)
        lower = position.floor().long()
        igm = torch.lerp(
            table[lower], table[lower + 1], (position - lower)[:, None]
        )  # (n_z, n_igm)
        n_igm = igm.shape[1]

        step = library.log_wavelength_step
        centres = library.observed_wavelength.double().numpy()
        edges = np.concatenate([centres * math.exp(-step / 2), centres[-1:] * math.exp(step / 2)])
        instrument = PrismInstrument(edges, self.spectral_grid, sharpening=self.sharpening, noise="white")
        lsf_t = instrument.matrix_t.double()  # (L_obs, L)

        cube = torch.empty(z.numel(), n_t, self.spectral_grid.n_pixels, dtype=torch.float64)
        for start in range(0, z.numel(), 64):
            zs = z[start : start + 64]
            shifted = rest[None].repeat(zs.numel(), 1, 1)
            shifted[:, :, :n_igm] *= igm[start : start + 64, None, :]
            observed = model.redshift_to_observed(
                shifted.reshape(-1, rest.shape[1]), zs.repeat_interleave(n_t)
            )
            cube[start : start + 64] = (observed @ lsf_t).reshape(zs.numel(), n_t, -1)
        oldest = torch.tensor([t.oldest_age_gyr for t in self.templates], dtype=torch.float64)
        norm = cube.mean(dim=2, keepdim=True)
        # a template with (almost) no flux on the grid at this z (a line outside it) is not allowed
        has_flux = cube.abs().amax(dim=2) > 0
        allowed = (norm[:, :, 0] > 0) & has_flux & (
            oldest[None, :] <= age_of_universe(z)[:, None].double() + 1e-6
        )
        cube = torch.where(norm > 0, cube / norm.clamp(min=1e-300), torch.zeros_like(cube))
        return cube, allowed

    def subset(self, names) -> TemplateFitter:
        """A fitter with some of this one's templates, sharing its cube (no rebuild).

        Parameters
        ----------
        names : sequence of str
            Template names, a subset of `template_names`.

        Returns
        -------
        fitter : `TemplateFitter`

        Raises
        ------
        ValueError
            If a name is not one of this fitter's templates.
        """
        unknown = [name for name in names if name not in self.template_names]
        if unknown:
            raise ValueError(f"unknown templates {unknown}; this fitter has {list(self.template_names)}")
        index = [self.template_names.index(name) for name in names]
        other = object.__new__(TemplateFitter)
        other.__dict__.update(self.__dict__)
        other.templates = tuple(self.templates[i] for i in index)
        other.template_cube = self.template_cube[:, index].contiguous()
        other.allowed = self.allowed[:, index].contiguous()
        return other

    def binned(self, factor: int) -> TemplateFitter:
        """A fitter on a grid ``factor`` times coarser, its templates averaged over the pixels.

        At a coarse resolution chi2 varies slowly with redshift, so a sparse redshift scan does
        not step over its minima (at full resolution a line fits at one redshift only).

        Parameters
        ----------
        factor : int
            Model pixels per coarse pixel; must divide the grid's pixel count.

        Returns
        -------
        fitter : `TemplateFitter`
            Use `bin_spectra` for the spectra it fits.

        Raises
        ------
        ValueError
            If ``factor`` does not divide the number of pixels.
        """
        from jwst_embed.preprocessing.spectral_grid import SpectralGrid

        n_pixels = self.spectral_grid.n_pixels
        if int(factor) < 1 or n_pixels % int(factor):
            raise ValueError(f"factor must divide the {n_pixels} pixels of the grid, got {factor}")
        factor = int(factor)
        other = object.__new__(TemplateFitter)
        other.__dict__.update(self.__dict__)
        grid = self.spectral_grid
        other.spectral_grid = SpectralGrid(grid.wavelength_min, grid.wavelength_max, n_pixels // factor)
        n_z, n_t, _ = self.template_cube.shape
        other.template_cube = self.template_cube.reshape(n_z, n_t, -1, factor).mean(dim=3).contiguous()
        return other

    @staticmethod
    def bin_spectra(flux, ivar, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse-variance weighted means of ``factor`` neighbouring pixels, and their ivar.

        Parameters
        ----------
        flux, ivar : array-like or `torch.Tensor`
            (N, L) spectra and inverse variances (0 on masked pixels).
        factor : int
            Pixels per coarse pixel.

        Returns
        -------
        flux, ivar : `torch.Tensor`
            (N, L / factor) float64.
        """
        flux = torch.as_tensor(np.asarray(flux) if not isinstance(flux, torch.Tensor) else flux).double()
        ivar = torch.as_tensor(np.asarray(ivar) if not isinstance(ivar, torch.Tensor) else ivar).double()
        shape = (flux.shape[0], -1, int(factor))
        weight = ivar.reshape(shape).sum(dim=2)
        mean = (flux * ivar).reshape(shape).sum(dim=2) / weight.clamp(min=1e-300)
        return torch.where(weight > 0, mean, torch.zeros_like(mean)), weight

    @property
    def template_names(self) -> tuple[str, ...]:
        """Names of the templates, in the order of the cube's second axis."""
        return tuple(t.name for t in self.templates)

    def _coarse_indices(self) -> torch.Tensor:
        n_z = self.z_grid.size
        return torch.unique(torch.cat([torch.arange(0, n_z, self.refine), torch.tensor([n_z - 1])]))

    def _chi2_chunk(self, flux: torch.Tensor, ivar: torch.Tensor) -> torch.Tensor:
        """(n, n_z) minimum chi2 over non-negative template sums at each trial redshift.

        With ``refine > 1`` the NNLS problems are solved on every ``refine``-th redshift,
        then on the full grid within ``2 refine`` steps of the five lowest coarse minima;
        the remaining redshifts get chi2 interpolated linearly in grid index.
        """
        n_z, n_t = self.template_cube.shape[:2]
        n = flux.shape[0]
        coarse = self._coarse_indices()
        n_coarse = coarse.numel()

        chi2_coarse = column_chi2(self.template_cube, self.allowed, flux, ivar, coarse)
        if n_coarse == n_z:
            return chi2_coarse

        # the lowest local minima of the coarse curve, refined on the full grid
        padded = torch.nn.functional.pad(chi2_coarse[:, None], (1, 1), mode="replicate")[:, 0]
        is_min = (chi2_coarse <= padded[:, :-2]) & (chi2_coarse <= padded[:, 2:])
        ranked = torch.where(is_min, chi2_coarse, torch.inf).argsort(dim=1)[:, :_N_MINIMA]
        n_minima = is_min.sum(dim=1).clamp(max=_N_MINIMA)
        fine = torch.zeros(n, n_z, dtype=torch.bool)
        offsets = torch.arange(-2 * self.refine, 2 * self.refine + 1)
        for rank in range(_N_MINIMA):
            use = n_minima > rank
            window = (coarse[ranked[:, rank]][:, None] + offsets[None, :]).clamp(0, n_z - 1)
            rows = torch.arange(n)[:, None].expand_as(window)
            fine[rows[use], window[use]] = True
        fine[:, coarse] = False
        chi2 = torch.empty(n, n_z, dtype=torch.float64)
        chi2[:, coarse] = chi2_coarse
        obj_fine, z_fine = fine.nonzero(as_tuple=True)
        if obj_fine.numel():
            chi2[obj_fine, z_fine] = pair_chi2(self.template_cube, self.allowed, flux, ivar, obj_fine, z_fine)
        known = fine.numpy().copy()
        known[:, coarse.numpy()] = True
        index = np.arange(n_z)
        chi2_np = chi2.numpy()
        for row in range(n):
            chi2_np[row, ~known[row]] = np.interp(
                index[~known[row]], index[known[row]], chi2_np[row, known[row]]
            )
        return chi2

    def fit(self, flux_njy, ivar, mask=None, progress: bool = True):
        """Fit spectra on the model grid.

        Parameters
        ----------
        flux_njy : array-like or `torch.Tensor`
            (N, L) f_nu in nJy on ``spectral_grid`` (as from
            `~jwst_embed.preprocessing.preprocess_spectra` or the mock survey); a (L,) array
            is one spectrum.
        ivar : array-like or `torch.Tensor`
            (N, L) inverse variance in 1/nJy^2.
        mask : array-like of bool, optional
            (N, L), True = bad. Masked pixels and pixels with non-finite flux or ivar, or
            ivar <= 0, are left out of the fit.
        progress : bool, optional
            Show a progress bar over chunks of objects.

        Returns
        -------
        table : `~astropy.table.Table`
            One row per spectrum: ``z`` (best fit, sub-grid refined), ``z_lo`` and ``z_hi``
            (16th/84th percentiles of p(z)), ``chi2_min``, ``n_pixels`` (pixels used),
            ``fit_ok`` (False when a spectrum has no usable pixel: its z, z_lo and z_hi are
            then masked entries holding -1, never NaN), ``chi2`` (N, n_z) and ``pz`` (N, n_z)
            normalised so that its integral over z is 1. ``meta["z_grid"]`` holds the grid.

        Raises
        ------
        ValueError
            If the arrays are not (N, L) with L the grid's pixel count, or differ in shape.
        """
        from astropy.table import MaskedColumn, Table
        from tqdm.auto import tqdm

        flux, weight, n_pixels = self.weighted_arrays(flux_njy, ivar, mask)
        n_obj, n_z = flux.shape[0], self.z_grid.size
        chi2 = torch.empty(n_obj, n_z, dtype=torch.float64)
        starts = range(0, n_obj, self.chunk_size)
        for start in tqdm(starts, disable=not progress, desc="template fit", unit="chunk"):
            stop = start + self.chunk_size
            chi2[start:stop] = self._chi2_chunk(flux[start:stop], weight[start:stop])
        chi2 = chi2.numpy()

        fit_ok = n_pixels.numpy() > 0
        z_best, z_lo, z_hi, pz = self._summarise(chi2, n_pixels.numpy())
        chi2_min = chi2.min(axis=1)
        table = Table()
        fill = -1.0
        for name, value in (("z", z_best), ("z_lo", z_lo), ("z_hi", z_hi)):
            table[name] = MaskedColumn(np.where(fit_ok, value, fill), mask=~fit_ok, fill_value=fill)
        table["chi2_min"] = np.where(fit_ok, chi2_min, 0.0)
        table["n_pixels"] = n_pixels.numpy().astype(np.int64)
        table["fit_ok"] = fit_ok
        table["chi2"] = chi2.astype(np.float32)
        table["pz"] = pz.astype(np.float32)
        table.meta["z_grid"] = self.z_grid.copy()
        table.meta["templates"] = list(self.template_names)
        return table

    def weighted_arrays(self, flux_njy, ivar, mask):
        """Validated float64 flux and weight (0 on bad pixels) and the good pixels per object.

        Parameters
        ----------
        flux_njy, ivar, mask
            As for `fit`.

        Returns
        -------
        flux, weight : `torch.Tensor`
            (N, L) float64; both 0 where a pixel is masked, not finite or has ``ivar <= 0``.
        n_pixels : `torch.Tensor`
            (N,) usable pixels per spectrum.

        Raises
        ------
        ValueError
            If the arrays do not fit the grid.
        """
        flux, ivar_t, mask_t = self._validate(flux_njy, ivar, mask)
        good = ~mask_t & torch.isfinite(flux) & torch.isfinite(ivar_t) & (ivar_t > 0)
        weight = torch.where(good, ivar_t, torch.zeros_like(ivar_t))
        flux = torch.where(good, flux, torch.zeros_like(flux))
        return flux, weight, good.sum(dim=1)

    def chi2_at(self, flux_njy, ivar, mask, evaluate) -> np.ndarray:
        """chi2 of the best non-negative template sum at chosen redshifts of each spectrum.

        Parameters
        ----------
        flux_njy, ivar, mask
            As for `fit`.
        evaluate : array-like of bool
            (N, n_z): True where chi2 is wanted (indices into ``z_grid``).

        Returns
        -------
        chi2 : `numpy.ndarray`
            (N, n_z) float64; ``inf`` where not evaluated.

        Raises
        ------
        ValueError
            If the arrays do not fit the grid or ``evaluate`` is not (N, n_z).

        Examples
        --------
        >>> chi2 = fitter.chi2_at(flux_njy, ivar, mask, evaluate)  # doctest: +SKIP
        """
        flux, weight, _ = self.weighted_arrays(flux_njy, ivar, mask)
        return self._weighted_chi2_at(flux, weight, self._evaluate_mask(evaluate, flux.shape[0]))

    def _weighted_chi2_at(self, flux: torch.Tensor, weight: torch.Tensor, evaluate) -> np.ndarray:
        """`chi2_at` on arrays `weighted_arrays` has already checked (the joint redshift's many calls)."""
        evaluate = torch.as_tensor(evaluate)
        chi2 = torch.full(evaluate.shape, torch.inf, dtype=torch.float64)
        # redshifts wanted for most spectra (a scan's shared points) are fitted for all of them
        # at once, the rest pair by pair
        shared = torch.nonzero(evaluate.float().mean(dim=0) >= 0.5)[:, 0]
        if shared.numel() and flux.shape[0] > 1:
            chi2[:, shared] = torch.where(
                evaluate[:, shared], column_chi2(self.template_cube, self.allowed, flux, weight, shared), torch.inf
            )
            evaluate = evaluate.clone()
            evaluate[:, shared] = False
        obj, zi = evaluate.nonzero(as_tuple=True)
        if obj.numel():
            chi2[obj, zi] = pair_chi2(self.template_cube, self.allowed, flux, weight, obj, zi)
        return chi2.numpy()

    def unconstrained_chi2_at(self, flux_njy, ivar, mask, evaluate) -> np.ndarray:
        """chi2 of the best template sum with coefficients of either sign: a lower bound of `chi2_at`.

        One linear solve per (spectrum, redshift) instead of a non-negative fit: cheap enough to
        rule out redshifts whose best fit cannot beat a known one (the joint redshift's scan).

        Parameters
        ----------
        flux_njy, ivar, mask, evaluate
            As for `chi2_at`.

        Returns
        -------
        chi2 : `numpy.ndarray`
            (N, n_z) float64, at most `chi2_at`'s value (to 1e-8 of the spectrum's
            ``sum(ivar * flux^2)``, the effect of the solvers' relative ridge); 0 where a
            solve failed (no bound) and ``inf`` where not evaluated.

        Examples
        --------
        >>> bound = fitter.unconstrained_chi2_at(flux_njy, ivar, mask, evaluate)  # doctest: +SKIP
        """
        flux, weight, _ = self.weighted_arrays(flux_njy, ivar, mask)
        return self._weighted_unconstrained_chi2_at(flux, weight, self._evaluate_mask(evaluate, flux.shape[0]))

    def _weighted_unconstrained_chi2_at(self, flux: torch.Tensor, weight: torch.Tensor, evaluate) -> np.ndarray:
        """`unconstrained_chi2_at` on arrays `weighted_arrays` has already checked."""
        evaluate = torch.as_tensor(evaluate)
        chi2 = torch.full(evaluate.shape, torch.inf, dtype=torch.float64)
        columns = torch.nonzero(evaluate.any(dim=0))[:, 0]
        if columns.numel():
            bound = unconstrained_column_chi2(self.template_cube, self.allowed, flux, weight, columns)
            chi2[:, columns] = torch.where(evaluate[:, columns], bound, torch.inf)
        return chi2.numpy()

    def _evaluate_mask(self, evaluate, n: int) -> torch.Tensor:
        evaluate = torch.as_tensor(np.asarray(evaluate, dtype=bool))
        if tuple(evaluate.shape) != (n, self.z_grid.size):
            raise ValueError(f"evaluate must be (N, n_z) = ({n}, {self.z_grid.size}), got {tuple(evaluate.shape)}")
        return evaluate

    def fit_spectra(self, spectra, progress: bool = True):
        """Fit `~specutils.Spectrum` objects after resampling them onto the model grid.

        Parameters
        ----------
        spectra : `~specutils.Spectrum` or iterable of them
            Any units and sampling `~jwst_embed.preprocessing.preprocess_spectra` accepts.
        progress : bool, optional
            Show progress bars.

        Returns
        -------
        table : `~astropy.table.Table`
            As `fit`.

        Raises
        ------
        ValueError, TypeError, astropy.units.UnitsError
            From `~jwst_embed.preprocessing.preprocess_spectra` for unusable spectra.
        """
        from jwst_embed.preprocessing import preprocess_spectra

        arrays = preprocess_spectra(spectra, grid=self.spectral_grid, progress=progress)
        return self.fit(arrays.flux, arrays.ivar, arrays.mask, progress=progress)

    def _validate(self, flux_njy, ivar, mask):
        def as_tensor(value):
            if not isinstance(value, torch.Tensor):
                value = torch.as_tensor(np.asarray(value))
            return value.detach().cpu()

        flux = as_tensor(flux_njy).double()
        ivar_t = as_tensor(ivar).double()
        if flux.ndim == 1:  # one spectrum
            flux = flux[None]
            ivar_t = ivar_t[None] if ivar_t.ndim == 1 else ivar_t
        n_pix = self.spectral_grid.n_pixels
        if flux.ndim != 2 or flux.shape[1] != n_pix or flux.shape[0] == 0:
            raise ValueError(
                f"flux_njy must be (N, {n_pix}) on the model grid with N >= 1, got {tuple(flux.shape)}"
            )
        if tuple(ivar_t.shape) != tuple(flux.shape):
            raise ValueError(
                f"ivar has shape {tuple(ivar_t.shape)}, flux_njy has {tuple(flux.shape)}"
            )
        if mask is None:
            mask_t = torch.zeros(flux.shape, dtype=torch.bool)
        else:
            mask_t = as_tensor(mask).bool()
            if mask_t.ndim == 1:
                mask_t = mask_t[None]
            if tuple(mask_t.shape) != tuple(flux.shape):
                raise ValueError(
                    f"mask has shape {tuple(mask_t.shape)}, flux_njy has {tuple(flux.shape)}"
                )
        return flux, ivar_t, mask_t

    def _summarise(self, chi2: np.ndarray, n_pixels: np.ndarray):
        z = self.z_grid
        n_obj, n_z = chi2.shape
        rows = np.arange(n_obj)
        best = chi2.argmin(axis=1)
        # parabola in ln(1 + z) through the lowest point and its neighbours
        x = np.log1p(z)
        k = np.clip(best, 1, n_z - 2)
        x0, x1, x2 = x[k - 1], x[k], x[k + 1]
        y0, y1, y2 = chi2[rows, k - 1], chi2[rows, k], chi2[rows, k + 1]
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / np.where(denom == 0, 1, denom)
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / np.where(
            denom == 0, 1, denom
        )
        interior = (best == k) & (a > 0)
        vertex = np.where(interior, -b / np.where(a > 0, 2 * a, 1.0), x[best])
        vertex = np.clip(vertex, x[np.maximum(best - 1, 0)], x[np.minimum(best + 1, n_z - 1)])
        z_best = np.expm1(vertex)

        chi2_min = chi2[rows, best]
        dof = np.maximum(n_pixels - 1, 1)
        scale = np.maximum(1.0, chi2_min / dof) if self.rescale_chi2 else np.ones(n_obj)
        log_like = -0.5 * (chi2 - chi2_min[:, None]) / scale[:, None]
        like = np.exp(log_like)
        norm = np.trapezoid(like, z, axis=1)
        pz = like / norm[:, None]
        # cumulative trapezoid, then the 16th and 84th percentiles by linear interpolation
        cdf = np.concatenate(
            [np.zeros((n_obj, 1)), np.cumsum(0.5 * (pz[:, 1:] + pz[:, :-1]) * np.diff(z), axis=1)],
            axis=1,
        )
        cdf /= cdf[:, -1:]
        z_lo = np.array([np.interp(0.16, c, z) for c in cdf])
        z_hi = np.array([np.interp(0.84, c, z) for c in cdf])
        # the percentiles come from a grid: keep the refined best fit inside them
        z_lo = np.minimum(z_lo, z_best)
        z_hi = np.maximum(z_hi, z_best)
        return z_best, z_lo, z_hi, pz
