"""Tests for jwst_embed.preprocessing.spectra: grid, flux-conserving resampling, Spectrum input."""

from __future__ import annotations

import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import (
    InverseVariance,
    StdDevUncertainty,
    UnknownUncertainty,
    VarianceUncertainty,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from specutils import SpectralAxis, Spectrum
from specutils.manipulation import FluxConservingResampler

from jwst_embed.preprocessing import (
    DEFAULT_SPECTRAL_GRID,
    SpectralGrid,
    SpectrumArrays,
    preprocess_spectra,
    resample_flux,
    resampling_coverage,
    resampling_matrix,
)

SMALL_GRID = SpectralGrid(1.0 * u.um, 3.0 * u.um, 64)


def prism_like_wavelength(n: int = 430) -> np.ndarray:
    """Increasing wavelengths over 0.6-5.3 um with pixel width growing like R~30-300."""
    x = np.linspace(0.0, 1.0, n)
    return 0.6 + 4.7 * (0.35 * x + 0.65 * x**2)


def random_wavelength(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Strictly increasing, non-uniformly spaced wavelengths from lo to hi (um)."""
    steps = rng.lognormal(0.0, rng.uniform(0.0, 1.5), size=n - 1)
    wave = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()
    return np.unique(np.clip(wave, lo, hi))


def specutils_resample(wave, flux, sigma, grid):
    spectrum = Spectrum(
        flux=flux * u.nJy, spectral_axis=wave * u.um, uncertainty=StdDevUncertainty(sigma)
    )
    result = FluxConservingResampler()(spectrum, grid.wavelength)
    return result.flux.value, result.uncertainty.array


# --------------------------------------------------------------------------- SpectralGrid


def test_default_grid():
    grid = DEFAULT_SPECTRAL_GRID
    edges, centres = grid.edges, grid.wavelength
    assert grid.n_pixels == 512 and edges.shape == (513,) and centres.shape == (512,)
    assert edges.unit == u.um and centres.unit == u.um
    assert edges[0] == 0.6 * u.um and edges[-1] == 5.3 * u.um
    ratios = edges[1:] / edges[:-1]
    np.testing.assert_allclose(ratios, (5.3 / 0.6) ** (1 / 512), rtol=1e-12)
    np.testing.assert_allclose(centres.value, np.sqrt(edges.value[1:] * edges.value[:-1]))


def test_grid_dict_roundtrip_equality_and_hash():
    grid = SpectralGrid(600 * u.nm, 5.0 * u.um, 300)
    assert grid.wavelength_min.unit == u.um
    again = SpectralGrid.from_dict(grid.to_dict())
    assert again == grid and hash(again) == hash(grid)
    assert grid != DEFAULT_SPECTRAL_GRID
    with pytest.raises(ValueError, match="missing keys"):
        SpectralGrid.from_dict({"n_pixels": 10})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"wavelength_min": 3 * u.um, "wavelength_max": 2 * u.um}, ValueError, "smaller than"),
        ({"n_pixels": 4}, ValueError, "at least 8"),
        ({"n_pixels": 8.5}, TypeError, "integer"),
        ({"wavelength_min": 0.3 * u.um}, ValueError, "within the model's range"),
        ({"wavelength_max": 6.0 * u.um}, ValueError, "within the model's range"),
        ({"wavelength_min": 0.6}, TypeError, "Quantity"),
        ({"wavelength_min": 0.6 * u.Jy}, u.UnitsError, "not a length"),
    ],
)
def test_grid_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpectralGrid(**kwargs)


# --------------------------------------------------------------------------- vs specutils


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 900),
    lo=st.floats(0.5, 5.5),
    width=st.floats(0.01, 5.1),
    seed=st.integers(0, 2**32 - 1),
    small_grid=st.booleans(),
)
def test_matches_specutils(n, lo, width, seed, small_grid):
    grid = SMALL_GRID if small_grid else DEFAULT_SPECTRAL_GRID
    rng = np.random.default_rng(seed)
    hi = min(lo + width, 5.6)
    wave = random_wavelength(rng, n, lo, hi)
    if wave.size < 2:
        return
    scale = 10.0 ** rng.uniform(-3, 6)
    flux = scale * rng.normal(rng.uniform(-1, 1), 1.0, size=wave.size)
    sigma = scale * rng.uniform(0.01, 3.0, size=wave.size)

    try:
        ref_flux, ref_ivar = specutils_resample(wave, flux, sigma, grid)
    except IndexError:  # specutils fails on input entirely below the grid
        ref_flux = ref_ivar = np.full(grid.n_pixels, np.nan)
    ref_ok = np.isfinite(ref_flux)
    if not ref_ok.any():
        with pytest.raises(ValueError, match="does not fully cover any pixel"):
            resample_flux(flux, sigma**-2, wave * u.um, grid)
        return
    out_flux, out_ivar, out_mask = resample_flux(flux, sigma**-2, wave * u.um, grid)
    np.testing.assert_array_equal(out_mask, ~ref_ok)
    np.testing.assert_array_equal(resampling_coverage(wave * u.um, grid), ref_ok)
    # Relative 1e-6; the tiny absolute term only matters where positive and negative
    # input fluxes cancel, where any two summation orders differ relatively.
    np.testing.assert_allclose(
        out_flux[ref_ok], ref_flux[ref_ok], rtol=1e-6, atol=1e-12 * np.abs(flux).max()
    )
    np.testing.assert_allclose(out_ivar[ref_ok], ref_ivar[ref_ok], rtol=1e-6, atol=0)
    assert np.all(out_flux[out_mask] == 0) and np.all(out_ivar[out_mask] == 0)
    # The public matrix gives the same answer.
    matrix = resampling_matrix(wave * u.um, grid)
    np.testing.assert_allclose(
        (matrix @ flux)[ref_ok], ref_flux[ref_ok], rtol=1e-6, atol=1e-12 * np.abs(flux).max()
    )


def test_partial_pixels_follow_specutils():
    # Input from inside pixel 10 to inside pixel 40 of the small grid: specutils computes
    # the pixel straddling the first input edge and leaves the one straddling the last NaN.
    centres = SpectralAxis(SMALL_GRID.wavelength)
    edges = centres.bin_edges.value
    wave = np.linspace(0.5 * (edges[10] + edges[11]), 0.5 * (edges[40] + edges[41]), 200)
    covered = resampling_coverage(wave * u.um, SMALL_GRID)
    in_edges = SpectralAxis(wave * u.um).bin_edges.value
    first, last = np.flatnonzero(covered)[[0, -1]]
    assert edges[first] <= in_edges[0] < edges[first + 1]
    assert edges[last + 1] <= in_edges[-1] < edges[last + 2]
    ref_flux, _ = specutils_resample(wave, np.ones_like(wave), np.ones_like(wave), SMALL_GRID)
    np.testing.assert_array_equal(covered, np.isfinite(ref_flux))


def test_matrix_is_cached_and_rows_sum_to_one():
    wave = prism_like_wavelength() * u.um
    first = resampling_matrix(wave, DEFAULT_SPECTRAL_GRID)
    assert resampling_matrix(wave.copy(), DEFAULT_SPECTRAL_GRID) is first
    assert resampling_matrix(wave, SMALL_GRID) is not first
    assert first.shape == (512, 430)
    covered = resampling_coverage(wave)
    row_sums = np.asarray(first.sum(axis=1)).ravel()
    np.testing.assert_allclose(row_sums[covered], 1.0, rtol=1e-12)
    assert np.all(row_sums[~covered] == 0)
    assert np.all(first.data >= 0)


# --------------------------------------------------------------------------- physics


def test_flat_f_nu_stays_flat_and_masks_renormalise():
    rng = np.random.default_rng(3)
    wave = prism_like_wavelength() * u.um
    flux = np.full((3, 430), 123.0)
    ivar = np.full((3, 430), 4.0)
    mask = rng.random((3, 430)) < 0.3
    flux[mask] = np.nan  # masked pixels must not contaminate, whatever their value
    out_flux, out_ivar, out_mask = resample_flux(flux, ivar, wave, mask=mask)
    np.testing.assert_allclose(out_flux[~out_mask], 123.0, rtol=1e-12)
    assert np.all(out_ivar[~out_mask] > 0)
    # Unmasked input: the only masked outputs are those outside the coverage.
    out_flux, _, out_mask = resample_flux(np.full((1, 430), 123.0), ivar[:1], wave)
    np.testing.assert_array_equal(out_mask[0], ~resampling_coverage(wave))


def test_output_pixel_fed_only_by_masked_input_is_masked():
    wave = np.linspace(0.5, 5.6, 2000)  # several input pixels per output pixel
    flux, ivar = np.ones(2000), np.ones(2000)
    centres = SpectralAxis(DEFAULT_SPECTRAL_GRID.wavelength).bin_edges.value
    inside_pixel_100 = (wave > centres[99]) & (wave < centres[102])
    ivar[inside_pixel_100] = 0.0
    _, _, out_mask = resample_flux(flux, ivar, wave * u.um)
    assert out_mask[100]
    assert not out_mask[98] and not out_mask[103]


def test_total_flux_conserved():
    rng = np.random.default_rng(5)
    wave = random_wavelength(rng, 700, 0.52, 5.55)
    flux = 100 + 50 * np.sin(wave * 7) + rng.normal(0, 20, wave.size)
    out_flux, _, out_mask = resample_flux(flux, np.ones_like(flux), wave * u.um)
    assert not out_mask.any()
    # Integral of the piecewise-constant input over the output range, computed independently.
    in_edges = SpectralAxis(wave * u.um).bin_edges.value
    out_edges = SpectralAxis(DEFAULT_SPECTRAL_GRID.wavelength).bin_edges.value
    cumulative = np.concatenate([[0.0], np.cumsum(flux * np.diff(in_edges))])
    expected = np.diff(np.interp(out_edges[[0, -1]], in_edges, cumulative))[0]
    np.testing.assert_allclose(np.sum(out_flux * np.diff(out_edges)), expected, rtol=1e-10)
    # With the nominal log edges the integral agrees to the edge convention's ~1e-5.
    nominal = np.sum(out_flux * np.diff(DEFAULT_SPECTRAL_GRID.edges.value))
    np.testing.assert_allclose(nominal, expected, rtol=1e-4)


def make_spectrum(wave_um, f_nu_njy, sigma_njy, wave_unit=u.um, flux_unit=u.nJy, **kwargs):
    """The same physical spectrum in any spectral-axis and flux unit."""
    wave = (wave_um * u.um).to(wave_unit, equivalencies=u.spectral())
    equiv = u.spectral_density(wave_um * u.um)
    flux = (f_nu_njy * u.nJy).to(flux_unit, equivalencies=equiv)
    sigma = (sigma_njy * u.nJy).to_value(flux_unit, equivalencies=equiv)
    return Spectrum(flux=flux, spectral_axis=wave, uncertainty=StdDevUncertainty(sigma), **kwargs)


@pytest.mark.parametrize(
    ("wave_unit", "flux_unit"),
    [
        (u.um, u.Jy),
        (u.AA, u.uJy),
        (u.um, u.erg / u.s / u.cm**2 / u.AA),
        (u.nm, u.W / u.m**2 / u.um),
        (u.THz, u.erg / u.s / u.cm**2 / u.Hz),  # frequency axis: decreasing wavelength
        (u.eV, u.mJy),
    ],
)
def test_units_give_the_same_output(wave_unit, flux_unit):
    rng = np.random.default_rng(11)
    wave = prism_like_wavelength()
    f_nu = 200 + 100 * np.sin(3 * wave) + rng.normal(0, 10, wave.size)
    sigma = np.full(wave.size, 10.0)
    reference = preprocess_spectra(make_spectrum(wave, f_nu, sigma))
    other = preprocess_spectra(make_spectrum(wave, f_nu, sigma, wave_unit, flux_unit))
    np.testing.assert_array_equal(other.mask, reference.mask)
    np.testing.assert_allclose(other.flux, reference.flux, rtol=2e-5, atol=1e-4)
    np.testing.assert_allclose(other.ivar, reference.ivar, rtol=2e-5)


def test_f_lambda_flat_in_f_nu_stays_flat():
    wave = prism_like_wavelength()
    spectrum = make_spectrum(
        wave, np.full(430, 500.0), np.full(430, 5.0), flux_unit=u.erg / u.s / u.cm**2 / u.AA
    )
    arrays = preprocess_spectra(spectrum)
    assert isinstance(arrays, SpectrumArrays)
    assert arrays.flux.dtype == np.float32 and arrays.ivar.dtype == np.float32
    np.testing.assert_allclose(arrays.flux[~arrays.mask], 500.0, rtol=1e-5)


def test_uncertainty_types_agree():
    wave = prism_like_wavelength() * u.um
    flux = np.linspace(1, 2, 430) * u.uJy
    sigma = np.linspace(0.1, 0.3, 430)
    kinds = [
        StdDevUncertainty(sigma),
        VarianceUncertainty(sigma**2),
        InverseVariance(sigma**-2),
        StdDevUncertainty(sigma * 1e3 * u.nJy),  # uncertainty in its own unit
    ]
    results = [
        preprocess_spectra(Spectrum(flux=flux, spectral_axis=wave, uncertainty=unc))
        for unc in kinds
    ]
    for result in results[1:]:
        np.testing.assert_allclose(result.ivar, results[0].ivar, rtol=1e-6)
        np.testing.assert_array_equal(result.mask, results[0].mask)


def test_missing_uncertainty_is_estimated_with_a_logged_warning(caplog):
    rng = np.random.default_rng(2)
    wave = np.linspace(0.55, 5.5, 2000)
    flux = 300 + 100 * np.sin(wave) + rng.normal(0, 20, wave.size)
    spectrum = Spectrum(flux=flux * u.nJy, spectral_axis=wave * u.um)
    with caplog.at_level(logging.WARNING, logger="jwst_embed.preprocessing.spectra"):
        arrays = preprocess_spectra(spectrum)
    assert "no uncertainty" in caplog.text
    # Uniform input sigma of ~20 nJy, so the ivar of a grid pixel fed by one input pixel.
    _, ref_ivar = specutils_resample(wave, flux, np.full(wave.size, 20.0), DEFAULT_SPECTRAL_GRID)
    ok = ~arrays.mask[0]
    np.testing.assert_allclose(np.median(arrays.ivar[0, ok] / ref_ivar[ok]), 1.0, rtol=0.15)


def test_two_d_spectrum_and_grouping_match_single_spectra():
    rng = np.random.default_rng(8)
    wave_a, wave_b = prism_like_wavelength(430), prism_like_wavelength(300)
    flux = rng.normal(100, 10, (3, 430))
    many = Spectrum(
        flux=flux * u.nJy,
        spectral_axis=wave_a * u.um,
        uncertainty=StdDevUncertainty(np.full((3, 430), 10.0)),
    )
    other = make_spectrum(wave_b, rng.normal(50, 5, 300), np.full(300, 5.0))
    together = preprocess_spectra([many, other, many[1]])
    assert len(together) == 5
    singles = [
        preprocess_spectra(make_spectrum(wave_a, row, np.full(430, 10.0))) for row in flux
    ] + [
        preprocess_spectra(other),
        preprocess_spectra(make_spectrum(wave_a, flux[1], np.full(430, 10.0))),
    ]
    for row, single in enumerate(singles):
        np.testing.assert_array_equal(together.flux[row], single.flux[0])
        np.testing.assert_array_equal(together.ivar[row], single.ivar[0])


def test_nan_inf_and_mask_become_masked():
    wave = prism_like_wavelength()
    flux = np.full(430, 100.0)
    sigma = np.full(430, 10.0)
    flux[50:60] = np.nan
    flux[100:110] = np.inf
    sigma[150:160] = 0.0
    sigma[200:210] = np.nan
    sigma[300:310] = -10.0
    spectrum_mask = np.zeros(430, dtype=bool)
    spectrum_mask[250:260] = True
    arrays = preprocess_spectra(make_spectrum(wave, flux, sigma, mask=spectrum_mask))
    for array in (arrays.flux, arrays.ivar):
        assert np.all(np.isfinite(array))
    assert np.all(arrays.flux[arrays.mask] == 0) and np.all(arrays.ivar[arrays.mask] == 0)
    np.testing.assert_allclose(arrays.flux[~arrays.mask], 100.0, rtol=1e-6)
    assert arrays.mask.sum() > (~resampling_coverage(wave * u.um)).sum()
    # The negative-sigma stretch alone is masked: pixels fed only by it are masked.
    centres = DEFAULT_SPECTRAL_GRID.wavelength.value
    inside = (centres > wave[301]) & (centres < wave[308])
    assert inside.any() and arrays.mask[0, inside].all()


# --------------------------------------------------------------------------- bad input


def good_spectrum(**changes):
    wave = changes.pop("wave", prism_like_wavelength() * u.um)
    n = wave.size
    kwargs = {
        "flux": np.full(n, 1.0) * u.uJy,
        "spectral_axis": wave,
        "uncertainty": StdDevUncertainty(np.full(n, 0.1)),
    }
    kwargs.update(changes)
    return Spectrum(**kwargs)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: good_spectrum(
                wave=np.array([1.0, 2.0, 2.0, 3.0]) * u.um, flux=np.ones(4) * u.Jy, uncertainty=None
            ),
            ValueError,
            r"spectrum.spectral_axis is not strictly increasing",
        ),
        (
            lambda: good_spectrum(
                wave=np.linspace(0.3, 3, 100) * u.um, flux=np.ones(100) * u.Jy, uncertainty=None
            ),
            ValueError,
            "outside the range",
        ),
        (
            lambda: good_spectrum(
                wave=np.linspace(0.5, 0.59, 50) * u.um, flux=np.ones(50) * u.Jy, uncertainty=None
            ),
            ValueError,
            "does not fully cover any pixel",
        ),
        (
            lambda: good_spectrum(
                wave=np.array([]) * u.um, flux=np.array([]) * u.Jy, uncertainty=None
            ),
            ValueError,
            "is empty",
        ),
        (lambda: good_spectrum(mask=np.ones(430, dtype=bool)), ValueError, "all pixels are masked"),
        (
            lambda: good_spectrum(flux=np.full(430, np.nan) * u.Jy),
            ValueError,
            "all pixels are masked",
        ),
        (
            lambda: good_spectrum(uncertainty=StdDevUncertainty(np.zeros(430))),
            ValueError,
            "all pixels are masked",
        ),
        (
            lambda: good_spectrum(flux=np.ones(430) * u.count),
            u.UnitsError,
            r"spectrum.flux unit 'ct' is not a spectral flux density",
        ),
        (
            lambda: good_spectrum(flux=np.ones(430) * u.MJy / u.sr),
            u.UnitsError,
            "not a spectral flux density",
        ),
        (
            lambda: good_spectrum(flux=np.ones(430) * u.dimensionless_unscaled),
            u.UnitsError,
            "not a spectral flux density",
        ),
        (
            lambda: good_spectrum(wave=np.arange(430) * u.pix),
            u.UnitsError,
            "cannot be converted to a wavelength",
        ),
        (
            lambda: good_spectrum(uncertainty=UnknownUncertainty(np.ones(430))),
            TypeError,
            "UnknownUncertainty",
        ),
    ],
)
def test_bad_spectrum_raises(make, error, match):
    with pytest.raises(error, match=match):
        preprocess_spectra(make())


def test_bad_spectrum_named_in_a_list():
    with pytest.raises(ValueError, match=r"spectra\[1\]: all pixels are masked"):
        preprocess_spectra([good_spectrum(), good_spectrum(mask=np.ones(430, dtype=bool))])
    with pytest.raises(TypeError, match=r"spectra\[0\] must be a specutils Spectrum"):
        preprocess_spectra([np.ones(10), good_spectrum()])
    with pytest.raises(ValueError, match="spectra is empty"):
        preprocess_spectra([])


@pytest.mark.parametrize(
    ("wave", "error", "match"),
    [
        (np.array([1.0, 2.0, 1.5, 3.0]) * u.um, ValueError, "not strictly increasing"),
        (np.array([1.0, np.nan, 3.0]) * u.um, ValueError, "non-finite"),
        (np.array([]) * u.um, ValueError, "is empty"),
        (np.array([2.0]) * u.um, ValueError, "single pixel"),
        (np.linspace(1, 6, 10) * u.um, ValueError, "outside the range"),
        (np.linspace(1, 2, 10), TypeError, "must be an astropy Quantity"),
        (np.linspace(1, 2, 10) * u.s, u.UnitsError, "cannot be converted to a wavelength"),
    ],
)
def test_bad_wavelength_raises(wave, error, match):
    with pytest.raises(error, match=f"input_wavelength.*{match}"):
        resampling_matrix(wave)


def test_resample_flux_shape_errors():
    wave = np.linspace(1, 2, 10) * u.um
    with pytest.raises(ValueError, match="flux must have shape"):
        resample_flux(np.ones((2, 9)), np.ones((2, 9)), wave)
    with pytest.raises(ValueError, match="ivar shape"):
        resample_flux(np.ones((2, 10)), np.ones((3, 10)), wave)
    with pytest.raises(TypeError, match="plain arrays"):
        resample_flux(np.ones(10) * u.Jy, np.ones(10), wave)


ODD_FLUX_UNITS = [
    u.nJy,
    u.Jy,
    u.mJy,
    u.erg / u.s / u.cm**2 / u.AA,
    u.W / u.m**2 / u.um,
    u.erg / u.s / u.cm**2 / u.Hz,
    u.photon / u.s / u.cm**2 / u.AA,
    u.MJy,
]
ODD_AXIS_UNITS = [u.um, u.AA, u.nm, u.m, u.Hz, u.GHz, u.eV, u.keV, 1 / u.cm]
EXTREME = st.one_of(
    st.just(np.nan),
    st.just(np.inf),
    st.just(-np.inf),
    st.just(0.0),
    st.floats(-1e300, 1e300),
    st.floats(-1e-300, 1e-300),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 300),
    seed=st.integers(0, 2**32 - 1),
    flux_unit=st.sampled_from(ODD_FLUX_UNITS),
    axis_unit=st.sampled_from(ODD_AXIS_UNITS),
    uncertainty_kind=st.sampled_from(["std", "var", "ivar", "none"]),
    bad_fraction=st.floats(0.0, 1.0),
    extremes=st.lists(EXTREME, min_size=0, max_size=20),
    log_scale=st.floats(-40, 40),
)
def test_random_bad_values_never_give_nan(
    n, seed, flux_unit, axis_unit, uncertainty_kind, bad_fraction, extremes, log_scale
):
    rng = np.random.default_rng(seed)
    wave_um = random_wavelength(rng, n, 0.55, 5.5)
    flux = 10.0**log_scale * rng.normal(1.0, 1.0, wave_um.size)
    unc = 10.0**log_scale * rng.uniform(0.0, 1.0, wave_um.size)
    for values in (flux, unc):
        bad = rng.random(wave_um.size) < bad_fraction
        values[bad] = rng.choice(np.array(extremes or [np.nan]), size=bad.sum())
    uncertainty = {
        "std": StdDevUncertainty(unc),
        "var": VarianceUncertainty(unc),
        "ivar": InverseVariance(unc),
        "none": None,
    }[uncertainty_kind]
    spectrum = Spectrum(
        flux=flux * flux_unit,
        spectral_axis=(wave_um * u.um).to(axis_unit, equivalencies=u.spectral()),
        uncertainty=uncertainty,
        mask=rng.random(wave_um.size) < bad_fraction / 2,
    )
    try:
        arrays = preprocess_spectra(spectrum)
    except ValueError as err:
        # Only a spectrum with nothing usable left may be refused, and it says so.
        assert "all pixels are masked" in str(err) or "no valid pixel" in str(err)
        event("refused: nothing usable")
        return
    event("resampled")
    for array in (arrays.flux, arrays.ivar):
        assert np.all(np.isfinite(array))
    assert not arrays.mask.all()
    assert np.all(arrays.flux[arrays.mask] == 0) and np.all(arrays.ivar[arrays.mask] == 0)
    assert np.all(arrays.ivar[~arrays.mask] > 0)


# --------------------------------------------------------------------------- real files


def test_real_spectra(real_dir):
    io = pytest.importorskip("jwst_embed.io")
    if not hasattr(io, "read_spectrum"):
        pytest.skip("jwst_embed.io.read_spectrum is not available yet")
    from conftest import REAL_SPECTRA

    spectra = [io.read_spectrum(real_dir / name) for name in REAL_SPECTRA]
    arrays = preprocess_spectra(spectra)
    assert arrays.flux.shape == (len(REAL_SPECTRA), DEFAULT_SPECTRAL_GRID.n_pixels)
    for array in (arrays.flux, arrays.ivar):
        assert np.all(np.isfinite(array))
    assert np.all((~arrays.mask).mean(axis=1) >= 0.5)
    # Each file alone gives the same rows (grouping by wavelength array changes nothing).
    alone = preprocess_spectra(spectra[-1])
    np.testing.assert_array_equal(alone.flux[0], arrays.flux[-1])
