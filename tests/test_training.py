"""Tests of the pretraining loop, its configuration, validation metrics, fine-tuning and the CLI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from jwst_embed.cli import main
from jwst_embed.models import MassHead, ModelConfig, MultimodalModel, RedshiftHead
from jwst_embed.training.checkpoint import load_checkpoint, load_model
from jwst_embed.training.pretrain import (
    SyntheticSource,
    TrainConfig,
    Trainer,
    cosine_with_warmup,
    parameter_groups,
)
from jwst_embed.training.validation import knn_redshift, outlier_fraction, sigma_nmad, spectrum_r2
from jwst_embed.tuning import FineTuner

# One thread: the suite may share the machine's 2 cores, and oversubscribed threads spin.
FAST = dict(preset="tiny", batch_size=8, warmup_steps=5, lr=2e-3, validate_every=0, num_threads=1, deterministic=True)


def _trainer(tmp_path, **changes) -> Trainer:
    config = TrainConfig(**{**FAST, "out_dir": str(tmp_path), **changes})
    return Trainer(config, source=SyntheticSource(config.batch_size, seed=config.seed), progress=False)


def test_tiny_loss_falls(tmp_path):
    history = _trainer(tmp_path, max_steps=50, checkpoint_every=0).train()
    losses = np.array([record["loss"] for record in history])
    assert len(losses) == 50 and np.isfinite(losses).all()
    assert losses[-5:].mean() < 0.7 * losses[:5].mean()
    # Rank 0 wrote the model file and a metrics row every log_every (10) steps.
    assert load_model(tmp_path / "model.pt").config == ModelConfig.preset("tiny")
    with open(tmp_path / "metrics.csv", newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [10, 20, 30, 40, 50]


def test_resume_continues_exactly(tmp_path):
    uninterrupted = _trainer(tmp_path / "a", max_steps=8).train()
    first = _trainer(tmp_path / "b", max_steps=8)
    first.train(until_step=4)
    assert first.step == 4 and (tmp_path / "b" / "latest.pt").is_file()
    assert not (tmp_path / "b" / "model.pt").exists()  # not finished yet
    # A fresh process state: other weights, other global RNG draws, then resume.
    torch.manual_seed(123)
    second = _trainer(tmp_path / "b", max_steps=8, seed=0)
    resumed = second.train(resume=True)
    assert [r["step"] for r in resumed] == [5, 6, 7, 8]
    expected = [r["loss"] for r in uninterrupted[4:]]
    np.testing.assert_allclose([r["loss"] for r in resumed], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose([r["lr"] for r in resumed], [r["lr"] for r in uninterrupted[4:]], rtol=1e-12)
    final_a = load_model(tmp_path / "a" / "model.pt").state_dict()
    final_b = load_model(tmp_path / "b" / "model.pt").state_dict()
    for name, value in final_a.items():
        torch.testing.assert_close(final_b[name], value, rtol=0, atol=1e-6)


def test_train_modules_trains_only_those(tmp_path):
    trainer = _trainer(tmp_path, max_steps=6, checkpoint_every=0, train_modules=["image_encoder", "heads.morphology"])
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    changed = {name for name, value in after.items() if not torch.equal(value, before[name])}
    assert changed, "nothing trained"
    assert all(name.startswith(("image_encoder.", "heads.morphology.")) for name in changed), sorted(changed)[:5]
    assert any(name.startswith("heads.morphology.") for name in changed)
    assert any(name.startswith("image_encoder.") for name in changed)


def test_unmasked_training_has_no_masked_modelling_terms(tmp_path):
    history = _trainer(tmp_path, max_steps=2, checkpoint_every=0, mask_inputs=False).train()
    assert all(np.isfinite(record["loss"]) for record in history)
    assert not any("spectrum_mask" in record or "image_mask" in record for record in history)
    masked = _trainer(tmp_path / "masked", max_steps=1, checkpoint_every=0).train()
    assert "image_mask" in masked[0] and "spectrum_mask" in masked[0]


def test_train_modules_are_checked():
    with pytest.raises(ValueError, match="no submodule"):
        _trainer(None, max_steps=2, out_dir=None, train_modules=["image_encoderr"])
    with pytest.raises(ValueError, match="empty"):
        TrainConfig(**FAST, train_modules=[])
    with pytest.raises(ValueError, match="list of module names"):
        TrainConfig(**FAST, train_modules="image_encoder")


def test_resume_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _trainer(tmp_path, max_steps=2).train(resume=tmp_path / "nope.pt")


def test_resume_rejects_other_model(tmp_path):
    _trainer(tmp_path, max_steps=2).train()
    other = Trainer(TrainConfig(**{**FAST, "out_dir": str(tmp_path), "max_steps": 4, "model": {"latent_dim": 32}}),
                    source=SyntheticSource(8), progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="model configuration differs"):
        other.train(resume=True)


def test_validation_during_training_is_logged(tmp_path):
    history = _trainer(tmp_path, max_steps=4, validate_every=2, n_validation=32, log_every=0).train()
    logged = [r for r in history if "val_redshift_sigma_nmad" in r]
    assert [r["step"] for r in logged] == [2, 4]
    for record in logged:
        assert math.isfinite(record["val_redshift_sigma_nmad"]) and record["val_redshift_sigma_nmad"] >= 0
        assert 0 <= record["val_redshift_outlier_fraction"] <= 1
        assert record["val_spectrum_r2"] <= 1 and record["val_spectrum_r2_images"] <= 1
    with open(tmp_path / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["2", "4"] and all(row["val_spectrum_r2"] for row in rows)


def test_schedule_and_parameter_groups():
    factors = [cosine_with_warmup(step, 10, 110, 0.1) for step in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert factors[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    model = MultimodalModel(ModelConfig.preset("tiny"))
    decay, no_decay = parameter_groups([model], 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_train_config_toml(tmp_path):
    from pathlib import Path

    default_file = Path(__file__).parents[1] / "configs" / "pretrain_default.toml"
    assert TrainConfig.from_toml(default_file) == TrainConfig()  # the committed file documents the defaults
    path = tmp_path / "run.toml"
    path.write_text('preset = "tiny"\nmax_steps = 7\n[survey]\nbands = ["F150W"]\n[model]\ndropout = 0.1\n')
    config = TrainConfig.from_toml(path, max_steps=9)
    assert (config.preset, config.max_steps, config.survey, config.model) == ("tiny", 9, {"bands": ["F150W"]}, {"dropout": 0.1})
    assert TrainConfig.from_dict(config.to_dict()) == config
    path.write_text("max_step = 7\n")
    with pytest.raises(ValueError, match=r"unknown keys \['max_step'\].*max_steps"):
        TrainConfig.from_toml(path)
    with pytest.raises(ValueError, match="unknown model preset"):
        TrainConfig(preset="huge")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_sigma_nmad_and_outliers_against_definition():
    rng = np.random.default_rng(0)
    z_true = rng.uniform(0.2, 10, 501)
    dz = rng.normal(0.0, 0.05, 501)
    z_pred = z_true + dz * (1 + z_true)
    mad = np.median(np.abs(dz - np.median(dz)))
    assert sigma_nmad(z_pred, z_true) == pytest.approx(1.4826 * mad)
    assert sigma_nmad(z_pred, z_true) == pytest.approx(0.05, rel=0.15)  # NMAD of a Gaussian is its sigma
    assert outlier_fraction(z_pred, z_true) == pytest.approx(np.mean(np.abs(dz) > 0.15))
    with pytest.raises(ValueError, match="equal length"):
        sigma_nmad([1.0], [1.0, 2.0])


def test_knn_redshift_recovers_smooth_embedding():
    rng = np.random.default_rng(1)
    z = rng.uniform(0.5, 8.0, 400)
    angle = np.log1p(z)
    embedding = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(z)], axis=1) * rng.uniform(0.5, 2, (400, 1))
    z_pred, z_true = knn_redshift(embedding, z)
    assert len(z_pred) == 200 and sigma_nmad(z_pred, z_true) < 0.01
    shuffled, _ = knn_redshift(rng.normal(size=(400, 3)), z)
    assert sigma_nmad(shuffled, z_true) > 0.1  # random embeddings carry no redshift


def test_spectrum_r2_matches_sklearn():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(2)
    truth = rng.normal(size=(5, 50)).cumsum(axis=1)
    prediction = truth + rng.normal(scale=0.5, size=truth.shape)
    ours = spectrum_r2(torch.tensor(prediction), torch.tensor(truth)).numpy()
    np.testing.assert_allclose(ours, [r2_score(t, p) for t, p in zip(truth, prediction, strict=True)], rtol=1e-10)
    flat = spectrum_r2(torch.zeros(1, 4), torch.ones(1, 4))
    assert torch.isnan(flat).all()  # constant truth: undefined, dropped by the caller


def _finetune_data():
    source = SyntheticSource(32, seed=5)
    return [source.batch(k) for k in range(4)]


def test_finetuner_frozen_backbone_learns_head_only():
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuner = FineTuner(model, MassHead(model.config.latent_dim, hidden=32, depth=1), freeze_backbone=True)
    batches = _finetune_data()
    losses = tuner.fit(batches, "log_mass", epochs=30, lr=3e-3, batch_size=32)
    assert losses[-1] < 0.5 * losses[0]
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    prediction = tuner.predict(batches)
    assert prediction["log_mass"].shape == (128,) and torch.isfinite(prediction["log_mass"]).all()


def test_finetuner_end_to_end_updates_backbone_and_skips_missing_labels():
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny"))
    before = [p.detach().clone() for p in model.parameters()]
    tuner = FineTuner(model, RedshiftHead(model.config.latent_dim, n_bins=32, hidden=32, depth=1), freeze_backbone=False)
    batches = _finetune_data()[:2]
    targets = [b.targets["redshift"].clone() for b in batches]
    targets[0][:5] = float("nan")  # missing labels are left out, not trained on as NaN
    losses = tuner.fit(batches, targets, epochs=3, lr=1e-3)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    with pytest.raises(ValueError, match="rows"):
        tuner.fit(batches, torch.zeros(3), epochs=1)


def test_resume_continues_exactly_on_mock_survey(tmp_path):
    # The on-the-fly simulator as the data stream: batch k depends only on (seed, k).
    pytest.importorskip("h5py")

    def run(out, **changes):
        config = TrainConfig(**{**FAST, "batch_size": 6, "max_steps": 6, "out_dir": str(out), **changes})
        return Trainer(config, progress=False)

    uninterrupted = run(tmp_path / "a").train()
    part = run(tmp_path / "b")
    part.train(until_step=3)
    assert type(part.source).__name__ == "SurveySource"
    resumed = run(tmp_path / "b").train(resume=True)
    np.testing.assert_allclose([r["loss"] for r in resumed], [r["loss"] for r in uninterrupted[3:]], rtol=0, atol=1e-6)


def test_cli_train_on_prepared_file(tmp_path):
    pytest.importorskip("h5py")
    from jwst_embed.simulation import MockSurvey, write_mock

    path = write_mock(tmp_path / "mock.h5", MockSurvey(), 24, seed=1, chunk_size=8, progress=False)
    config = tmp_path / "run.toml"
    config.write_text(f'data = "{path}"\nbatch_size = 4\nvalidate_every = 2\nn_validation = 8\nnum_threads = 1\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--preset", "tiny", "--max-steps", "2", "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["step"] == "2" and float(rows[-1]["val_redshift_sigma_nmad"]) >= 0
    assert load_model(out / "model.pt").config == ModelConfig.preset("tiny")


def test_cli_train_writes_model(tmp_path, capsys):
    out = tmp_path / "run"
    # No data option: the on-the-fly mock survey.
    status = main(["train", "--max-steps", "3", "--preset", "tiny", "--out", str(out),
                   "--batch-size", "4", "--device", "cpu", "--no-progress"])  # fmt: skip
    assert status == 0
    assert "done at step 3" in capsys.readouterr().out
    model = load_model(out / "model.pt")
    assert model.config == ModelConfig.preset("tiny")
    # Resuming a finished run does nothing more and keeps the step.
    assert main(["train", "--max-steps", "3", "--preset", "tiny", "--out", str(out),
                 "--batch-size", "4", "--device", "cpu", "--no-progress", "--resume"]) == 0  # fmt: skip
    assert load_checkpoint(out / "latest.pt")["step"] == 3
    # A new run into a finished run's folder is refused (its files stay), unless --overwrite.
    before = (out / "model.pt").read_bytes()
    new_run = ["train", "--max-steps", "2", "--preset", "tiny", "--out", str(out), "--synthetic",
               "--batch-size", "4", "--device", "cpu", "--no-progress"]  # fmt: skip
    with pytest.raises(SystemExit, match="holds another run.*--overwrite"):
        main(new_run)
    assert (out / "model.pt").read_bytes() == before
    assert load_checkpoint(out / "latest.pt")["step"] == 3
    assert main([*new_run, "--overwrite"]) == 0
    assert load_checkpoint(out / "latest.pt")["step"] == 2
    with pytest.raises(SystemExit, match="unknown keys"):
        bad = tmp_path / "bad.toml"
        bad.write_text("learning_rate = 1.0\n")
        main(["train", "--config", str(bad)])
    # --init-from: a continued run starts from the finished run's weights; a missing file is a clear error.
    assert main(["train", "--max-steps", "1", "--preset", "tiny", "--out", str(tmp_path / "more"), "--synthetic",
                 "--batch-size", "4", "--device", "cpu", "--no-progress", "--init-from", str(out / "model.pt")]) == 0  # fmt: skip
    with pytest.raises(SystemExit, match="init_from: model file"):
        main(["train", "--preset", "tiny", "--synthetic", "--init-from", str(tmp_path / "missing.pt")])


def test_committed_training_configs_parse():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "configs").glob("*.toml")):
        config = TrainConfig.from_toml(path)
        # a size, or the configuration of the model the run continues
        assert config.preset in ("tiny", "small", "base") or (config.preset == "init" and config.init_from), path


def test_init_from_starts_from_a_model_file(tmp_path):
    """``init_from`` copies a model file's weights (continued pretraining) and checks its size."""
    source = _trainer(tmp_path / "first", max_steps=3)
    source.train()
    first = load_model(tmp_path / "first" / "model.pt").state_dict()
    continued = _trainer(tmp_path / "second", max_steps=2, init_from=str(tmp_path / "first" / "model.pt"), seed=1)
    assert continued.step == 0  # a new run, not a resume
    for name, value in continued.model.state_dict().items():
        torch.testing.assert_close(value.cpu(), first[name], rtol=0, atol=0)
    fresh = _trainer(tmp_path / "third", max_steps=2, seed=1).model.state_dict()
    assert any(not torch.equal(fresh[name], first[name]) for name in first)
    with pytest.raises(FileNotFoundError, match="init_from"):
        _trainer(tmp_path / "x", max_steps=2, init_from=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="init_from.*set preset"):
        _trainer(tmp_path / "y", max_steps=2, init_from=str(tmp_path / "first" / "model.pt"), model={"latent_dim": 32})


