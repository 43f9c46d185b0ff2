"""The pieces of the what-limits benchmarks (morphology_ceiling.py, spectrum_r2_ceiling.py, redshift_information.py) that need no simulation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _module(name):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_pixel_classifier_reads_both_channels_of_a_cutout():
    ceiling = _module("morphology_ceiling")
    torch.manual_seed(0)
    classifier = ceiling.PixelClassifier(6).eval()
    stretched, weight = torch.randn(3, 64, 64), torch.ones(3, 64, 64)
    logits = classifier(stretched, weight)
    assert logits.shape == (3, 6)
    assert not torch.allclose(logits, classifier(stretched, torch.zeros_like(weight)))


def test_aperture_signal_to_noise_scales_with_flux_and_ignores_masked_pixels():
    ceiling = _module("morphology_ceiling")
    image = torch.zeros(2, 64, 64)
    image[:, 30:34, 30:34] = 1.0
    image[1] *= 4.0
    ivar = torch.full((2, 64, 64), 4.0)
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    snr = ceiling._signal_to_noise(image, ivar, mask)
    assert snr[1] == pytest.approx(4 * snr[0])
    # the noise is that of the pixels within 0.3" (7.5 pixels of 0.04"): 177 of them at sigma 0.5
    n_pixels = int((((torch.arange(64) - 31.5)[:, None] ** 2 + (torch.arange(64) - 31.5)[None, :] ** 2) <= 7.5**2).sum())
    assert snr[0] == pytest.approx(16.0 / (0.5 * np.sqrt(n_pixels)), rel=1e-5)
    mask[0, 31, 31] = True  # a masked pixel adds no noise
    assert ceiling._signal_to_noise(image, ivar, mask)[0] > snr[0]


def test_fitted_amplitude_is_the_weighted_least_squares_scale():
    ceiling = _module("spectrum_r2_ceiling")
    shape = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    observed = np.array([[2.0, 4.0, 6.0], [5.0, 5.0, 5.0]])
    ivar = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])  # the second row has no data
    np.testing.assert_allclose(ceiling.fitted_amplitude(shape, observed, ivar), [2.0, 1.0])


def test_redshift_information_heads_copy_the_shipped_bins_and_learn_from_features():
    from jwst_embed.models import RedshiftHead

    information = _module("redshift_information")
    shipped = RedshiftHead(8, n_bins=64, z_max=12.0, label_sigma=0.02)
    fresh = information.like_shipped(shipped, 3)
    torch.testing.assert_close(fresh.log1pz_edges, shipped.log1pz_edges)
    assert fresh.label_sigma == shipped.label_sigma
    # a redshift carried by one feature (on a scale far from 1: the trainer standardises) is
    # learnt; noise features are not
    generator = torch.Generator().manual_seed(0)
    z = torch.rand(2000, generator=generator) * 8.0
    x = torch.stack([1e3 * torch.log1p(z), torch.randn(2000, generator=generator), torch.randn(2000, generator=generator)], 1)
    head = information.train_head(fresh, x, z, steps=300)
    with torch.no_grad():
        z_pred = head.predict((x - head.feature_mean) / head.feature_std)["z_point"].numpy()
    scores = information.scores(z_pred, z.numpy())
    assert scores["n"] == 2000 and scores["outliers"] < 0.02 and scores["sigma_nmad"] < 0.03
    shuffled = information.scores(z_pred, z.numpy()[torch.randperm(2000, generator=generator).numpy()])
    assert shuffled["outliers"] > 0.3
    assert information.scores(z_pred[:0], z.numpy()[:0])["n"] == 0


def test_whitening_benchmark_knn_finds_the_redshift_a_small_direction_carries():
    """fit_similarity_whitening.knn_redshift: redshift carried by a low-variance direction is found
    by whitened neighbours and missed by plain ones (a large nuisance direction dominates them)."""
    from jwst_embed.similarity import SimilarityWhitening

    fit = _module("fit_similarity_whitening")
    rng = np.random.default_rng(0)

    def stream(n):
        # unit vectors in a cone: a large nuisance direction, and ln(1 + z) as an angle in a small plane
        z = rng.uniform(0.5, 8.0, n)
        angle = np.log1p(z)
        x = np.column_stack([np.full(n, 3.0), rng.normal(size=n), 0.1 * np.cos(angle), 0.1 * np.sin(angle)])
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        sets = np.array(list(fit.INPUT_SETS) * (n // len(fit.INPUT_SETS)))
        return {"fused": torch.as_tensor(x), "redshift": torch.as_tensor(z), "input_set": sets}

    train, validation = stream(6000), stream(1200)
    whitening = SimilarityWhitening.fit(train["fused"].numpy())
    plain = fit.knn_redshift(train, validation, None)
    white = fit.knn_redshift(train, validation, whitening)
    assert set(plain) == set(fit.INPUT_SETS) and plain["PRISM"]["n"] == 200
    for name in fit.INPUT_SETS:
        assert white[name]["sigma_nmad"] < 0.5 * plain[name]["sigma_nmad"]
        assert white[name]["outlier_fraction"] < 0.5 * plain[name]["outlier_fraction"]
