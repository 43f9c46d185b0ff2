"""Many processes with ``torchrun``: process-group set-up, device choice, small collectives.

``torchrun --nproc-per-node K -m jwst_embed.cli train ...`` starts K copies of the
trainer with the environment variables ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``
(and a rendezvous address). `init_distributed` reads them, picks the device
(``cuda:LOCAL_RANK`` on GPU nodes) and opens the process group with NCCL on GPU
and gloo on CPU; without them it returns a single-process context and opens
nothing. There is no home-made cluster code: only ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..devices import resolve_device

__all__ = ["DistributedContext", "init_distributed", "shutdown_distributed", "all_reduce_mean"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) job.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank, number of processes, rank on this node.
    device : `torch.device`
        The device this process trains on.
    initialized_here : bool
        True when `init_distributed` opened the process group (and
        `shutdown_distributed` should close it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def init_distributed(device: str | torch.device = "auto", timeout_s: float = 1800.0) -> DistributedContext:
    """Join the ``torchrun`` process group if there is one, and pick this process's device.

    Parameters
    ----------
    device : str or `torch.device`
        ``"auto"``, ``"cpu"``, ``"cuda"`` ...; see ``resolve_device``.
    timeout_s : float
        Timeout of collective operations.

    Returns
    -------
    context : `DistributedContext`

    Notes
    -----
    The backend is NCCL when the device is CUDA and gloo otherwise. If the
    process group is already initialised (e.g. by the caller), it is used as is.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank, allow_mps=False)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    initialized_here = False
    if dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    elif world_size > 1:
        from datetime import timedelta

        backend = "nccl" if resolved.type == "cuda" else "gloo"
        kwargs = {"device_id": resolved} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s), **kwargs)
        rank, world_size = dist.get_rank(), dist.get_world_size()
        initialized_here = True
    return DistributedContext(rank, world_size, local_rank, resolved, initialized_here)


def shutdown_distributed(context: DistributedContext) -> None:
    """Close the process group if `init_distributed` opened it.

    Parameters
    ----------
    context : `DistributedContext`
        The context `init_distributed` returned; a group opened elsewhere is left open.
    """
    if context.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Mean of ``value`` over all processes (the value itself in a single process).

    Parameters
    ----------
    value : `~torch.Tensor`
        Tensor of the same shape on every process, on ``context.device``.
    context : `DistributedContext`
        Where this process sits; every process of the group must call this.

    Returns
    -------
    `~torch.Tensor`
        The mean over processes, detached from the graph (``value`` itself, not a copy,
        in a single process).
    """
    if not context.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / context.world_size
