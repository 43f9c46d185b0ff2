"""Choosing the torch device: ``"auto"`` means CUDA when present, else Apple MPS, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["autocast", "inference_dtype", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0, allow_mps: bool = True) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a `torch.device`.

    Parameters
    ----------
    device : str or `torch.device`
        ``"auto"`` (CUDA if available, else MPS if allowed and available, else CPU) or an
        explicit device, which is honoured.
    local_rank : int
        Rank of this process on its node: a bare ``"cuda"`` becomes ``cuda:<local_rank>``
        (modulo the number of visible GPUs), so each process of a node gets its own GPU.
    allow_mps : bool
        Whether ``"auto"`` may pick Apple's MPS backend (the trainer does not).

    Returns
    -------
    device : `torch.device`
        With an index for CUDA.

    Raises
    ------
    ValueError
        If the string is not a torch device, or names CUDA or MPS where it is not available.

    Examples
    --------
    >>> from jwst_embed.devices import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif allow_mps and _mps_available():
            device = "mps"
        else:
            device = "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'mps'") from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
        if resolved.index is None:
            resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
    if resolved.type == "mps" and not _mps_available():
        raise ValueError(f"device {str(device)!r} was requested but MPS is not available; use 'auto' or 'cpu'")
    return resolved


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of inference on ``device``: bfloat16 on CUDA, None (float32) elsewhere.

    CPU bfloat16 is slow and less exact on the machines this package targets, so CPUs (and MPS)
    run in float32.

    Parameters
    ----------
    device : `torch.device` or str
        Where the model runs.

    Returns
    -------
    dtype : `torch.dtype` or None

    Examples
    --------
    >>> import torch
    >>> inference_dtype(torch.device("cpu")) is None
    True
    """
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The one autocast policy: ``torch.autocast`` with ``dtype`` on ``device``, or nothing.

    Parameters
    ----------
    device : `torch.device`
        Where the model runs.
    dtype : `torch.dtype` or None
        Reduced precision to run in (e.g. ``torch.bfloat16``); None runs in full precision.

    Returns
    -------
    context : context manager

    Examples
    --------
    >>> import torch
    >>> with autocast(torch.device("cpu"), None):
    ...     (torch.ones(2) * 2).dtype
    torch.float32
    """
    device = torch.device(device)
    # dtype None: autocast explicitly off, so that an enclosing autocast does not leak in
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
