"""Tests of jwst_embed.io: the real example files, a built pipeline x1d file, a synthetic i2d mosaic."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData, StdDevUncertainty
from astropy.wcs import WCS
from conftest import JADES_HLSP, REAL_SPECTRA
from scipy.special import erf
from specutils import Spectrum

from jwst_embed.io import (
    SPECTRUM_FORMATS,
    cutout,
    identify_spectrum_format,
    read_cutouts,
    read_jades_hlsp,
    read_spectrum,
)

F_LAMBDA = u.erg / u.s / u.cm**2 / u.AA

# From shared/real/README.md: format, median S/N per pixel, (RA, Dec) where the README gives the
# position that the file's own header should carry.
REAL_FACTS = {
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits": ("jades-hlsp", 3.4, (53.1045855, -27.9076263)),
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00188208_clear-prism_v1.0_x1d.fits": ("jades-hlsp", 3.2, (53.1389474, -27.8452737)),
    "ceers-1345_933.spec.fits": ("msaexp", 2.0, None),
    "canucs-1208_458.spec.fits": ("msaexp", 12.0, (64.40426, -11.90552)),
    "199773_prism_clear_v5.0_1D.fits": ("jades-1d", 300.0, None),
    "023286_prism_clear_v5.1_1D.fits": ("jades-1d", 105.0, None),
}


def test_conftest_lists_the_same_files():
    assert set(REAL_FACTS) == set(REAL_SPECTRA)
    assert len(JADES_HLSP) == 2


# --- real spectra -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_SPECTRA))
def test_real_spectrum_reads(real_dir, name):
    expected_format, median_snr, radec = REAL_FACTS[name]
    spectrum = read_spectrum(real_dir / name)  # a Path, not only a str

    assert type(spectrum) is Spectrum
    assert spectrum.meta["format"] == expected_format
    assert identify_spectrum_format(str(real_dir / name)) == expected_format
    assert spectrum.meta["spectral_mode"] == "PRISM"
    assert Path(spectrum.meta["source_file"]).name == name
    assert "redshift" not in spectrum.meta  # none of these headers carries one: nothing invented

    wavelength = spectrum.spectral_axis
    assert wavelength.unit == u.um
    assert np.all(np.diff(wavelength.value) > 0)
    assert 0.5 < wavelength.value.min() and wavelength.value.max() < 5.6

    good = ~spectrum.mask
    assert good.sum() > 0.7 * good.size
    flux = spectrum.flux[good]
    error = spectrum.uncertainty.quantity[good]
    assert isinstance(spectrum.uncertainty, StdDevUncertainty)
    assert error.unit == spectrum.flux.unit
    assert np.all(np.isfinite(flux)) and np.all(np.isfinite(error)) and np.all(error.value > 0)
    # Masked pixels hold finite zeros, never NaN.
    assert np.all(spectrum.flux.value[~good] == 0) and np.all(np.isfinite(spectrum.uncertainty.array))

    # A physical flux unit: these galaxies are tens to thousands of nJy.
    f_nu = flux.to(u.nJy, u.spectral_density(wavelength[good]))
    assert np.any((f_nu > 1 * u.nJy) & (f_nu < 1e4 * u.nJy))
    assert 1 * u.nJy < np.median(f_nu) < 1e4 * u.nJy

    # The error column is the right one: median S/N as quoted in the README.
    snr = np.median((flux / error).to_value(u.one))
    assert median_snr / 1.3 < snr < median_snr * 1.3

    if radec is not None:
        assert spectrum.meta["ra"].to_value(u.deg) == pytest.approx(radec[0], abs=1e-4)
        assert spectrum.meta["dec"].to_value(u.deg) == pytest.approx(radec[1], abs=1e-4)


def test_jades_1d_unit_is_si_f_lambda(real_dir):
    name = "199773_prism_clear_v5.0_1D.fits"
    spectrum = read_spectrum(real_dir / name)
    with fits.open(real_dir / name) as hdul:
        raw_flux = hdul["DATA"].data.astype(float)
        raw_wave = hdul["WAVELENGTH"].data.astype(float)
    # By hand: 1 W m^-3 = 1e7 erg/s / (1e4 cm^2 * 1e10 AA) = 1e-7 erg s-1 cm-2 AA-1.
    np.testing.assert_allclose(spectrum.flux.to_value(F_LAMBDA), raw_flux * 1e-7, rtol=1e-12)
    np.testing.assert_allclose(spectrum.spectral_axis.to_value(u.um), raw_wave * 1e6, rtol=1e-12)


def test_hlsp_extraction_option(real_dir):
    path = real_dir / JADES_HLSP[0]
    five = read_spectrum(path)
    three = read_spectrum(path, extraction="EXTRACT3PIX1D")
    assert (five.meta["extraction"], three.meta["extraction"]) == ("EXTRACT5PIX1D", "EXTRACT3PIX1D")
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(three.flux.value, hdul["EXTRACT3PIX1D"].data["FLUX"])
    assert not np.allclose(five.flux.value, three.flux.value, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="EXTRACT3PIX1D"):
        read_jades_hlsp(path, extraction="EXTRACT7PIX1D")


# --- real cutouts -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", JADES_HLSP)
def test_hlsp_cutouts(real_dir, name):
    cutouts = read_cutouts(real_dir / name)
    assert sorted(cutouts) == ["F090W", "F150W", "F277W", "F444W"]
    with fits.open(real_dir / name) as hdul:
        target = SkyCoord(hdul[0].header["RA"], hdul[0].header["DEC"], unit="deg")
    for band, image in cutouts.items():
        assert isinstance(image, NDData)
        assert image.unit == u.nJy
        assert image.meta["band"] == band
        assert image.meta["pixel_scale"].to_value(u.arcsec) == pytest.approx(0.03, abs=1e-3)
        assert image.wcs.has_celestial
        assert np.all(np.isfinite(image.data))
        # The spectroscopic target sits near the middle of each stamp.
        x, y = image.wcs.world_to_pixel(target)
        ny, nx = image.data.shape
        assert abs(x - (nx - 1) / 2) < 5 and abs(y - (ny - 1) / 2) < 5


# --- pipeline x1d built here --------------------------------------------------------------------


def _write_x1d(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wavelength = np.linspace(0.6, 5.3, 50)
    flux = 1e-6 * (1 + wavelength)  # Jy: 1.6-6.3 uJy
    error = np.full(50, 1e-7)
    flux[10] = np.nan
    error[20] = 0.0
    columns = [
        fits.Column(name="WAVELENGTH", format="D", unit="um", array=wavelength),
        fits.Column(name="FLUX", format="D", unit="Jy", array=flux),
        fits.Column(name="FLUX_ERROR", format="D", unit="Jy", array=error),
        fits.Column(name="SURF_BRIGHT", format="D", unit="MJy/sr", array=np.zeros(50)),
        fits.Column(name="SB_ERROR", format="D", unit="MJy/sr", array=np.zeros(50)),
        fits.Column(name="DQ", format="J", array=np.zeros(50, dtype=np.int32)),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="EXTRACT1D")
    table.header.update(SRCTYPE="POINT", SOURCEID=1234, SRCRA=150.1, SRCDEC=2.2)
    primary = fits.PrimaryHDU()
    primary.header.update(TELESCOP="JWST", INSTRUME="NIRSPEC", GRATING="PRISM", FILTER="CLEAR")
    fits.HDUList([primary, table]).writeto(path)
    return wavelength, flux, error


def test_pipeline_x1d(tmp_path):
    path = tmp_path / "jw00001-o001_s00001_nirspec_clear-prism_x1d.fits"
    wavelength, flux, error = _write_x1d(path)
    spectrum = read_spectrum(path)
    assert type(spectrum) is Spectrum
    assert spectrum.meta["format"] == "jwst-x1d"
    assert spectrum.meta["spectral_mode"] == "PRISM"
    assert spectrum.meta["object_id"] == "1234"
    assert spectrum.meta["ra"] == 150.1 * u.deg
    assert spectrum.flux.unit == u.Jy and spectrum.uncertainty.unit == u.Jy
    np.testing.assert_allclose(spectrum.spectral_axis.to_value(u.um), wavelength)
    expected_mask = np.zeros(50, bool)
    expected_mask[[10, 20]] = True
    np.testing.assert_array_equal(spectrum.mask, expected_mask)
    np.testing.assert_allclose(spectrum.flux.value[~expected_mask], flux[~expected_mask])
    np.testing.assert_allclose(spectrum.uncertainty.array[~expected_mask], error[~expected_mask])
    assert np.all(np.isfinite(spectrum.flux.value))


# --- errors -------------------------------------------------------------------------------------


def test_unknown_fits_lists_formats(tmp_path):
    path = tmp_path / "mystery.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros(5), name="FOO")]).writeto(path)
    with pytest.raises(ValueError, match="known formats") as info:
        read_spectrum(path)
    for name in SPECTRUM_FORMATS:
        assert name in str(info.value)
    for extname in ("EXTRACT5PIX1D", "SPEC1D", "EXTRACT1D", "WAVELENGTH"):
        assert extname in str(info.value)


def test_not_fits_and_missing_file(tmp_path):
    text = tmp_path / "spectrum.txt"
    text.write_text("1 2 3\n")
    with pytest.raises(ValueError, match="not a readable FITS file"):
        read_spectrum(text)
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        read_spectrum(tmp_path / "nope.fits")
    with pytest.raises(FileNotFoundError):
        read_cutouts(tmp_path / "nope.fits")
    with pytest.raises(ValueError, match="unknown spectrum format"):
        read_spectrum(text, format="sdss")


# --- cutouts from a synthetic i2d mosaic ---------------------------------------------------------

SCALE = 0.03 * u.arcsec
TOTAL_FLUX_NJY = 1000.0
SOURCE_XY = (120.3, 95.7)  # 0-based pixel position of the injected source
NAN_XY = (140, 110)  # 0-based (x, y) of the NaN SCI pixel
ZERO_WEIGHT_XY = (100, 80)


def _mosaic_wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.1, -27.8]
    wcs.wcs.crpix = [111.0, 101.0]
    wcs.wcs.cdelt = np.array([-1.0, 1.0]) * SCALE.to_value(u.deg)
    angle = np.deg2rad(30.0)
    wcs.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    wcs.wcs.cunit = ["deg", "deg"]
    return wcs


def _gaussian_njy(shape, x0, y0, sigma=2.5):
    """Pixel-integrated circular Gaussian with total TOTAL_FLUX_NJY (nJy per pixel)."""
    def integral_1d(n, centre):
        edges = np.arange(n + 1) - 0.5
        return np.diff(0.5 * (1 + erf((edges - centre) / (np.sqrt(2) * sigma))))
    ny, nx = shape
    return TOTAL_FLUX_NJY * np.outer(integral_1d(ny, y0), integral_1d(nx, x0))


def _pixar_sr() -> float:
    # By hand: (0.03 arcsec)^2 with 1 rad = 206264.806 arcsec.
    return (0.03 / 206264.80624709636) ** 2


# MJy/sr -> nJy per pixel, by hand: 1 MJy = 1e6 Jy = 1e15 nJy.
def _njy_per_mjysr() -> float:
    return _pixar_sr() * 1e15


def _write_mosaic(path: Path, keyword: str | None = "PIXAR_SR") -> None:
    shape = (200, 220)
    wcs = _mosaic_wcs()
    source_njy = _gaussian_njy(shape, *SOURCE_XY)
    sci = (source_njy / _njy_per_mjysr()).astype(np.float32)
    sci[NAN_XY[1], NAN_XY[0]] = np.nan
    err = np.full(shape, 0.02, dtype=np.float32)
    wht = np.ones(shape, dtype=np.float32)
    wht[ZERO_WEIGHT_XY[1], ZERO_WEIGHT_XY[0]] = 0.0
    primary = fits.PrimaryHDU()
    primary.header.update(TELESCOP="JWST", INSTRUME="NIRCAM", FILTER="F150W", PUPIL="CLEAR")
    header = wcs.to_header()
    header["BUNIT"] = "MJy/sr"
    if keyword == "PIXAR_SR":
        header["PIXAR_SR"] = _pixar_sr()
    elif keyword == "PIXAR_A2":
        header["PIXAR_A2"] = 0.03**2
    hdus = [primary, fits.ImageHDU(sci, header, name="SCI"), fits.ImageHDU(err, header, name="ERR"),
            fits.ImageHDU(wht, wcs.to_header(), name="WHT")]
    fits.HDUList(hdus).writeto(path)


def _source_position() -> SkyCoord:
    return _mosaic_wcs().pixel_to_world(*SOURCE_XY)


def _stamp_pixel(stamp, xy) -> tuple[int, int]:
    """Where mosaic pixel xy lands in the stamp, as (row, column)."""
    x, y = stamp.wcs.world_to_pixel(_mosaic_wcs().pixel_to_world(*xy))
    return int(np.round(y)), int(np.round(x))


@pytest.mark.parametrize("keyword", ["PIXAR_SR", "PIXAR_A2", None])
def test_cutout_flux_and_mask(tmp_path, keyword):
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path, keyword)
    stamp = cutout(path, _source_position(), 3 * u.arcsec)

    assert stamp.data.shape == (100, 100)
    assert stamp.unit == u.nJy
    assert stamp.meta["band"] == "F150W"
    assert stamp.meta["pixel_scale"].to_value(u.arcsec) == pytest.approx(0.03, rel=1e-6)
    assert isinstance(stamp.uncertainty, StdDevUncertainty) and stamp.uncertainty.unit == u.nJy

    # Exactly the NaN pixel and the zero-weight pixel are masked, and they hold 0.
    assert stamp.mask.dtype == bool and stamp.mask.sum() == 2
    for xy in (NAN_XY, ZERO_WEIGHT_XY):
        assert stamp.mask[_stamp_pixel(stamp, xy)]
    assert np.all(stamp.data[stamp.mask] == 0) and np.all(np.isfinite(stamp.data))

    # The injected total, recovered (masked pixels are > 7 sigma from the source).
    assert stamp.data[~stamp.mask].sum() == pytest.approx(TOTAL_FLUX_NJY, rel=1e-4)
    # The error: 0.02 MJy/sr times the pixel area by hand.
    np.testing.assert_allclose(stamp.uncertainty.array[~stamp.mask], 0.02 * _njy_per_mjysr(), rtol=1e-5)
    # The brightest pixel sits at the stamp centre: the WCS of the stamp is right.
    row, col = np.unravel_index(np.argmax(stamp.data), stamp.data.shape)
    assert (row, col) == _stamp_pixel(stamp, (round(SOURCE_XY[0]), round(SOURCE_XY[1])))
    centre = stamp.wcs.world_to_pixel(_source_position())
    assert abs(centre[0] - 49.5) <= 0.5 and abs(centre[1] - 49.5) <= 0.5


def test_cutout_size_in_pixels_and_nddata_input(tmp_path):
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path)
    from_file = cutout(path, _source_position(), 41)
    with fits.open(path) as hdul:
        nddata = NDData(hdul["SCI"].data.copy(), unit=u.MJy / u.sr, wcs=WCS(hdul["SCI"].header),
                        uncertainty=StdDevUncertainty(hdul["ERR"].data.copy()),
                        meta={"weight": hdul["WHT"].data.copy(), "PIXAR_SR": _pixar_sr()})
    from_nddata = cutout(nddata, _source_position(), 41 * u.pix, band="f150w")
    assert from_file.data.shape == from_nddata.data.shape == (41, 41)
    np.testing.assert_allclose(from_nddata.data, from_file.data, rtol=1e-12)
    np.testing.assert_array_equal(from_nddata.mask, from_file.mask)
    assert from_nddata.meta["band"] == "F150W"


def test_cutout_edge_is_masked(tmp_path):
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path)
    near_corner = _mosaic_wcs().pixel_to_world(3, 3)
    stamp = cutout(path, near_corner, 21)
    assert stamp.data.shape == (21, 21)
    assert stamp.mask[0, 0] and not stamp.mask[10, 10]
    assert np.all(np.isfinite(stamp.data)) and np.all(np.isfinite(stamp.uncertainty.array))


def test_cutout_errors(tmp_path):
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path)
    off = SkyCoord(53.3, -27.8, unit="deg")  # 0.18 deg east: ~20000 pixels away
    with pytest.raises(ValueError, match="outside"):
        cutout(path, off, 3 * u.arcsec)
    with pytest.raises(ValueError, match="outside"):
        cutout(path, SkyCoord(233.1, 27.8, unit="deg"), 3 * u.arcsec)  # other side of the sky
    with pytest.raises(TypeError, match="SkyCoord"):
        cutout(path, (53.1, -27.8), 3 * u.arcsec)
    no_unit = NDData(np.ones((50, 50)), wcs=_mosaic_wcs())
    with pytest.raises(u.UnitsError, match="no unit"):
        cutout(no_unit, _mosaic_wcs().pixel_to_world(25, 25), 10)
    counts = NDData(np.ones((50, 50)), unit=u.ct, wcs=_mosaic_wcs())
    with pytest.raises(u.UnitsError, match="surface brightness"):
        cutout(counts, _mosaic_wcs().pixel_to_world(25, 25), 10)


def test_cutout_uses_pixar_sr_keyword_over_wcs(tmp_path):
    # A header area twice the WCS area doubles the flux: the keyword, when present, wins.
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path)
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["PIXAR_SR"] = 2 * _pixar_sr()
    stamp = cutout(path, _source_position(), 3 * u.arcsec)
    assert stamp.data[~stamp.mask].sum() == pytest.approx(2 * TOTAL_FLUX_NJY, rel=1e-4)


def test_cutout_band_from_pupil_for_medium_filters():
    wcs = _mosaic_wcs()
    image = NDData(np.ones((50, 50)), unit=u.nJy, wcs=wcs, meta={"FILTER": "F150W2", "PUPIL": "F162M"})
    stamp = cutout(image, wcs.pixel_to_world(25, 25), 11)
    assert stamp.meta["band"] == "F162M"
    assert stamp.uncertainty is None and stamp.data.sum() == pytest.approx(121.0)


def test_pipeline_x1d_with_several_spectra_is_refused(tmp_path):
    path = tmp_path / "one_x1d.fits"
    _write_x1d(path)
    with fits.open(path) as hdul:
        table = hdul["EXTRACT1D"].copy()
        table.header["EXTVER"] = 2
        fits.HDUList([hdul[0].copy(), hdul["EXTRACT1D"].copy(), table]).writeto(tmp_path / "two_x1d.fits")
    with pytest.raises(ValueError, match="2 EXTRACT1D tables"):
        read_spectrum(tmp_path / "two_x1d.fits")


def test_cutout_from_header_with_datfix_keywords(tmp_path):
    # JWST i2d SCI headers carry DATE-OBS/MJD keywords that astropy.wcs "fixes" with a warning.
    path = tmp_path / "mosaic_i2d.fits"
    _write_mosaic(path)
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].header["DATE-OBS"] = "2023-01-10"
        hdul["SCI"].header["TIME-OBS"] = "04:05:09.413"
    stamp = cutout(path, _source_position(), 21)
    assert stamp.data[~stamp.mask].sum() > 0.9 * TOTAL_FLUX_NJY


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_spectrum_file_is_a_clear_error(tmp_path):
    from astropy.io import fits as _fits

    from jwst_embed.io import read_spectrum as _read

    columns = [_fits.Column(name=name, format="D", unit=unit, array=np.linspace(1.0, 2.0, 300))
               for name, unit in (("wave", "um"), ("flux", "uJy"), ("err", "uJy"))]  # fmt: skip
    table = _fits.BinTableHDU.from_columns(columns, name="SPEC1D")
    whole = tmp_path / "whole.spec.fits"
    _fits.HDUList([_fits.PrimaryHDU(), table]).writeto(whole)
    cut = tmp_path / "cut.spec.fits"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size - 4000])
    with pytest.raises(ValueError, match="cut.spec.fits: could not read it as a msaexp spectrum.*truncated"):
        _read(cut, format="msaexp")


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_cutout_file_is_a_clear_error(tmp_path):
    from astropy.io import fits as _fits

    from jwst_embed.io import read_cutouts as _read

    image = _fits.ImageHDU(np.ones((100, 100), dtype=np.float32), name="F150W")
    image.header.update({"BUNIT": "nJy", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": -1e-5,
                         "CDELT2": 1e-5, "CRPIX1": 50, "CRPIX2": 50, "CRVAL1": 53.1, "CRVAL2": -27.8})  # fmt: skip
    whole = tmp_path / "whole.fits"
    _fits.HDUList([_fits.PrimaryHDU(), image]).writeto(whole)
    assert list(_read(whole)) == ["F150W"]
    cut = tmp_path / "cut.fits"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.fits: could not read its NIRCam cutouts.*truncated"):
        _read(cut)


def test_read_objects_warns_about_unreadable_parts(tmp_path):
    from astropy.io import fits as _fits

    from jwst_embed.io import UnreadableInputWarning, read_objects

    columns = [_fits.Column(name=name, format="D", unit=unit, array=np.linspace(1.0, 5.0, 300))
               for name, unit in (("wave", "um"), ("flux", "uJy"), ("err", "uJy"))]  # fmt: skip
    image = _fits.ImageHDU(np.ones((64, 64)), name="F150W")  # a cutout without WCS
    image.header["BUNIT"] = "nJy"
    path = tmp_path / "obj.spec.fits"
    _fits.HDUList([_fits.PrimaryHDU(), _fits.BinTableHDU.from_columns(columns, name="SPEC1D"), image]).writeto(path)
    with pytest.warns(UnreadableInputWarning, match="obj.spec.fits: cutouts unreadable.*using PRISM spectrum only"):
        images, spectra = read_objects([path])
    assert images == {} and spectra[0] is not None
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_objects([tmp_path / "missing.fits"])
    with pytest.raises(ValueError, match="gives no usable spectrum or image"):
        read_objects([path], bands=(), spectra=False)
