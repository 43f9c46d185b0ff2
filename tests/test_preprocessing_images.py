"""Tests of jwst_embed.preprocessing.images: units, WCS-aware resampling, bad input."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.nddata import CCDData, InverseVariance, NDData, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import erf

from jwst_embed.preprocessing import (
    DEFAULT_IMAGE_GRID,
    ImageArrays,
    ImageGrid,
    image_to_njy,
    preprocess_image,
    preprocess_images,
)

CENTER = SkyCoord(53.1, -27.8, unit="deg")


def make_wcs(shape, scale_arcsec=0.03, rotation_deg=0.0, center=CENTER, crpix_offset=(0.0, 0.0)):
    """TAN WCS, north up east left when unrotated, ``center`` at the middle of the array."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [center.ra.deg, center.dec.deg]
    wcs.wcs.crpix = [(nx + 1) / 2 + crpix_offset[0], (ny + 1) / 2 + crpix_offset[1]]
    wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    theta = np.deg2rad(rotation_deg)
    wcs.wcs.pc = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    return wcs


def gaussian_pixels(shape, x0, y0, sigma_pix, flux):
    """Exact pixel integrals of a circular Gaussian (pixel centres at integers)."""
    ny, nx = shape

    def edges(n, c):
        e = (np.arange(n + 1) - 0.5 - c) / (np.sqrt(2) * sigma_pix)
        return np.diff(0.5 * erf(e))

    return flux * np.outer(edges(ny, y0), edges(nx, x0))


def render(wcs, shape, sources, sigma_arcsec, scale_arcsec):
    """Sum of circular Gaussians (sky position, flux in nJy) as nJy per pixel."""
    image = np.zeros(shape)
    for position, flux in sources:
        x, y = wcs.world_to_pixel(position)
        image += gaussian_pixels(shape, x, y, sigma_arcsec / scale_arcsec, flux)
    return image


def offset(dx_east_arcsec, dy_north_arcsec, center=CENTER):
    return center.spherical_offsets_by(dx_east_arcsec * u.arcsec, dy_north_arcsec * u.arcsec)


def noisy_free_nddata(data_njy, wcs, unit=u.nJy, sigma=0.5, **kwargs):
    return NDData(
        data_njy,
        wcs=wcs,
        unit=unit,
        uncertainty=StdDevUncertainty(np.full(data_njy.shape, sigma)),
        **kwargs,
    )


def centroid(image):
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (cols * image).sum() / total, (rows * image).sum() / total


# --- grid --------------------------------------------------------------------------------------


def test_image_grid_roundtrip_and_validation():
    grid = ImageGrid(n_pixels=32, pixel_scale=0.05 * u.arcsec)
    assert ImageGrid.from_dict(grid.to_dict()) == grid
    assert DEFAULT_IMAGE_GRID.shape == (64, 64)
    assert DEFAULT_IMAGE_GRID.pixel_scale == 0.04 * u.arcsec
    assert ImageGrid(pixel_scale=40 * u.mas).pixel_scale.to_value(u.arcsec) == pytest.approx(0.04)
    with pytest.raises(ValueError, match="n_pixels"):
        ImageGrid(n_pixels=0)
    with pytest.raises(u.UnitsError, match="pixel_scale"):
        ImageGrid(pixel_scale=0.04 * u.m)
    with pytest.raises(ValueError, match="unknown ImageGrid keys"):
        ImageGrid.from_dict({"n_pix": 3})


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "to_unit"),
    [
        (u.nJy, lambda f, area_sr: f),
        (u.uJy, lambda f, area_sr: f / 1e3),
        (u.Jy, lambda f, area_sr: f / 1e9),
        (u.mJy, lambda f, area_sr: f / 1e6),
        (u.MJy / u.sr, lambda f, area_sr: f / 1e15 / area_sr),
        (u.uJy / u.arcsec**2, lambda f, area_sr: f / 1e3 / (area_sr * (180 / np.pi * 3600) ** 2)),
    ],
)
def test_image_to_njy_units(unit, to_unit):
    shape = (20, 24)
    scale = 0.03
    wcs = make_wcs(shape, scale)
    area_sr = (scale * u.arcsec).to_value(u.rad) ** 2
    rng = np.random.default_rng(1)
    njy = rng.uniform(-1, 10, shape)
    image = NDData(
        to_unit(njy, area_sr),
        unit=unit,
        wcs=wcs,
        uncertainty=StdDevUncertainty(to_unit(np.full(shape, 2.0), area_sr)),
    )
    data, ivar, mask, pixel_scale = image_to_njy(image)
    np.testing.assert_allclose(data, njy, rtol=1e-9)
    np.testing.assert_allclose(ivar, 0.25, rtol=1e-9)
    assert not mask.any()
    assert pixel_scale.to_value(u.arcsec) == pytest.approx(scale, rel=1e-9)


