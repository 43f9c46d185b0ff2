"""Optimiser set-up of the pretraining `~jwst_embed.training.pretrain.Trainer`.

`parameter_groups` splits parameters into decayed (matrices) and non-decayed
groups for AdamW; `cosine_with_warmup` is the learning-rate factor of the
schedule (linear warm-up, then cosine decay to a floor).
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

__all__ = ["freeze_all_but", "parameter_groups", "cosine_with_warmup"]


def parameter_groups(modules: list[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: decay on matrices (ndim >= 2) only.

    Biases, LayerNorm scales, learned vectors (type embeddings, temperature)
    are not decayed: shrinking them toward zero has no regularising meaning.

    Parameters
    ----------
    modules : list of `~torch.nn.Module`
        Modules whose trainable parameters are optimised; a parameter shared between
        modules is listed once, frozen ones (``requires_grad`` False) are left out.
    weight_decay : float
        Weight decay of the decayed group.

    Returns
    -------
    groups : list of dict
        Two groups for `torch.optim.AdamW`: matrices with ``weight_decay``, then the
        rest with weight decay 0.
    """
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for parameter in module.parameters():
            if not parameter.requires_grad or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cosine_with_warmup(step: int, warmup_steps: int, max_steps: int, min_lr_fraction: float = 0.0) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to ``min_lr_fraction``.

    Parameters
    ----------
    step : int
        Optimiser step, counted from 0.
    warmup_steps : int
        Steps of linear warm-up (factor ``(step + 1) / warmup_steps``); 0 for none.
    max_steps : int
        Step at which the cosine reaches ``min_lr_fraction``; later steps stay there.
    min_lr_fraction : float
        Final factor, as a fraction of the peak learning rate.

    Returns
    -------
    float
        Multiplier of the peak learning rate, e.g. for `torch.optim.lr_scheduler.LambdaLR`.

    Examples
    --------
    >>> from jwst_embed.training.optim import cosine_with_warmup
    >>> [round(cosine_with_warmup(s, 2, 6), 2) for s in range(7)]
    [0.5, 1.0, 1.0, 0.85, 0.5, 0.15, 0.0]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_fraction + (1.0 - min_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def freeze_all_but(model: nn.Module, names) -> list[nn.Parameter]:
    """Freeze every parameter of ``model`` outside the submodules ``names``; return the others.

    Parameters
    ----------
    model : `torch.nn.Module`
        The model (changed in place: ``requires_grad``).
    names : iterable of str
        Dotted submodule names as ``model.named_modules()`` gives them (``"heads.morphology"``).

    Returns
    -------
    trainable : list of `torch.nn.Parameter`
        The parameters left trainable.

    Raises
    ------
    ValueError
        If a name is not a submodule of ``model``, or names no parameters.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> [tuple(p.shape) for p in freeze_all_but(model, ["1"])]
    [(1, 2), (1,)]
    >>> model[0].weight.requires_grad
    False
    """
    names = list(names)
    modules = dict(model.named_modules())
    unknown = [name for name in names if name not in modules or not name]
    if unknown:
        top = ", ".join(name for name, _ in model.named_children())
        raise ValueError(f"no submodule(s) {unknown} in the model; its top-level modules are: {top}")
    empty = [name for name in names if not any(True for _ in modules[name].parameters())]
    if empty:
        raise ValueError(f"submodule(s) {empty} have no parameters to train")
    prefixes = tuple(f"{name}." for name in names)
    trainable = []
    for name, parameter in model.named_parameters():
        keep = name.startswith(prefixes)
        parameter.requires_grad_(keep)
        if keep:
            trainable.append(parameter)
    return trainable
