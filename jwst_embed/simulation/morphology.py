"""Morphology priors of the mock survey: class mix by redshift, structural parameters by class.

`morphology_fractions` gives the probability of each class in ``MORPHOLOGY_CLASSES`` as a
function of redshift and star-formation activity; `sample_structure` draws the structural
parameters that `~jwst_embed.simulation.images.ImageRenderer` renders, given the class,
stellar mass and redshift.

Sizes follow the size-mass relations of van der Wel et al. (2014, ApJ 788, 28; their
Table 1 and Fig. 8), as semi-major-axis half-light radii:

* late types: ``log10(R_e / kpc) = 0.86 + 0.22 log10(M / 5e10) - 0.75 log10((1 + z) / 1.25)``,
  scatter 0.17 dex (their normalisation 10^0.86 kpc at z = 0.25 with R_e ~ (1 + z)^-0.75
  reproduces their z = 0.25-2.75 bins to 0.03 dex);
* early types: ``0.60 + 0.75 log10(M / 5e10) - 1.48 log10((1 + z) / 1.25)`` above
  2e10 Msun, and a slope of 0.22 below it (the early-type relation flattens at low
  mass, their Fig. 5), scatter 0.15 dex.

Extrapolated to z ~ 10 and 10^8 Msun this gives ~0.3 kpc, as JWST measures
(e.g. Ono et al. 2023). Angular sizes use the Planck18 angular-diameter distance
(astropy), tabulated once on a redshift grid and interpolated in torch; radii are
clipped to 0.005"-2".

The class mix follows the visual classifications of CEERS (Kartaltepe et al. 2023,
ApJL 946, L15; Ferreira et al. 2023): about 60% of galaxies are disks at z ~ 3 and about
30% at z ~ 9, with irregular/clumpy and compact spheroidal shapes taking over at high
redshift; mergers rise from ~6% to ~15%; ~4-6% are unresolved (compact or AGN-like).
Quiescent galaxies are mostly spheroids and bulge+disk systems.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..classes import MORPHOLOGY_CLASSES

__all__ = [
    "MORPHOLOGY_CLASSES",
    "morphology_fractions",
    "effective_radius_kpc",
    "kpc_per_arcsec",
    "sample_structure",
]

# The classes (the integer label of a class is its index) are the package's one list, which the
# model's morphology head predicts: `jwst_embed.classes.MORPHOLOGY_CLASSES`.

# Class probabilities at the redshift nodes (rows: spheroid, disk, bulge+disk, clumpy, merger,
# point source); linear in z between nodes, constant outside.
_Z_NODES = (0.2, 1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 12.0, 15.0)
_STAR_FORMING_MIX = (
    (0.05, 0.06, 0.07, 0.08, 0.12, 0.16, 0.20, 0.22, 0.22),
    (0.55, 0.58, 0.60, 0.60, 0.50, 0.40, 0.30, 0.27, 0.25),
    (0.22, 0.16, 0.10, 0.07, 0.05, 0.03, 0.02, 0.02, 0.02),
    (0.08, 0.10, 0.12, 0.13, 0.18, 0.23, 0.28, 0.29, 0.30),
    (0.06, 0.06, 0.07, 0.08, 0.10, 0.12, 0.14, 0.14, 0.15),
    (0.04, 0.04, 0.04, 0.04, 0.05, 0.06, 0.06, 0.06, 0.06),
)
_QUIESCENT_MIX = (
    (0.55, 0.56, 0.58, 0.60, 0.62, 0.62, 0.62, 0.62, 0.62),
    (0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08),
    (0.30, 0.28, 0.25, 0.22, 0.18, 0.16, 0.16, 0.16, 0.16),
    (0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01),
    (0.03, 0.04, 0.05, 0.06, 0.07, 0.09, 0.10, 0.10, 0.10),
    (0.03, 0.03, 0.03, 0.03, 0.04, 0.04, 0.03, 0.03, 0.03),
)

_LOG_PIVOT_MASS = math.log10(5e10)
_RE_MIN_ARCSEC, _RE_MAX_ARCSEC = 0.005, 2.0


def _interp(x: torch.Tensor, nodes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of values (..., n_nodes) at x (B,), clamped at the ends."""
    x = x.clamp(float(nodes[0]), float(nodes[-1]))
    upper = torch.searchsorted(nodes, x.contiguous()).clamp(1, nodes.numel() - 1)
    lower = upper - 1
    weight = (x - nodes[lower]) / (nodes[upper] - nodes[lower])
    return values[..., lower] * (1 - weight) + values[..., upper] * weight