def test_image_to_njy_pixel_scale_from_meta():
    image = NDData(
        np.full((5, 5), 1.0),
        unit="MJy/sr",
        meta={"pixel_scale": 0.1 * u.arcsec},
        uncertainty=StdDevUncertainty(np.full((5, 5), 0.1)),
    )
    data, ivar, _, scale = image_to_njy(image)
    area_sr = (0.1 * u.arcsec).to_value(u.rad) ** 2
    np.testing.assert_allclose(data, 1e15 * area_sr)
    np.testing.assert_allclose(ivar, 1 / (0.1e15 * area_sr) ** 2)
    assert scale == 0.1 * u.arcsec


@pytest.mark.parametrize(
    "uncertainty",
    [
        StdDevUncertainty(np.full((6, 6), 2e-3), unit=u.uJy),
        VarianceUncertainty(np.full((6, 6), 4.0), unit=u.nJy**2),
        InverseVariance(np.full((6, 6), 0.25e6), unit=u.uJy**-2),
        StdDevUncertainty(np.full((6, 6), 2e-3)),  # unit from the parent (uJy)
    ],
)
def test_uncertainty_kinds(uncertainty):
    image = NDData(np.ones((6, 6)), unit=u.uJy, uncertainty=uncertainty, meta={"pixel_scale": 0.03})
    data, ivar, mask, _ = image_to_njy(image)
    np.testing.assert_allclose(data, 1000.0)
    np.testing.assert_allclose(ivar, 0.25, rtol=1e-9)


def test_uncertainty_bad_unit():
    # NDData itself refuses this combination, so use a duck-typed image (also tests duck typing).
    image = SimpleNamespace(
        data=np.ones((6, 6)),
        unit=u.nJy,
        meta={"pixel_scale": 0.03},
        wcs=None,
        mask=None,
        uncertainty=StdDevUncertainty(np.ones((6, 6)), unit=u.m),
    )
    with pytest.raises(u.UnitsError, match="uncertainty"):
        image_to_njy(image)


def test_no_uncertainty_estimates_noise(caplog):
    rng = np.random.default_rng(2)
    data = rng.normal(0, 3.0, (80, 80))
    data[30:40, 30:40] += 500  # a bright source must not inflate the noise estimate
    image = NDData(data, unit=u.nJy, meta={"pixel_scale": 0.03})
    with caplog.at_level(logging.INFO, logger="jwst_embed.preprocessing.image_units"):
        _, ivar, _, _ = image_to_njy(image)
    assert "no uncertainty" in caplog.text
    assert 1 / np.sqrt(ivar[0, 0]) == pytest.approx(3.0, rel=0.08)


def test_bright_star_is_not_mistaken_for_a_noiseless_image():
    rng = np.random.default_rng(3)
    data = rng.normal(0, 3.0, (64, 64))
    yy, xx = np.mgrid[:64, :64]
    data += 3e7 * np.exp(-((xx - 20) ** 2 + (yy - 40) ** 2) / (2 * 1.2**2))  # 10^7 sigma peak
    _, ivar, _, _ = image_to_njy(NDData(data, unit=u.nJy, meta={"pixel_scale": 0.03}))
    assert 1 / np.sqrt(ivar[0, 0]) == pytest.approx(3.0, rel=0.1)
    # a model image without noise is still refused
    model = 100 * np.exp(-np.hypot(xx - 32, yy - 32) / 3.0)
    model[model < 1.0] = 0.0  # a model image: most pixels exactly zero
    with pytest.raises(ValueError, match="zero scatter"):
        image_to_njy(NDData(model, unit=u.nJy, meta={"pixel_scale": 0.03}))


@pytest.mark.parametrize("kind", [StdDevUncertainty, VarianceUncertainty, InverseVariance])
def test_negative_uncertainty_is_an_error(kind):
    values = np.ones((8, 8))
    values[2, 3] = -1.0
    image = NDData(np.ones((8, 8)), unit=u.nJy, uncertainty=kind(values), meta={"pixel_scale": 0.03})
    with pytest.raises(ValueError, match="negative at 1 pixel"):
        image_to_njy(image)


