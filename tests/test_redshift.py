"""Physical redshifts: the template set, the fitter's chi2 at chosen redshifts, and the joint p(z)."""

import math

import numpy as np
import pytest
import torch

from jwst_embed.redshift import (
    DEFAULT_TEMPLATES,
    LINES,
    ComponentTemplate,
    TemplateFitter,
    default_redshift_grid,
    rest_frame_templates,
)
from jwst_embed.redshift.joint import (
    Z_FLAGS,
    _credible_interval,
    joint_redshift,
    network_density_on_grid,
)
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.simulation.sps import load_library


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def fitter(library):
    # a coarser grid than the default (step 0.0101 in ln(1 + z)) keeps the tests fast
    return TemplateFitter(z_grid=default_redshift_grid(20.0, 300), library=library)


@pytest.fixture(scope="module")
def bright_sample():
    survey = MockSurvey(SurveyConfig(bands=()))
    sample = survey.sample(48, seed=2024)
    # bright, well-exposed objects: the template fit is limited by the templates, not the noise
    snr = np.median((sample["spectrum_noiseless"] * sample["spectrum_ivar"].sqrt()).numpy(), axis=1)
    keep = np.flatnonzero(snr > 5)[:8]
    return {key: value[keep] for key, value in sample.items() if torch.is_tensor(value) and value.ndim >= 1}


def test_template_set_has_the_components_jwst_needs():
    names = {t.name for t in DEFAULT_TEMPLATES}
    assert {"agn_blue", "agn_av4", "broad_balmer", "broad_balmer_av4", "oiii", "hydrogen"} <= names
    assert {"agn_break_av1", "dla_22.5"} <= names
    with pytest.raises(ValueError, match="unknown lines"):
        ComponentTemplate("bad", "lines", lines=(("Hzeta", 1.0),))
    with pytest.raises(ValueError, match="unknown kind"):
        ComponentTemplate("bad", "blackbody")


def test_component_templates_are_physical(library):
    by_name = {t.name: t for t in DEFAULT_TEMPLATES}
    chosen = [by_name[name] for name in ("broad_balmer", "oiii", "agn_break_av1", "agn_blue", "dla_22.5", "sf_10myr_lowz")]
    rest = rest_frame_templates(chosen, library).numpy()
    wavelength_a = library.wavelength.double().numpy() * 1e4
    assert np.isfinite(rest).all() and (rest >= 0).all()
    # the broad Balmer template peaks at H-alpha and is broad (> 1,000 km/s wide at half maximum)
    broad = rest[0]
    peak = wavelength_a[np.argmax(broad)]
    assert abs(peak - LINES["Halpha"]) < 15
    above = wavelength_a[broad > 0.5 * broad.max()]
    assert (above.max() - above.min()) / LINES["Halpha"] * 2.998e5 > 1000
    # [OIII] 5008 is ~3x [OIII] 4960
    at = lambda w: rest[1][np.argmin(np.abs(wavelength_a - w))]  # noqa: E731
    assert at(LINES["OIII5008"]) / at(LINES["OIII4960"]) == pytest.approx(2.98, rel=0.1)
    # the dense-gas break: flux blueward of 3646 A is suppressed against the same power law
    ratio = lambda t, w: t[np.argmin(np.abs(wavelength_a - w))]  # noqa: E731
    broken = ratio(rest[2], 3500) / ratio(rest[2], 4200)
    plain = ratio(rest[3], 3500) / ratio(rest[3], 4200)
    assert broken < 0.5 * plain
    # a damped Lyman-alpha absorber darkens the young galaxy's continuum next to 1216 A
    dla, young = rest[4], rest[5]
    near = (wavelength_a > 1225) & (wavelength_a < 1245)
    far = (wavelength_a > 1500) & (wavelength_a < 1600)
    assert dla[near].mean() / young[near].mean() < 0.2 * dla[far].mean() / young[far].mean()


def test_fitter_reaches_redshift_20_and_respects_ages(fitter):
    assert fitter.z_grid[-1] == pytest.approx(20.0)
    names = fitter.template_names
    high = np.argmin(np.abs(fitter.z_grid - 18.0))
    allowed = dict(zip(names, fitter.allowed[high].tolist(), strict=True))
    assert allowed["sf_10myr_lowz"] and allowed["dla_22.5"] and allowed["agn_blue"]
    assert not allowed["ssp_10gyr"]  # older than the Universe at z = 18
    # H-alpha leaves the grid above z ~ 7: broad Balmer lines are no help there
    assert not fitter.allowed[np.argmin(np.abs(fitter.z_grid - 12.0)), names.index("oiii")]


