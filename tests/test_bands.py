import astropy.units as u
import numpy as np
import pytest

from jwst_embed.bands import (
    LONG_WAVE_PIXEL_SCALE,
    NIRCAM_BANDS,
    SHORT_WAVE_PIXEL_SCALE,
    get_band,
    get_spectral_mode,
)


def test_all_wide_and_medium_filters_present():
    expected = {"F070W", "F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F444W",
                "F140M", "F162M", "F182M", "F210M", "F250M", "F300M", "F335M", "F360M",
                "F410M", "F430M", "F460M", "F480M"}
    assert expected <= set(NIRCAM_BANDS)


def test_ordered_by_pivot():
    pivots = [b.pivot_wavelength.to_value(u.um) for b in NIRCAM_BANDS.values()]
    assert pivots == sorted(pivots)


@pytest.mark.parametrize("name", ["f150w", "F150W", " nircam_f150w ", "JWST_F150W"])
def test_case_insensitive(name):
    assert get_band(name).name == "F150W"


def test_pixel_scales():
    assert get_band("F115W").pixel_scale == SHORT_WAVE_PIXEL_SCALE == 0.031 * u.arcsec
    assert get_band("F444W").pixel_scale == LONG_WAVE_PIXEL_SCALE == 0.063 * u.arcsec
    assert get_band("F444W").channel == "LW"


def test_unknown_band_lists_valid_names():
    with pytest.raises(ValueError, match="F999W.*valid bands are: F070W"):
        get_band("F999W")


def test_unknown_mode():
    assert get_spectral_mode("clear-prism").name == "PRISM"
    with pytest.raises(ValueError, match="G395H.*PRISM"):
        get_spectral_mode("G395H")


def test_pivots_match_sedpy_throughputs():
    observate = pytest.importorskip("sedpy.observate")
    for name, band in NIRCAM_BANDS.items():
        filt = observate.Filter("jwst_" + name.lower())
        wave, thru = filt.wavelength, filt.transmission
        pivot = np.sqrt(np.trapezoid(thru * wave, wave) / np.trapezoid(thru / wave, wave)) / 1e4
        assert pivot == pytest.approx(band.pivot_wavelength.to_value(u.um), rel=5e-3), name
