"""The heads fine-tuning trains: named tasks, custom heads, and their description in the model config."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from typing import Any

from torch import nn

from ..models.config import HEAD_KINDS
from ..models.heads import MassHead, MLPHead, MorphologyHead, RedshiftHead
from ..models.multimodal import build_head

__all__ = ["TASKS", "describe_head", "resolve_head"]

#: Named tasks of `~jwst_embed.tuning.fine_tune`: task -> name of the head in ``model.heads``.
TASKS: dict[str, str] = {"redshift": "redshift", "stellar_mass": "log_mass", "morphology": "morphology"}


def describe_head(head: nn.Module) -> dict[str, Any]:
    """The ``ModelConfig.custom_heads`` spec that rebuilds ``head`` (weights apart).

    Parameters
    ----------
    head : `~torch.nn.Module`
        A `~jwst_embed.models.MLPHead`, `~jwst_embed.models.RedshiftHead`,
        `~jwst_embed.models.MassHead` or `~jwst_embed.models.MorphologyHead`.

    Returns
    -------
    spec : dict
        ``{"kind": ..., **arguments}`` for `~jwst_embed.models.build_head`.

    Raises
    ------
    TypeError
        If the head is of another class (it could be trained but not saved with the model).

    Examples
    --------
    >>> from jwst_embed.tuning import describe_head
    >>> from jwst_embed.models import MLPHead
    >>> describe_head(MLPHead(16, out_dim=2, hidden=32, depth=1))
    {'kind': 'mlp', 'out_dim': 2, 'hidden': 32, 'depth': 1, 'dropout': 0.0}
    """
    kind = {MLPHead: "mlp", RedshiftHead: "redshift", MassHead: "log_mass", MorphologyHead: "morphology"}.get(
        type(head)
    )
    if kind is None:
        raise TypeError(
            f"a {type(head).__name__} head cannot be saved with the model; use one of "
            f"{', '.join(HEAD_KINDS.values())} (from jwst_embed.models.heads)"
        )
    linears = [m for m in head.net if isinstance(m, nn.Linear)]
    dropouts = [m.p for m in head.net if isinstance(m, nn.Dropout)]
    depth = len(linears) - 1
    shape = {
        "hidden": linears[0].out_features if depth else 256,
        "depth": depth,
        "dropout": float(dropouts[0]) if dropouts else 0.0,
    }
    out_features = linears[-1].out_features
    if kind == "mlp":
        return {"kind": kind, "out_dim": out_features, **shape}
    if kind == "redshift":
        # Rounded so that the rebuilt float32 bin edges are the very same numbers.
        z_max = round(math.expm1(float(head.log1pz_edges[-1])), 4)
        return {"kind": kind, "n_bins": out_features, "z_max": z_max, "label_sigma": float(head.label_sigma), **shape}
    if kind == "log_mass":
        return {"kind": kind, **shape, "offset": float(head.offset)}
    return {"kind": kind, "n_classes": out_features, **shape}


def resolve_head(model: nn.Module, task: Any) -> tuple[str, str, nn.Module, dict | None]:
    """The head a fine-tuning ``task`` trains on ``model``.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The model (a copy: a fresh head may be added to it by the caller).
    task : str, `~torch.nn.Module` or (str, `~torch.nn.Module`)
        A name of `TASKS`, a head, or a named head.

    Returns
    -------
    task_name, head_name : str
    head : `~torch.nn.Module`
    spec : dict or None
        What to record in ``config.custom_heads`` (None: nothing, or a head that cannot be saved).

    Raises
    ------
    ValueError, TypeError
        An unknown task, a head without ``loss``, a bad name or a head of the wrong width.
    """
    latent_dim = model.config.latent_dim
    heads = getattr(model, "heads", None)
    if isinstance(task, str):
        key = task.lower()
        if key not in TASKS:
            raise ValueError(
                f"unknown task {task!r}; use one of {', '.join(TASKS)}, a head module with loss(output, target), "
                "or (name, head)"
            )
        name = TASKS[key]
        if heads is not None and name in heads:
            return key, name, heads[name], None
        # A model without prediction heads: add a fresh one, described in the config so it saves.
        spec = {"kind": name}
        return key, name, build_head(spec, latent_dim), spec
    if isinstance(task, nn.Module):
        name, head = "custom", task
    elif isinstance(task, Sequence) and len(task) == 2 and isinstance(task[0], str) and isinstance(task[1], nn.Module):
        name, head = task
    else:
        raise TypeError(f"task must be a task name, an nn.Module head or a (name, head) pair, got {task!r}")
    if not hasattr(head, "loss"):
        raise TypeError(f"the {type(head).__name__} head has no loss(output, target) method")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"head name {name!r} must be an identifier (letters, digits, underscores)")
    first = next((m for m in head.modules() if isinstance(m, nn.Linear)), None)
    if first is not None and first.in_features != latent_dim:
        raise ValueError(f"the head reads {first.in_features} features, but the embedding has {latent_dim}")
    try:
        spec = describe_head(head)
    except TypeError:
        spec = None  # trainable, but save_embedder will refuse it
    return "custom", name, copy.deepcopy(head), spec