def morphology_fractions(redshift: torch.Tensor, star_forming: torch.Tensor) -> torch.Tensor:
    """Probability of each morphology class given redshift and star-formation activity.

    Parameters
    ----------
    redshift : `torch.Tensor`
        (B,) redshifts (values outside 0.2-15 take the end values).
    star_forming : `torch.Tensor`
        (B,) bool (True = star forming) or float probability of being star forming.

    Returns
    -------
    `torch.Tensor`
        (B, 6) float32 probabilities over ``MORPHOLOGY_CLASSES``, rows summing to 1.

    Raises
    ------
    ValueError
        Shapes differ, or non-finite or negative redshifts.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.morphology import morphology_fractions
    >>> p = morphology_fractions(torch.tensor([3.0, 9.0]), torch.tensor([True, True]))
    >>> p[:, 1]   # disks
    tensor([0.6000, 0.3000])
    """
    redshift = torch.as_tensor(redshift, dtype=torch.float32)
    star_forming = torch.as_tensor(star_forming, device=redshift.device).to(torch.float32)
    if redshift.ndim != 1 or star_forming.shape != redshift.shape:
        raise ValueError(f"redshift and star_forming must be (B,) tensors of one shape, got "
                         f"{tuple(redshift.shape)} and {tuple(star_forming.shape)}")
    if not bool(torch.isfinite(redshift).all()) or bool((redshift < 0).any()):
        raise ValueError("redshift must be finite and >= 0")
    nodes = torch.tensor(_Z_NODES, device=redshift.device)
    sf = _interp(redshift, nodes, torch.tensor(_STAR_FORMING_MIX, device=redshift.device))  # (6, B)
    quiescent = _interp(redshift, nodes, torch.tensor(_QUIESCENT_MIX, device=redshift.device))
    mix = (star_forming * sf + (1 - star_forming) * quiescent).T
    return mix / mix.sum(dim=1, keepdim=True)


def effective_radius_kpc(log_mass: torch.Tensor, redshift: torch.Tensor, early_type: torch.Tensor | bool) -> torch.Tensor:
    """Median semi-major-axis half-light radius (kpc) from the van der Wel et al. (2014) relations.

    Parameters
    ----------
    log_mass : `torch.Tensor`
        (B,) log10 stellar mass in Msun.
    redshift : `torch.Tensor`
        (B,) redshift.
    early_type : `torch.Tensor` or bool
        (B,) True for the early-type relation, False for the late-type one.

    Returns
    -------
    `torch.Tensor`
        (B,) radius in kpc (no scatter).

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.morphology import effective_radius_kpc
    >>> effective_radius_kpc(torch.tensor([math.log10(5e10)]), torch.tensor([0.25]), False)
    tensor([7.2444])
    """
    log_mass = torch.as_tensor(log_mass, dtype=torch.float32)
    redshift = torch.as_tensor(redshift, dtype=torch.float32, device=log_mass.device)
    early = torch.as_tensor(early_type, device=log_mass.device).expand(log_mass.shape)
    dm = log_mass - _LOG_PIVOT_MASS
    evolution = torch.log10((1 + redshift) / 1.25)
    late = 0.86 + 0.22 * dm - 0.75 * evolution
    # Early types: slope 0.75 above 2e10 Msun (dm = -0.4), 0.22 below.
    early_slope = torch.where(dm > -0.4, 0.75 * dm, 0.75 * -0.4 + 0.22 * (dm + 0.4))
    early_log = 0.60 + early_slope - 1.48 * evolution
    return torch.pow(10.0, torch.where(early, early_log, late))


@functools.lru_cache(maxsize=1)
def _distance_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    redshift = np.linspace(0.0, 25.0, 2501)
    redshift[0] = 1e-4
    kpc_per_arcsec = Planck18.angular_diameter_distance(redshift).to_value("kpc") * (math.pi / 180 / 3600)
    return redshift, kpc_per_arcsec


