"""Training checkpoints: RNG states for exact resumption, and the checkpoint file helpers.

A training checkpoint (``latest.pt``) holds the model, optimiser, scheduler, step, data-stream
position, RNG states and configurations. Reading and writing files, and model files, live in
`jwst_embed.models.serialization` (imported here too, where they used to be).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..models.serialization import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    atomic_save,
    content_checksum,
    load_checkpoint,
    load_model,
    save_model,
    to_plain,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "atomic_save",
    "to_plain",
    "load_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "save_model",
    "load_model",
    "content_checksum",
]


def capture_rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python RNG states as tensors and lists.

    Returns
    -------
    state : dict
        Loadable with ``weights_only=True``; give it to `restore_rng_state`.
    """
    # The legacy global numpy generator is the state third-party code draws from; keep it too.
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()  # noqa: NPY002
    version, python_state, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": int(version), "state": list(python_state), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore RNG states captured by `capture_rng_state`.

    CUDA states are restored only when as many CUDA devices are visible as were saved.

    Parameters
    ----------
    state : mapping
        A dictionary from `capture_rng_state` (e.g. loaded from a checkpoint), with
        ``"torch"``, ``"numpy"``, ``"python"`` and optionally ``"cuda"`` entries.

    Raises
    ------
    KeyError
        If ``state`` lacks the ``"torch"``, ``"numpy"`` or ``"python"`` entry.
    """
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
