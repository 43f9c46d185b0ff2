"""Fine-tuning on user labels (`jwst_embed.tuning`) and the scikit-learn estimators on embeddings.

A tiny random model on a small mock survey (2 bands at 32 pixels, PRISM at 128 pixels): the
fine-tuned head is compared with the model before fine-tuning and with a predict-the-median
baseline on held-out mocks, never with tuned thresholds on real data.
"""

import astropy.units as u
import numpy as np
import pytest
import torch

from jwst_embed import MultimodalEmbedder
from jwst_embed.estimators import EmbeddingClassifier, EmbeddingRegressor
from jwst_embed.models import MLPHead, ModelConfig, MultimodalModel, RedshiftHead
from jwst_embed.preprocessing import ImageGrid, SpectralGrid
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.simulation.catalogue import sample_to_batch
from jwst_embed.tuning import describe_head, fine_tune, save_embedder


def sigma_nmad(z_pred, z_true):
    dz = (np.asarray(z_pred) - z_true) / (1 + z_true)
    return 1.4826 * np.median(np.abs(dz - np.median(dz)))


@pytest.fixture(scope="module")
def survey_config():
    return SurveyConfig(
        bands=("F150W", "F444W"),
        image_grid=ImageGrid(n_pixels=32),
        spectral_grid=SpectralGrid(n_pixels=128),
        redshift_max=8.0,
    )


@pytest.fixture(scope="module")
def mock(survey_config):
    survey = MockSurvey(survey_config)
    train = survey.sample(256, seed=1)
    test = survey.sample(96, seed=2)
    return sample_to_batch(train, survey_config), sample_to_batch(test, survey_config), survey


@pytest.fixture(scope="module")
def embedder():
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny", image_size=32, spectrum_length=128))
    return MultimodalEmbedder(model, device="cpu")


def _predict_redshift(embedder, batch, head="redshift"):
    fused = embedder.model.embed(batch)
    return embedder.model.heads[head].predict(fused)["z_median"].numpy()


@pytest.fixture(scope="module")
def tuned(embedder, mock):
    train, _, _ = mock
    before = {k: v.clone() for k, v in embedder.model.state_dict().items()}
    result = fine_tune(
        embedder,
        batches=train,
        labels=train.targets["redshift"].numpy(),
        task="redshift",
        epochs=25,
        validation_fraction=0.2,
        progress=False,
    )
    return result, before


def test_redshift_fine_tuning_improves_sigma_nmad(embedder, mock, tuned):
    train, test, _ = mock
    result, _ = tuned
    z_true = test.targets["redshift"].numpy()
    history = result.fine_tune_history
    assert history.task == "redshift" and history.head == "redshift"
    assert len(history.train_loss) == 25 and len(history.validation_loss) == 25
    assert history.train_loss[-1] < 0.95 * history.train_loss[0]
    assert history.validation_loss[-1] < history.validation_loss[0]
    assert history.n_train + history.n_validation == len(train)
    before = sigma_nmad(_predict_redshift(embedder, test), z_true)
    after = sigma_nmad(_predict_redshift(result, test), z_true)
    median_baseline = sigma_nmad(np.full_like(z_true, np.median(train.targets["redshift"].numpy())), z_true)
    assert after < before
    assert after < 0.9 * median_baseline


def test_original_embedder_untouched(embedder, tuned):
    result, before = tuned
    assert result is not embedder and result.model is not embedder.model
    for key, value in embedder.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    # ... while the copy's redshift head did change.
    changed = [
        key
        for key, value in result.model.state_dict().items()
        if key.startswith("heads.redshift") and not torch.equal(value, before[key])
    ]
    assert changed
    backbone = [k for k in before if not k.startswith("heads.")]
    assert all(torch.equal(result.model.state_dict()[k], before[k]) for k in backbone)


def test_save_load_round_trip(tmp_path, mock, tuned):
    _, test, _ = mock
    result, _ = tuned
    path = save_embedder(result, tmp_path / "tuned.pt")
    loaded = MultimodalEmbedder.from_pretrained(path, device="cpu")
    np.testing.assert_array_equal(_predict_redshift(loaded, test), _predict_redshift(result, test))
    payload = torch.load(path, weights_only=True)
    assert payload["metadata"]["fine_tune"]["head"] == "redshift"


