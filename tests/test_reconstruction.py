"""Decoded spectra brought to the observed flux level (jwst_embed.reconstruction)."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_embed.reconstruction import DECODER_AMPLITUDE_SIGMA, match_amplitude


def test_bright_spectrum_sets_its_level_and_noise_keeps_the_decoders():
    rng = np.random.default_rng(1)
    shape = 1.0 + np.sin(np.linspace(0.0, 6.0, 300))[None, :] ** 2
    decoded = np.repeat(shape, 2, axis=0)
    sigma = np.array([[0.01], [100.0]])  # a bright spectrum, then one of pure noise
    flux = 1.7 * shape + sigma * rng.standard_normal((2, 300))
    amplitude = match_amplitude(decoded, flux, np.broadcast_to(1.0 / sigma**2, flux.shape))
    assert amplitude[0] == pytest.approx(1.7, rel=1e-3)
    assert amplitude[1] == pytest.approx(1.0, abs=0.01)


def test_posterior_mean_lies_between_prior_and_data():
    """The weighted least-squares amplitude and 1 bracket the result, which follows the formula."""
    decoded = np.ones((1, 50))
    flux = np.full((1, 50), 2.0)
    ivar = np.full((1, 50), 0.5)
    amplitude = match_amplitude(decoded, flux, ivar, prior_sigma=0.2)
    prior = 1.0 / 0.2**2
    assert amplitude[0] == pytest.approx((prior + 50.0) / (prior + 25.0))
    assert 1.0 < amplitude[0] < 2.0


def test_masked_and_bad_pixels_do_not_count():
    decoded = np.ones((1, 10))
    flux = np.full((1, 10), 3.0)
    flux[0, :5] = 1e6
    ivar = np.full((1, 10), 1e6)
    mask = np.zeros((1, 10), dtype=bool)
    mask[0, :4] = True
    flux[0, 4] = np.nan  # not finite: ignored as well
    assert match_amplitude(decoded, flux, ivar, mask)[0] == pytest.approx(3.0, rel=1e-4)
    # no usable pixel at all: the decoder's own level
    assert match_amplitude(decoded, flux, ivar, np.ones((1, 10), dtype=bool))[0] == 1.0


def test_negative_data_give_zero_not_a_negative_spectrum():
    assert match_amplitude(np.ones((1, 20)), np.full((1, 20), -5.0), np.full((1, 20), 1e4))[0] == 0.0


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="one shape"):
        match_amplitude(np.ones((1, 5)), np.ones((1, 6)), np.ones((1, 6)))
    with pytest.raises(ValueError, match="prior_sigma"):
        match_amplitude(np.ones((1, 5)), np.ones((1, 5)), np.ones((1, 5)), prior_sigma=0.0)
    with pytest.raises(ValueError, match="mask"):
        match_amplitude(np.ones((1, 5)), np.ones((1, 5)), np.ones((1, 5)), mask=np.zeros((1, 4), dtype=bool))
    assert DECODER_AMPLITUDE_SIGMA > 0