def test_chi2_at_matches_the_full_fit(fitter, bright_sample):
    s = bright_sample
    flux, ivar, mask = s["spectrum"][:3], s["spectrum_ivar"][:3], s["spectrum_mask"][:3]
    fitter.refine = 1  # every redshift fitted: the two paths must agree exactly
    try:
        table = fitter.fit(flux, ivar, mask, progress=False)
    finally:
        fitter.refine = 4
    every = np.ones((3, fitter.z_grid.size), dtype=bool)
    chi2 = fitter.chi2_at(flux, ivar, mask, every)
    np.testing.assert_allclose(chi2, np.asarray(table["chi2"], dtype=np.float64), rtol=1e-4)
    some = np.zeros_like(every)
    some[:, 10:20] = True
    partial = fitter.chi2_at(flux, ivar, mask, some)
    assert np.isinf(partial[~some]).all()
    # a few pairs are solved one by one (SciPy), the whole grid in a batch: the same minimum to
    # 1e-4, and where they differ the one-by-one solve is the lower (better) one
    np.testing.assert_allclose(partial[some], chi2[some], rtol=1e-4)
    assert (partial[some] <= chi2[some] * (1 + 1e-9)).all()
    subset = fitter.subset(["sf_200myr", "ssp_1gyr"])
    assert subset.template_names == ("sf_200myr", "ssp_1gyr") and subset.template_cube.shape[1] == 2
    # fewer templates can only fit worse
    assert (subset.chi2_at(flux, ivar, mask, some)[some] >= partial[some] - 1e-6).all()
    with pytest.raises(ValueError, match="unknown templates"):
        fitter.subset(["nope"])


def test_unconstrained_chi2_bounds_the_non_negative_fit_from_below(fitter, bright_sample):
    s = bright_sample
    flux, ivar, mask = s["spectrum"][:4], s["spectrum_ivar"][:4], s["spectrum_mask"][:4]
    some = np.zeros((4, fitter.z_grid.size), dtype=bool)
    some[:, ::7] = True
    some[1, 3] = True
    nnls = fitter.chi2_at(flux, ivar, mask, some)
    bound = fitter.unconstrained_chi2_at(flux, ivar, mask, some)
    assert np.isinf(bound[~some]).all() and np.isfinite(bound[some]).all()
    assert (bound[some] <= nnls[some]).all()
    # a bound worth having: at most redshifts the signs the physics forbids would help a lot
    assert np.median(bound[some] / nnls[some]) > 0.3
    # with one template, coefficients of either sign fit |c|: the non-negative fit is the same
    # wherever its best coefficient is positive
    single = fitter.subset(["sf_200myr"])
    one_nnls, one_bound = single.chi2_at(flux, ivar, mask, some), single.unconstrained_chi2_at(flux, ivar, mask, some)
    same = one_nnls[some] < (flux.double() ** 2 * ivar.double()).sum(dim=1).numpy()[np.nonzero(some)[0]]
    np.testing.assert_allclose(one_bound[some][same], one_nnls[some][same], rtol=1e-6)
    with pytest.raises(ValueError, match="evaluate"):
        fitter.unconstrained_chi2_at(flux, ivar, mask, some[:, :-1])


def test_binned_fitter_matches_binned_spectra(fitter, bright_sample):
    s = bright_sample
    coarse = fitter.binned(8)
    assert coarse.template_cube.shape[2] == 64 and coarse.spectral_grid.n_pixels == 64
    flux, ivar = fitter.bin_spectra(s["spectrum_noiseless"], s["spectrum_ivar"], 8)
    assert flux.shape == (len(flux), 64)
    # ivar-weighted means: a constant spectrum stays constant, its ivar adds up
    constant, total = fitter.bin_spectra(np.full((1, 512), 3.0), np.full((1, 512), 2.0), 8)
    np.testing.assert_allclose(constant.numpy(), 3.0)
    np.testing.assert_allclose(total.numpy(), 16.0)
    # noiseless bright spectra: the coarse fit is best near the true redshift too
    z_true = s["redshift"].numpy()
    chi2 = coarse.chi2_at(flux, ivar, None, np.ones((len(flux), fitter.z_grid.size), dtype=bool))
    z_best = fitter.z_grid[np.argmin(chi2, axis=1)]
    assert np.median(np.abs(z_best - z_true) / (1 + z_true)) < 0.05
    with pytest.raises(ValueError, match="divide"):
        fitter.binned(7)


def _gaussian_pdf(centre_z, sigma, edges):
    centres = 0.5 * (edges[1:] + edges[:-1])
    pdf = np.exp(-0.5 * ((centres[None, :] - np.log1p(centre_z)[:, None]) / sigma) ** 2)
    return pdf / pdf.sum(axis=1, keepdims=True)


def test_network_density_is_normalised():
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    pdf = _gaussian_pdf(np.array([3.0]), 0.01, edges)
    grid = default_redshift_grid(20.0, 880)
    density = network_density_on_grid(pdf, edges, grid)
    assert np.trapezoid(density[0], np.log1p(grid)) == pytest.approx(1.0, rel=1e-3)
    assert density[0, grid > 16.01].max() == 0.0


def test_credible_interval_is_centred_on_sharp_and_broad_posteriors():
    x = np.linspace(0.0, 2.0, 201)  # cells of 0.01
    # all probability on one grid point: the interval is centred on it, not shifted half a cell
    delta = np.zeros_like(x)
    delta[100] = 1.0
    lo, hi = _credible_interval(x, delta, x[100])
    assert lo < x[100] < hi and hi - x[100] == pytest.approx(x[100] - lo) == pytest.approx(0.0034)
    # a Gaussian many cells wide: its 16th and 84th percentiles, +-1 sigma
    gauss = np.exp(-0.5 * ((x - 1.0) / 0.1) ** 2)
    lo, hi = _credible_interval(x, gauss / gauss.sum(), 1.0)
    assert lo == pytest.approx(0.9, abs=0.003) and hi == pytest.approx(1.1, abs=0.003)


