"""Tests of the torchrun / DistributedDataParallel path (two gloo processes on CPU)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from jwst_embed.devices import resolve_device
from jwst_embed.training.checkpoint import load_checkpoint, load_model
from jwst_embed.training.distributed import init_distributed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_single_process_context(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = init_distributed("cpu")
    assert (context.rank, context.world_size, context.is_main, context.distributed) == (0, 1, True, False)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_two_process_gloo_training(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "jwst_embed.cli", "train", "--synthetic", "--preset", "tiny", "--max-steps", "3",
        "--batch-size", "4", "--device", "cpu", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("done at step 3") == 1  # rank 0 alone reports and writes
    state = load_checkpoint(out / "latest.pt")
    assert (state["step"], state["world_size"], state["next_batch_index"]) == (3, 2, 6)
    model = load_model(out / "latest.pt")  # loads into a single process
    assert model.config.latent_dim == 64
    assert load_model(out / "model.pt").state_dict().keys() == model.state_dict().keys()
