"""Batched galaxy spectral energy distributions in torch.

A galaxy is a dict of (B,) tensors (``SED_PARAMETER_NAMES``); `SEDModel` turns it
into the observed-frame f_nu in nJy on the library's fine observed grid
(0.5-5.6 um, R ~ 950), plus labels. Everything is tensor algebra over the
batch (no Python loop over objects), identical on CPU and CUDA:

1. star-formation history -> mass formed in each library age bin: a delayed-tau
   history ``SFR(t) ~ t exp(-t / tau)`` that started ``sfh_age_gyr`` ago, set to
   zero for the last ``quench_age_gyr`` (integrated analytically over each age
   bin), plus a burst holding ``burst_fraction`` of the formed mass
   ``burst_age_gyr`` ago; ``sfh_age_gyr`` is clipped to the age of the Universe;
2. metallicity: linear interpolation in Z/Zsun between the 7 grid
   metallicities (as bagpipes); ionisation parameter: linear in log U;
3. stars younger than 10 Myr (birth clouds): ionising photons replaced by the
   Cloudy nebular continuum + lines (escape fraction 0), attenuated by
   ``dust_av * (1 + dust_young_extra)``; older stars by ``dust_av``; Calzetti
   (2000) curve; the absorbed luminosity is re-emitted with the Draine & Li
   (2007) template (energy balance, as bagpipes);
4. Inoue (2014) IGM transmission, interpolated in redshift;
5. redshift (an index shift on the shared log-wavelength step) and the Planck18
   luminosity distance: ``f_nu = (1 + z) L_nu(lambda / (1 + z)) / (4 pi d_L^2)``.

The template sums use the rank-160 SVD basis stored in the library (about 1e-4
of the flux, 4x fewer operations); ``SEDModel(..., exact=True)`` sums the exact
templates.

``log_mass`` is the *surviving* stellar mass (what catalogues quote); the mass
formed is ``log_mass - log10(surviving_fraction)`` of the history.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from jwst_embed.simulation.sps import StellarPopulationLibrary
from jwst_embed.simulation.sps_file import template_matrices

__all__ = [
    "SED_PARAMETER_NAMES",
    "SEDModel",
    "age_of_universe",
    "band_fluxes",
    "sample_sed_parameters",
]

#: Keys of the parameter dict; each value is a (B,) float tensor.
SED_PARAMETER_NAMES = (
    "redshift",
    "log_mass",
    "sfh_tau_gyr",
    "sfh_age_gyr",
    "burst_fraction",
    "burst_age_gyr",
    "quench_age_gyr",
    "log_metallicity",
    "log_u",
    "dust_av",
    "dust_young_extra",
)

#: Redshifts the model supports (observed 0.5 um must stay above the 0.03 um rest grid).
REDSHIFT_RANGE = (0.005, 15.5)
SFR_TIMESCALE_GYR = 0.1
LOG_SFR_FLOOR = -6.0
_NJY_PER_CGS = 1e32  # erg/s/cm^2/Hz -> nJy


@functools.lru_cache(maxsize=1)
def _planck18_age_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    z = np.linspace(0.0, 20.0, 2001)
    return z, Planck18.age(z).to_value("Gyr")


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of (B,) ``x`` in a sorted table, clamped at the ends."""
    x = x.clamp(xp[0], xp[-1])
    index = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1 = xp[index - 1], xp[index]
    weight = (x - x0) / (x1 - x0)
    return fp[index - 1] + weight * (fp[index] - fp[index - 1])


def age_of_universe(redshift: torch.Tensor) -> torch.Tensor:
    """Planck18 age of the Universe in Gyr at ``redshift`` (B,), by table interpolation.

    Examples
    --------
    >>> import torch
    >>> round(float(age_of_universe(torch.tensor([0.0]))[0]), 2)
    13.79
    """
    xp, fp = _age_table_on(redshift.device, redshift.dtype)
    return _interp(redshift, xp, fp)