def test_custom_heads_save_and_load(tmp_path, embedder, mock):
    train, test, _ = mock
    latent = embedder.latent_dim
    # A custom MLP head for log mass (a dex Quantity) and a custom-binned redshift head.
    log_mass = train.targets["log_mass"].numpy()
    tuned = first = fine_tune(
        embedder,
        batches=train,
        labels=log_mass * u.dex(u.Msun),  # a custom head learns the value in the unit given
        task=("mass_mlp", MLPHead(latent, 1, hidden=32, depth=1)),
        epochs=20,
        lr=3e-3,
        progress=False,
    )
    assert tuned.model.config.custom_heads["mass_mlp"] == {
        "kind": "mlp", "out_dim": 1, "hidden": 32, "depth": 1, "dropout": 0.0
    }
    tuned = fine_tune(
        tuned,
        batches=train,
        labels=train.targets["redshift"].numpy(),
        task=("z_coarse", RedshiftHead(latent, n_bins=40, z_max=10.0, hidden=32, depth=1)),
        epochs=2,
        progress=False,
    )
    assert set(tuned.model.config.custom_heads) == {"mass_mlp", "z_coarse"}
    loaded = MultimodalEmbedder.from_pretrained(save_embedder(tuned, tmp_path / "custom.pt"), device="cpu")
    assert loaded.model.config == tuned.model.config
    fused_a, fused_b = tuned.model.embed(test), loaded.model.embed(test)
    np.testing.assert_array_equal(fused_a.numpy(), fused_b.numpy())
    for name in ("mass_mlp", "z_coarse", "redshift"):
        a, b = tuned.model.heads[name].predict(fused_a), loaded.model.heads[name].predict(fused_b)
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=f"{name}.{key}")
    # The custom mass head learned (its MSE starts near 10**2: it predicts ~0 for log masses ~10).
    losses = first.fine_tune_history.train_loss
    assert losses[-1] < 0.5 * losses[0]


def test_unsaveable_head_is_refused(tmp_path, embedder, mock):
    train, _, _ = mock

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(embedder.latent_dim, 1)

        def forward(self, x):
            return self.linear(x).squeeze(1)

        def loss(self, output, target):
            return torch.nn.functional.mse_loss(output, target)

    tuned = fine_tune(embedder, batches=train, labels=train.targets["redshift"].numpy(), task=Probe(),
                      epochs=1, progress=False)  # fmt: skip
    assert "custom" in tuned.model.heads
    with pytest.raises(TypeError, match="heads"):
        save_embedder(tuned, tmp_path / "probe.pt")
    with pytest.raises(TypeError, match="cannot be saved"):
        describe_head(Probe())


def test_label_errors(embedder, mock):
    train, _, _ = mock
    z = train.targets["redshift"].numpy()
    with pytest.raises(ValueError, match="labels has 10 entries but there are 256 objects"):
        fine_tune(embedder, batches=train, labels=z[:10], progress=False)
    with pytest.raises(ValueError, match="negative"):
        fine_tune(embedder, batches=train, labels=-z, progress=False)
    with pytest.raises(u.UnitsError):
        fine_tune(embedder, batches=train, labels=z * u.km, progress=False)
    with pytest.raises(ValueError, match="log10"):
        fine_tune(embedder, batches=train, labels=10 ** train.targets["log_mass"].numpy(), task="stellar_mass",
                  progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="not one of"):
        fine_tune(embedder, batches=train, labels=["blob"] * len(train), task="morphology", progress=False)
    with pytest.raises(ValueError, match="unknown task"):
        fine_tune(embedder, batches=train, labels=z, task="age", progress=False)
    with pytest.raises(ValueError, match="no object has a label"):
        fine_tune(embedder, batches=train, labels=np.full(len(train), np.nan), progress=False)
    with pytest.raises(TypeError, match="MultimodalEmbedder"):
        fine_tune(embedder.model, batches=train, labels=z, progress=False)
    # a column vector would broadcast against the head's output: refused, with the fix named
    with pytest.raises(ValueError, match=r"1-D array.*\(256, 1\).*ravel"):
        fine_tune(embedder, batches=train, labels=z[:, None], progress=False)
    with pytest.raises(ValueError, match="1-D array"):
        fine_tune(embedder, batches=train, labels=train.targets["log_mass"].numpy()[:, None], task="stellar_mass",
                  progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="one class per object"):
        fine_tune(embedder, batches=train, labels=[["disk"]] * len(train), task="morphology", progress=False)
    # beyond the head's redshift range a label teaches nothing
    with pytest.raises(ValueError, match="exceed the head's range"):
        fine_tune(embedder, batches=train, labels=np.where(np.arange(len(z)) == 3, 1000.0, z), progress=False)
    # a custom head with 2 outputs needs 2 numbers per object
    with pytest.raises(ValueError, match="2 output"):
        fine_tune(embedder, batches=train, labels=z, task=MLPHead(embedder.model.config.latent_dim, 2),
                  progress=False)  # fmt: skip


