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


def test_v7_stays_loadable_by_name(tmp_path, monkeypatch):
    """The previous default model ships too and loads by its name, verified by its own hash."""
    monkeypatch.setenv("JWST_EMBED_CACHE", str(tmp_path))
    monkeypatch.setenv("JWST_EMBED_WEIGHTS_URL", "http://127.0.0.1:9/")
    path = fetch_weights("v7")
    assert sha256_of(path) == REGISTRY["v7"].sha256 != REGISTRY["default"].sha256
    assert REGISTRY["v8"].filename == REGISTRY["default"].filename
    v7 = MultimodalEmbedder.from_pretrained("v7", device="cpu")
    default = MultimodalEmbedder.from_pretrained("default", device="cpu")
    assert v7.model.config.to_dict() == default.model.config.to_dict()
    differs = {key.split(".")[0] if not key.startswith("heads.") else ".".join(key.split(".")[:2])
               for key, value in v7.model.state_dict().items()
               if not torch.equal(value, default.model.state_dict()[key])}  # fmt: skip
    # v8 is v7 with its image path and morphology head trained further: spectra embed as in v7
    assert differs == {"image_encoder", "image_projection", "heads.morphology"}


def test_a_spectrum_alone_embeds_as_in_v7(jades):
    """v8 changed only the image path: a spectrum without images gets v7's (and v6's) embedding and p(z)."""
    spectra, cutouts = jades
    v7 = MultimodalEmbedder.from_pretrained("v7", device="cpu")
    v8 = MultimodalEmbedder.from_pretrained("v8", device="cpu")
    np.testing.assert_array_equal(np.asarray(v8.embed(spectra=spectra).fused), np.asarray(v7.embed(spectra=spectra).fused))
    old, new = (predict_redshift(spectra=spectra, embedder=e, method="network") for e in (v7, v8))
    np.testing.assert_array_equal(np.asarray(new["pz"]), np.asarray(old["pz"]))
    # with a cutout the image path takes part, and it did change
    images = {"F150W": [c["F150W"] for c in cutouts]}
    with_image = [np.asarray(e.embed(images=images, spectra=spectra).fused) for e in (v7, v8)]
    assert not np.array_equal(*with_image)


@pytest.mark.parametrize("name", ["v6", "v5", "v4"])
def test_earlier_models_are_registered_but_not_shipped(name, tmp_path, monkeypatch):
    """v6, v5 and v4 left the package; by name they are fetched into the cache (here: a server that is not there)."""
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
