"""Joint redshift: a network's p(z) times the spectral likelihood of physical templates.

The network (`jwst_embed.MultimodalEmbedder`) reads every input it is given and knows what
galaxies are like; the template fit (`~jwst_embed.redshift.TemplateFitter`) knows where the
lines and breaks of a physical spectrum must fall. Each fails on different objects: the
network on populations it has not seen, the templates where a feature is mistaken for another
(a broad H-alpha for [OIII]). The joint posterior is

    p(z | data) ~ max(p_net(z), floor * max p_net) * exp(-chi2(z) / (2 s))

with ``s = max(1, chi2_min / dof)`` (a template mismatch widens the likelihood instead of
making it spuriously sharp). The floor keeps a wrong network from vetoing the data: wherever
the templates fit better by ``Delta chi2 / s > 2 ln(1 / floor)`` (18.4 for the default 1e-4),
the data win.

It is evaluated where it matters, which is what makes it cheap:

1. the *window*: every trial redshift of the fitter's grid where ``p_net`` exceeds
   ``support`` times its peak, widened by two grid steps and then followed outwards, four steps
   at a time, wherever the joint posterior at an edge is still above 1% of its peak, with all
   templates (a window wider than 8 trial redshifts is fitted at every 4th and then around
   its peak, with chi2 interpolated between, as the full fit does);
2. the *scan*: redshifts ``scan_spacing`` apart in ln(1 + z), and the window, with a few broad
   templates (`SCAN_TEMPLATES`) on the spectrum binned 8 to 1 (64 pixels): at that resolution
   chi2 varies slowly with z, so a sparse scan does not step over a minimum, and it costs little;
   it finds where the continuum, the breaks and the strong (blended) lines would put the
   redshift. A scan point gets its non-negative fit only where the fit with coefficients of
   either sign (one linear solve, a lower bound of chi2) beats the window's best scan fit;
   elsewhere it can neither rescue nor set the scale below, so the bound stands in for it
   (~97% of the scan points of real spectra; the result is the same);
3. the *rescue*: where the floor-weighted scan beats the scan at the window (like for like:
   same templates, same resolution), the full grid within two scan spacings of that scan point
   is fitted with all templates at full resolution too and joins the posterior.

The likelihood's scale ``s`` comes from the best fit found anywhere (window or scan), so that a
wrong network, whose window fits badly, cannot inflate ``s`` and so hide a better fit.

Outside the evaluated redshifts the posterior is zero (it had fallen below 1% of its peak at
the window's edges, and the scan found nothing better).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

__all__ = ["SCAN_TEMPLATES", "Z_FLAGS", "JointRedshift", "joint_redshift", "network_density_on_grid", "quality_flags"]

#: Templates of the scan for better fits outside the network's window: young, mature, dusty and
#: old galaxies, a reddened nucleus with broad lines, strong [OIII] and hydrogen lines.
SCAN_TEMPLATES = (
    "sf_10myr_lowz", "sf_200myr", "sf_300myr_av3", "ssp_1gyr", "ssp_3gyr",
    "agn_av2", "broad_balmer_av2", "oiii", "hydrogen",
)  # fmt: skip

#: Bits of the ``z_flag`` column: a user keeps ``z_flag == 0`` for clean redshifts.
Z_FLAGS: dict[str, int] = {
    "disagree": 1,  # network and templates disagree: either prefers a redshift > 0.05 (1 + z) away
    "multimodal": 2,  # > 10% of p(z) lies > 0.05 (1 + z) away from z
    "poor_fit": 4,  # chi2 / dof > 5 at z: no template combination describes the spectrum
    "few_pixels": 8,  # fewer than 100 usable pixels in the spectrum
    "network_only": 16,  # no usable spectrum: p(z) from the network alone
    "bad_input": 32,  # an input failed `jwst_embed.input_checks` (see the input_flag column)
}

#: Relative redshift distance (in 1 + z) beyond which two solutions count as different.
_DISTINCT = 0.05
_MULTIMODAL_MASS = 0.1
_POOR_FIT_CHI2_DOF = 5.0
_FEW_PIXELS = 100
# How the window follows the posterior: up to _MAX_EXTENSIONS times, _EXTENSION grid points at a
# time, while the posterior at an edge is above exp(-_EDGE_DROP) (1%) of its peak.
_MAX_EXTENSIONS = 6
_EXTENSION = 4
# Model pixels averaged into one pixel of the scan (512 -> 64: chi2 then varies slowly with z).
_SCAN_BINNING = 8
_EDGE_DROP = np.log(100.0)
# A region (window, rescue) wider than _DENSE trial redshifts is fitted first at redshifts
# _THIN_SPACING apart in ln(1 + z) (every 4th of the default grid: the full fit's own coarse
# step; a coarser grid is not thinned) and at its ends, then at the redshifts within
# _REFINE of its posterior peak until the peak has fitted neighbours on both sides; chi2
# between fitted redshifts is interpolated linearly, as the full fit does. On 600 validation
# mocks (F150W + PRISM, another seed than the seed table's) this fits 12.5 instead of 30.5
# redshifts per object, at the same sigma_NMAD (0.00057 vs 0.00056) and outliers (8.0% vs 9.2%).
_DENSE = 8
_THIN_SPACING = 0.014
_REFINE = 1


def quality_flags(pz, z_grid, z, chi2_dof=None, n_pixels=None) -> np.ndarray:
    """The ``multimodal``, ``poor_fit`` and ``few_pixels`` bits of `Z_FLAGS`, for any p(z).

    Parameters
    ----------
    pz : array-like
        (N, n_z) probability per trial redshift (rows sum to 1).
    z_grid : array-like
        (n_z,) trial redshifts.
    z : array-like
        (N,) the redshift each row reports.
    chi2_dof, n_pixels : array-like, optional
        (N,) reduced chi2 of the best template fit and usable pixels; without them (a network's
        p(z)) only ``multimodal`` is judged.

    Returns
    -------
    flags : `numpy.ndarray`
        (N,) int64 bits.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.array([1.0, 1.01, 3.0])
    >>> quality_flags([[0.5, 0.2, 0.3], [0.6, 0.4, 0.0]], grid, [1.0, 1.0], [1.2, 7.0], [300, 50]).tolist()
    [2, 12]
    """
    pz = np.atleast_2d(np.asarray(pz, dtype=np.float64))
    z_grid = np.asarray(z_grid, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    distance = np.abs(z_grid[None, :] - z[:, None]) / (1.0 + z[:, None])
    flag = np.where((pz * (distance > _DISTINCT)).sum(axis=1) > _MULTIMODAL_MASS, Z_FLAGS["multimodal"], 0)
    if chi2_dof is not None:
        flag |= np.where(np.asarray(chi2_dof) > _POOR_FIT_CHI2_DOF, Z_FLAGS["poor_fit"], 0)
    if n_pixels is not None:
        flag |= np.where(np.asarray(n_pixels) < _FEW_PIXELS, Z_FLAGS["few_pixels"], 0)
    return flag.astype(np.int64)


def _interpolate_rows(chi2: np.ndarray, fitted: np.ndarray, region: np.ndarray) -> None:
    """Fill ``chi2`` in place at ``region & ~fitted``, linearly in grid index between fitted points."""
    index = np.arange(chi2.shape[1])
    for row in np.flatnonzero((region & ~fitted).any(axis=1)):
        known = fitted[row] & np.isfinite(chi2[row])
        if known.any():
            gap = region[row] & ~fitted[row]
            chi2[row, gap] = np.interp(index[gap], index[known], chi2[row, known])


def _fit_region(fitter, flux, weight, region, chi2, fitted, log_prior) -> None:
    """Fit all templates over ``region`` (N, n_z), thinning wide regions; updates in place.

    ``chi2`` gets the fits (and interpolated values between them) and ``fitted`` marks the
    redshifts actually fitted.
    """
    region = region & ~fitted
    if not region.any():
        return
    n_z = region.shape[1]
    width = region.sum(axis=1)
    first = np.argmax(region, axis=1)
    last = n_z - 1 - np.argmax(region[:, ::-1], axis=1)
    index = np.arange(n_z)
    thin = max(1, int(round(_THIN_SPACING / np.median(np.diff(np.log1p(fitter.z_grid))))))
    thinned = region & ((index[None, :] - first[:, None]) % thin == 0)
    thinned[np.arange(region.shape[0]), last] = True
    todo = np.where((width > _DENSE)[:, None] & (thin > 1), thinned, region)
    for _ in range(4):  # thinned rows: fit around the posterior's peak until it is surrounded
        todo &= region & ~fitted
        if not todo.any():
            break
        chi2[todo] = fitter._weighted_chi2_at(flux, weight, todo)[todo]
        fitted |= todo
        _interpolate_rows(chi2, fitted, region)
        peak = np.argmax(np.where(region, -0.5 * chi2 + log_prior, -np.inf), axis=1)
        todo = np.abs(index[None, :] - peak[:, None]) <= _REFINE
        todo[width <= _DENSE] = False


# The scan's fitter (a subset of the templates, binned) made once per fitter.
_SCANNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scanner(fitter):
    scanner = _SCANNERS.get(fitter)
    if scanner is None:
        names = [name for name in SCAN_TEMPLATES if name in fitter.template_names]
        scanner = (fitter.subset(names) if len(names) >= 3 else fitter).binned(_SCAN_BINNING)
        _SCANNERS[fitter] = scanner
    return scanner


def _widen(marked: np.ndarray, steps: int) -> np.ndarray:
    """``marked`` (N, n_z) with every True spread ``steps`` grid points to each side."""
    out = marked.copy()
    for shift in range(1, steps + 1):
        out[:, shift:] |= marked[:, :-shift]
        out[:, :-shift] |= marked[:, shift:]
    return out


@dataclass
class JointRedshift:
    """Per-object results of `joint_redshift`, all arrays of length N (``pz``: (N, n_z)).

    Attributes
    ----------
    z, z_lo, z_hi : `numpy.ndarray`
        Most probable redshift (refined below the grid step) and the 16th and 84th
        percentiles of the joint p(z).
    pz : `numpy.ndarray`
        Joint probability per trial redshift of ``z_grid`` (rows sum to 1).
    z_grid : `numpy.ndarray`
        The fitter's trial redshifts.
    chi2_dof : `numpy.ndarray`
        chi2 / (n_pixels - 1) of the best template combination at ``z``.
    n_pixels : `numpy.ndarray`
        Usable spectral pixels.
    z_flag : `numpy.ndarray`
        Bitwise OR of `Z_FLAGS`.
    n_evaluated : `numpy.ndarray`
        Trial redshifts at which all templates were fitted, plus the scan's fits counted in
        units of all templates (a measure of the cost).
    """

    z: np.ndarray
    z_lo: np.ndarray
    z_hi: np.ndarray
    pz: np.ndarray
    z_grid: np.ndarray
    chi2_dof: np.ndarray
    n_pixels: np.ndarray
    z_flag: np.ndarray
    n_evaluated: np.ndarray


def network_density_on_grid(pdf, log1pz_edges, z_grid) -> np.ndarray:
    """A network's binned p(z) as a density in ln(1 + z) at the fitter's trial redshifts.

    Parameters
    ----------
    pdf : array-like
        (N, n_bins) probability per bin (rows sum to 1).
    log1pz_edges : array-like
        (n_bins + 1,) bin edges in ln(1 + z).
    z_grid : array-like
        (n_z,) trial redshifts.

    Returns
    -------
    density : `numpy.ndarray`
        (N, n_z) probability per unit ln(1 + z), linear between bin centres, 0 beyond the
        network's last bin edge.

    Examples
    --------
    >>> import numpy as np
    >>> edges = np.linspace(0.0, np.log1p(4.0), 5)
    >>> density = network_density_on_grid(np.full((1, 4), 0.25), edges, [0.5, 2.0, 9.0])
    >>> np.round(density, 3)
    array([[0.621, 0.621, 0.   ]])
    """
    pdf = np.atleast_2d(np.asarray(pdf, dtype=np.float64))
    edges = np.asarray(log1pz_edges, dtype=np.float64)
    if edges.shape != (pdf.shape[1] + 1,):
        raise ValueError(f"log1pz_edges must have n_bins + 1 = {pdf.shape[1] + 1} values, got {edges.shape}")
    x = np.log1p(np.asarray(z_grid, dtype=np.float64))
    centres = 0.5 * (edges[1:] + edges[:-1])
    density = pdf / np.diff(edges)[None, :]
    out = np.stack([np.interp(x, centres, row) for row in density])
    out[:, (x < edges[0]) | (x > edges[-1])] = 0.0
    return out


def _refined_mode(x: np.ndarray, log_post: np.ndarray, best: int) -> float:
    """Vertex of the parabola through the best point and its evaluated neighbours (in ln(1+z))."""
    if best == 0 or best == x.size - 1:
        return float(x[best])
    y0, y1, y2 = log_post[best - 1], log_post[best], log_post[best + 1]
    if not (np.isfinite(y0) and np.isfinite(y2)):
        return float(x[best])
    x0, x1, x2 = x[best - 1], x[best], x[best + 1]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
    if not a < 0:
        return float(x1)
    return float(np.clip(-b / (2 * a), x0, x2))


def _credible_interval(x: np.ndarray, pz: np.ndarray, x_mode: float) -> tuple[float, float]:
    """16th and 84th percentiles in ln(1 + z) of a posterior given at grid points ``x``.

    Each point's probability is spread evenly over its cell (half-way to its neighbours), so
    that an interval is centred on the points that carry the probability instead of shifted by
    half a cell. A posterior narrower than one cell therefore gets an interval of about
    +-1/3 cell (0.0012 in ln(1 + z) on the default grid): the grid's resolution, which is also
    about as well as template mismatch and wavelength calibration let a real PRISM redshift be
    known (the Laplace width of such a sharp peak would claim far more).
    """
    edges = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]])
    cdf = np.concatenate([[0.0], np.cumsum(pz)])
    lo, hi = np.interp(0.16, cdf, edges), np.interp(0.84, cdf, edges)
    return min(lo, x_mode), max(hi, x_mode)


def joint_redshift(
    network_pdf,
    network_log1pz_edges,
    flux_njy,
    ivar,
    mask,
    fitter,
    floor: float = 1e-4,
    support: float = 0.5,
    scan_spacing: float = 0.03,
) -> JointRedshift:
    """Joint p(z) of a network's redshift PDF and a template fit of each spectrum.

    Parameters
    ----------
    network_pdf : array-like
        (N, n_bins) the network's probability per bin (``RedshiftHead`` output).
    network_log1pz_edges : array-like
        (n_bins + 1,) its bin edges in ln(1 + z).
    flux_njy, ivar, mask : array-like
        (N, L) spectra on the fitter's model grid, as for ``TemplateFitter.fit``.
    fitter : `~jwst_embed.redshift.TemplateFitter`
        The template set and trial redshifts.
    floor : float, optional
        Lowest network prior relative to its peak (0 < floor < 1): the data overrule the
        network where they prefer another redshift by ``Delta chi2 / s > 2 ln(1 / floor)``.
    support : float, optional
        The network's window to start from: redshifts where its density exceeds ``support``
        times its peak (0.5: +-1.18 sigma of a Gaussian), widened by two grid steps; it is then
        followed outwards wherever the joint posterior at an edge is still above 1% of its peak.
    scan_spacing : float, optional
        Spacing in ln(1 + z) of the scan of the whole grid for better fits outside the window.

    Returns
    -------
    result : `JointRedshift`

    Raises
    ------
    ValueError
        If ``floor`` or ``support`` are not in (0, 1), ``scan_spacing`` is not positive, or the
        arrays do not fit each other.

    Examples
    --------
    >>> result = joint_redshift(table["pz"], edges, arrays.flux, arrays.ivar, arrays.mask, fitter)  # doctest: +SKIP
    """
    if not 0 < floor < 1 or not 0 < support < 1:
        raise ValueError(f"floor and support must lie in (0, 1), got {floor} and {support}")
    if not scan_spacing > 0:
        raise ValueError(f"scan_spacing must be positive, got {scan_spacing}")
    z_grid = fitter.z_grid
    x = np.log1p(z_grid)
    n_z = z_grid.size
    scan_step = max(1, int(round(scan_spacing / np.median(np.diff(x)))))
    density = network_density_on_grid(network_pdf, network_log1pz_edges, z_grid)
    n = density.shape[0]
    flux, weight, n_pixels = fitter.weighted_arrays(flux_njy, ivar, mask)
    if flux.shape[0] != n:
        raise ValueError(f"{n} network PDFs but {flux.shape[0]} spectra")
    n_pixels = n_pixels.numpy()
    peak = density.max(axis=1, keepdims=True)
    if not np.all(peak > 0):
        raise ValueError("a network PDF has no probability on the fitter's redshift grid")
    log_prior = np.log(np.maximum(density, floor * peak))

    window = _widen(density >= support * peak, 2)
    scan = np.zeros(n_z, dtype=bool)
    scan[::scan_step] = True
    scan[-1] = True
    scan = scan[None, :] & ~window
    scanner = _scanner(fitter)
    flux_binned, weight_binned = fitter.bin_spectra(flux, weight, _SCAN_BINNING)
    # the scan at coarse resolution, on the window and on its own points (to compare like with
    # like). A scan point whose unconstrained fit (a lower bound of its chi2) cannot beat the
    # window's best coarse fit can neither rescue nor set the likelihood's scale: it keeps that
    # bound instead of a non-negative fit (on real spectra ~97% of the scan; exact, see below)
    chi2_scan = scanner._weighted_chi2_at(flux_binned, weight_binned, window)
    bound = scanner._weighted_unconstrained_chi2_at(flux_binned, weight_binned, scan)
    window_best = np.where(window, chi2_scan, np.inf).min(axis=1, keepdims=True)
    hopeful = scan & (bound < window_best)
    chi2_scan = np.where(scan, bound, chi2_scan)
    if hopeful.any():
        chi2_scan = np.where(hopeful, scanner._weighted_chi2_at(flux_binned, weight_binned, hopeful), chi2_scan)
    chi2 = np.full((n, n_z), np.inf)
    evaluate = np.zeros((n, n_z), dtype=bool)
    _fit_region(fitter, flux, weight, window, chi2, evaluate, log_prior)
    # follow the posterior out of the window where it has not fallen to 1% of its peak at an edge
    # (the likelihood peaks beside the network, or is broad: a faint spectrum)
    rows = np.arange(n)
    for _ in range(_MAX_EXTENSIONS):
        log_post_window = np.where(window, -0.5 * chi2 + log_prior, -np.inf)  # s = 1: the widest case
        top = log_post_window.max(axis=1)
        first = np.argmax(window, axis=1)
        last = n_z - 1 - np.argmax(window[:, ::-1], axis=1)
        grow_left = (first > 0) & (log_post_window[rows, first] > top - _EDGE_DROP)
        grow_right = (last < n_z - 1) & (log_post_window[rows, last] > top - _EDGE_DROP)
        if not (grow_left.any() or grow_right.any()):
            break
        extra = np.zeros_like(window)
        for row in np.flatnonzero(grow_left):
            extra[row, max(0, first[row] - _EXTENSION) : first[row]] = True
        for row in np.flatnonzero(grow_right):
            extra[row, last[row] + 1 : last[row] + 1 + _EXTENSION] = True
        chi2 = np.where(extra, fitter._weighted_chi2_at(flux, weight, extra), chi2)
        window |= extra
        evaluate |= extra

    def posterior(chi2, fine):
        best_chi2 = np.where(fine, chi2, np.inf).min(axis=1, keepdims=True)
        scale = np.maximum(1.0, best_chi2 / np.maximum(n_pixels[:, None] - 1, 1))
        log_post = np.where(fine, -0.5 * (chi2 - best_chi2) / scale + log_prior, -np.inf)
        return log_post, scale

    fine = window.copy()
    log_post, scale = posterior(chi2, fine)
    scan = scan & ~window
    # rescue: somewhere the scan looked, the coarse data with the network's floor beat the coarse
    # data at the network's window (the same templates and resolution on both sides)
    coarse_scale = np.maximum(1.0, np.where(scan | window, chi2_scan, np.inf).min(axis=1, keepdims=True)
                              / np.maximum((weight_binned > 0).sum(dim=1).numpy()[:, None] - 1, 1))  # fmt: skip
    scan_score = np.where(scan & ~window, -0.5 * chi2_scan / coarse_scale + np.log(floor * peak), -np.inf)
    window_score = np.where(window, -0.5 * chi2_scan / coarse_scale + log_prior, -np.inf).max(axis=1)
    rescue_rows = np.flatnonzero(scan_score.max(axis=1) > window_score)
    if rescue_rows.size:
        rescue = np.zeros_like(evaluate)
        for row in rescue_rows:
            centre = int(np.argmax(scan_score[row]))
            rescue[row, max(0, centre - 2 * scan_step) : centre + 2 * scan_step + 1] = True
        _fit_region(fitter, flux, weight, rescue & ~window, chi2, evaluate, log_prior)
        fine |= rescue
        log_post, scale = posterior(chi2, fine)

    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    pz = post / post.sum(axis=1, keepdims=True)
    best = np.argmax(log_post, axis=1)
    modes = [_refined_mode(x, log_post[row], best[row]) for row in range(n)]
    intervals = np.array([_credible_interval(x, pz[row], modes[row]) for row in range(n)])
    z = np.expm1(modes)
    z_lo, z_hi = np.expm1(intervals[:, 0]), np.expm1(intervals[:, 1])

    rows = np.arange(n)
    dof = np.maximum(n_pixels - 1, 1)
    chi2_dof = chi2[rows, best] / dof
    # where the data alone (the scan, and every full fit) would put the redshift
    data_chi2 = chi2
    data_best = np.argmin(data_chi2, axis=1)
    # the coarse data alone prefer a redshift outside the window, if not by enough to overrule it
    coarse_outside = np.where(scan & ~window, chi2_scan, np.inf).min(axis=1)
    coarse_inside = np.where(window, chi2_scan, np.inf).min(axis=1)
    data_elsewhere = (coarse_inside - coarse_outside) / coarse_scale[:, 0] > 4.0
    flag = quality_flags(pz, z_grid, z, chi2_dof, n_pixels)
    prefers_other = (np.abs(z_grid[data_best] - z) / (1 + z) > _DISTINCT) & (
        (chi2[rows, best] - data_chi2[rows, data_best]) / scale[:, 0] > 4.0
    )
    # the network's own median, against which the data moved z (a rescue)
    network_cdf = np.cumsum(density * np.gradient(x)[None, :], axis=1)
    network_cdf /= network_cdf[:, -1:]
    z_network = np.array([np.interp(0.5, network_cdf[row], z_grid) for row in range(n)])
    prefers_other |= np.abs(z_network - z) / (1 + z) > _DISTINCT
    prefers_other |= data_elsewhere
    flag |= np.where(prefers_other, Z_FLAGS["disagree"], 0)
    return JointRedshift(
        z=z, z_lo=z_lo, z_hi=z_hi, pz=pz, z_grid=z_grid.copy(), chi2_dof=chi2_dof,
        n_pixels=n_pixels, z_flag=flag, n_evaluated=evaluate.sum(axis=1),
    )  # fmt: skip