def test_nan_labels_are_skipped(embedder, mock):
    train, _, _ = mock
    z = train.targets["redshift"].numpy().copy()
    z[::2] = np.nan
    tuned = fine_tune(embedder, batches=train, labels=z, epochs=2, progress=False)
    history = tuned.fine_tune_history
    assert history.n_missing == (len(z) + 1) // 2
    assert history.n_train == len(z) // 2
    assert all(np.isfinite(history.train_loss))


@pytest.mark.parametrize("kind", ["numpy", "masked_column", "masked_quantity"])
def test_masked_labels_are_missing_not_their_fill_values(embedder, mock, kind):
    from astropy.table import MaskedColumn
    from astropy.utils.masked import Masked

    train, _, _ = mock
    z = train.targets["redshift"].numpy().astype(np.float64)
    hidden = np.arange(len(z)) % 3 == 0
    filled = np.where(hidden, -99.0, z)  # a fill value that is no redshift at all
    labels = {
        "numpy": np.ma.MaskedArray(filled, mask=hidden),
        "masked_column": MaskedColumn(filled, mask=hidden),
        "masked_quantity": Masked(filled * u.dimensionless_unscaled, mask=hidden),
    }[kind]
    tuned = fine_tune(embedder, batches=train, labels=labels, epochs=1, progress=False)
    history = tuned.fine_tune_history
    assert history.n_missing == hidden.sum() and history.n_train == (~hidden).sum()
    # masked class names are missing too
    names = np.ma.MaskedArray(np.array(["disk"] * len(train), dtype=object), mask=hidden)
    tuned = fine_tune(embedder, batches=train, labels=names, task="morphology", epochs=1, progress=False)
    assert tuned.fine_tune_history.n_missing == hidden.sum()


def test_morphology_names_and_end_to_end(embedder, mock):
    """Class names as labels, backbone unfrozen: the backbone moves, the loss drops."""
    from jwst_embed.models.heads import MORPHOLOGY_CLASSES

    train, _, _ = mock
    subset = train.index(torch.arange(96))
    names = [MORPHOLOGY_CLASSES[i] for i in subset.targets["morphology"].tolist()]
    names[0] = None  # missing
    tuned = fine_tune(embedder, batches=subset, labels=names, task="morphology", freeze_backbone=False,
                      epochs=3, lr=3e-3, batch_size=32, progress=False)  # fmt: skip
    history = tuned.fine_tune_history
    assert history.n_train == 95 and not history.freeze_backbone
    assert history.train_loss[-1] < history.train_loss[0]
    key = "fusion.queries" if "fusion.queries" in embedder.model.state_dict() else next(
        k for k in embedder.model.state_dict() if k.startswith("fusion.")
    )
    assert not torch.equal(tuned.model.state_dict()[key], embedder.model.state_dict()[key])


def test_astropy_inputs(embedder, survey_config, mock):
    """The user-level path: NDData cutouts and Spectrum objects, labels as a dimensionless Quantity."""
    export = pytest.importorskip("jwst_embed.simulation.export")
    _, _, survey = mock
    sample = survey.sample(24, seed=3)
    images, spectra, labels = export.sample_to_astropy(sample, survey_config)
    z = np.asarray(labels["redshift"], dtype=float)
    z[3] = np.nan
    tuned = fine_tune(embedder, images=images, spectra=spectra, labels=z * u.dimensionless_unscaled,
                      epochs=2, batch_size=8, progress=False)  # fmt: skip
    assert tuned.fine_tune_history.n_train == 23
    with pytest.raises(ValueError, match="labels has 23 entries but there are 24 objects"):
        fine_tune(embedder, images=images, spectra=spectra, labels=z[:-1], progress=False)


