"""Model files and checkpoints as plain data: atomic writes, ``weights_only`` loads, checksums.

A checkpoint is a dictionary of tensors and plain Python values (dicts, lists,
tuples, str, int, float, bool, None) so that it loads with
``torch.load(..., weights_only=True)``: a checkpoint file is data, never code
(a model file from the internet must not be able to run code). Writes go to ``<name>.tmp`` and are renamed over the
target with `os.replace`, which is atomic on POSIX and Windows: a crash or a
kill mid-write leaves the previous checkpoint untouched.

Two kinds of file:

- training checkpoints (``latest.pt``): model, optimiser, scheduler, step,
  data-stream position, RNG states and configurations, enough to resume exactly;
- model files (``model.pt``): model configuration, state dict and metadata only,
  what `load_model` (and the embedder) needs.

The training side (RNG states, resuming) is in `jwst_embed.training.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..version import version
from .config import ModelConfig
from .multimodal import MultimodalModel

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "atomic_save",
    "to_plain",
    "load_checkpoint",
    "save_model",
    "load_model",
    "load_model_and_extras",
    "content_checksum",
    "EXTRAS",
]

#: Format tag of training checkpoints (``latest.pt``).
CHECKPOINT_FORMAT = "jwst_embed-checkpoint-1"
#: Format tag of model-only files (``model.pt``).
MODEL_FORMAT = "jwst_embed-model-1"


def to_plain(value: Any) -> Any:
    """Recursively turn a value into what ``torch.load(..., weights_only=True)`` accepts.

    numpy scalars become Python numbers, numpy arrays tensors, paths and str
    subclasses (e.g. ``torch.__version__``) plain str; dicts, lists and tuples are
    walked; tensors and plain values are kept.

    Parameters
    ----------
    value : object
        Value to store in a checkpoint, possibly nested.

    Returns
    -------
    object
        The same value built only from tensors, torch dtypes and devices, and plain
        Python values (dicts, lists, tuples, str, numbers, bool, None).

    Raises
    ------
    TypeError
        For any other object (it would make the checkpoint need code to load).

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.models.serialization import to_plain
    >>> to_plain({"z": np.float32(1.5), "bands": ("F150W",)})
    {'z': 1.5, 'bands': ('F150W',)}
    """
    if value is None or type(value) in (bool, int, float, str, bytes, complex):
        return value
    if isinstance(value, torch.Tensor | torch.dtype | torch.device):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, str | os.PathLike):
        return str(value) if isinstance(value, str) else os.fspath(value)
    if isinstance(value, bool | int | float):  # subclasses, e.g. IntEnum, numpy-like wrappers
        return bool(value) if isinstance(value, bool) else int(value) if isinstance(value, int) else float(value)
    if isinstance(value, Mapping):
        return {to_plain(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # NamedTuples and other sequence subclasses become plain tuples / lists.
        return tuple(to_plain(v) for v in value) if isinstance(value, tuple) else [to_plain(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a weights-only checkpoint: {value!r}")


def atomic_save(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Save ``payload`` with `torch.save` to ``path + ".tmp"``, then rename it to ``path``.

    Parameters
    ----------
    payload : mapping
        Tensors and plain Python values (numpy scalars and arrays are converted by
        `to_plain`), so that it loads with ``weights_only=True``.
    path : path-like
        Target file; its folder is created if needed.

    Returns
    -------
    path : `~pathlib.Path`

    Notes
    -----
    The temporary file is flushed and fsync'ed before the rename so that the
    rename never exposes a half-written file after a power loss. If writing
    fails, the temporary file is removed and the exception re-raised; ``path``
    keeps its previous content.

    Examples
    --------
    >>> import tempfile, torch
    >>> from jwst_embed.models.serialization import atomic_save, load_checkpoint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = atomic_save({"step": 3, "w": torch.ones(2)}, f"{tmp}/ckpt.pt")
    ...     load_checkpoint(path)["step"]
    3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(to_plain(dict(payload)), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint or model file with ``torch.load(..., weights_only=True)``.

    Parameters
    ----------
    path : path-like
        File written by `atomic_save` (or `save_model`).
    map_location : str or `torch.device`
        Where to put the tensors (default CPU).

    Returns
    -------
    payload : dict

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be read (damaged, truncated, not a torch file) or does not hold a
        dictionary.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} cannot be read as a jwst_embed model or checkpoint (damaged, truncated or another kind "
            f"of file): {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path} holds a {type(payload).__name__}, not a checkpoint dictionary")
    return payload


#: What a model file may hold besides its weights: ``similarity_whitening``, the
#: `~jwst_embed.similarity.SimilarityWhitening` of its fused embeddings over its mock survey.
EXTRAS = ("similarity_whitening",)


def save_model(
    path: str | os.PathLike,
    model: torch.nn.Module,
    metadata: Mapping[str, Any] | None = None,
    extras: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model-only file: configuration, state dict and metadata (atomically).

    Parameters
    ----------
    path : path-like
        Output file, e.g. ``model.pt``.
    model : `~jwst_embed.models.MultimodalModel`
        The model (unwrapped from DDP / ``torch.compile``); must have ``config.to_dict()``.
    metadata : mapping, optional
        Plain values to keep with it (training step, data, versions, ...).
    extras : mapping, optional
        Named additions that are not weights, only those named in ``EXTRAS``: e.g. ``{"similarity_whitening":
        SimilarityWhitening.to_payload()}``; read back by ``load_model_and_extras``.

    Returns
    -------
    path : `~pathlib.Path`

    Raises
    ------
    ValueError
        If an extra is not one of ``EXTRAS``.
    """
    unknown = set(extras or {}) - set(EXTRAS)
    if unknown:
        raise ValueError(f"unknown model-file extras {sorted(unknown)}; known: {list(EXTRAS)}")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    config = model.config.to_dict()
    payload = {
        "format": MODEL_FORMAT,
        "model_class": type(model).__name__,
        "config": config,
        "state_dict": state,
        "metadata": {"jwst_embed_version": version, "torch_version": str(torch.__version__), **dict(metadata or {})},
        "checksum": content_checksum(config, state),
        **dict(extras or {}),
    }
    return atomic_save(payload, path)


