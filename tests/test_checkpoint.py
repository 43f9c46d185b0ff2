"""Tests of checkpoint files: weights_only loading, atomic writes, RNG states, model files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.training.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_model,
)
from jwst_embed.training.pretrain import SyntheticSource, TrainConfig, Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(preset="tiny", batch_size=4, max_steps=2, validate_every=0, num_threads=1, out_dir=str(out))
    trainer = Trainer(config, source=SyntheticSource(4), progress=False)
    trainer.train()
    return trainer, out


def test_training_checkpoint_loads_with_weights_only(trained):
    trainer, out = trained
    # Explicitly the safe loader: a checkpoint is data, never code.
    payload = torch.load(out / "latest.pt", map_location="cpu", weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["step"] == 2 and payload["next_batch_index"] == 2 and payload["world_size"] == 1
    assert payload["model_config"] == ModelConfig.preset("tiny").to_dict()
    assert payload["train_config"]["max_steps"] == 2
    assert set(payload["rng"]) >= {"torch", "numpy", "python"}
    assert payload["optimizer"]["state"], "optimiser moments are saved"
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(payload["model"][name], value)
    model_file = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert set(model_file) >= {"config", "state_dict", "metadata"} and model_file["metadata"]["step"] == 2


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    atomic_save({"step": 1, "weights": torch.arange(4.0)}, path)
    original = path.read_bytes()

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"step": 2, "weights": torch.zeros(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert not (tmp_path / "latest.pt.tmp").exists()
    assert load_checkpoint(path)["step"] == 1


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a checkpoint dictionary"):
        load_checkpoint(tmp_path / "list.pt")
    atomic_save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a jwst_embed model"):
        load_model(tmp_path / "other.pt")


def _data_offset(path, entry_suffix: str) -> tuple[int, int]:
    """Start and size of a stored (uncompressed) zip member's bytes inside a torch file."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if i.filename.endswith(entry_suffix) or "/data/" in i.filename),
                   key=lambda i: i.file_size)  # fmt: skip
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def test_damaged_model_files_are_refused(tmp_path):
    path = save_model(tmp_path / "model.pt", MultimodalModel(ModelConfig.preset("tiny")), {"note": "mine"})
    assert load_model(path).config == ModelConfig.preset("tiny")
    start, size = _data_offset(path, "/data/0")
    for k, position in enumerate((start, start + size // 2, start + size - 1)):
        damaged = tmp_path / f"flipped{k}.pt"
        data = bytearray(path.read_bytes())
        data[position] ^= 0x10  # one bit of one weight
        damaged.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="fails its content checksum"):
            load_model(damaged)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot be read"):
        load_model(truncated)
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="cannot be read"):
        load_model(text)


def test_rng_state_round_trip(tmp_path):
    torch.manual_seed(7)
    np.random.seed(7)  # noqa: NPY002 - the legacy global state is what is saved
    random.seed(7)
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])  # noqa: NPY002
    torch.manual_seed(99)
    np.random.seed(99)  # noqa: NPY002
    random.seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])  # noqa: NPY002
    assert [random.random() for _ in range(3)] == expected[2]


def test_model_file_round_trip_gives_same_embeddings(trained, tmp_path):
    trainer, out = trained
    batch = SyntheticSource(6, seed=3).batch(0)
    reference = trainer.model.embed(batch)
    for path in (out / "model.pt", out / "latest.pt", save_model(tmp_path / "copy.pt", trainer.model)):
        model = load_model(path)
        assert isinstance(model, MultimodalModel) and not model.training
        torch.testing.assert_close(model.embed(batch), reference, rtol=0, atol=1e-6)


def test_non_data_payload_is_refused(tmp_path):
    # numpy values become plain data; arbitrary objects would need code to load and are refused.
    atomic_save({"z": np.float32(2.5), "keys": np.arange(3)}, tmp_path / "ok.pt")
    loaded = torch.load(tmp_path / "ok.pt", weights_only=True)
    assert loaded["z"] == 2.5 and torch.equal(loaded["keys"], torch.arange(3))
    with pytest.raises(TypeError, match="weights-only"):
        atomic_save({"thing": object()}, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists() and not (tmp_path / "bad.pt.tmp").exists()