def test_bad_values_become_mask():
    data = np.ones((8, 8))
    data[0, 0] = np.nan
    data[1, 1] = np.inf
    sigma = np.ones((8, 8))
    sigma[2, 2] = 0.0  # ivar = inf
    sigma[3, 3] = np.inf  # ivar = 0
    user_mask = np.zeros((8, 8), bool)
    user_mask[4, 4] = True
    image = NDData(
        data,
        unit=u.nJy,
        mask=user_mask,
        uncertainty=StdDevUncertainty(sigma),
        meta={"pixel_scale": 0.03},
    )
    out, ivar, mask, _ = image_to_njy(image)
    expected = np.zeros((8, 8), bool)
    for i in range(5):
        expected[i, i] = True
    np.testing.assert_array_equal(mask, expected)
    assert np.all(out[mask] == 0) and np.all(ivar[mask] == 0)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(ivar))


# --- bad input -----------------------------------------------------------------------------------


def _ok(shape=(10, 10), **kwargs):
    defaults = dict(
        unit=u.nJy, meta={"pixel_scale": 0.03}, uncertainty=StdDevUncertainty(np.ones(shape))
    )
    defaults.update(kwargs)
    return NDData(np.ones(shape), **defaults)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (
            NDData(np.ones((5, 5)), meta={"pixel_scale": 0.03}),
            u.UnitsError,
            "no flux unit.*unit='nJy'",
        ),
        (
            NDData(np.ones((5, 5)), unit=u.dimensionless_unscaled, meta={"pixel_scale": 0.03}),
            u.UnitsError,
            "no flux unit",
        ),
        (
            NDData(np.ones((5, 5)), unit=u.erg / u.s, meta={"pixel_scale": 0.03}),
            u.UnitsError,
            "erg / s",
        ),
        (
            NDData(np.ones((5, 5)), unit=u.nJy),
            ValueError,
            "no celestial WCS and no meta\\['pixel_scale'\\]",
        ),
        (NDData(np.ones((5, 5)), unit=u.nJy, meta={"pixel_scale": -1}), ValueError, "pixel_scale"),
        (NDData(np.ones((0, 5)), unit=u.nJy, meta={"pixel_scale": 0.03}), ValueError, "empty"),
        (NDData(np.ones(5), unit=u.nJy, meta={"pixel_scale": 0.03}), ValueError, "2D"),
        (
            NDData(
                np.full((5, 5), np.nan),
                unit=u.nJy,
                meta={"pixel_scale": 0.03},
                uncertainty=StdDevUncertainty(np.ones((5, 5))),
            ),
            ValueError,
            "every pixel.*masked",
        ),
        (_ok(mask=np.ones((10, 10), bool)), ValueError, "every pixel.*masked"),
        (_ok(uncertainty=StdDevUncertainty(np.zeros((10, 10)))), ValueError, "every pixel.*masked"),
        (
            NDData(np.zeros((10, 10)), unit=u.nJy, meta={"pixel_scale": 0.03}),
            ValueError,
            "zero scatter",
        ),
        (  # a noiseless model galaxy: its exponential wings are not a noise estimate
            NDData(
                40 * np.exp(-((np.indices((64, 64)) - 32.0) ** 2).sum(axis=0) / 18.0),
                unit=u.nJy,
                meta={"pixel_scale": 0.04},
            ),
            ValueError,
            "zero scatter",
        ),
        (_ok(uncertainty=StdDevUncertainty(np.ones((3, 3)))), ValueError, "uncertainty has shape"),
    ],
)
def test_bad_input_errors(image, error, match):
    with pytest.raises(error, match=match):
        preprocess_image(image)


def test_unknown_band():
    with pytest.raises(ValueError, match="unknown NIRCam band 'F999W'.*F150W"):
        preprocess_image(_ok(), band="F999W")
    with pytest.raises(ValueError, match="meta\\['FILTER'\\].*unknown NIRCam band"):
        preprocess_image(_ok(meta={"pixel_scale": 0.03, "FILTER": "CLEAR"}))


def test_band_from_meta():
    assert preprocess_image(_ok(meta={"pixel_scale": 0.03, "FILTER": "f444w"})).band == "F444W"
    assert preprocess_image(_ok(meta={"pixel_scale": 0.03, "EXTNAME": "F150W"})).band == "F150W"
    assert preprocess_image(_ok(meta={"pixel_scale": 0.03, "EXTNAME": "SCI"})).band is None
    assert preprocess_image(_ok(), band="f200w").band == "F200W"