def test_initial_temperature_is_configurable(tmp_path):
    trainer = _trainer(tmp_path, max_steps=1, temperature=0.02)
    assert float(trainer.loss_fn.temperature) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="temperature"):
        TrainConfig(temperature=0.001)


def test_cli_errors_are_one_line_without_debug(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--synthetic", "--max-steps", "1", "--batch-size", "2", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main(["train", "--preset", "tiny", *common]) == 0
    capsys.readouterr()
    # resuming with another preset: a clear one-line error and exit status 1, no traceback
    assert main(["train", "--preset", "small", *common, "--resume"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jwst-embed train: error:" in err and "configuration differs" in err
    with pytest.raises(ValueError, match="configuration differs"):
        main(["train", "--preset", "small", *common, "--resume", "--debug"])
    # another seed or batch size would start a different data stream on top of the run
    more = [arg if arg != "1" else "2" for arg in common]  # --max-steps 2
    assert main(["train", "--preset", "tiny", *more, "--resume", "--seed", "5"]) == 1
    assert "seed 0 -> 5" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", *[a if a != "2" else "3" for a in more], "--resume"]) == 1
    assert "batch_size 2 -> 3" in capsys.readouterr().err


def test_the_trained_model_file_carries_a_similarity_whitening(tmp_path):
    """jwst-embed train fits the whitening of the fused embeddings of its validation mocks (all
    inputs, spectra alone, images alone) into model.pt; a run that never validated has none."""
    from jwst_embed import MultimodalEmbedder
    from jwst_embed.models.serialization import load_model_and_extras

    _trainer(tmp_path / "with", max_steps=2, checkpoint_every=0, n_validation=96, validate_every=2).train()
    model, extras = load_model_and_extras(tmp_path / "with" / "model.pt")
    whitening = MultimodalEmbedder.from_pretrained(tmp_path / "with" / "model.pt", device="cpu").similarity_whitening
    assert set(extras) == {"similarity_whitening"} and whitening.dim == model.config.latent_dim
    assert 2 * model.config.latent_dim <= whitening.n_objects <= 3 * 96
    _trainer(tmp_path / "without", max_steps=2, checkpoint_every=0, n_validation=96, validate_every=5).train()
    assert load_model_and_extras(tmp_path / "without" / "model.pt")[1] == {}
