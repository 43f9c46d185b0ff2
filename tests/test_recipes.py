"""`jwst_embed.training.recipes`: the default model is rebuilt by a library call."""

import json

import pytest
import torch

from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.models.serialization import load_model
from jwst_embed.training.recipes import DEFAULT_LEGS, Leg, add_line_reader, train_default_model
from jwst_embed.weights import fetch_weights


def test_the_recipe_builds_the_shipped_architecture():
    # v8 is v5 with two heads refit and its image path trained further (v5 no longer ships): the
    # architecture is v5's
    v3, v5 = load_model(fetch_weights("v3")), load_model(fetch_weights("v8"))
    extended = add_line_reader(v3)
    shapes = {key: tuple(value.shape) for key, value in extended.state_dict().items()}
    assert shapes == {key: tuple(value.shape) for key, value in v5.state_dict().items()}
    assert ModelConfig.from_dict({**extended.config.to_dict()}) == v5.config
    # v3's image encoder is kept as it is (v4 and v5 never trained it)
    torch.testing.assert_close(extended.image_encoder.state_dict(), v3.float().image_encoder.state_dict())
    # the legs that made v5: 4000 + 2000 steps of 128 (v4), then 4724 of 512
    assert [(leg.steps, leg.batch_size) for leg in DEFAULT_LEGS] == [(4000, 128), (2000, 128), (4724, 512)]


def test_train_default_model_runs_the_whole_recipe(tmp_path):
    legs = (Leg(pool=16, steps=2, batch_size=8, reset_heads=("redshift",)), Leg(pool=16, steps=1, batch_size=8, lr_scale=0.5))
    seen = []
    torch.manual_seed(0)
    model = train_default_model(tmp_path, init=MultimodalModel(ModelConfig.preset("tiny")), legs=legs,
                                line_reader_steps=2, validation=8, device="cpu", progress=False, pool_batch=8,
                                on_leg=lambda number, scores: seen.append((number, scores)))  # fmt: skip
    assert model.line_reader is not None and next(model.parameters()).dtype == torch.float16
    assert [number for number, _ in seen] == [1, 2] and "morph_f1" in seen[0][1]
    for name in ("phase1.pt", "model_leg1.pt", "model_leg2.pt", "model.pt"):
        assert (tmp_path / name).is_file()
    assert load_model(tmp_path / "model.pt").config == model.config
    history = json.loads((tmp_path / "history.json").read_text())
    assert [entry["leg"]["steps"] for entry in history["legs"]] == [2, 1]
    with pytest.raises(ValueError, match="positive pool"):
        train_default_model(tmp_path, init=model, legs=(Leg(pool=16, steps=0),))
