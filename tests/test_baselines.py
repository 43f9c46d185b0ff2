"""Classical baselines: template-fit redshifts of PRISM spectra and kNN on stretched pixels."""

import numpy as np
import pytest
import torch

from jwst_embed.baselines import (
    PixelKNN,
    TemplateFitter,
    default_redshift_grid,
    nnls_normal_equations,
    pixel_features,
)
from jwst_embed.simulation import MockSurvey, SurveyConfig


@pytest.fixture(scope="module")
def fitter():
    # a coarser grid (step 0.0069 in ln(1 + z)) keeps the tests fast
    return TemplateFitter(z_grid=default_redshift_grid(15.0, 400))


@pytest.fixture(scope="module")
def spectra_sample():
    survey = MockSurvey(SurveyConfig(bands=()))
    return survey.sample(24, seed=123456)


@pytest.mark.parametrize("one_by_one", [False, True])
def test_nnls_matches_scipy(one_by_one):
    from scipy.optimize import nnls

    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 30, 6))
    f = rng.normal(size=(40, 30))
    gram = torch.as_tensor(np.einsum("blk,blm->bkm", a, a))
    rhs = torch.as_tensor(np.einsum("blk,bl->bk", a, f))
    ours = nnls_normal_equations(gram, rhs, one_by_one=one_by_one).numpy()
    assert (ours >= 0).all()
    for k in range(40):
        reference, _ = nnls(a[k], f[k])
        # compare objectives: both solve the same convex problem
        assert np.sum((a[k] @ ours[k] - f[k]) ** 2) == pytest.approx(
            np.sum((a[k] @ reference - f[k]) ** 2), rel=1e-8
        )
        np.testing.assert_allclose(ours[k], reference, atol=1e-7)