def kpc_per_arcsec(redshift: torch.Tensor) -> torch.Tensor:
    """Proper kpc per arcsec at ``redshift`` (Planck18), interpolated from a table (0-25).

    Parameters
    ----------
    redshift : `~torch.Tensor` or array-like
        Redshifts (any shape), within 0-25.

    Returns
    -------
    scale : `~torch.Tensor`
        Proper kpc per arcsec, float32, same shape and device as ``redshift``.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.morphology import kpc_per_arcsec
    >>> kpc_per_arcsec(torch.tensor([2.0])).round(decimals=2)
    tensor([8.5800])
    """
    redshift = torch.as_tensor(redshift, dtype=torch.float32)
    z_grid, scale = _distance_table()
    return _interp(redshift, torch.as_tensor(z_grid, dtype=torch.float32, device=redshift.device),
                   torch.as_tensor(scale, dtype=torch.float32, device=redshift.device))


def sample_structure(
    morphology: torch.Tensor,
    log_mass: torch.Tensor,
    redshift: torch.Tensor,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Draw structural parameters for objects of given class, mass and redshift.

    Per class (indices of ``MORPHOLOGY_CLASSES``):

    * 0 spheroid: one Sersic, n ~ U(3, 6), early-type size, q ~ U(0.5, 1).
    * 1 disk: one Sersic, n ~ U(0.7, 1.5), late-type size, q of a thick disk
      (intrinsic thickness 0.25) at a random inclination.
    * 2 bulge+disk: bulge-to-total ~ U(0.15, 0.6), bulge n ~ U(2, 4), r_e ~ U(0.15, 0.5)
      of the disk's, q ~ U(0.6, 1); disk n ~ U(0.8, 1.2), late-type size.
    * 3 clumpy: a n ~ U(0.5, 1) disk with 3-10 Gaussian clumps (sigma 5-15% of r_e, at
      least 0.008") carrying 15-50% of the light; q ~ U(0.3, 1).
    * 4 merger: a n ~ U(0.7, 4) primary and a companion of flux ratio 0.2-1 (log-uniform),
      n ~ U(0.7, 4), each with the late-type size of its share of the mass, at a projected
      separation of 3-15 kpc (0.15"-1").
    * 5 point source: unresolved (``point_fraction = 1``).

    Every class gets position angles ~ U(0, pi) and centroid offsets ~ N(0, 0.02") per axis.

    Parameters
    ----------
    morphology : `torch.LongTensor`
        (B,) class indices 0-5.
    log_mass : `torch.Tensor`
        (B,) log10 stellar mass (Msun).
    redshift : `torch.Tensor`
        (B,) redshift, 0 < z <= 25.
    generator : `torch.Generator`, optional
        Random source (any device); the same seed gives the same structure.

    Returns
    -------
    dict of str to `torch.Tensor`
        The keys of ``jwst_embed.simulation.images.STRUCTURE_KEYS`` plus ``morphology``,
        (B,) tensors on the device of ``morphology`` (float32; ``morphology`` and
        ``n_clumps`` long). Every value is valid even where the component is unused.

    Raises
    ------
    ValueError
        Bad shapes, class indices out of range, non-finite mass or redshift out of range.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.simulation.morphology import sample_structure
    >>> s = sample_structure(torch.tensor([0, 1, 5]), torch.tensor([10.5, 9.0, 9.0]),
    ...                      torch.tensor([1.0, 3.0, 6.0]), torch.Generator().manual_seed(0))
    >>> s["bulge_fraction"].tolist(), s["point_fraction"].tolist()
    ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])
    """
    morphology = torch.as_tensor(morphology)
    device = morphology.device
    log_mass = torch.as_tensor(log_mass, dtype=torch.float32, device=device)
    redshift = torch.as_tensor(redshift, dtype=torch.float32, device=device)
    if morphology.ndim != 1 or log_mass.shape != morphology.shape or redshift.shape != morphology.shape:
        raise ValueError(f"morphology, log_mass and redshift must be (B,) tensors of one shape, got "
                         f"{tuple(morphology.shape)}, {tuple(log_mass.shape)}, {tuple(redshift.shape)}")
    if morphology.dtype.is_floating_point or morphology.dtype == torch.bool:
        raise TypeError(f"morphology must be an integer (long) tensor of class indices, got {morphology.dtype}")
    if morphology.numel() and (int(morphology.min()) < 0 or int(morphology.max()) >= len(MORPHOLOGY_CLASSES)):
        raise ValueError(f"morphology must be class indices 0-{len(MORPHOLOGY_CLASSES) - 1} {MORPHOLOGY_CLASSES}")
    if not bool(torch.isfinite(log_mass).all()):
        raise ValueError("log_mass has non-finite values")
    if not bool(torch.isfinite(redshift).all()) or bool((redshift <= 0).any()) or bool((redshift > 25).any()):
        raise ValueError("redshift must lie in (0, 25]")
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    n = morphology.numel()
    morphology = morphology.long()

    def uniform(low: float, high: float) -> torch.Tensor:
        draw = torch.rand(n, generator=generator, device=generator.device).to(device)
        return low + (high - low) * draw

    def normal(sigma: float) -> torch.Tensor:
        return sigma * torch.randn(n, generator=generator, device=generator.device).to(device)

    spheroid, disk, bulge_disk, clumpy, merger, point = (morphology == i for i in range(6))
    scale = kpc_per_arcsec(redshift)

    def to_arcsec(radius_kpc: torch.Tensor) -> torch.Tensor:
        return (radius_kpc / scale).clamp(_RE_MIN_ARCSEC, _RE_MAX_ARCSEC)

    zeros, ones = torch.zeros(n, device=device), torch.ones(n, device=device)
    # Mergers: split the mass; the companion has flux (and mass) ratio r to the primary.
    flux_ratio = torch.where(merger, torch.pow(10.0, uniform(math.log10(0.2), 0.0)), zeros)
    primary_log_mass = log_mass - torch.log10(1 + flux_ratio)
    companion_log_mass = primary_log_mass + torch.log10(flux_ratio.clamp_min(1e-3))

    late_re = to_arcsec(effective_radius_kpc(primary_log_mass, redshift, False) * 10 ** normal(0.17))
    early_re = to_arcsec(effective_radius_kpc(log_mass, redshift, True) * 10 ** normal(0.15))
    cos_inclination = uniform(0.0, 1.0)
    thick_disk_q = torch.sqrt(cos_inclination**2 * (1 - 0.25**2) + 0.25**2)

    bulge_fraction = torch.where(spheroid, ones, torch.where(bulge_disk, uniform(0.15, 0.6), zeros))
    bulge_n = torch.where(spheroid, uniform(3.0, 6.0), uniform(2.0, 4.0))
    bulge_re = torch.where(spheroid, early_re, (late_re * uniform(0.15, 0.5)).clamp_min(_RE_MIN_ARCSEC))
    bulge_q = torch.where(spheroid, uniform(0.5, 1.0), uniform(0.6, 1.0))
    disk_n = torch.where(bulge_disk, uniform(0.8, 1.2), uniform(0.7, 1.5))
    disk_n = torch.where(clumpy, uniform(0.5, 1.0), torch.where(merger, uniform(0.7, 4.0), disk_n))
    disk_q = torch.where(clumpy | merger, uniform(0.3, 1.0), thick_disk_q)

    n_clumps = torch.where(clumpy, torch.randint(3, 11, (n,), generator=generator, device=generator.device).to(device), 0)
    clump_fraction = torch.where(clumpy, uniform(0.15, 0.5), zeros)
    clump_sigma = (late_re * uniform(0.05, 0.15)).clamp_min(0.008)

    separation = (uniform(3.0, 15.0) / scale).clamp(0.15, 1.0)
    companion_re = to_arcsec(effective_radius_kpc(companion_log_mass, redshift, False) * 10 ** normal(0.17))

    return {
        "morphology": morphology,
        "bulge_fraction": bulge_fraction,
        "bulge_n": bulge_n,
        "bulge_re_arcsec": bulge_re,
        "bulge_q": bulge_q,
        "disk_n": disk_n,
        "disk_re_arcsec": late_re,
        "disk_q": disk_q,
        "position_angle": uniform(0.0, math.pi),
        "offset_x_arcsec": normal(0.02),
        "offset_y_arcsec": normal(0.02),
        "clump_fraction": clump_fraction,
        "n_clumps": n_clumps.long(),
        "clump_sigma_arcsec": clump_sigma,
        "companion_flux_ratio": flux_ratio,
        "companion_sep_arcsec": separation,
        "companion_angle": uniform(0.0, 2 * math.pi),
        "companion_n": uniform(0.7, 4.0),
        "companion_re_arcsec": companion_re,
        "companion_q": uniform(0.3, 1.0),
        "companion_position_angle": uniform(0.0, math.pi),
        "point_fraction": point.float(),
    }
