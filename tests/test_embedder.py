"""Tests of jwst_embed.embedder: loading, device choice, chunked embedding, errors."""

from __future__ import annotations

import logging

import astropy.units as u
import numpy as np
import pytest
import torch
from conftest import JADES_HLSP
from specutils import Spectrum

from jwst_embed.devices import resolve_device
from jwst_embed.embedder import EmbeddingResult, MultimodalEmbedder
from jwst_embed.io import read_cutouts, read_spectrum
from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.training.checkpoint import content_checksum, load_checkpoint, save_model

BANDS = ("F090W", "F150W", "F277W", "F444W")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny"))
    return save_model(tmp_path_factory.mktemp("embedder") / "model.pt", model, {})


@pytest.fixture(scope="module")
def embedder(model_path):
    return MultimodalEmbedder.from_pretrained(model_path, device="cpu")


@pytest.fixture(scope="module")
def jades(real_dir):
    """Spectra and cutouts of the two JADES HLSP objects."""
    paths = [real_dir / name for name in JADES_HLSP]
    return [read_spectrum(path) for path in paths], [read_cutouts(path) for path in paths]


def test_from_pretrained_loads_the_saved_weights(model_path, embedder):
    reference = load_checkpoint(model_path)["state_dict"]
    loaded = embedder.model.state_dict()
    assert set(loaded) == set(reference)
    for key, value in reference.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert not embedder.model.training
    assert embedder.device == torch.device("cpu")
    assert embedder.latent_dim == 64


def test_prism_and_f150w(embedder, jades):
    spectra, cutouts = jades
    result = embedder.embed(images={"F150W": cutouts[0]["F150W"]}, spectra=spectra[0])
    assert isinstance(result, EmbeddingResult)
    assert len(result) == 1
    assert result.fused.shape == (1, embedder.latent_dim)
    assert result.fused.dtype == np.float32
    assert np.isfinite(result.fused).all()
    # The model returns L2-normalised embeddings.
    np.testing.assert_allclose(np.linalg.norm(result.fused, axis=1), 1.0, rtol=1e-5)
    assert result.modality_names == ("F150W", "PRISM")
    assert result.present.tolist() == [[True, True]]
    for name in result.modality_names:
        assert result.modalities[name].shape == (1, embedder.latent_dim)
        assert np.isfinite(result.modalities[name]).all()


def test_prism_and_four_bands(embedder, jades):
    spectra, cutouts = jades
    result = embedder.embed(images={band: cutouts[0][band] for band in BANDS}, spectra=spectra[0])
    assert result.fused.shape == (1, embedder.latent_dim)
    assert np.isfinite(result.fused).all()
    assert result.modality_names == (*BANDS, "PRISM")
    assert result.present.all()
    # Embeddings of different modalities of one object are different vectors.
    assert not np.allclose(result.modalities["F090W"], result.modalities["F444W"])


def test_lists_of_two_objects_match_single_objects(embedder, jades):
    spectra, cutouts = jades
    images = {band: [cutouts[0][band], cutouts[1][band]] for band in BANDS}
    both = embedder.embed(images=images, spectra=list(spectra))
    assert both.fused.shape == (2, embedder.latent_dim)
    assert np.isfinite(both.fused).all()
    for i in range(2):
        single = embedder.embed(
            images={band: cutouts[i][band] for band in BANDS}, spectra=spectra[i]
        )
        np.testing.assert_allclose(both.fused[i], single.fused[0], atol=1e-5)
    assert not np.allclose(both.fused[0], both.fused[1], atol=1e-3)


def test_deterministic_and_independent_of_batch_size(embedder, jades):
    spectra, cutouts = jades
    # Object 1 lacks F150W: chunks with different presence patterns must still line up.
    images = {
        "F150W": [cutouts[0]["F150W"], None],
        "F444W": [cutouts[0]["F444W"], cutouts[1]["F444W"]],
    }
    first = embedder.embed(images=images, spectra=list(spectra), batch_size=2)
    second = embedder.embed(images=images, spectra=list(spectra), batch_size=2)
    np.testing.assert_array_equal(first.fused, second.fused)
    one_by_one = embedder.embed(images=images, spectra=list(spectra), batch_size=1)
    np.testing.assert_allclose(one_by_one.fused, first.fused, atol=1e-5)
    np.testing.assert_array_equal(one_by_one.present, first.present)
    for name in first.modality_names:
        np.testing.assert_allclose(one_by_one.modalities[name], first.modalities[name], atol=1e-5)


def test_absent_modality_is_zero_and_not_present(embedder, jades):
    spectra, cutouts = jades
    result = embedder.embed(images={"F150W": [cutouts[0]["F150W"], None]}, spectra=list(spectra))
    column = result.modality_names.index("F150W")
    assert result.present[:, column].tolist() == [True, False]
    np.testing.assert_array_equal(result.modalities["F150W"][1], 0.0)
    assert np.linalg.norm(result.modalities["F150W"][0]) > 0.5
    assert result.present[:, result.modality_names.index("PRISM")].all()


def test_spectrum_only_differs_from_spectrum_and_images(embedder, jades):
    spectra, cutouts = jades
    spectrum_only = embedder.embed(spectra=spectra[0])
    assert spectrum_only.modality_names == ("PRISM",)
    with_images = embedder.embed(
        images={band: cutouts[0][band] for band in BANDS}, spectra=spectra[0]
    )
    assert np.isfinite(spectrum_only.fused).all()
    assert not np.allclose(spectrum_only.fused, with_images.fused, atol=1e-3)
    # The spectrum's own embedding does not depend on the other modalities.
    np.testing.assert_allclose(
        spectrum_only.modalities["PRISM"], with_images.modalities["PRISM"], atol=1e-5
    )