def test_estimators_on_arrays(embedder, mock):
    train, test, _ = mock
    x_train, x_test = embedder.model.embed(train).numpy(), embedder.model.embed(test).numpy()
    y_train, y_test = train.targets["log_mass"].numpy(), test.targets["log_mass"].numpy()
    y_train_missing = y_train.copy()
    y_train_missing[:5] = np.nan
    regressor = EmbeddingRegressor().fit(x_train, y_train_missing * u.dex(u.Msun))
    mse = np.mean((regressor.predict(x_test) - y_test) ** 2)
    mean_mse = np.mean((y_train.mean() - y_test) ** 2)
    assert mse < 0.8 * mean_mse
    assert regressor.score(x_test, y_test) > 0.2
    assert regressor.get_params()["estimator"] is None  # sklearn conventions: BaseEstimator params

    # Classes the random tiny backbone can see (colours and spectra carry redshift): z above 3 or not.
    m_train = np.where(train.targets["redshift"].numpy() > 3, "high-z", "low-z")
    m_test = np.where(test.targets["redshift"].numpy() > 3, "high-z", "low-z")
    classifier = EmbeddingClassifier().fit(x_train, m_train)
    majority = max(np.mean(m_test == "high-z"), np.mean(m_test == "low-z"))
    assert classifier.score(x_test, m_test) > majority
    assert classifier.predict_proba(x_test).shape == (len(m_test), len(classifier.classes_))


def test_estimator_embeds_astropy_inputs(embedder):
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, embedder.latent_dim))
    estimator = EmbeddingRegressor(estimator=KNeighborsRegressor(3)).fit(x, x[:, 0])
    assert estimator.predict(x[:2]).shape == (2,)
    with pytest.raises(ValueError, match="embedder"):
        EmbeddingRegressor().fit({"spectra": [None]}, [1.0])
    with pytest.raises(ValueError, match="y has 3 entries"):
        EmbeddingRegressor().fit(x, [1.0, 2.0, 3.0])


def test_diverged_fine_tuning_warns(embedder, mock):
    train, _, _ = mock
    z = train.targets["redshift"].numpy()
    with pytest.warns(RuntimeWarning, match="diverged"):
        fine_tune(embedder, batches=train, labels=z, epochs=3, lr=1e4, freeze_backbone=False, progress=False)


def test_old_fine_tuning_import_paths_work_and_warn():
    import importlib
    import sys

    import jwst_embed.tuning as tuning

    for name in ("jwst_embed.fine_tuning", "jwst_embed.training.finetune"):
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match="deprecated"):
            old = importlib.import_module(name)
        if name.endswith("fine_tuning"):
            assert old.fine_tune is tuning.fine_tune and old.save_embedder is tuning.save_embedder
            assert old.EmbeddingRegressor is EmbeddingRegressor
        else:
            assert old.FineTuner is tuning.FineTuner
    import jwst_embed.training

    with pytest.warns(DeprecationWarning, match="jwst_embed.tuning"):
        assert jwst_embed.training.FineTuner is tuning.FineTuner


def test_similarity_whitening_follows_a_frozen_backbone_only(tmp_path, mock):
    """Heads-only tuning keeps the fused embeddings, so their whitening goes with the model (and its file);
    tuning the backbone moves them, so the stale whitening is dropped."""
    from jwst_embed.similarity import SimilarityWhitening

    train, _, _ = mock
    subset = train.index(torch.arange(64))
    torch.manual_seed(0)
    source = MultimodalEmbedder(MultimodalModel(ModelConfig.preset("tiny", image_size=32, spectrum_length=128)), device="cpu")
    dim = source.latent_dim
    source.similarity_whitening = SimilarityWhitening.fit(np.random.default_rng(0).normal(size=(4 * dim, dim)))
    z = subset.targets["redshift"].numpy()
    frozen = fine_tune(source, batches=subset, labels=z, task="redshift", epochs=1, progress=False)
    assert frozen.similarity_whitening is source.similarity_whitening
    loaded = MultimodalEmbedder.from_pretrained(save_embedder(frozen, tmp_path / "frozen.pt"), device="cpu")
    np.testing.assert_allclose(loaded.similarity_whitening.mean, source.similarity_whitening.mean, atol=1e-6)
    moved = fine_tune(source, batches=subset, labels=z, task="redshift", epochs=1, freeze_backbone=False, progress=False)
    assert moved.similarity_whitening is None
    reloaded = MultimodalEmbedder.from_pretrained(save_embedder(moved, tmp_path / "moved.pt"), device="cpu")
    assert reloaded.similarity_whitening is None