def content_checksum(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a model's configuration and weights (every tensor's name, dtype, shape and bytes).

    `save_model` stores it in the file and `load_model` verifies it, so a damaged model file
    (a flipped bit in a weight) is refused instead of loaded with wrong weights.

    Parameters
    ----------
    config : mapping
        The model configuration (``ModelConfig.to_dict()``).
    state : mapping of str to `~torch.Tensor`
        The state dict.

    Returns
    -------
    checksum : str
        Hexadecimal sha256.
    """
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild a `~jwst_embed.models.MultimodalModel` from a model file or a training checkpoint.

    Parameters
    ----------
    path : path-like
        ``model.pt`` written by `save_model`, or a training checkpoint (``latest.pt``).
    map_location : str or `torch.device`
        Device of the returned model.

    Returns
    -------
    model : `~jwst_embed.models.MultimodalModel`
        In eval mode.

    Raises
    ------
    ValueError
        If the file is neither a model file nor a training checkpoint, cannot be read, or fails
        the content checksum `save_model` wrote into it.

    Examples
    --------
    >>> import tempfile
    >>> from jwst_embed.models import ModelConfig, MultimodalModel
    >>> from jwst_embed.models.serialization import load_model, save_model
    >>> model = MultimodalModel(ModelConfig.preset("tiny"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_model(save_model(f"{tmp}/model.pt", model))
    >>> loaded.config == model.config
    True
    """
    return load_model_and_extras(path, map_location)[0]


def load_model_and_extras(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """`load_model`, and the file's ``EXTRAS`` that it holds (``{}`` for a training checkpoint).

    Parameters
    ----------
    path, map_location
        As for `load_model`.

    Returns
    -------
    model : `~jwst_embed.models.MultimodalModel`
    extras : dict
        e.g. ``{"similarity_whitening": {...}}`` (see `save_model`).

    Raises
    ------
    ValueError
        As for `load_model`.
    """
    payload = load_checkpoint(path, map_location=map_location)
    tag = payload.get("format")
    if tag == MODEL_FORMAT:
        config, state = payload["config"], payload["state_dict"]
        # files written before checksums existed (e.g. the shipped ones, checked by their registry
        # sha256 instead) have none
        if "checksum" in payload and content_checksum(config, state) != payload["checksum"]:
            raise ValueError(
                f"{path} fails its content checksum: its weights or configuration were changed after it "
                "was written (a damaged copy?); it was not loaded"
            )
    elif tag == CHECKPOINT_FORMAT:
        config, state = payload["model_config"], payload["model"]
    else:
        raise ValueError(f"{path} is not a jwst_embed model or checkpoint file (format {tag!r})")
    model = MultimodalModel(ModelConfig.from_dict(config))
    model.load_state_dict(state)
    extras = {key: payload[key] for key in EXTRAS if key in payload and tag == MODEL_FORMAT}
    return model.to(map_location).eval(), extras
