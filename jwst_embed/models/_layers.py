"""Small transformer building blocks shared by the encoders, the fusion and the decoder.

Pre-norm blocks on `torch.nn.functional.scaled_dot_product_attention`, so the fused
(flash / memory-efficient) kernels are used on GPUs and bf16 autocast works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Attention", "TransformerBlock", "CrossAttentionBlock", "random_patch_mask"]


class Attention(nn.Module):
    """Multi-head attention of queries ``(B, Q, D)`` over keys/values ``(B, T, D)``.

    ``key_padding_mask`` is ``(B, T)`` with True = ignore that key (the PyTorch
    convention); masked keys get exactly zero attention weight.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, queries: Tensor, context: Tensor, key_padding_mask: Tensor | None = None
    ) -> Tensor:
        batch, n_query, dim = queries.shape
        head_dim = dim // self.heads
        q = self.to_q(queries).view(batch, n_query, self.heads, head_dim).transpose(1, 2)
        k, v = self.to_kv(context).view(batch, -1, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attn_mask = None
        if key_padding_mask is not None:
            # SDPA's boolean mask is True = attend, the opposite of key_padding_mask.
            attn_mask = ~key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(out.transpose(1, 2).reshape(batch, n_query, dim))


class _MLP(nn.Sequential):
    def __init__(self, dim: int, mlp_ratio: float, dropout: float) -> None:
        hidden = int(dim * mlp_ratio)
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class TransformerBlock(nn.Module):
    """Pre-norm self-attention block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``; ``(B, N, D)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _MLP(dim, mlp_ratio, dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, key_padding_mask)
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    """Pre-norm block where ``queries (B, Q, D)`` attend over ``context (B, T, D)``, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _MLP(dim, mlp_ratio, dropout)

    def forward(
        self, queries: Tensor, context: Tensor, key_padding_mask: Tensor | None = None
    ) -> Tensor:
        queries = queries + self.attn(
            self.norm_q(queries), self.norm_context(context), key_padding_mask
        )
        return queries + self.mlp(self.norm2(queries))


class PatchTokenEncoder(nn.Module):
    """Shared trunk of the image and spectrum encoders (a base class, not used alone).

    Subclasses define ``position`` ``(1, P, W)``, ``summary_tokens`` ``(1, S, W)``,
    ``mask_token`` ``(1, 1, W)``, ``blocks`` (`TransformerBlock` list) and ``norm``, embed
    their own patches, and call `encode_tokens`.
    """

    position: nn.Parameter
    summary_tokens: nn.Parameter
    mask_token: nn.Parameter
    blocks: nn.ModuleList
    norm: nn.LayerNorm

    def init_parameters(self) -> None:
        """Initialise all weights (`init_weights`) and the learned tokens (truncated normal)."""
        self.apply(init_weights)
        for parameter in (self.position, self.summary_tokens, self.mask_token):
            nn.init.trunc_normal_(parameter, std=0.02)

    def encode_tokens(
        self, tokens: Tensor, identity: Tensor, patch_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run the transformer over patch tokens.

        Parameters
        ----------
        tokens : `~torch.Tensor`
            ``(N, P, W)`` embedded patches.
        identity : `~torch.Tensor`
            ``(N, 1, W)`` band or spectral-mode identity, added to every token.
        patch_mask : `~torch.Tensor`, optional
            ``(N, P)`` bool, True = replace the patch by the mask token.

        Returns
        -------
        summary, patch_states : `~torch.Tensor`
            ``(N, S, W)`` summary tokens (CLS first) and ``(N, P, W)`` patch states.
        """
        if patch_mask is not None:
            tokens = torch.where(patch_mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        tokens = tokens + self.position + identity
        summary = self.summary_tokens.expand(tokens.shape[0], -1, -1) + identity
        n_summary = summary.shape[1]
        x = torch.cat([summary, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, :n_summary], x[:, n_summary:]


def random_patch_mask(
    n_rows: int,
    n_patches: int,
    ratio: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Boolean ``(n_rows, n_patches)`` mask with exactly ``round(ratio * n_patches)`` True per row.

    True marks a patch hidden from the encoder and reconstructed by the loss.
    """
    n_masked = min(max(int(round(ratio * n_patches)), 1 if ratio > 0 else 0), n_patches - 1)
    noise = torch.rand(n_rows, n_patches, device=device, generator=generator)
    rank = noise.argsort(dim=1).argsort(dim=1)
    return rank < n_masked


def init_weights(module: nn.Module) -> None:
    """ViT-style initialisation: truncated-normal linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