def test_to_table(embedder, jades):
    spectra, cutouts = jades
    result = embedder.embed(images={"F150W": [cutouts[0]["F150W"], None]}, spectra=list(spectra))
    table = result.to_table()
    assert len(table) == 2
    assert table["fused"].shape == (2, embedder.latent_dim)
    np.testing.assert_array_equal(table["fused"], result.fused)
    assert table["present_F150W"].tolist() == [True, False]
    assert table["present_PRISM"].tolist() == [True, True]
    assert table["present_F150W"].dtype == bool


def test_auto_device_without_cuda_picks_cpu_and_logs(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with caplog.at_level(logging.INFO, logger="jwst_embed.embedder"):
        embedder = MultimodalEmbedder(MultimodalModel(ModelConfig.preset("tiny")), device="auto")
    assert embedder.device == torch.device("cpu")
    assert next(embedder.model.parameters()).device == torch.device("cpu")
    messages = [r.getMessage() for r in caplog.records if r.name == "jwst_embed.embedder"]
    assert len(messages) == 1
    assert "cpu" in messages[0]


def test_explicit_device_is_honoured_or_refused(monkeypatch):
    model = MultimodalModel(ModelConfig.preset("tiny"))
    assert MultimodalEmbedder(model, device="cpu").device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        MultimodalEmbedder(model, device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        MultimodalEmbedder(model, device="gpu0")


def test_float16_checkpoint_loads_and_embeds(tmp_path, model_path, embedder, jades):
    spectra, cutouts = jades
    # Same conversion as benchmarks/gpu_session.sh does for the shipped model.
    payload = torch.load(model_path, map_location="cpu", weights_only=True)
    for key, value in payload["state_dict"].items():
        if value.is_floating_point():
            payload["state_dict"][key] = value.to(torch.float16)
    half_path = tmp_path / "model-fp16.pt"
    torch.save(payload, half_path)
    # the weights changed after save_model wrote its checksum: refused until it is recomputed
    with pytest.raises(ValueError, match="content checksum"):
        MultimodalEmbedder.from_pretrained(half_path, device="cpu")
    payload["checksum"] = content_checksum(payload["config"], payload["state_dict"])
    torch.save(payload, half_path)
    half = MultimodalEmbedder.from_pretrained(half_path, device="cpu")
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    images = {"F150W": cutouts[0]["F150W"]}
    result = half.embed(images=images, spectra=spectra[0])
    assert result.fused.shape == (1, half.latent_dim)
    assert np.isfinite(result.fused).all()
    # Rounding the weights to float16 changes the embedding only slightly.
    reference = embedder.embed(images=images, spectra=spectra[0])
    np.testing.assert_allclose(result.fused, reference.fused, atol=5e-3)


def test_progress_bar_gives_same_result(embedder, jades, capsys):
    spectra, _ = jades
    quiet = embedder.embed(spectra=list(spectra), batch_size=1)
    loud = embedder.embed(spectra=list(spectra), batch_size=1, progress=True)
    np.testing.assert_array_equal(quiet.fused, loud.fused)
    assert "embedding" in capsys.readouterr().err


# --- errors ---------------------------------------------------------------------------------------


def test_no_inputs(embedder):
    with pytest.raises(ValueError, match="images and/or spectra"):
        embedder.embed()
    with pytest.raises(ValueError, match="images and/or spectra"):
        embedder.embed(images={})
    with pytest.raises(ValueError, match="no objects"):
        embedder.embed(spectra=[])


def test_lengths_differ(embedder, jades):
    spectra, cutouts = jades
    with pytest.raises(ValueError, match=r"F150W.*1.*PRISM.*2"):
        embedder.embed(images={"F150W": [cutouts[0]["F150W"]]}, spectra=list(spectra))


def test_object_without_modality_is_named_by_index(embedder, jades):
    spectra, cutouts = jades
    with pytest.raises(ValueError, match=r"objects \[1\] have no image and no spectrum"):
        embedder.embed(
            images={"F150W": [cutouts[0]["F150W"], None, None]},
            spectra=[spectra[0], None, spectra[1]],
            batch_size=1,
        )


def test_preprocessing_error_names_the_global_index(embedder, jades):
    spectra, _ = jades
    outside = Spectrum(flux=np.ones(32) * u.nJy, spectral_axis=np.linspace(7.0, 8.0, 32) * u.um)
    with pytest.raises(ValueError, match=r"spectra\['PRISM'\]\[2\]") as caught:
        embedder.embed(spectra=[spectra[0], spectra[1], outside], batch_size=2)
    # the location travels as data, not only as text (the object was index 0 of its chunk)
    location = caught.value.input_location
    assert (location.kind, location.name, location.index) == ("spectra", "PRISM", 2)
    assert str(caught.value) == location.message()


def test_bad_batch_size(embedder, jades):
    spectra, _ = jades
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            embedder.embed(spectra=spectra[0], batch_size=bad)


def test_unknown_weights_and_bad_model():
    with pytest.raises(ValueError, match="unknown weights 'no-such-model'"):
        MultimodalEmbedder.from_pretrained("no-such-model", device="cpu")
    with pytest.raises(TypeError, match="MultimodalModel"):
        MultimodalEmbedder(torch.nn.Linear(2, 2), device="cpu")


def test_out_of_memory_suggests_smaller_batch_size(model_path, jades, monkeypatch):
    spectra, _ = jades
    # A fresh embedder, not the module-scoped one: its model gets patched.
    embedder = MultimodalEmbedder.from_pretrained(model_path, device="cpu")

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(embedder.model, "forward", out_of_memory)
    with pytest.raises(RuntimeError, match="smaller batch_size") as info:
        embedder.embed(spectra=list(spectra), batch_size=2)
    assert not isinstance(info.value, torch.cuda.OutOfMemoryError)