def test_skycoord_position_needs_wcs():
    with pytest.raises(ValueError, match="no celestial WCS"):
        preprocess_image(_ok(), position=CENTER)


def test_position_off_image_raises():
    shape = (50, 50)
    wcs = make_wcs(shape)
    image = noisy_free_nddata(np.ones(shape), wcs)
    with pytest.raises(ValueError, match="every pixel of the resampled image.*masked"):
        preprocess_image(image, position=offset(30.0, 0.0))


# --- resampling accuracy -------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["nJy", "uJy", "MJy/sr"])
@pytest.mark.parametrize("scale_arcsec", [0.03, 0.063, 0.02])
def test_gaussian_flux_and_centroid(unit, scale_arcsec):
    shape = (int(4.0 / scale_arcsec),) * 2  # 4" on a side, the output is 2.56"
    wcs = make_wcs(shape, scale_arcsec, crpix_offset=(0.37, -0.21))
    source = offset(0.23, -0.11)
    flux_njy = 1000.0
    njy = render(wcs, shape, [(source, flux_njy)], sigma_arcsec=0.12, scale_arcsec=scale_arcsec)
    area_sr = (scale_arcsec * u.arcsec).to_value(u.rad) ** 2
    values = {"nJy": njy, "uJy": njy / 1e3, "MJy/sr": njy / 1e15 / area_sr}[unit]
    image = NDData(
        values,
        wcs=wcs,
        unit=unit,
        uncertainty=StdDevUncertainty(np.full(shape, 0.1 * values.max())),
    )
    out = preprocess_image(image, band="F150W", position=CENTER)
    assert isinstance(out, ImageArrays)
    assert out.flux.shape == (64, 64) and out.flux.dtype == np.float32
    assert not out.mask.any()
    assert out.flux.sum() == pytest.approx(flux_njy, rel=0.01)
    x_expected, y_expected = DEFAULT_IMAGE_GRID.to_wcs(CENTER).world_to_pixel(source)
    x_c, y_c = centroid(out.flux.astype(float))
    assert abs(x_c - x_expected) < 0.05
    assert abs(y_c - y_expected) < 0.05
    # The output is the sky itself: compare with the same Gaussian rendered on the model grid.
    # Input pixels coarser than the output (0.063") stay blocky: area weighting cannot add detail.
    direct = render(DEFAULT_IMAGE_GRID.to_wcs(CENTER), (64, 64), [(source, flux_njy)], 0.12, 0.04)
    tolerance = 0.03 if scale_arcsec <= 0.04 else 0.12
    assert np.max(np.abs(out.flux - direct)) < tolerance * direct.max()


def test_rotation_gives_same_output():
    scale = 0.03
    shape = (140, 140)
    sources = [(offset(0.3, 0.1), 800.0), (offset(-0.4, -0.25), 400.0), (offset(0.05, 0.6), 300.0)]
    outputs = []
    for rotation in (0.0, 30.0):
        wcs = make_wcs(shape, scale, rotation)
        njy = render(wcs, shape, sources, sigma_arcsec=0.1, scale_arcsec=scale)
        outputs.append(preprocess_image(noisy_free_nddata(njy, wcs), position=CENTER).flux)
    plain, rotated = outputs
    peak = plain.max()
    assert np.max(np.abs(rotated - plain)) < 0.02 * peak
    # The input arrays themselves differ a lot: the test sees the rotation.
    wcs0, wcs30 = make_wcs(shape, scale, 0.0), make_wcs(shape, scale, 30.0)
    raw0 = render(wcs0, shape, sources, 0.1, scale)
    raw30 = render(wcs30, shape, sources, 0.1, scale)
    assert np.max(np.abs(raw0 - raw30)) > 0.3 * raw0.max()


def test_flipped_wcs_east_right():
    """An image stored with east to the right (CDELT1 > 0) comes out east left."""
    shape = (100, 100)
    scale = 0.03
    normal = make_wcs(shape, scale)
    flipped = make_wcs(shape, scale)
    flipped.wcs.cdelt = [scale / 3600, scale / 3600]
    source = [(offset(0.5, 0.0), 100.0)]  # east of the centre: left half of the output
    outs = [
        preprocess_image(noisy_free_nddata(render(w, shape, source, 0.08, scale), w)).flux
        for w in (normal, flipped)
    ]
    np.testing.assert_allclose(outs[0], outs[1], atol=0.01 * outs[0].max())
    assert outs[0][:, :32].sum() > 0.99 * outs[0].sum()