def test_joint_follows_a_right_network_cheaply(fitter, bright_sample):
    s = bright_sample
    z_true = s["redshift"].numpy().astype(np.float64)
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    pdf = _gaussian_pdf(z_true, 0.01, edges)
    result = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
    dz = np.abs(result.z - z_true) / (1 + z_true)
    assert np.median(dz) < 0.01 and (dz < 0.05).mean() >= 0.85
    assert np.all(result.z_lo <= result.z) and np.all(result.z <= result.z_hi)
    np.testing.assert_allclose(result.pz.sum(axis=1), 1.0)
    # the templates are fitted in the network's window and a sparse scan only
    assert np.median(result.n_evaluated) < 0.25 * fitter.z_grid.size


def test_thinned_windows_agree_with_fitting_every_redshift(library, bright_sample, monkeypatch):
    from jwst_embed.redshift import joint

    fitter = TemplateFitter(library=library)  # the default grid, on which windows are thinned
    s = bright_sample
    z_true = s["redshift"].numpy().astype(np.float64)
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    # a broad network p(z) (a faint spectrum's): windows of tens of trial redshifts, thinned
    pdf = _gaussian_pdf(z_true, 0.08, edges)
    thinned = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
    monkeypatch.setattr(joint, "_DENSE", 10**6)
    dense = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
    assert thinned.n_evaluated.sum() < 0.6 * dense.n_evaluated.sum()
    step = np.median(np.diff(np.log1p(fitter.z_grid)))
    assert np.all(np.abs(np.log1p(thinned.z) - np.log1p(dense.z)) <= step)
    assert np.all(np.abs(np.log1p(thinned.z_hi) - np.log1p(dense.z_hi)) <= 2 * step)
    assert np.all(np.abs(np.log1p(thinned.z_lo) - np.log1p(dense.z_lo)) <= 2 * step)


def test_a_wrong_network_cannot_veto_the_data(fitter, bright_sample):
    s = bright_sample
    z_true = s["redshift"].numpy().astype(np.float64)
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    # confidently wrong: 1 + z off by a factor 1.5
    wrong = (1 + z_true) * 1.5 - 1
    pdf = _gaussian_pdf(np.clip(wrong, 0.05, 15.5), 0.005, edges)
    result = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
    dz = np.abs(result.z - z_true) / (1 + z_true)
    rescued = dz < 0.05
    assert rescued.mean() >= 0.75, dz
    # where the data won, the table says that network and templates disagreed
    assert (result.z_flag[rescued] & Z_FLAGS["disagree"]).all()
    # without a floor worth the name the network wins
    stubborn = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter, floor=1e-300)
    assert (np.abs(stubborn.z - z_true) / (1 + z_true) < 0.05).mean() < rescued.mean()


def test_the_scan_skips_only_redshifts_that_cannot_matter(fitter, bright_sample, monkeypatch):
    """Scan points ruled out by the unconstrained bound change nothing: right or wrong network."""
    from jwst_embed.redshift import TemplateFitter as Fitter

    s = bright_sample
    z_true = s["redshift"].numpy().astype(np.float64)
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    calls = {"bounded": 0}
    bound = Fitter._weighted_unconstrained_chi2_at  # what the joint redshift calls

    def counted(self, *args):
        out = bound(self, *args)
        calls["bounded"] += int(np.isfinite(out).sum())
        return out

    for centre in (z_true, np.clip((1 + z_true) * 1.5 - 1, 0.05, 15.5)):
        pdf = _gaussian_pdf(centre, 0.005, edges)
        monkeypatch.setattr(Fitter, "_weighted_unconstrained_chi2_at", counted)
        pruned = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
        # a bound of 0 rules nothing out: every scan point gets its non-negative fit
        monkeypatch.setattr(Fitter, "_weighted_unconstrained_chi2_at", lambda self, f, w, e: np.where(e, 0.0, np.inf))
        full = joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
        np.testing.assert_allclose(pruned.z, full.z, rtol=1e-9)
        np.testing.assert_allclose(pruned.pz, full.pz, atol=1e-9)
        np.testing.assert_array_equal(pruned.z_flag, full.z_flag)
    assert calls["bounded"] > 0


def test_joint_rejects_bad_arguments(fitter, bright_sample):
    s = bright_sample
    edges = np.linspace(0.0, math.log1p(16.0), 513)
    pdf = _gaussian_pdf(s["redshift"].numpy().astype(np.float64), 0.01, edges)
    with pytest.raises(ValueError, match="floor"):
        joint_redshift(pdf, edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter, floor=0.0)
    with pytest.raises(ValueError, match="spectra"):
        joint_redshift(pdf[:2], edges, s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
    with pytest.raises(ValueError, match="n_bins"):
        joint_redshift(pdf, edges[:-1], s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], fitter)
