"""Classical redshifts: chi-squared fitting of PRISM spectra with non-negative template sums.

The EAZY / msaexp approach, as a baseline for the learned embedding. A modest set of
rest-frame templates is built once from the package's own stellar-population library with
the simulator's SED model (`~jwst_embed.simulation.sed.SEDModel.rest_frame`: star-formation
history, nebular continuum and lines, Calzetti dust); `DEFAULT_TEMPLATES` lists them:
young star-forming populations with nebular emission at two metallicities, constant-ish
star formation over 50 Myr-1 Gyr at three dust levels, and single-age populations of
0.3-10 Gyr. For every trial redshift each template is

1. attenuated by the Inoue (2014) IGM transmission at that redshift (the library's table,
   interpolated as the simulator does);
2. redshifted onto the library's observed grid
   (`~jwst_embed.simulation.sed.SEDModel.redshift_to_observed`);
3. broadened to the PRISM resolution and integrated over the model pixels
   (the matrix of `~jwst_embed.simulation.prism.PrismInstrument`);

giving a cube (n_z, n_templates, L) computed once per fitter. A template is only allowed
at redshifts where its oldest stars are younger than the Universe (Planck18).

Each spectrum is then fitted at every trial redshift by the non-negative combination of the
templates that minimises ``chi2 = sum ivar (f - sum_k c_k T_k)^2``, solved exactly on the
normal equations by a batched Lawson-Hanson active-set method in float64 torch (all objects
of a chunk and all redshifts at once). The best redshift is refined below the grid step by
a parabola through the three lowest chi2 values; ``p(z) ~ exp(-chi2 / 2)`` (with chi2
divided by ``max(1, chi2_min / dof)`` when ``rescale_chi2``, since no template set matches
every galaxy: the usual stand-in for EAZY's template error) gives the 16th and 84th
percentiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jwst_embed.preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID, SpectralGrid

#: Local minima of the coarse chi2 curve refined on the full redshift grid.
_N_MINIMA = 5

__all__ = [
    "DEFAULT_TEMPLATES",
    "SEDTemplate",
    "TemplateFitter",
    "default_redshift_grid",
    "nnls_normal_equations",
]


@dataclass(frozen=True)
class SEDTemplate:
    """One rest-frame template, as parameters of the simulator's SED model.

    Parameters
    ----------
    name : str
        Short label.
    sfh_age_gyr : float
        Start of star formation (lookback, Gyr); also the age of the oldest stars,
        which sets the highest redshift at which the template is allowed.
    sfh_tau_gyr : float
        Delayed-tau timescale; large values give a nearly constant (rising) history.
    burst_fraction, burst_age_gyr : float
        A single-age burst; ``burst_fraction=1`` makes a simple stellar population.
    log_metallicity : float
        log10 Z/Zsun.
    log_u : float
        log10 ionisation parameter of the nebular emission (stars younger than 10 Myr).
    dust_av : float
        Calzetti (2000) V-band attenuation, mag.
    dust_young_extra : float
        Extra attenuation of stars younger than 10 Myr (and their nebular emission):
        ``dust_av * (1 + dust_young_extra)``.
    """

    name: str
    sfh_age_gyr: float
    sfh_tau_gyr: float = 100.0
    burst_fraction: float = 0.0
    burst_age_gyr: float = 0.0
    log_metallicity: float = -0.3
    log_u: float = -2.5
    dust_av: float = 0.0
    dust_young_extra: float = 0.0

    @property
    def oldest_age_gyr(self) -> float:
        """Age of the oldest stars in the template (Gyr)."""
        return max(self.sfh_age_gyr, self.burst_age_gyr if self.burst_fraction > 0 else 0.0)


#: The default template set (16 templates): what the mock survey's priors span, coarsely.
DEFAULT_TEMPLATES: tuple[SEDTemplate, ...] = (
    # birth-cloud dominated: strong nebular lines and continuum, low and moderate metallicity
    SEDTemplate("sf_10myr_lowz", 0.01, log_metallicity=-1.0, log_u=-2.0),
    SEDTemplate("sf_10myr", 0.01, log_metallicity=-0.4, log_u=-3.0),
    # roughly constant star formation of increasing duration
    SEDTemplate("sf_50myr", 0.05, log_metallicity=-0.7, log_u=-2.3),
    SEDTemplate("sf_200myr", 0.2, log_metallicity=-0.5, log_u=-2.5),
    SEDTemplate("sf_1gyr", 1.0, log_metallicity=-0.3, log_u=-2.5),
    # dusty star formation
    SEDTemplate("sf_200myr_av1", 0.2, log_metallicity=-0.3, dust_av=1.0),
    SEDTemplate("sf_1gyr_av1", 1.0, log_metallicity=-0.2, dust_av=1.0),
    SEDTemplate("sf_1gyr_av2.5", 1.0, log_metallicity=0.0, dust_av=2.5),
    SEDTemplate(
        "sf_300myr_av3", 0.3, log_metallicity=-0.3, log_u=-2.0, dust_av=3.0, dust_young_extra=0.5
    ),
    # single-age populations: post-starburst to old quiescent
    SEDTemplate("ssp_300myr", 0.3, burst_fraction=1.0, burst_age_gyr=0.3, log_metallicity=-0.3),
    SEDTemplate("ssp_1gyr", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, log_metallicity=0.0),
    SEDTemplate("ssp_3gyr", 3.0, burst_fraction=1.0, burst_age_gyr=3.0, log_metallicity=0.0),
    SEDTemplate("ssp_10gyr", 10.0, burst_fraction=1.0, burst_age_gyr=10.0, log_metallicity=0.1),
    SEDTemplate("ssp_1gyr_av1", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, dust_av=1.0),
    # old metal-poor populations (declining histories of low-mass galaxies)
    SEDTemplate("ssp_1gyr_lowz", 1.0, burst_fraction=1.0, burst_age_gyr=1.0, log_metallicity=-0.8),
    SEDTemplate("ssp_3gyr_lowz", 3.0, burst_fraction=1.0, burst_age_gyr=3.0, log_metallicity=-0.8),
)


def default_redshift_grid(z_max: float = 15.0, n: int = 800) -> np.ndarray:
    """Trial redshifts uniform in log(1 + z) from 0 to ``z_max``.

    Parameters
    ----------
    z_max : float, optional
        Highest redshift (at most 15.5, the SED model's range).
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
    if not 0 < z_max <= 15.5:
        raise ValueError(f"z_max must lie in (0, 15.5], got {z_max}")
    if int(n) < 3:
        raise ValueError(f"the redshift grid needs at least 3 points, got {n}")
    return np.expm1(np.linspace(0.0, math.log1p(z_max), int(n)))


def nnls_normal_equations(
    gram: torch.Tensor,
    rhs: torch.Tensor,
    allowed: torch.Tensor | None = None,
    max_iter: int | None = None,
) -> torch.Tensor:
    """Batched non-negative least squares on the normal equations (Lawson-Hanson active set).

    Minimises ``0.5 c^T G c - b^T c`` subject to ``c >= 0`` for a batch of small problems,
    which is ``||W^(1/2) (f - A c)||^2`` with ``G = A^T W A`` and ``b = A^T W f``.

    Parameters
    ----------
    gram : `torch.Tensor`
        (B, K, K) symmetric positive semi-definite matrices ``G``.
    rhs : `torch.Tensor`
        (B, K) vectors ``b``.
    allowed : `torch.Tensor`, optional
        (B, K) bool; variables that are False are held at 0.
    max_iter : int, optional
        Cap on the outer (add-a-variable) iterations; default ``3 K``.

    Returns
    -------
    coefficients : `torch.Tensor`
        (B, K), non-negative, dtype of ``gram``.

    Examples
    --------
    >>> import torch
    >>> from scipy.optimize import nnls
    >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> f = torch.tensor([2.0, -1.0, 1.0], dtype=torch.float64)
    >>> c = nnls_normal_equations((a.T @ a)[None], (a.T @ f)[None])
    >>> c.numpy().round(6), nnls(a.numpy(), f.numpy())[0].round(6)
    (array([[1.5, 0. ]]), array([1.5, 0. ]))
    """
    if gram.ndim != 3 or gram.shape[1] != gram.shape[2] or rhs.shape != gram.shape[:2]:
        raise ValueError(
            f"gram must be (B, K, K) and rhs (B, K); got {tuple(gram.shape)} and {tuple(rhs.shape)}"
        )
    n_batch, n_var = rhs.shape
    if allowed is None:
        allowed = torch.ones(n_batch, n_var, dtype=torch.bool, device=rhs.device)
    max_iter = 3 * n_var if max_iter is None else int(max_iter)
    eye = torch.eye(n_var, dtype=gram.dtype, device=gram.device)
    scale = gram.diagonal(dim1=1, dim2=2).amax(dim=1).clamp(min=torch.finfo(gram.dtype).tiny)
    # a relative ridge keeps near-collinear templates solvable; its effect on chi2 is ~1e-10
    ridge = torch.diag_embed(1e-10 * gram.diagonal(dim1=1, dim2=2).clamp(min=0) + 1e-300)
    tol = 1e-12 * scale
    x = torch.zeros_like(rhs)
    passive = torch.zeros_like(allowed)

    def restricted_solve(g, b, p):
        both = p[:, :, None] & p[:, None, :]
        g_p = torch.where(both, g, eye[None])
        b_p = torch.where(p, b, torch.zeros_like(b))
        # solve_ex: a (rare) singular system gives a flagged garbage row instead of an exception
        solution, _ = torch.linalg.solve_ex(g_p, b_p)
        return torch.where(p, torch.nan_to_num(solution), torch.zeros_like(solution))

    for _ in range(max_iter):
        gradient = rhs - (gram @ x[:, :, None])[:, :, 0]  # minus the gradient of the objective
        candidates = ~passive & allowed & (gradient > tol[:, None])
        rows = candidates.any(dim=1).nonzero()[:, 0]
        if rows.numel() == 0:
            break
        g, b = gram[rows], rhs[rows]
        g = g + ridge[rows]
        p, xi = passive[rows].clone(), x[rows]
        best = torch.where(candidates[rows], gradient[rows], -torch.inf).argmax(dim=1)
        p[torch.arange(rows.numel(), device=p.device), best] = True
        for _ in range(n_var + 1):
            s = restricted_solve(g, b, p)
            infeasible = p & (s <= 0)
            need = infeasible.any(dim=1)
            if not bool(need.any()):
                xi = s
                break
            # step from xi towards s until the first passive variable hits zero
            step = xi - s
            ratio = torch.where(infeasible & (step > 0), xi / step.clamp(min=1e-300), torch.inf)
            alpha = ratio.amin(dim=1).clamp(0.0, 1.0)
            alpha = torch.where(torch.isfinite(alpha), alpha, torch.zeros_like(alpha))
            xi = torch.where(need[:, None], xi + alpha[:, None] * (s - xi), s)
            p = p & ~(need[:, None] & (xi <= 1e-12 * xi.abs().amax(dim=1, keepdim=True)))
            xi = torch.where(p, xi, torch.zeros_like(xi))
        else:
            xi = torch.where(p, s.clamp(min=0), torch.zeros_like(s))
        x[rows] = xi.clamp(min=0)
        passive[rows] = p & (xi > 0)
    return x


class TemplateFitter:
    """Redshifts of PRISM spectra by chi-squared fitting of non-negative template sums.

    Parameters
    ----------
    z_grid : array-like, optional
        Trial redshifts (increasing, 0-15.5); default `default_redshift_grid` (800 values
        uniform in log(1 + z) over 0-15).
    templates : "default" or sequence of `SEDTemplate`, optional
        Rest-frame templates; default `DEFAULT_TEMPLATES`.
    spectral_grid : `~jwst_embed.preprocessing.SpectralGrid`, optional
        Model grid of the spectra to fit (512 pixels over 0.6-5.3 um by default).
    sharpening : float, optional
        PRISM resolving-power factor (1 = JDox nominal, as the mock survey).
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`, optional
        Loaded library; default `~jwst_embed.simulation.sps.load_library`.
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
        if z_grid[0] < 0 or z_grid[-1] > 15.5:
            raise ValueError(
                f"z_grid must lie within 0-15.5 (the SED model's range), got {z_grid[0]}-{z_grid[-1]}"
            )
        if isinstance(templates, str):
            if templates != "default":
                raise ValueError(
                    f"templates must be 'default' or a sequence of SEDTemplate, got {templates!r}"
                )
            templates = DEFAULT_TEMPLATES
        templates = tuple(templates)
        if not templates or not all(isinstance(t, SEDTemplate) for t in templates):
            raise TypeError("templates must be a non-empty sequence of SEDTemplate")
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
        self._pair_products = None

    # -- templates -------------------------------------------------------------------
    def _build_cube(self, library) -> tuple[torch.Tensor, torch.Tensor]:
        from jwst_embed.simulation.prism import PrismInstrument
        from jwst_embed.simulation.sed import SEDModel, age_of_universe
        from jwst_embed.simulation.sps import load_library

        library = load_library() if library is None else library.to("cpu")
        model = SEDModel(library)
        n_t = len(self.templates)

        def column(name):
            return torch.tensor([float(getattr(t, name)) for t in self.templates])

        params = {
            "redshift": torch.zeros(n_t),  # IGM is applied per trial redshift below
            "log_mass": torch.zeros(n_t),
            "sfh_tau_gyr": column("sfh_tau_gyr"),
            "sfh_age_gyr": column("sfh_age_gyr"),
            "burst_fraction": column("burst_fraction"),
            "burst_age_gyr": column("burst_age_gyr"),
            "quench_age_gyr": torch.zeros(n_t),
            "log_metallicity": column("log_metallicity"),
            "log_u": column("log_u"),
            "dust_av": column("dust_av"),
            "dust_young_extra": column("dust_young_extra"),
        }
        rest = model.rest_frame(params)["l_nu"].double()  # (T, L_rest)

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
        instrument = PrismInstrument(edges, self.spectral_grid, sharpening=self.sharpening)
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
        norm = cube.mean(dim=2, keepdim=True)
        allowed = (norm[:, :, 0] > 0) & (
            column("oldest_age_gyr").double()[None, :]
            <= age_of_universe(z)[:, None].double() + 1e-6
        )
        cube = torch.where(norm > 0, cube / norm.clamp(min=1e-300), torch.zeros_like(cube))
        return cube, allowed

    @property
    def template_names(self) -> tuple[str, ...]:
        """Names of the templates, in the order of the cube's second axis."""
        return tuple(t.name for t in self.templates)

    def _coarse_indices(self) -> torch.Tensor:
        n_z = self.z_grid.size
        return torch.unique(torch.cat([torch.arange(0, n_z, self.refine), torch.tensor([n_z - 1])]))

    def _pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_z, n_pairs, L) products T_i T_j (i <= j), coarse redshifts first, and the row of each z.

        One matrix product of these with ivar gives every Gram matrix ``A^T W A``.
        """
        key = self.refine
        if self._pair_products is None or self._pair_products[0] != key:
            n_z, n_t, _ = self.template_cube.shape
            i, j = torch.triu_indices(n_t, n_t)
            coarse = self._coarse_indices()
            rest = torch.ones(n_z, dtype=torch.bool)
            rest[coarse] = False
            order = torch.cat([coarse, rest.nonzero()[:, 0]])
            row_of_z = torch.empty(n_z, dtype=torch.long)
            row_of_z[order] = torch.arange(n_z)
            cube = self.template_cube[order]
            products = (cube[:, i, :] * cube[:, j, :]).contiguous()
            self._pair_products = (key, products, row_of_z)
        return self._pair_products[1], self._pair_products[2]

    def _gram(self, upper: torch.Tensor) -> torch.Tensor:
        """(..., n_pairs) upper triangles -> (..., n_t, n_t) symmetric matrices."""
        n_t = self.template_cube.shape[1]
        i, j = torch.triu_indices(n_t, n_t)
        gram = upper.new_empty(*upper.shape[:-1], n_t, n_t)
        gram[..., i, j] = upper
        gram[..., j, i] = upper
        return gram

    # -- fitting ---------------------------------------------------------------------
    def _chi2_chunk(self, flux: torch.Tensor, ivar: torch.Tensor) -> torch.Tensor:
        """(n, n_z) minimum chi2 over non-negative template sums at each trial redshift.

        With ``refine > 1`` the NNLS problems are solved on every ``refine``-th redshift,
        then on the full grid within ``2 refine`` steps of the five lowest coarse minima;
        the remaining redshifts get chi2 interpolated linearly in grid index.
        """
        products, row_of_z = self._pairs()
        n_z, n_pairs, n_pix = products.shape
        n_t = self.template_cube.shape[1]
        n = flux.shape[0]
        weighted = ivar * flux
        rhs = torch.einsum("ztl,nl->nzt", self.template_cube, weighted)  # (n, n_z, T) A^T W f
        total = (weighted * flux).sum(dim=1)  # f^T W f
        coarse = self._coarse_indices()
        n_coarse = coarse.numel()

        def chi2_of(gram, b, obj, zi):
            coeff = nnls_normal_equations(gram, b, self.allowed[zi])
            model_term = ((gram @ coeff[:, :, None])[:, :, 0] * coeff).sum(-1)  # c^T G c
            return (total[obj] - 2.0 * (coeff * b).sum(-1) + model_term).clamp(min=0.0)

        # coarse redshifts: their products are the first n_coarse rows, one matrix product
        upper = (products[:n_coarse].reshape(-1, n_pix) @ ivar.T).reshape(n_coarse, n_pairs, n)
        gram = self._gram(upper.permute(2, 0, 1)).reshape(n * n_coarse, n_t, n_t)
        obj = torch.arange(n).repeat_interleave(n_coarse)
        zi = coarse.repeat(n)
        chi2_coarse = chi2_of(gram, rhs[obj, zi], obj, zi).reshape(n, n_coarse)
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
            # per object: only its own fine redshifts' products enter the Gram matrices
            upper = torch.cat(
                [products[row_of_z[z_fine[obj_fine == o]]] @ ivar[o] for o in range(n)]
            )
            chi2[obj_fine, z_fine] = chi2_of(
                self._gram(upper), rhs[obj_fine, z_fine], obj_fine, z_fine
            )
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

        flux, ivar_t, mask_t = self._validate(flux_njy, ivar, mask)
        good = ~mask_t & torch.isfinite(flux) & torch.isfinite(ivar_t) & (ivar_t > 0)
        weight = torch.where(good, ivar_t, torch.zeros_like(ivar_t))
        flux = torch.where(good, flux, torch.zeros_like(flux))
        n_pixels = good.sum(dim=1)
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
