"""Tests of the shipped default model: it loads offline, verifies, and behaves like a physical model.

These use the real weights in ``jwst_embed/data`` (no download), on CPU, and the real JADES
files in ../shared/real as a smoke test (not an accuracy benchmark).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.nddata import NDData, StdDevUncertainty
from conftest import JADES_HLSP
from specutils import Spectrum

from jwst_embed import MultimodalEmbedder, predict_redshift, predict_stellar_mass
from jwst_embed.io import read_cutouts, read_spectrum
from jwst_embed.weights import REGISTRY, fetch_weights, sha256_of

BANDS = ("F090W", "F150W", "F277W", "F444W")


@pytest.fixture(scope="module")
def default():
    return MultimodalEmbedder.from_pretrained("default", device="cpu")


@pytest.fixture(scope="module")
def jades(real_dir):
    paths = [real_dir / name for name in JADES_HLSP]
    return [read_spectrum(path) for path in paths], [read_cutouts(path) for path in paths]


def test_default_model_ships_and_matches_its_hash(tmp_path, monkeypatch):
    # An empty cache and no server: the shipped copy is used, and it is the registered file.
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "http://127.0.0.1:9/")
    path = fetch_weights("default")
    assert sha256_of(path) == REGISTRY["default"].sha256
    assert not any(tmp_path.iterdir())  # nothing was downloaded


def test_default_model_has_heads(default):
    assert set(default.model.heads) >= {"redshift", "log_mass", "morphology"}


@pytest.mark.parametrize("bands", [("F150W",), BANDS], ids=["prism+f150w", "prism+4bands"])
def test_default_model_on_jades_files(default, jades, bands):
    spectra, cutouts = jades
    images = {band: [c[band] for c in cutouts] for band in bands}
    result = default.embed(images=images, spectra=spectra)
    assert np.isfinite(result.fused).all() and result.fused.shape == (2, default.latent_dim)
    table = predict_redshift(images=images, spectra=spectra, embedder=default)
    assert {"z", "z_lo", "z_hi", "pz"} <= set(table.colnames)
    assert np.isfinite(np.asarray(table["pz"])).all()
    assert (table["z_lo"] <= table["z"]).all() and (table["z"] <= table["z_hi"]).all()


def test_default_model_brighter_galaxy_is_more_massive(default, jades):
    """The same galaxy 10 times brighter (ivar / 100) must get a higher stellar mass."""
    (spectrum, _), (cutouts, _) = jades
    factor = 10.0
    bright_spectrum = Spectrum(
        flux=spectrum.flux * factor,
        spectral_axis=spectrum.spectral_axis,
        uncertainty=StdDevUncertainty(spectrum.uncertainty.array * factor),
        mask=spectrum.mask,
        meta=dict(spectrum.meta),
    )
    image = cutouts["F150W"]
    bright_image = NDData(image.data * factor, unit=image.unit, wcs=image.wcs, mask=image.mask, meta=dict(image.meta))
    table = predict_stellar_mass(
        images={"F150W": [image, bright_image]}, spectra=[spectrum, bright_spectrum], embedder=default
    )
    faint, bright = np.asarray(table["log_mass"])
    # At fixed redshift, 10 times the flux is 10 times the luminosity: +1 dex for a fixed M/L.
    assert bright - faint > 0.3


def test_v8_stays_loadable_by_name(tmp_path, monkeypatch):
    """The previous default model ships too and loads by its name, verified by its own hash."""
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "http://127.0.0.1:9/")
    path = fetch_weights("v8")
    assert sha256_of(path) == REGISTRY["v8"].sha256 != REGISTRY["default"].sha256
    assert REGISTRY["v9"].filename == REGISTRY["default"].filename
    v8 = MultimodalEmbedder.from_pretrained("v8", device="cpu")
    default = MultimodalEmbedder.from_pretrained("default", device="cpu")
    # v9 is v8's weights to the bit, with the similarity whitening added
    assert v8.model.config.to_dict() == default.model.config.to_dict()
    state = default.model.state_dict()
    assert all(torch.equal(value, state[key]) for key, value in v8.model.state_dict().items())
    assert v8.similarity_whitening is None
    assert default.similarity_whitening is not None and default.similarity_whitening.dim == default.latent_dim
    assert default.similarity_whitening.n_objects > 20 * default.latent_dim


def test_v9_embeds_as_v8_and_its_results_carry_the_whitening(jades):
    """Embeddings and predictions of v9 are v8's; only the similarity search changes (whitened)."""
    from jwst_embed.similarity import nearest_neighbors

    spectra, cutouts = jades
    v8 = MultimodalEmbedder.from_pretrained("v8", device="cpu")
    v9 = MultimodalEmbedder.from_pretrained("v9", device="cpu")
    images = {"F150W": [c["F150W"] for c in cutouts]}
    old, new = (e.embed(images=images, spectra=spectra) for e in (v8, v9))
    np.testing.assert_array_equal(new.fused, old.fused)
    assert old.whitening is None and new.whitening is v9.similarity_whitening
    z_old, z_new = (predict_redshift(spectra=spectra, embedder=e, method="network") for e in (v8, v9))
    np.testing.assert_array_equal(np.asarray(z_new["pz"]), np.asarray(z_old["pz"]))
    # the search applies the whitening the results carry: the similarities differ from plain cosine
    _, plain = nearest_neighbors(new, new, k=2, whitening=None)
    _, whitened = nearest_neighbors(new, new, k=2)
    _, same = nearest_neighbors(new, new, k=2, whitening=v9.similarity_whitening)
    np.testing.assert_array_equal(whitened, same)
    assert not np.allclose(whitened[:, 1], plain[:, 1])


@pytest.mark.parametrize("name", ["v7", "v6", "v5", "v4"])
def test_earlier_models_are_registered_but_not_shipped(name, tmp_path, monkeypatch):
    """v7, v6, v5 and v4 left the package; by name they are fetched into the cache (here: a server that is not there)."""
    from jwst_embed.weights import WeightsError

    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "http://127.0.0.1:9/")
    assert not REGISTRY[name].shipped
    with pytest.raises(WeightsError, match=f"jwst_embed-default-{name}.pt"):
        fetch_weights(name)


def test_v3_stays_loadable_by_name(tmp_path, monkeypatch):
    """The model before the line reader ships too, verified by its own hash."""
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "http://127.0.0.1:9/")
    assert sha256_of(fetch_weights("v3")) == REGISTRY["v3"].sha256
    v3 = MultimodalEmbedder.from_pretrained("v3", device="cpu")
    assert v3.model.line_reader is None and v3.model.config.redshift_bins == 256


def test_default_model_reads_lines(default):
    """The default model has the spectrum line reader, and its p(z) resolves redshift finely."""
    assert default.model.line_reader is not None
    assert default.model.config.redshift_bins == 512
