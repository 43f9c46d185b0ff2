"""Tests of jwst_embed.preprocessing.stretch: a fixed physical stretch keeps colours and brightness."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jwst_embed.bands import NIRCAM_BANDS
from jwst_embed.preprocessing import (
    IMAGE_SOFTENING_NJY,
    SPECTRUM_SOFTENING_NJY,
    asinh_stretch,
    input_weight,
    inverse_asinh_stretch,
    model_inputs,
    stretched_ivar,
)


def test_constants_are_physical():
    # Per-pixel image noise of deep NIRCam data at 0.04" is a fraction of a nJy; PRISM ~20 nJy.
    assert 0.1 <= IMAGE_SOFTENING_NJY <= 2.0
    assert 5.0 <= SPECTRUM_SOFTENING_NJY <= 50.0


def test_matches_numpy_reference_and_roundtrip():
    flux = np.array([-1e4, -3.0, 0.0, 0.2, 1.0, 250.0, 1e6])
    b = 0.7
    # asinh(x) = sign(x) log(|x| + sqrt(x^2 + 1)), written to avoid cancellation for x < 0.
    x = np.abs(flux) / b
    np.testing.assert_allclose(
        asinh_stretch(flux, b), np.sign(flux) * np.log(x + np.sqrt(x**2 + 1)), rtol=1e-12
    )
    np.testing.assert_allclose(inverse_asinh_stretch(asinh_stretch(flux, b), b), flux, rtol=1e-10)
    # Linear for faint flux, logarithmic for bright flux.
    assert asinh_stretch(1e-3, b) == pytest.approx(1e-3 / b, rel=1e-6)
    assert asinh_stretch(1e6, b) == pytest.approx(np.log(2e6 / b), rel=1e-6)


def test_quantity_input():
    assert asinh_stretch(1 * u.uJy, 1000.0) == pytest.approx(np.arcsinh(1.0))
    assert asinh_stretch(5.0, 1 * u.nJy) == pytest.approx(np.arcsinh(5.0))


@pytest.mark.parametrize("softening", [0.0, -1.0, np.nan, np.inf])
def test_bad_softening(softening):
    with pytest.raises(ValueError, match="softening"):
        asinh_stretch(np.ones(3), softening)


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    flux = rng.normal(0, 100, (4, 16, 16)).astype(np.float32)
    ivar = rng.uniform(0, 5, flux.shape).astype(np.float32)
    mask = rng.random(flux.shape) < 0.2
    for function, args in [
        (asinh_stretch, (flux,)),
        (stretched_ivar, (flux, ivar)),
        (input_weight, (ivar, mask)),
    ]:
        expected = function(*args, IMAGE_SOFTENING_NJY)
        got = function(*(torch.from_numpy(np.asarray(a)) for a in args), IMAGE_SOFTENING_NJY)
        assert isinstance(got, torch.Tensor)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    s_np, w_np = model_inputs(flux, ivar, mask, IMAGE_SOFTENING_NJY)
    s_t, w_t = model_inputs(
        torch.from_numpy(flux), torch.from_numpy(ivar), torch.from_numpy(mask), IMAGE_SOFTENING_NJY
    )
    np.testing.assert_allclose(s_t.numpy(), s_np, rtol=1e-5)
    np.testing.assert_allclose(w_t.numpy(), w_np, rtol=1e-5)
    assert s_t.dtype == torch.float32
    t = asinh_stretch(torch.from_numpy(flux), 1.0)
    np.testing.assert_allclose(inverse_asinh_stretch(t, 1.0).numpy(), flux, rtol=1e-4, atol=1e-5)


def test_stretched_ivar_is_derivative_propagation():
    b = 2.0
    flux = np.array([-50.0, 0.0, 3.0, 400.0])
    ivar = np.array([0.5, 1.0, 2.0, 0.1])
    eps = 1e-4
    derivative = (asinh_stretch(flux + eps, b) - asinh_stretch(flux - eps, b)) / (2 * eps)
    np.testing.assert_allclose(stretched_ivar(flux, ivar, b), ivar / derivative**2, rtol=1e-6)
    # Huge values clip to the largest float instead of inf; the stretch of huge fluxes is finite.
    assert asinh_stretch(np.float32(3e38), 1e-3) == pytest.approx(np.log(6e41), rel=1e-6)
    assert float(asinh_stretch(torch.tensor([-3e38]), 1e-3)) == pytest.approx(
        -np.log(6e41), rel=1e-6
    )
    huge = stretched_ivar(np.float32(3e38), np.float32(1e10), b)
    assert np.isfinite(huge)
    huge_t = stretched_ivar(torch.tensor([3e38]), torch.tensor([1e10]), b)
    assert torch.isfinite(huge_t).all()


def test_weight_channel_bounds_and_masking():
    ivar = np.array([0.0, 0.25, 4.0, 1e40, np.inf, 1.0])
    mask = np.array([False, False, False, False, False, True])
    weight = input_weight(ivar, mask, 1.0)
    assert np.all((weight >= 0) & (weight <= 1))
    np.testing.assert_allclose(weight[:3], [0.0, 0.5 / 1.5, 2 / 3])
    assert weight[3] > 0.99
    assert weight[4] == 0 and weight[5] == 0  # inf ivar and masked pixels carry no weight
    # Deeper data -> larger weight (monotonic).
    assert np.all(np.diff(input_weight(np.array([0.1, 1.0, 10.0]), np.zeros(3, bool), 1.0)) > 0)


def test_absolute_brightness_kept():
    """Two objects differing by a flux factor give different inputs (no per-object normalisation)."""
    rng = np.random.default_rng(1)
    galaxy = np.abs(rng.normal(0, 1, (16, 16))) * 30.0
    ivar = np.ones_like(galaxy)
    mask = np.zeros_like(galaxy, bool)
    for factor in (2.0, 0.5, 10.0):
        a, _ = model_inputs(galaxy, ivar, mask, IMAGE_SOFTENING_NJY)
        b, _ = model_inputs(factor * galaxy, ivar, mask, IMAGE_SOFTENING_NJY)
        assert not np.allclose(a, b)
        # ... and the factor is recoverable from the inputs alone.
        ratio = inverse_asinh_stretch(b, IMAGE_SOFTENING_NJY) / inverse_asinh_stretch(
            a, IMAGE_SOFTENING_NJY
        )
        np.testing.assert_allclose(ratio[galaxy > 1], factor, rtol=1e-6)


def test_colours_kept_same_function_for_every_band():
    """The stretched value depends only on the flux: the same in every band, independent of the rest
    of the image, so the colour (flux ratio) between any two bands is recoverable."""
    flux_blue = np.array([[0.3, 5.0], [80.0, 1200.0]])
    colour = 2.7  # red/blue flux ratio
    results = {}
    for band in NIRCAM_BANDS:
        # A per-image normalisation would make the band with the brighter companion pixel differ.
        image = np.concatenate([flux_blue, np.full((1, 2), 1e5 if band == "F444W" else 1.0)])
        results[band] = model_inputs(
            image, np.ones_like(image), np.zeros(image.shape, bool), IMAGE_SOFTENING_NJY
        )[0][:2]
    first = results["F090W"]
    for stretched in results.values():
        np.testing.assert_array_equal(stretched, first)
    blue = asinh_stretch(flux_blue, IMAGE_SOFTENING_NJY)
    red = asinh_stretch(colour * flux_blue, IMAGE_SOFTENING_NJY)
    recovered = inverse_asinh_stretch(red, IMAGE_SOFTENING_NJY) / inverse_asinh_stretch(
        blue, IMAGE_SOFTENING_NJY
    )
    np.testing.assert_allclose(recovered, colour, rtol=1e-9)


def test_spectrum_softening_used_for_spectra():
    flux = np.linspace(-50, 500, 20)
    s_image = asinh_stretch(flux, IMAGE_SOFTENING_NJY)
    s_spec = asinh_stretch(flux, SPECTRUM_SOFTENING_NJY)
    assert not np.allclose(s_image, s_spec)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.integers(1, 50),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    ),
    st.floats(1e-3, 1e3),
)
def test_property_model_inputs_finite(values, softening):
    rng = np.random.default_rng(0)
    ivar = np.abs(values[::-1]).copy()
    mask = (rng.random(values.shape) < 0.3) | ~np.isfinite(values) | ~np.isfinite(ivar)
    stretched, weight = model_inputs(values, ivar, mask, softening)
    assert np.all(np.isfinite(stretched)) and np.all(np.isfinite(weight))
    assert np.all((weight >= 0) & (weight <= 1))
    assert np.all(stretched[mask] == 0) and np.all(weight[mask] == 0)
    assert np.all(
        np.isfinite(stretched_ivar(np.where(mask, 0, values), np.where(mask, 0, ivar), softening))
    )
    assert np.all(np.isfinite(stretched_ivar(values, ivar, softening)))  # NaN ivar -> 0, inf -> max
    tensor = asinh_stretch(torch.from_numpy(values), softening)
    np.testing.assert_allclose(tensor.numpy(), asinh_stretch(values, softening), rtol=1e-5)