def test_no_wcs_pixel_scale_meta():
    scale = 0.02
    shape = (160, 160)
    data = gaussian_pixels(shape, 79.5 + 5.0, 79.5 - 3.0, 0.1 / scale, 500.0)
    image = NDData(
        data, unit=u.nJy, meta={"pixel_scale": scale}, uncertainty=StdDevUncertainty(np.ones(shape))
    )
    out = preprocess_image(image)
    assert out.flux.sum() == pytest.approx(500.0, rel=0.01)
    x_c, y_c = centroid(out.flux.astype(float))
    # No WCS: image axes are kept; 5 input pixels of 0.02" = 2.5 output pixels of 0.04".
    assert x_c == pytest.approx(31.5 + 2.5, abs=0.05)
    assert y_c == pytest.approx(31.5 - 1.5, abs=0.05)
    # Pixel position given: the source lands at the grid centre.
    out = preprocess_image(image, position=(84.5, 76.5))
    assert centroid(out.flux.astype(float)) == pytest.approx((31.5, 31.5), abs=0.05)


def test_variance_propagation_matches_noise_realisations():
    """Output ivar = 1 / sum(w^2 var): check against the scatter of resampled noise images."""
    rng = np.random.default_rng(3)
    shape = (48, 48)
    sigma = rng.uniform(0.5, 2.0, shape)  # non-uniform noise, so the weights matter
    grid = ImageGrid(n_pixels=16, pixel_scale=0.07 * u.arcsec)
    wcs = make_wcs(shape, 0.03, rotation_deg=20.0)
    draws = []
    for _ in range(400):
        image = NDData(
            rng.normal(0, sigma), unit=u.nJy, wcs=wcs, uncertainty=StdDevUncertainty(sigma)
        )
        out = preprocess_image(image, grid=grid)
        draws.append(out.flux)
    empirical = np.var(np.array(draws, dtype=float), axis=0)
    ratio = empirical * out.ivar
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.03)
    assert np.all(np.abs(ratio - 1) < 0.35)  # each pixel: 400 draws give ~7% scatter


def test_masked_input_and_edges_mask_output():
    shape = (70, 70)
    data = np.ones(shape)
    data[35, 35] = np.nan
    image = NDData(
        data, unit=u.nJy, meta={"pixel_scale": 0.04}, uncertainty=StdDevUncertainty(np.ones(shape))
    )
    out = preprocess_image(image, grid=ImageGrid(n_pixels=16))
    # Bilinear interpolation reaches the neighbours of the bad pixel, no further.
    assert out.mask.sum() >= 1 and out.mask.sum() <= 9
    assert not out.mask[:5].any() and not out.mask[11:].any()
    assert np.all(out.flux[out.mask] == 0) and np.all(out.ivar[out.mask] == 0)
    assert np.all(out.flux[~out.mask] == pytest.approx(1.0))
    # Near the edge: half the grid falls off the input.
    out = preprocess_image(image, grid=ImageGrid(n_pixels=16), position=(0.0, 34.5))
    assert out.mask[:, :8].all() and not out.mask[:, 9:].any()


def test_ccddata_accepted():
    shape = (80, 80)
    wcs = make_wcs(shape, 0.03)
    data = render(wcs, shape, [(CENTER, 100.0)], 0.1, 0.03)
    ccd = CCDData(data, unit="nJy", wcs=wcs, uncertainty=StdDevUncertainty(np.ones(shape)))
    assert preprocess_image(ccd).flux.sum() == pytest.approx(100.0, rel=0.01)


def test_preprocess_images_stack():
    images = [_ok(), _ok(shape=(12, 14))]
    out = preprocess_images(images, band="F150W", grid=ImageGrid(n_pixels=8))
    assert out.flux.shape == (2, 8, 8) and out.band == "F150W"
    with pytest.raises(ValueError, match="empty"):
        preprocess_images([], band="F150W")
    with pytest.raises(ValueError, match="2 images but 1 positions"):
        preprocess_images(images, positions=[None])
    with pytest.raises(ValueError, match="images\\[1\\].*no flux unit"):
        preprocess_images([_ok(), NDData(np.ones((5, 5)), meta={"pixel_scale": 0.03})])
    with pytest.raises(ValueError, match="different bands"):
        preprocess_images(
            [
                _ok(meta={"pixel_scale": 0.03, "FILTER": "F150W"}),
                _ok(meta={"pixel_scale": 0.03, "FILTER": "F200W"}),
            ],
            grid=ImageGrid(n_pixels=8),
        )


