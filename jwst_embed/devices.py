"""Choosing the torch device: ``"auto"`` means CUDA when present, else Apple MPS, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


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