@pytest.mark.parametrize("one_by_one", [False, True])
def test_nnls_respects_allowed(one_by_one):
    gram = torch.tensor([[[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    rhs = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    allowed = torch.tensor([[True, False, True]])
    np.testing.assert_allclose(nnls_normal_equations(gram, rhs, allowed, one_by_one=one_by_one).numpy(), [[1.0, 0.0, 0.0]])


def test_nnls_batched_and_one_by_one_agree_on_template_problems(fitter, spectra_sample):
    """Real template Gram matrices (collinear, some templates not allowed): the same chi2 either way."""
    s = spectra_sample
    flux, weight, _ = fitter.weighted_arrays(s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"])
    zi = torch.arange(0, fitter.z_grid.size, 7)
    obj = torch.arange(len(flux)).repeat_interleave(zi.numel())[:400]
    z = zi.repeat(len(flux))[:400]
    cube = fitter.template_cube[z]
    gram = (cube * weight[obj][:, None, :]) @ cube.transpose(1, 2)
    rhs = (cube @ (weight * flux)[obj][:, :, None])[:, :, 0]
    allowed = fitter.allowed[z]
    assert not allowed.all()  # some templates are excluded at some redshifts

    def chi2(c):
        return (-2 * (c * rhs).sum(-1) + ((gram @ c[:, :, None])[:, :, 0] * c).sum(-1)).numpy()

    batched = nnls_normal_equations(gram, rhs, allowed, one_by_one=False)
    single = nnls_normal_equations(gram, rhs, allowed, one_by_one=True)
    assert not single[~allowed].any() and (single >= 0).all()
    scale = (weight * flux**2).sum(dim=1)[obj].numpy()  # f^T W f: chi2 = scale + the objective
    one, many = chi2(single) + scale, chi2(batched) + scale
    # the same optimum; where they differ at all, SciPy's solve is the (slightly) better one
    assert (one <= many * (1 + 1e-9) + 1e-6).all()
    np.testing.assert_allclose(one, many, rtol=1e-3)
    assert np.median(np.abs(one - many) / many) < 1e-9


def test_recovers_redshift_of_high_snr_spectra(fitter, spectra_sample):
    s = spectra_sample
    # noiseless spectra with a deep-field S/N: the fit is limited by template mismatch only
    table = fitter.fit(
        s["spectrum_noiseless"], s["spectrum_ivar"] * 100.0, s["spectrum_mask"], progress=False
    )
    z = s["redshift"].numpy()
    dz = np.abs(np.asarray(table["z"]) - z) / (1 + z)
    assert np.mean(dz < 0.02) >= 0.8, dz
    assert np.median(dz) < 0.005
    good = (~s["spectrum_mask"] & (s["spectrum_ivar"] > 0)).sum(dim=1).numpy()
    assert table["fit_ok"].all() and (np.asarray(table["n_pixels"]) == good).all()
    assert np.all(np.asarray(table["z_lo"]) <= np.asarray(table["z"]))
    assert np.all(np.asarray(table["z"]) <= np.asarray(table["z_hi"]))
    grid = table.meta["z_grid"]
    assert table["pz"].shape == (len(z), grid.size)
    np.testing.assert_allclose(np.trapezoid(table["pz"], grid, axis=1), 1.0, rtol=1e-3)
    best = np.asarray(table["chi2"]).argmin(axis=1)
    np.testing.assert_allclose(
        np.asarray(table["chi2_min"]), np.asarray(table["chi2"])[np.arange(len(z)), best], rtol=1e-5
    )


def test_noisy_spectra_mostly_right(fitter, spectra_sample):
    s = spectra_sample
    table = fitter.fit(s["spectrum"], s["spectrum_ivar"], s["spectrum_mask"], progress=False)
    z = s["redshift"].numpy()
    dz = np.abs(np.asarray(table["z"]) - z) / (1 + z)
    assert np.mean(dz < 0.15) > 0.6
    for column in ("z", "z_lo", "z_hi", "chi2_min", "chi2", "pz"):
        assert np.all(np.isfinite(np.asarray(table[column]))), column


def test_masks_respected(fitter, spectra_sample):
    s = spectra_sample
    flux = s["spectrum_noiseless"][:4].clone()
    ivar = s["spectrum_ivar"][:4] * 100.0
    mask = torch.zeros_like(flux, dtype=torch.bool)
    mask[:, 100:200] = True
    # garbage under the mask must not matter
    corrupted = flux.clone()
    corrupted[:, 100:200] = 1e6
    corrupted[0, 150] = float("nan")
    a = fitter.fit(flux, ivar, mask, progress=False)
    b = fitter.fit(corrupted, ivar, mask, progress=False)
    np.testing.assert_allclose(np.asarray(a["z"]), np.asarray(b["z"]))
    assert (np.asarray(a["n_pixels"]) == (~mask & (ivar > 0)).sum(dim=1).numpy()).all()
    # a fully masked spectrum gives a flagged, NaN-free row; the others are unaffected
    mask[1] = True
    c = fitter.fit(corrupted, ivar, mask, progress=False)
    assert list(c["fit_ok"]) == [True, False, True, True]
    assert c["z"].mask[1] and not c["z"].mask[0]
    assert c["n_pixels"][1] == 0 and np.isfinite(np.asarray(c["pz"])).all()
    np.testing.assert_allclose(np.asarray(c["z"])[[0, 2, 3]], np.asarray(a["z"])[[0, 2, 3]])


def test_bad_shapes_raise(fitter):
    with pytest.raises(ValueError, match="flux_njy"):
        fitter.fit(np.ones((2, 100)), np.ones((2, 100)))
    with pytest.raises(ValueError, match="ivar"):
        fitter.fit(np.ones((2, 512)), np.ones((3, 512)))
    with pytest.raises(ValueError, match="mask"):
        fitter.fit(np.ones((2, 512)), np.ones((2, 512)), np.zeros((2, 511), bool))
    with pytest.raises(ValueError, match="z_grid"):
        TemplateFitter(z_grid=[0.0, 2.0, 1.0])


def test_fit_spectra_with_specutils(fitter, spectra_sample):
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from specutils import Spectrum

    s = spectra_sample
    wave = fitter.spectral_grid.wavelength
    spectrum = Spectrum(
        flux=s["spectrum_noiseless"][0].numpy() * u.nJy,
        spectral_axis=wave,
        uncertainty=InverseVariance(s["spectrum_ivar"][0].numpy() * 100.0 / u.nJy**2),
    )
    table = fitter.fit_spectra([spectrum], progress=False)
    direct = fitter.fit(s["spectrum_noiseless"][:1], s["spectrum_ivar"][:1] * 100.0, progress=False)
    assert abs(table["z"][0] - direct["z"][0]) / (1 + direct["z"][0]) < 0.01


@pytest.fixture(scope="module")
def knn_batches():
    survey = MockSurvey(SurveyConfig(bands=("F150W", "F444W")))
    train = survey.to_batch(survey.sample(400, seed=1))
    test = survey.to_batch(survey.sample(100, seed=2))
    return train, test


def test_pixel_features(knn_batches):
    train, _ = knn_batches
    features = pixel_features(train, ["F150W", "PRISM"])
    assert features.shape == (400, 64 * 64 + 512)
    assert np.isfinite(features).all()
    masked = train["PRISM"].mask.numpy()
    assert np.all(features[:, 64 * 64 :][masked] == 0)
    with pytest.raises(ValueError, match="F090W"):
        pixel_features(train, ["F090W"])


def test_pixel_knn_beats_mean_predictor(knn_batches):
    train, test = knn_batches
    y_train = np.log1p(train.targets["redshift"].numpy())
    y_test = np.log1p(test.targets["redshift"].numpy())
    knn = PixelKNN(n_neighbors=10, n_components=32).fit(train, y_train)
    pred = knn.predict(test)
    mse_knn = np.mean((pred - y_test) ** 2)
    mse_mean = np.mean((y_train.mean() - y_test) ** 2)
    assert mse_knn < 0.7 * mse_mean


def test_pixel_knn_classification(knn_batches):
    train, test = knn_batches
    y_train = (train.targets["redshift"].numpy() > 2).astype(int)
    y_test = (test.targets["redshift"].numpy() > 2).astype(int)
    knn = PixelKNN(n_neighbors=15, task="classification", modalities=["PRISM"]).fit(train, y_train)
    accuracy = np.mean(knn.predict(test) == y_test)
    # better than always answering the majority class (0.58 here; kNN gets ~0.75)
    assert accuracy > max(y_test.mean(), 1 - y_test.mean()) + 0.05
    assert knn.predict_proba(test).shape == (100, 2)
    with pytest.raises(ValueError, match="task"):
        PixelKNN(task="ranking")
    with pytest.raises(RuntimeError):
        PixelKNN().predict(test)