# --- property test ---------------------------------------------------------------------------------

VALID_UNITS = ["nJy", "uJy", "Jy", "mJy", "MJy/sr", "uJy/arcsec2", "erg/(s cm2 Hz)", "W/(m2 Hz sr)"]
INVALID_UNITS = [None, "", "m", "erg/(s cm2 Angstrom)", "count", "adu/s"]


@st.composite
def random_images(draw):
    ny = draw(st.integers(1, 24))
    nx = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = rng.normal(0, 1, (ny, nx)) * draw(st.sampled_from([1e-30, 1e-3, 1.0, 1e6, 1e30]))
    bad = rng.random((ny, nx))
    data[bad < draw(st.floats(0, 0.5))] = np.nan
    data[bad > 1 - draw(st.floats(0, 0.2))] = draw(st.sampled_from([np.inf, -np.inf, 1e300]))
    mask = rng.random((ny, nx)) < draw(st.floats(0, 1))
    unit = draw(st.sampled_from(VALID_UNITS + INVALID_UNITS))
    uncertainty = None
    if draw(st.booleans()):
        sigma = np.abs(rng.normal(0, 1, (ny, nx))) * draw(st.sampled_from([0.0, 1e-20, 1.0, 1e20]))
        sigma[rng.random((ny, nx)) < 0.1] = np.nan
        uncertainty = StdDevUncertainty(sigma)
    use_wcs = draw(st.booleans())
    kwargs = {
        "meta": {}
        if use_wcs and draw(st.booleans())
        else {"pixel_scale": draw(st.sampled_from([0.01, 0.03, 0.1]))}
    }
    if use_wcs:
        kwargs["wcs"] = make_wcs(
            (ny, nx), draw(st.sampled_from([0.01, 0.03, 0.1])), draw(st.floats(0, 360))
        )
    grid = ImageGrid(
        n_pixels=draw(st.integers(1, 12)),
        pixel_scale=draw(st.sampled_from([0.02, 0.04, 0.2])) * u.arcsec,
    )
    return NDData(data, unit=unit, mask=mask, uncertainty=uncertainty, **kwargs), grid


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_images())
def test_property_outputs_finite_or_clear_error(case):
    image, grid = case
    try:
        out = preprocess_image(image, grid=grid)
    except (ValueError, TypeError) as err:  # unit problems raise UnitConversionError, a ValueError
        assert str(err)  # a message, naming the problem
        return
    for array in (out.flux, out.ivar):
        assert np.all(np.isfinite(array))
    assert out.mask.dtype == bool and not out.mask.all()
    assert np.all(out.ivar[~out.mask] > 0)
    assert np.all(out.flux[out.mask] == 0) and np.all(out.ivar[out.mask] == 0)


# --- real JADES cutouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["00003204", "00188208"])
def test_real_jades_cutouts(real_dir, name):
    from astropy.io import fits

    path = next(real_dir.glob(f"hlsp_jades_*{name}*_x1d.fits"))
    with fits.open(path) as hdul:
        for band in ("F090W", "F150W", "F277W", "F444W"):
            hdu = hdul[band]
            wcs = WCS(hdu.header)
            data = hdu.data.astype(np.float64)
            image = NDData(data, wcs=wcs, unit=hdu.header["BUNIT"], meta=dict(hdu.header))
            out = preprocess_image(image)  # no uncertainty: noise estimated, band from EXTNAME
            assert out.band == band
            assert out.flux.shape == (64, 64)
            assert np.all(np.isfinite(out.flux)) and np.all(np.isfinite(out.ivar))
            assert not out.mask.any()
            # Flux inside 1" of the centre, on the input (pixel centres) and on the output.
            center = wcs.pixel_to_world((data.shape[1] - 1) / 2, (data.shape[0] - 1) / 2)
            rows, cols = np.indices(data.shape)
            sky_in = wcs.pixel_to_world(cols, rows)
            flux_in = data[sky_in.separation(center) < 1.0 * u.arcsec].sum()
            out_wcs = DEFAULT_IMAGE_GRID.to_wcs(center)
            rows, cols = np.indices(out.flux.shape)
            flux_out = out.flux[
                out_wcs.pixel_to_world(cols, rows).separation(center) < 1.0 * u.arcsec
            ].sum()
            assert flux_out == pytest.approx(flux_in, rel=0.04), band
