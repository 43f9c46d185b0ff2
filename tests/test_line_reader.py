"""The spectrum line reader in the multimodal model, and training downstream of frozen encoders."""

import numpy as np
import pytest
import torch

from jwst_embed.models import ModelConfig, MultimodalModel, SpectrumLineReader
from jwst_embed.training.data import SyntheticSource
from jwst_embed.training.downstream import (
    DownstreamConfig,
    TokenPool,
    build_token_pool,
    evaluate_pool,
    train_downstream,
    train_line_reader,
)


@pytest.fixture(scope="module")
def config():
    return ModelConfig.preset("tiny", line_reader_depth=2, line_reader_width=32, redshift_bins=64)


def test_line_reader_keeps_positions():
    torch.manual_seed(0)
    reader = SpectrumLineReader(length=128, patch=16, width=16, depth=2, n_tokens=1, out_width=8).eval()
    spectrum = torch.zeros(2, 128)
    spectrum[0, 40] = 5.0  # the same line at two wavelengths
    spectrum[1, 90] = 5.0
    out = reader(spectrum, torch.ones(2, 128))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    with pytest.raises(ValueError, match="odd"):
        SpectrumLineReader(kernel=4)


def test_model_with_line_reader_pads_image_tokens(config):
    model = MultimodalModel(config).eval()
    batch = SyntheticSource(batch_size=6, spectrum_fraction=0.5, seed=1).batch(0)
    output = model(batch)
    n_slots = config.tokens_per_modality
    assert n_slots == 1 + config.n_summary_tokens + config.line_tokens
    for name, tokens in output.tokens.items():
        assert tokens.shape == (6, n_slots, config.latent_dim), name
    padding = output.token_padding
    prism = output.modalities.index("PRISM")
    assert not padding[prism].any()
    assert padding[0, 1 + config.n_summary_tokens :].all() and not padding[0, : 1 + config.n_summary_tokens].any()
    # fusing a subset by hand equals the model's own output for that subset
    stacked = torch.stack([output.tokens[name] for name in output.modalities], dim=1)
    fused = model.fuse(stacked, output.present, padding)
    torch.testing.assert_close(fused, output.fused)


def test_cached_image_tokens_give_the_same_embedding(config):
    model = MultimodalModel(config).eval()
    batch = SyntheticSource(batch_size=5, spectrum_fraction=0.6, seed=2).batch(0)
    cached = model.encode_images(batch)
    assert set(cached) == set(batch.images)
    direct = model(batch).fused
    again = model(batch, cached_image_tokens=cached).fused
    torch.testing.assert_close(direct, again, atol=1e-5, rtol=1e-5)


def test_v3_configs_still_load():
    # a config written before the line reader existed has none of its fields
    old = ModelConfig.preset("tiny").to_dict()
    for key in ("line_reader_depth", "line_reader_width", "line_reader_kernel", "line_reader_readout",
                "line_tokens", "line_reader_weight", "redshift_bins", "redshift_label_sigma"):  # fmt: skip
        old.pop(key)
    model = MultimodalModel(ModelConfig.from_dict(old))
    assert model.line_reader is None and model.config.tokens_per_modality == 2
    with pytest.raises(ValueError, match="line_reader_weight"):
        ModelConfig.preset("tiny", line_reader_weight="ivar")


@pytest.fixture(scope="module")
def pools(config):
    from jwst_embed.simulation import MockSurvey, SurveyConfig

    torch.manual_seed(0)
    model = MultimodalModel(config)
    survey = MockSurvey(SurveyConfig(bands=("F150W", "F444W")))
    pool = build_token_pool(model, survey, 48, seed=11, batch_size=24, progress=False)
    validation = build_token_pool(model, survey, 24, seed=12, batch_size=24, progress=False)
    return model, survey, pool, validation


def test_token_pool_round_trip(pools, tmp_path):
    model, survey, pool, _ = pools
    assert pool.image_tokens.shape == (48, 2, 1 + model.config.n_summary_tokens, model.config.latent_dim)
    assert pool.image_tokens.dtype == torch.float16
    path = tmp_path / "pool.pt"
    pool.save(path)
    again = TokenPool.load(path)
    assert again.bands == ("F150W", "F444W") and len(again) == 48
    torch.testing.assert_close(again.spectrum_noiseless, pool.spectrum_noiseless)


def test_downstream_training_moves_only_the_downstream_modules(pools):
    from jwst_embed.simulation import MockSurvey, SurveyConfig

    model, survey, pool, validation = pools
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("image_encoder", "spectrum_encoder"))}
    fusion_before = model.fusion.out.weight.detach().clone()
    settings = DownstreamConfig(line_reader_steps=3, steps=4, batch_size=16)
    history = train_line_reader(model, MockSurvey(SurveyConfig(bands=())), settings, progress=False)
    assert history == [] or np.isfinite(history[-1]["loss"])
    history = train_downstream(model, pool, survey.spectrum_simulator.instrument, settings,
                               validation=validation, validate_every=2, progress=False)  # fmt: skip
    scores = [record for record in history if "val_z_sigma_nmad_PRISM" in record]
    assert len(scores) == 2 and all(np.isfinite(v) for v in scores[-1].values())
    for key, value in frozen_before.items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)
    assert not torch.equal(model.fusion.out.weight, fusion_before)
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again for the caller
    direct = evaluate_pool(model, validation, survey.spectrum_simulator.instrument)
    assert direct == evaluate_pool(model, validation, survey.spectrum_simulator.instrument)  # fixed noise seed


def test_downstream_training_stops_at_its_time_budget(pools):
    from jwst_embed.training.downstream import _cosine

    model, survey, pool, validation = pools
    assert pool.to("cpu") is pool and pool.device.type == "cpu"
    calls = []
    settings = DownstreamConfig(steps=10**6, batch_size=8)
    history = train_downstream(model, pool, survey.spectrum_simulator.instrument, settings, validation=validation,
                               validate_every=10**6, progress=False, max_seconds=1.0,
                               on_validation=lambda step, scores: calls.append((step, scores)))  # fmt: skip
    # stopped by time long before the step count, and validated (and checkpointed) where it stopped
    assert len(calls) == 1 and 0 < calls[0][0] < 10**6
    assert history[-1]["step"] == calls[0][0] and np.isfinite(calls[0][1]["z_sigma_nmad_PRISM"])
    # the schedule follows the budget: at the end of the budget the rate is at its floor
    assert _cosine(500, 10**6, position=10**6) == pytest.approx(0.05)
    assert _cosine(500, 10**6, position=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max_seconds"):
        train_downstream(model, pool, survey.spectrum_simulator.instrument, settings, max_seconds=0.0, progress=False)
