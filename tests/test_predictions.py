"""Tests of jwst_embed.predictions (tables from the heads, spectrum reconstruction) and of
jwst_embed.simulation.export (mock galaxies as astropy objects)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import NDData, StdDevUncertainty
from astropy.table import Table
from conftest import JADES_HLSP
from specutils import Spectrum

import jwst_embed
from jwst_embed import prediction_tables, predictions
from jwst_embed.embedder import MultimodalEmbedder
from jwst_embed.io import read_cutouts, read_spectrum
from jwst_embed.models import ModelConfig, MultimodalModel, RedshiftHead
from jwst_embed.models.heads import MORPHOLOGY_CLASSES
from jwst_embed.predictions import (
    classify_morphology,
    morphology_column_names,
    predict,
    predict_redshift,
    predict_stellar_mass,
    reconstruct_spectrum,
)
from jwst_embed.preprocessing import make_batch
from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY
from jwst_embed.training.checkpoint import save_model

BANDS = ("F090W", "F150W", "F277W", "F444W")


@pytest.fixture(scope="module")
def trained_path(tmp_path_factory):
    """A tiny model whose stellar-mass head is fitted on its frozen embeddings of synthetic galaxies.

    In the synthetic galaxies flux grows with mass, so the head learns brightness -> mass only
    if brightness survives preprocessing, the stretch and the encoders into the fused embedding.
    """
    from jwst_embed.training.data import SyntheticSource

    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny")).eval()
    source = SyntheticSource(64, seed=1)
    with torch.no_grad():
        batches = [source.batch(k) for k in range(6)]
        fused = torch.cat([model(batch).fused for batch in batches])
    log_mass = torch.cat([batch.targets["log_mass"] for batch in batches])
    head = model.heads["log_mass"]
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(200):
        optimizer.zero_grad()
        head.loss(head(fused), log_mass).backward()
        optimizer.step()
    return save_model(tmp_path_factory.mktemp("predictions") / "model.pt", model, {})


@pytest.fixture(scope="module")
def embedder(trained_path):
    return MultimodalEmbedder.from_pretrained(trained_path, device="cpu")


@pytest.fixture(scope="module")
def jades(real_dir):
    paths = [real_dir / name for name in JADES_HLSP]
    return [read_spectrum(path) for path in paths], [read_cutouts(path) for path in paths]


def _inputs(jades, bands=("F150W",)):
    spectra, cutouts = jades
    return {band: [c[band] for c in cutouts] for band in bands}, list(spectra)


def _check_redshift_table(table, n):
    assert isinstance(table, Table) and len(table) == n
    assert {"z", "z_lo", "z_hi", "z_mode", "pz"} <= set(table.colnames)
    pz = np.asarray(table["pz"])
    grid = np.asarray(table.meta["z_grid"])
    assert pz.shape == (n, grid.size) and np.all(np.diff(grid) > 0)
    np.testing.assert_allclose(pz.sum(axis=1), 1.0, atol=1e-5)
    assert (pz >= 0).all()
    for name in ("z", "z_lo", "z_hi", "z_mode"):
        assert np.isfinite(table[name]).all(), name
    assert (table["z_lo"] <= table["z"]).all() and (table["z"] <= table["z_hi"]).all()
    # z is the median of p(z) (where its cumulative crosses one half, within a bin); a network's
    # moves into the most probable peak when its p(z) is multimodal (RedshiftHead.point_estimate)
    moved = np.zeros(n, dtype=bool)
    head = RedshiftHead(1, n_bins=grid.size, z_max=16.0)
    if np.allclose(np.expm1(head.log1pz_centers.numpy()), grid, rtol=1e-5):  # the network's bins
        pdf = torch.as_tensor(pz, dtype=torch.float32)
        point, median = head.point_estimate(pdf).numpy(), np.expm1(head._quantile(pdf, 0.5).numpy())
        np.testing.assert_allclose(np.log1p(table["z"]), np.log1p(point), atol=1e-5)
        moved = point != median
    cdf = np.cumsum(pz, axis=1)
    for row in np.flatnonzero(~moved):
        below = grid[np.searchsorted(cdf[row], 0.5)]
        assert abs(np.log1p(table["z"][row]) - np.log1p(below)) < 2 * np.log1p(16) / grid.size


@pytest.mark.parametrize("bands", [("F150W",), BANDS], ids=["prism+f150w", "prism+4bands"])
def test_embed_and_predict_redshift_on_real_files(embedder, jades, bands):
    images, spectra = _inputs(jades, bands)
    result = embedder.embed(images=images, spectra=spectra)
    assert np.isfinite(result.fused).all() and result.present.all()
    table = predict_redshift(images=images, spectra=spectra, embedder=embedder)
    _check_redshift_table(table, 2)


def test_predictions_from_one_pass_agree_and_do_not_depend_on_batch_size(embedder, jades):
    images, spectra = _inputs(jades, BANDS)
    combined = predict(images=images, spectra=spectra, embedder=embedder)
    assert combined.colnames == ["z", "z_lo", "z_hi", "log_mass", "log_mass_err", "morphology", "p_morphology",
                                 "z_method", "z_flag", "input_flag"]
    one_by_one = predict(images=images, spectra=spectra, embedder=embedder, batch_size=1)
    redshift = predict_redshift(images=images, spectra=spectra, embedder=embedder)
    mass = predict_stellar_mass(images=images, spectra=spectra, embedder=embedder)
    morphology = classify_morphology(images=images, spectra=spectra, embedder=embedder)
    for name in ("z", "z_lo", "z_hi"):
        np.testing.assert_allclose(combined[name], redshift[name], rtol=1e-6)
        np.testing.assert_allclose(one_by_one[name], combined[name], rtol=1e-4)
    for name in ("log_mass", "log_mass_err"):
        np.testing.assert_allclose(combined[name], mass[name], rtol=1e-6)
    assert list(combined["morphology"]) == list(morphology["morphology"])
    # Independent reference: the heads applied by hand to the fused embedding.
    fused = torch.from_numpy(embedder.embed(images=images, spectra=spectra).fused)
    reference = embedder.model.heads["log_mass"].predict(fused)
    np.testing.assert_allclose(mass["log_mass"], reference["log_mass"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(mass["log_mass_err"], reference["log_mass_sigma"].numpy(), rtol=1e-5)
    assert (mass["log_mass_err"] > 0).all()


def test_morphology_table(embedder, jades):
    images, spectra = _inputs(jades)
    table = classify_morphology(images=images, spectra=spectra, embedder=embedder)
    names = morphology_column_names()
    assert table.colnames == ["morphology", *names]
    assert names == ["p_spheroid", "p_disk", "p_bulge_disk", "p_clumpy_irregular", "p_merger", "p_point_source"]
    probabilities = np.column_stack([table[name] for name in names])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert list(table["morphology"]) == [MORPHOLOGY_CLASSES[i] for i in probabilities.argmax(axis=1)]


def _brighter(spectrum, cutout, factor=10.0):
    bright_spectrum = Spectrum(
        flux=spectrum.flux * factor,
        spectral_axis=spectrum.spectral_axis,
        uncertainty=StdDevUncertainty(spectrum.uncertainty.array * factor),  # ivar / factor**2
        mask=spectrum.mask,
        meta=dict(spectrum.meta),
    )
    bright_image = NDData(
        cutout.data * factor, unit=cutout.unit, wcs=cutout.wcs, mask=cutout.mask, meta=dict(cutout.meta)
    )
    return bright_spectrum, bright_image


def test_brightness_changes_the_stellar_mass(embedder, jades):
    """Two objects that differ only by a flux factor of 10 get different masses (no per-object normalisation)."""
    (spectrum, _), (cutouts, _) = jades
    bright_spectrum, bright_image = _brighter(spectrum, cutouts["F150W"])
    table = predict_stellar_mass(
        images={"F150W": [cutouts["F150W"], bright_image]}, spectra=[spectrum, bright_spectrum], embedder=embedder
    )
    faint, bright = table["log_mass"]
    # Brighter means more massive, as in the galaxies the head was fitted on.
    assert bright > faint + 0.3
    # Each modality alone carries the brightness too.
    for inputs in ({"spectra": [spectrum, bright_spectrum]}, {"images": {"F150W": [cutouts["F150W"], bright_image]}}):
        alone = predict_stellar_mass(**inputs, embedder=embedder)["log_mass"]
        assert alone[1] > alone[0] + 0.3


def test_reconstruct_spectrum_from_images_alone(embedder, jades):
    images, spectra = _inputs(jades)
    rebuilt = reconstruct_spectrum(images=images, embedder=embedder)
    assert isinstance(rebuilt, Spectrum)
    assert rebuilt.flux.unit == u.nJy and rebuilt.flux.shape == (2, embedder.spectral_grid.n_pixels)
    assert np.isfinite(rebuilt.flux.value).all()
    np.testing.assert_allclose(rebuilt.spectral_axis.to_value(u.um), embedder.spectral_grid.wavelength.to_value(u.um))
    # Reference: the decoder output of the model on the same batch, unstretched by hand.
    batch = make_batch(images=images, image_grid=embedder.image_grid, spectral_grid=embedder.spectral_grid)
    with torch.no_grad():
        decoded = embedder.model(batch).decoded_spectrum.numpy()
    np.testing.assert_allclose(rebuilt.flux.value, SPECTRUM_SOFTENING_NJY * np.sinh(decoded), rtol=1e-4, atol=1e-3)
    # With the spectrum as well, the fused embedding (and so the reconstruction) changes.
    both = reconstruct_spectrum(images=images, spectra=spectra, embedder=embedder)
    assert not np.allclose(both.flux.value, rebuilt.flux.value)


def test_embedder_methods_match_functions(embedder, jades):
    images, spectra = _inputs(jades)
    for method, function in (
        (embedder.predict_redshift, predict_redshift),
        (embedder.predict_stellar_mass, predict_stellar_mass),
        (embedder.classify_morphology, classify_morphology),
        (embedder.predict, predict),
    ):
        a = method(images=images, spectra=spectra)
        b = function(images=images, spectra=spectra, embedder=embedder)
        assert a.colnames == b.colnames
        for name in a.colnames:
            assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name
    rebuilt = embedder.reconstruct_spectrum(spectra=spectra)
    np.testing.assert_array_equal(rebuilt.flux, reconstruct_spectrum(spectra=spectra, embedder=embedder).flux)


def test_model_without_heads_is_a_clear_error(jades):
    model = MultimodalModel(ModelConfig.preset("tiny", prediction_heads=False))
    embedder = MultimodalEmbedder(model, device="cpu")
    _, spectra = _inputs(jades)
    with pytest.raises(ValueError, match="no prediction heads.*fine-tune"):
        predict_redshift(spectra=spectra, embedder=embedder)
    with pytest.raises(ValueError, match="no prediction heads"):
        embedder.predict(spectra=spectra)
    # The decoder does not need heads.
    assert np.isfinite(embedder.reconstruct_spectrum(spectra=spectra).flux.value).all()


def test_default_embedder_is_loaded_once(monkeypatch, embedder, jades):
    calls = []

    def fake_from_pretrained(name="default", device="auto"):
        calls.append(name)
        return embedder

    monkeypatch.setattr(predictions, "_DEFAULT_EMBEDDER", None)
    monkeypatch.setattr(MultimodalEmbedder, "from_pretrained", staticmethod(fake_from_pretrained))
    _, spectra = _inputs(jades)
    first = jwst_embed.predict_redshift(spectra=spectra)
    second = jwst_embed.predict_stellar_mass(spectra=spectra)
    assert calls == ["default"]
    assert len(first) == len(second) == 2


def test_bad_inputs(embedder, jades):
    _, spectra = _inputs(jades)
    with pytest.raises(ValueError, match="no input"):
        predict_redshift(embedder=embedder)
    with pytest.raises(TypeError, match="embedder must be"):
        predict_redshift(spectra=spectra, embedder=42)
    with pytest.raises(ValueError, match="batch_size"):
        predict(spectra=spectra, embedder=embedder, batch_size=0)
    with pytest.raises(ValueError, match="lengths"):
        predict(images={"F150W": [None]}, spectra=spectra, embedder=embedder)


# -- mock galaxies as astropy objects ------------------------------------------------------------


@pytest.fixture(scope="module")
def mock():
    pytest.importorskip("h5py")
    from jwst_embed.simulation import MockSurvey, SurveyConfig

    survey = MockSurvey(SurveyConfig(bands=("F150W", "F444W"), spectrum_fraction=0.7))
    return survey.sample(8, seed=3), survey.config


def test_sample_to_astropy_objects_and_labels(mock):
    from jwst_embed.simulation.export import sample_to_astropy

    sample, config = mock
    images, spectra, labels = sample_to_astropy(sample, config)
    assert sorted(images) == ["F150W", "F444W"] and all(len(v) == 8 for v in images.values())
    image = images["F150W"][0]
    assert image.unit == u.nJy and image.meta["pixel_scale"] == pytest.approx(0.04)
    np.testing.assert_allclose(image.data, sample["images"][0, 0].numpy())
    np.testing.assert_allclose(image.uncertainty.array, sample["images_ivar"][0, 0].numpy())
    has = sample["has_spectrum"].numpy()
    assert [s is not None for s in spectra] == has.tolist() and 0 < has.sum() < 8
    first = spectra[int(np.flatnonzero(has)[0])]
    assert first.flux.unit == u.nJy and first.spectral_axis.unit == u.um
    np.testing.assert_allclose(labels["redshift"], sample["redshift"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(labels["log_mass"], sample["log_mass"].numpy(), rtol=1e-6)
    assert list(labels["morphology"]) == [MORPHOLOGY_CLASSES[i] for i in sample["morphology"].tolist()]


def test_embedding_exported_mock_matches_the_batch_path(mock):
    """The astropy path (NDData/Spectrum -> preprocessing) embeds like the training path (Batch)."""
    from jwst_embed.simulation import sample_to_batch
    from jwst_embed.simulation.export import sample_to_astropy

    sample, config = mock
    torch.manual_seed(1)
    model = MultimodalModel(ModelConfig.preset("tiny"))
    embedder = MultimodalEmbedder(model, device="cpu")
    images, spectra, _ = sample_to_astropy(sample, config)
    result = embedder.embed(images=images, spectra=spectra)
    reference = model.embed(sample_to_batch(sample, config)).numpy()
    np.testing.assert_array_equal(result.present[:, -1], sample["has_spectrum"].numpy())
    # One path: the public API embeds a mock exactly as its training batch does (cutouts already
    # on the model grid are copied, not resampled; spectra on the model grid pass unchanged).
    np.testing.assert_allclose(result.fused, reference, atol=2e-5)
    batch = make_batch(images=images, spectra=spectra, image_grid=embedder.image_grid,
                       spectral_grid=embedder.spectral_grid)
    training = sample_to_batch(sample, config)
    for band in config.bands:
        for field in ("values", "ivar", "mask"):
            np.testing.assert_allclose(getattr(batch.images[band], field).numpy(),
                                       getattr(training.images[band], field).numpy(), rtol=1e-6)  # fmt: skip
    has = sample["has_spectrum"].numpy()
    for field in ("values", "ivar", "mask"):
        np.testing.assert_allclose(getattr(batch.spectra["PRISM"], field).numpy()[has],
                                   getattr(training.spectra["PRISM"], field).numpy()[has], rtol=1e-5, atol=1e-6)  # fmt: skip
    # and one list of class names: the simulator's labels are the head's classes
    from jwst_embed.simulation import MORPHOLOGY_CLASSES as simulated

    assert simulated is MORPHOLOGY_CLASSES


# -- redshift methods -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_fitter():
    from jwst_embed.redshift import TemplateFitter, default_redshift_grid

    # a coarse grid keeps the tests fast; the default fitter has 880 redshifts
    return TemplateFitter(z_grid=default_redshift_grid(20.0, 250))


def test_redshift_methods_share_one_table_layout(embedder, jades, small_fitter):
    images, spectra = _inputs(jades)
    columns = ["z", "z_lo", "z_hi", "z_mode", "pz", "method", "chi2_dof", "z_flag", "input_flag"]
    for method in ("network", "template", "joint", "auto"):
        table = predict_redshift(images=images, spectra=spectra, embedder=embedder, method=method, fitter=small_fitter)
        _check_redshift_table(table, 2)
        assert table.colnames == columns, method
        expected = {"network": "network", "template": "template", "joint": "joint", "auto": "joint"}[method]
        assert list(table["method"]) == [expected] * 2
        grid = table.meta["z_grid"]
        assert table["pz"].shape == (2, grid.size)
        if method == "network":
            assert table["chi2_dof"].mask.all() and (table["z_flag"] & 16).all()
        else:
            assert grid.size == small_fitter.z_grid.size and not table["chi2_dof"].mask.any()
            assert np.all(np.asarray(table["chi2_dof"]) > 0) and not (table["z_flag"] & 16).any()


def test_auto_falls_back_to_the_network_without_a_spectrum(embedder, jades, small_fitter):
    images, spectra = _inputs(jades)
    table = predict_redshift(images=images, spectra=[spectra[0], None], embedder=embedder, fitter=small_fitter)
    assert list(table["method"]) == ["joint", "network"]
    assert list(table["chi2_dof"].mask) == [False, True]
    assert table["z_flag"][1] & 16 and not table["z_flag"][0] & 16
    np.testing.assert_allclose(np.asarray(table["pz"]).sum(axis=1), 1.0)
    # the network row keeps its own redshift, interpolated p(z) or not
    network = predict_redshift(images=images, spectra=[spectra[0], None], embedder=embedder, method="network")
    assert table["z"][1] == pytest.approx(network["z"][1])


def test_template_methods_need_a_spectrum_for_every_object(embedder, jades, small_fitter):
    images, spectra = _inputs(jades)
    for method in ("template", "joint"):
        with pytest.raises(ValueError, match="usable PRISM spectrum.*objects \\[1\\]"):
            predict_redshift(images=images, spectra=[spectra[0], None], embedder=embedder, method=method,
                             fitter=small_fitter)  # fmt: skip
    with pytest.raises(ValueError, match="method must be one of"):
        predict_redshift(spectra=spectra, embedder=embedder, method="photometric")
    with pytest.raises(ValueError, match="method must be one of"):
        predict(spectra=spectra, embedder=embedder, method="template")


def test_template_method_runs_without_a_model(jades, small_fitter):
    _, spectra = _inputs(jades)
    table = predict_redshift(spectra=spectra, method="template", fitter=small_fitter)
    assert list(table["method"]) == ["template", "template"]
    # the JADES HLSP galaxies (z = 2.67, 2.69) from their spectra alone
    np.testing.assert_allclose(np.asarray(table["z"]), [2.6732, 2.6925], rtol=0.05)


def test_predict_reports_how_z_was_made(embedder, jades, small_fitter, monkeypatch):
    images, spectra = _inputs(jades)
    monkeypatch.setitem(prediction_tables._FITTERS, prediction_tables._grid_key(embedder.spectral_grid), small_fitter)
    table = predict(images=images, spectra=[spectra[0], None], embedder=embedder)
    assert list(table["z_method"]) == ["joint", "network"]
    network = predict(images=images, spectra=[spectra[0], None], embedder=embedder, method="network")
    assert list(network["z_method"]) == ["network", "network"]



def test_reconstruct_spectrum_matches_the_observed_flux_level(embedder, jades):
    """With a spectrum given, the decoded spectrum is scaled toward the data's level; never away from it."""
    from jwst_embed.reconstruction import match_amplitude

    images, spectra = _inputs(jades)
    raw = reconstruct_spectrum(images=images, spectra=spectra, embedder=embedder, match_flux=False)
    matched = reconstruct_spectrum(images=images, spectra=spectra, embedder=embedder)
    assert "flux_scale" not in raw.meta
    scale = matched.meta["flux_scale"]
    assert scale.shape == (2,) and np.all(scale >= 0)
    np.testing.assert_allclose(matched.flux.value, raw.flux.value * scale[:, None], rtol=1e-12)
    # the factors are those of match_amplitude on the spectra as the model saw them
    batch = make_batch(images=images, spectra={"PRISM": spectra}, image_grid=embedder.image_grid,
                       spectral_grid=embedder.spectral_grid)  # fmt: skip
    prism = batch.spectra["PRISM"]
    observed, ivar, mask = prism.values.double().numpy(), prism.ivar.double().numpy(), prism.mask.numpy()
    np.testing.assert_allclose(scale, match_amplitude(raw.flux.value, observed, ivar, mask), rtol=1e-6)
    assert not np.allclose(scale, 1.0)
    # the posterior mean lies between the decoder's level and the data's: chi2 cannot grow
    weight = np.where(mask, 0.0, ivar)
    chi2 = [((observed - s.flux.value) ** 2 * weight).sum(axis=1) for s in (raw, matched)]
    assert np.all(chi2[1] <= chi2[0])
    # images alone: no data to match, the decoder's level
    alone = reconstruct_spectrum(images=images, embedder=embedder)
    np.testing.assert_array_equal(alone.meta["flux_scale"], np.ones(2))