@functools.lru_cache(maxsize=8)
def _age_table_on(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # one host-to-device copy per device, not one per batch
    z, age = _planck18_age_table()
    return torch.as_tensor(z, dtype=dtype, device=device), torch.as_tensor(
        age, dtype=dtype, device=device
    )


def _hat_weights(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, n) linear-interpolation weights of (B,) ``x`` on a sorted grid (clamped)."""
    x = x.clamp(grid[0], grid[-1])[:, None]
    # x is clamped to the grid, so the outer neighbours only need to lie outside it
    left = torch.cat([grid[:1] - 1.0, grid[:-1]])
    right = torch.cat([grid[1:], grid[-1:] + 1.0])
    rising = (x - left) / (grid - left)
    falling = (right - x) / (right - grid)
    return torch.where(x <= grid, rising, falling).clamp(0.0, 1.0)


def _delayed_cumulative(s: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Mass formed by ``t exp(-t/tau)`` in its first ``s`` Gyr: tau^2 [1 - e^-u (1 + u)]."""
    u = s / tau
    # series for small u avoids the cancellation of 1 - e^-u (1 + u)
    series = u * u * (0.5 - u / 3.0 + u * u / 8.0)
    exact = 1.0 - torch.exp(-u) * (1.0 + u)
    return tau * tau * torch.where(u < 1e-3, series, exact)


class SEDModel:
    """Observed-frame galaxy SEDs from a `~jwst_embed.simulation.sps.StellarPopulationLibrary`.

    Parameters
    ----------
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`
        The extracted library; its tensors are moved to ``device``.
    device : str or `torch.device`, optional
        Where the computation runs.
    exact : bool, optional
        Sum the exact templates instead of their rank-160 SVD factors (4x slower;
        differences ~1e-4 of the flux).

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.sps import load_library
    >>> model = SEDModel(load_library())  # doctest: +SKIP
    >>> params = sample_sed_parameters(torch.tensor([2.0]), torch.tensor([10.0]),
    ...                                torch.tensor([True]), torch.Generator().manual_seed(0))
    >>> out = model.observed(params)  # doctest: +SKIP
    >>> out["sed"].shape  # doctest: +SKIP
    torch.Size([1, 2310])
    """

    def __init__(
        self,
        library: StellarPopulationLibrary,
        device: str | torch.device = "cpu",
        exact: bool = False,
    ) -> None:
        self.exact = exact
        lib = library.to(device)
        self.library = lib
        self.device = torch.device(device)
        self.n_metallicity = lib.metallicity.numel()
        self.n_age = lib.age.numel()
        self.n_log_u = lib.log_u.numel()
        self.n_young = lib.n_young
        self.age_edges_gyr = lib.age_edges.double() / 1e9
        self.cosmology_redshift = lib.cosmology_redshift.double()
        self.age_of_universe_gyr = lib.age_of_universe.double()
        self.log_luminosity_area = lib.log_luminosity_area.double()
        # Python floats taken once here: reading a CUDA tensor per batch would sync
        self.igm_redshift_step = float(lib.igm_redshift[1] - lib.igm_redshift[0])
        self.igm_position_max = lib.igm_redshift.numel() - 1.001
        if exact:
            young, old = template_matrices(
                lib.stellar.cpu().numpy(), lib.nebular.cpu().numpy(), lib.wavelength.cpu().numpy()
            )
            self.young_matrix = torch.as_tensor(young, device=self.device)  # (Z*U*A_young, L)
            self.old_matrix = torch.as_tensor(old, device=self.device)  # (Z*A, L)
            self.young_factors = self.old_factors = None
        else:
            # rank-160 SVD factors stored in the library: ~1e-4 relative accuracy, 4x fewer FLOPs
            self.young_matrix = self.old_matrix = None
            self.young_factors = (lib.young_basis_coefficients, lib.young_basis)
            self.old_factors = (lib.old_basis_coefficients, lib.old_basis)
        self.surviving = lib.surviving_fraction.double()
        self.n_igm = lib.igm_transmission.shape[1]
        self.band_index = {name: i for i, name in enumerate(lib.band_names)}

    @staticmethod
    def _combine(coeff: torch.Tensor, matrix: torch.Tensor, factors) -> torch.Tensor:
        if factors is None:
            return coeff @ matrix
        # the truncated basis can ring slightly below zero where a template is ~0
        return ((coeff @ factors[0]) @ factors[1]).clamp_(min=0.0)

    @property
    def observed_wavelength(self) -> torch.Tensor:
        """(L_obs,) observed-frame pixel centres of `observed` output, um."""
        return self.library.observed_wavelength

    # -- star-formation history ------------------------------------------------
    def sfh_weights(self, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fraction of the formed mass in each age bin, and the 100-Myr mean SFR per unit formed mass.

        Parameters
        ----------
        params : dict of (B,) tensors
            See ``SED_PARAMETER_NAMES``.

        Returns
        -------
        weights : `torch.Tensor`
            (B, n_age) float64, rows sum to 1.
        sfr_per_formed : `torch.Tensor`
            (B,) float64, mean SFR over the last 100 Myr in 1/yr per solar mass formed.
        """
        z = params["redshift"].double()
        t_universe = _interp(z, self.cosmology_redshift, self.age_of_universe_gyr)
        start = params["sfh_age_gyr"].double().clamp(min=1e-3)
        start = torch.minimum(start, t_universe - 1e-4)
        tau = params["sfh_tau_gyr"].double().clamp(min=1e-3)
        quench = params["quench_age_gyr"].double().clamp(min=0.0)
        quench = torch.minimum(quench, 0.95 * start)
        burst_fraction = params["burst_fraction"].double().clamp(0.0, 1.0)
        burst_age = params["burst_age_gyr"].double().clamp(min=0.0)
        burst_age = torch.minimum(burst_age, t_universe - 1e-4)

        def formed_since_start(lookback: torch.Tensor) -> torch.Tensor:
            # mass formed (delayed-tau, unnormalised) at lookback times >= lookback
            s = (start[:, None] - torch.maximum(lookback, quench[:, None])).clamp(min=0.0)
            s = torch.minimum(s, start[:, None])
            return _delayed_cumulative(s, tau[:, None])

        edges = self.age_edges_gyr[None, :]
        cumulative = formed_since_start(edges)  # (B, n_age + 1), decreasing
        total = cumulative[:, :1].clamp(min=1e-300)
        delayed = (cumulative[:, :-1] - cumulative[:, 1:]) / total
        burst_bin = (
            torch.searchsorted(self.age_edges_gyr, burst_age.contiguous(), right=True) - 1
        ).clamp(0, self.n_age - 1)
        # a comparison, not F.one_hot, which validates its input with a host sync on CUDA
        burst = (burst_bin[:, None] == torch.arange(self.n_age, device=burst_bin.device)).double()
        weights = (1.0 - burst_fraction)[:, None] * delayed + burst_fraction[:, None] * burst

        recent = formed_since_start(torch.full_like(edges[:, :1], SFR_TIMESCALE_GYR))[:, 0]
        delayed_recent = (cumulative[:, 0] - recent) / total[:, 0]
        burst_recent = (burst_age < SFR_TIMESCALE_GYR).double()
        recent_fraction = (1.0 - burst_fraction) * delayed_recent + burst_fraction * burst_recent
        return weights, recent_fraction / (SFR_TIMESCALE_GYR * 1e9)

    # -- spectra ---------------------------------------------------------------
    def rest_frame(
        self, params: dict[str, torch.Tensor], scale: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Rest-frame L_nu with dust, nebular emission and IGM.

        Parameters
        ----------
        params : dict of (B,) tensors
            See ``SED_PARAMETER_NAMES``.
        scale : `torch.Tensor`, optional
            (B,) factor applied to the spectrum (folded into the age weights,
            which is cheaper than scaling the spectra); default 1, i.e. per solar
            mass formed.

        Returns
        -------
        out : dict
            ``"l_nu"`` (B, L) erg/s/Hz per solar mass formed times ``scale``;
            ``"surviving_fraction"`` (B,); ``"sfr_per_formed"`` (B,) 1/yr.
        """
        lib = self.library
        dtype = lib.stellar.dtype
        weights, sfr_per_formed = self.sfh_weights(params)
        metallicity = torch.pow(10.0, params["log_metallicity"].to(dtype))
        w_z = _hat_weights(metallicity, lib.metallicity)  # (B, Z)
        w_u = _hat_weights(params["log_u"].to(dtype), lib.log_u)  # (B, U)
        surviving = torch.einsum("bz,za,ba->b", w_z.double(), self.surviving, weights)
        if scale is None:
            scale = surviving.new_ones(surviving.shape)
        return self._spectrum(params, weights, w_z, w_u, scale, surviving, sfr_per_formed)

    def _spectrum(self, params, weights, w_z, w_u, scale, surviving, sfr_per_formed, agn=None):
        lib = self.library
        dtype = lib.stellar.dtype
        weights = (weights * scale[:, None]).to(dtype)
        young_fraction = lib.young_fraction
        w_old = weights * (1.0 - young_fraction)
        w_young = weights[:, : self.n_young] * young_fraction[: self.n_young]
        batch = weights.shape[0]
        old_coeff = (w_z[:, :, None] * w_old[:, None, :]).reshape(batch, -1)
        young_coeff = (
            w_z[:, :, None, None] * w_u[:, None, :, None] * w_young[:, None, None, :]
        ).reshape(batch, -1)
        old = self._combine(old_coeff, self.old_matrix, self.old_factors)
        young = self._combine(young_coeff, self.young_matrix, self.young_factors)

        av = params["dust_av"].to(dtype).clamp(min=0.0)
        av_young = av * (1.0 + params["dust_young_extra"].to(dtype).clamp(min=0.0))
        curve = lib.attenuation_curve * (-0.4 * math.log(10.0))
        intrinsic = old @ lib.absorbed_weight + young @ lib.absorbed_weight
        l_nu = old.mul_(torch.exp(av[:, None] * curve)).addcmul_(
            young, torch.exp(av_young[:, None] * curve)
        )
        # energy balance: what dust absorbs comes out in the Draine & Li template
        absorbed = intrinsic - l_nu @ lib.absorbed_weight
        l_nu.addmm_(absorbed[:, None], lib.dust_emission[None, :])
        if agn is not None:
            from .agn import agn_rest_frame

            l_nu = l_nu + agn_rest_frame(agn, lib, l_nu)

        # IGM: interpolate the transmission table in redshift (two rows per object)
        z = params["redshift"].to(dtype)
        position = (z / self.igm_redshift_step).clamp(0.0, self.igm_position_max)
        lower = position.floor().long()
        frac = (position - lower)[:, None]
        table = lib.igm_transmission
        l_nu[:, : self.n_igm] *= torch.lerp(table[lower], table[lower + 1], frac)
        return {"l_nu": l_nu, "surviving_fraction": surviving, "sfr_per_formed": sfr_per_formed}

    def redshift_to_observed(self, l_nu: torch.Tensor, redshift: torch.Tensor) -> torch.Tensor:
        """Shift (B, L) rest-frame samples onto the observed grid (B, L_obs), flux-conserving.

        Rest and observed grids share one log step, so a redshift is a shift by
        ``ln(1 + z) / dlnlambda`` pixels; for equal-width pixels the pixel-overlap
        average is exactly the linear interpolation between two neighbours, with
        the same fraction for every pixel of an object.
        """
        lib = self.library
        n_rest = l_nu.shape[1]
        n_obs = lib.observed_wavelength.numel()
        position = lib.observed_offset - torch.log1p(redshift.double()) / lib.log_wavelength_step
        lower = position.floor()
        frac = (position - lower).to(l_nu.dtype)[:, None]
        padded = torch.nn.functional.pad(l_nu, (1, 1))  # zeros outside the rest grid
        pixel = torch.arange(n_obs, device=l_nu.device)
        index0 = (pixel[None, :] + (lower.long() + 1)[:, None]).clamp(0, n_rest + 1)
        index1 = (index0 + 1).clamp(max=n_rest + 1)
        return torch.lerp(padded.gather(1, index0), padded.gather(1, index1), frac)

    def observed(
        self, params: dict[str, torch.Tensor], validate: bool = True, agn: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Observed-frame f_nu in nJy on `observed_wavelength`, with labels.

        Parameters
        ----------
        params : dict of (B,) tensors
            See ``SED_PARAMETER_NAMES``; ``log_mass`` is the surviving stellar mass.
        validate : bool, optional
            Check the inputs (finite, redshift within ``REDSHIFT_RANGE``). This costs
            one host synchronisation; switch it off in GPU hot loops.
        agn : dict of (B,) tensors, optional
            An active nucleus per object (``jwst_embed.simulation.agn``), added to the
            galaxy before the IGM.

        Returns
        -------
        out : dict of tensors
            ``"sed"`` (B, L_obs) nJy; ``"log_sfr"`` (B,) log10 Msun/yr averaged
            over 100 Myr (floored at -6); ``"log_mass"`` (B,) surviving;
            ``"log_mass_formed"`` (B,).

        Raises
        ------
        KeyError
            If a parameter is missing.
        ValueError
            If ``validate`` and a parameter is not finite or a redshift is out of range.
        """
        missing = [name for name in SED_PARAMETER_NAMES if name not in params]
        if missing:
            raise KeyError(
                f"SED parameters missing: {missing}; expected {list(SED_PARAMETER_NAMES)}"
            )
        if validate:
            _validate(params)
        lib = self.library
        dtype = lib.stellar.dtype
        weights, sfr_per_formed = self.sfh_weights(params)
        metallicity = torch.pow(10.0, params["log_metallicity"].to(dtype))
        w_z = _hat_weights(metallicity, lib.metallicity)
        w_u = _hat_weights(params["log_u"].to(dtype), lib.log_u)
        surviving = torch.einsum("bz,za,ba->b", w_z.double(), self.surviving, weights)

        z = params["redshift"].double()
        log_formed = params["log_mass"].double() - torch.log10(surviving)
        log_area = _interp(z, self.cosmology_redshift, self.log_luminosity_area)
        log_scale = log_formed + torch.log10(1.0 + z) + math.log10(_NJY_PER_CGS) - log_area
        rest = self._spectrum(
            params, weights, w_z, w_u, torch.pow(10.0, log_scale), surviving, sfr_per_formed, agn
        )
        sed = self.redshift_to_observed(rest["l_nu"], z)
        sfr = sfr_per_formed * torch.pow(10.0, log_formed)
        log_sfr = torch.log10(sfr.clamp(min=10.0**LOG_SFR_FLOOR))
        return {
            "sed": sed,
            "log_sfr": log_sfr.to(dtype),
            "log_mass": params["log_mass"].to(dtype),
            "log_mass_formed": log_formed.to(dtype),
        }

    def band_fluxes(self, observed_sed: torch.Tensor, bands) -> torch.Tensor:
        """Mean f_nu (photon-weighted) through NIRCam filters, (B, n_bands) nJy.

        Parameters
        ----------
        observed_sed : `torch.Tensor`
            (B, L_obs) nJy from `observed`.
        bands : sequence of str
            NIRCam band names, e.g. ``("F150W", "F444W")``.
        """
        return band_fluxes(observed_sed, bands, self.library)


def band_fluxes(
    observed_sed: torch.Tensor, bands, library: StellarPopulationLibrary
) -> torch.Tensor:
    """Mean f_nu (photon-weighted) of observed SEDs through NIRCam filters.

    Parameters
    ----------
    observed_sed : `torch.Tensor`
        (B, L_obs) nJy on ``library.observed_wavelength``.
    bands : sequence of str
        NIRCam band names.
    library : `~jwst_embed.simulation.sps.StellarPopulationLibrary`
        Holds the filter matrix (built from the astro-sedpy throughputs).

    Returns
    -------
    flux : `torch.Tensor`
        (B, n_bands) nJy.

    Raises
    ------
    ValueError
        If a band is not in the library.
    """
    names = [str(b).upper() for b in bands]
    unknown = [b for b in names if b not in library.band_names]
    if unknown:
        raise ValueError(f"unknown band(s) {unknown}; the library has {list(library.band_names)}")
    rows = torch.tensor(
        [library.band_names.index(b) for b in names], device=library.band_matrix.device
    )
    matrix = library.band_matrix.index_select(0, rows).to(observed_sed.device, observed_sed.dtype)
    return observed_sed @ matrix.T


def _validate(params: dict[str, torch.Tensor]) -> None:
    for name in SED_PARAMETER_NAMES:
        value = params[name]
        if not isinstance(value, torch.Tensor) or value.ndim != 1:
            raise ValueError(
                f"SED parameter {name!r} must be a 1-D tensor (B,), got {type(value).__name__}"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"SED parameter {name!r} has non-finite values")
    z = params["redshift"]
    low, high = REDSHIFT_RANGE
    if bool(((z < low) | (z > high)).any()):
        raise ValueError(
            f"redshift must lie within {low}-{high}; got values from {float(z.min()):.3g} to {float(z.max()):.3g}"
        )


def _uniform(generator: torch.Generator, n: int, low, high, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def sample_sed_parameters(
    redshift: torch.Tensor,
    log_mass: torch.Tensor,
    star_forming: torch.Tensor,
    generator: torch.Generator,
    dusty_fraction: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Draw SED parameters from simple priors given redshift, mass and activity.

    Star-forming galaxies (``star_forming`` True):

    - delayed-tau, ``sfh_tau_gyr`` log-uniform 0.1-5 Gyr, started a uniform
      5-95% of the age of the Universe ago (at least 10 Myr); not quenched;
    - a burst with probability 0.25: 1-20% of the mass, 1-300 Myr ago (log-uniform);
    - ``log_metallicity`` ~ N(-0.3 + 0.3 (log M - 10) - 0.05 z, 0.2), in [-2.3, 0.7];
    - ``log_u`` ~ N(-2.5 + 0.08 min(z, 10), 0.4), in [-4, -1];
    - ``dust_av`` exponential with mean 0.1-1.2 rising with mass
      (``0.25 + 0.45 (log M - 9)``) and falling with redshift ``/ (1 + 0.1 z)``,
      capped at 3, except for a fraction ``dusty_fraction`` of dusty galaxies at every
      redshift with ``dust_av`` uniform 1.5-4; ``dust_young_extra`` uniform 0-1.

    Quiescent galaxies:

    - quenched ``quench_age_gyr`` log-uniform 0.1-3 Gyr ago (at most half the age
      of the Universe), after forming for a further 0.2-100% of the remaining
      time; ``sfh_tau_gyr`` log-uniform 0.1-1 Gyr;
    - a burst (post-starburst) with probability 0.1: 5-30% of the mass, just
      before quenching;
    - ``log_metallicity`` ~ N(0.1 (log M - 10.5), 0.15); ``log_u`` ~ N(-3, 0.3);
      ``dust_av`` exponential with mean 0.15, capped at 1; ``dust_young_extra`` 0.5.

    Parameters
    ----------
    redshift, log_mass : `torch.Tensor`
        (B,) redshift and log10 surviving stellar mass.
    star_forming : `torch.Tensor`
        (B,) bool.
    generator : `torch.Generator`
        Source of randomness (on the same device as ``redshift``).
    dusty_fraction : float, optional
        Fraction of star-forming galaxies drawn as dusty (A_V 1.5-4) whatever their
        redshift and mass: JWST finds them at every redshift.

    Returns
    -------
    params : dict of (B,) float32 tensors
        Keys ``SED_PARAMETER_NAMES``.

    Examples
    --------
    >>> import torch
    >>> p = sample_sed_parameters(torch.tensor([1.0, 6.0]), torch.tensor([10.5, 9.0]),
    ...                           torch.tensor([False, True]), torch.Generator().manual_seed(1))
    >>> sorted(p) == sorted(SED_PARAMETER_NAMES)
    True
    """
    device = redshift.device
    n = redshift.numel()
    z = redshift.float()
    mass = log_mass.float()
    sf = star_forming.bool()
    g = generator
    t_universe = age_of_universe(z)
    log_uniform = lambda lo, hi: torch.exp(_uniform(g, n, math.log(lo), math.log(hi), device))  # noqa: E731
    normal = lambda: torch.randn(n, generator=g, device=device)  # noqa: E731
    exponential = lambda: -torch.log1p(-torch.rand(n, generator=g, device=device))  # noqa: E731

    # star-forming draws
    sf_age = torch.clamp(_uniform(g, n, 0.05, 0.95, device) * t_universe, min=0.01)
    sf_tau = log_uniform(0.1, 5.0)
    sf_has_burst = torch.rand(n, generator=g, device=device) < 0.25
    sf_burst_fraction = torch.where(
        sf_has_burst, _uniform(g, n, 0.01, 0.2, device), torch.zeros_like(z)
    )
    sf_burst_age = torch.minimum(log_uniform(0.001, 0.3), sf_age)
    sf_metal = (-0.3 + 0.3 * (mass - 10.0) - 0.05 * z + 0.2 * normal()).clamp(-2.3, 0.7)
    sf_log_u = (-2.5 + 0.08 * z.clamp(max=10.0) + 0.4 * normal()).clamp(-4.0, -1.0)
    av_mean = (0.25 + 0.45 * (mass - 9.0)).clamp(0.1, 1.2) / (1.0 + 0.1 * z)
    sf_av = (av_mean * exponential()).clamp(max=3.0)
    dusty = torch.rand(n, generator=g, device=device) < dusty_fraction
    sf_av = torch.where(dusty, _uniform(g, n, 1.5, 4.0, device), sf_av)
    sf_extra = torch.rand(n, generator=g, device=device)

    # quiescent draws
    q_quench = torch.minimum(log_uniform(0.1, 3.0), 0.5 * t_universe)
    q_age = q_quench + _uniform(g, n, 0.002, 1.0, device) * (t_universe - q_quench)
    q_tau = log_uniform(0.1, 1.0)
    q_has_burst = torch.rand(n, generator=g, device=device) < 0.1
    q_burst_fraction = torch.where(
        q_has_burst, _uniform(g, n, 0.05, 0.3, device), torch.zeros_like(z)
    )
    q_burst_age = torch.minimum(q_quench * _uniform(g, n, 1.0, 1.2, device), q_age)
    q_metal = (0.1 * (mass - 10.5) + 0.15 * normal()).clamp(-2.3, 0.7)
    q_log_u = (-3.0 + 0.3 * normal()).clamp(-4.0, -1.0)
    q_av = (0.15 * exponential()).clamp(max=1.0)

    pick = lambda a, b: torch.where(sf, a, b)  # noqa: E731
    return {
        "redshift": z,
        "log_mass": mass,
        "sfh_tau_gyr": pick(sf_tau, q_tau),
        "sfh_age_gyr": pick(sf_age, q_age),
        "burst_fraction": pick(sf_burst_fraction, q_burst_fraction),
        "burst_age_gyr": pick(sf_burst_age, q_burst_age),
        "quench_age_gyr": pick(torch.zeros_like(z), q_quench),
        "log_metallicity": pick(sf_metal, q_metal),
        "log_u": pick(sf_log_u, q_log_u),
        "dust_av": pick(sf_av, q_av),
        "dust_young_extra": pick(sf_extra, torch.full_like(z, 0.5)),
    }
