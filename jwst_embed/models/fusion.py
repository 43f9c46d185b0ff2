"""Cross-attention token pooling of whatever modalities an object has, and modality dropout.

Learned query tokens attend over the tokens of all present modalities; the
tokens of absent modalities are removed by a key-padding mask (they receive
exactly zero attention weight), so the values inside an absent modality's
tensors can never change the fused embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import CrossAttentionBlock, init_weights

__all__ = ["FusionPooling", "sample_modality_subset"]


class FusionPooling(nn.Module):
    """Pool a variable set of modality tokens into one L2-normalised embedding.

    Parameters
    ----------
    dim : int
        Token and output width (the shared latent dimension).
    n_queries : int
        Learned query tokens.
    depth, heads : int
        Cross-attention blocks and heads.
    mlp_ratio, dropout : float
        MLP ratio and dropout of the blocks.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import FusionPooling
    >>> pool = FusionPooling(16, n_queries=2, depth=1, heads=2)
    >>> tokens = torch.randn(3, 5, 16)
    >>> absent = torch.tensor([[False] * 5, [False, False, True, True, True], [True] * 4 + [False]])
    >>> fused = pool(tokens, absent)
    >>> fused.shape, bool(torch.allclose(fused.norm(dim=1), torch.ones(3)))
    (torch.Size([3, 16]), True)
    """

    def __init__(
        self,
        dim: int,
        n_queries: int = 8,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(1, n_queries, dim))
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.queries, std=0.02)

    def forward(self, tokens: Tensor, key_padding_mask: Tensor) -> Tensor:
        """Fuse ``tokens (B, T, D)`` with ``key_padding_mask (B, T)`` (True = absent) to ``(B, D)``.

        Raises
        ------
        ValueError
            If an object has no present token (its embedding would be undefined).
        """
        if bool(key_padding_mask.all(dim=1).any()):
            rows = torch.nonzero(key_padding_mask.all(dim=1)).flatten().tolist()
            raise ValueError(f"objects {rows[:10]} have no present modality; cannot embed them")
        queries = self.queries.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        for block in self.blocks:
            queries = block(queries, tokens, key_padding_mask)
        pooled = self.out(self.norm(queries.mean(dim=1)))
        return F.normalize(pooled.float(), dim=-1)


def sample_modality_subset(
    present: Tensor, drop_probability: float, generator: torch.Generator | None = None
) -> Tensor:
    """Hide each present modality with ``drop_probability``, keeping at least one per object.

    Parameters
    ----------
    present : `~torch.Tensor`
        ``(B, M)`` bool presence.
    drop_probability : float
        Chance that a present modality is hidden.
    generator : `torch.Generator`, optional
        Random source (on ``present``'s device).

    Returns
    -------
    subset : `~torch.Tensor`
        ``(B, M)`` bool, a subset of ``present`` with at least one True in each
        row that had one.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import sample_modality_subset
    >>> present = torch.tensor([[True, True, False], [False, False, True]])
    >>> subset = sample_modality_subset(present, 0.99, torch.Generator().manual_seed(0))
    >>> bool((subset <= present).all()), subset.sum(dim=1).tolist()
    (True, [1, 1])
    """
    noise = torch.rand(present.shape, device=present.device, generator=generator)
    subset = present & (noise >= drop_probability)
    # Where everything was dropped, restore the present modality with the largest noise.
    emptied = present.any(dim=1) & ~subset.any(dim=1)
    keep = torch.where(present, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
    restore = F.one_hot(keep, present.shape[1]).bool() & emptied[:, None]
    return subset | restore
