"""Spectrum encoder (BERT-style masked-patch transformer) and the spectrum decoder.

Spectra arrive on the fixed log-wavelength model grid (default 512 pixels over
0.6-5.3 um) as asinh-stretched f_nu and a weight channel (a bounded function of
the inverse variance, 0 on masked pixels). Patches of ``patch`` pixels become
tokens; a fixed grid makes a learned position embedding a learned wavelength
embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bands import SPECTRAL_MODES, get_spectral_mode
from ._layers import PatchTokenEncoder, TransformerBlock, init_weights

__all__ = [
    "SpectrumEncoder",
    "SpectrumDecoder",
    "SpectrumLineReader",
    "SpectrumRefiner",
    "patchify_spectra",
]


def patchify_spectra(spectra: Tensor, patch: int) -> Tensor:
    """Cut ``(N, L)`` spectra into ``(N, L/patch, patch)`` patches.

    Parameters
    ----------
    spectra : `~torch.Tensor`
        ``(N, L)`` spectra on the model grid; L must be a multiple of ``patch``.
    patch : int
        Pixels per patch.

    Returns
    -------
    patches : `~torch.Tensor`
        ``(N, L/patch, patch)``, consecutive pixels per patch.

    Raises
    ------
    RuntimeError
        If L is not a multiple of ``patch`` (from `torch.Tensor.reshape`).
    """
    return spectra.reshape(spectra.shape[0], -1, patch)


class SpectrumEncoder(PatchTokenEncoder):
    """1D transformer over spectrum patches with masked-patch modelling.

    Parameters
    ----------
    length, patch : int
        Pixels of the model grid and per patch.
    width, depth, heads : int
        Token width, number of blocks, attention heads.
    n_summary_tokens : int
        Learned summary tokens returned with the CLS token.
    mlp_ratio, dropout : float
        Transformer MLP ratio and dropout.

    Notes
    -----
    Hidden patches are replaced by a learned mask token (BERT-style) and a
    linear head predicts their stretched flux. The spectral mode (PRISM now,
    gratings later) is a learned vector added to every token.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import SpectrumEncoder
    >>> encoder = SpectrumEncoder(length=64, patch=16, width=32, depth=1, heads=2)
    >>> flux, weight = torch.zeros(2, 64), torch.ones(2, 64)
    >>> summary, patches = encoder(flux, weight, ["PRISM"], torch.zeros(2, dtype=torch.long))
    >>> summary.shape, patches.shape
    (torch.Size([2, 2, 32]), torch.Size([2, 4, 16]))
    """

    def __init__(
        self,
        length: int = 512,
        patch: int = 16,
        width: int = 192,
        depth: int = 4,
        heads: int = 4,
        n_summary_tokens: int = 1,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.length = length
        self.patch = patch
        self.patch_embed = nn.Linear(2 * patch, width)
        self.position = nn.Parameter(torch.zeros(1, length // patch, width))
        self.summary_tokens = nn.Parameter(torch.zeros(1, 1 + n_summary_tokens, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.mode_embedding = nn.ParameterDict(
            {name: nn.Parameter(torch.zeros(width)) for name in SPECTRAL_MODES}
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.flux_head = nn.Linear(width, patch)
        self.init_parameters()

    def forward(
        self,
        stretched: Tensor,
        weight: Tensor,
        modes: Sequence[str],
        mode_index: Tensor,
        patch_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Encode a stack of spectra.

        Parameters
        ----------
        stretched, weight : `~torch.Tensor`
            ``(N, L)`` stretched f_nu and weight (0 = masked pixel).
        modes : sequence of str
            Distinct spectral mode names; ``mode_index`` indexes into it.
        mode_index : `~torch.Tensor`
            ``(N,)`` long, the mode of each spectrum.
        patch_mask : `~torch.Tensor`, optional
            ``(N, L/patch)`` bool, True = hide the patch from the encoder.

        Returns
        -------
        summary : `~torch.Tensor`
            ``(N, 1 + n_summary_tokens, width)``: CLS token first.
        flux_prediction : `~torch.Tensor`
            ``(N, L/patch, patch)`` predicted stretched flux of every patch.
        """
        if stretched.shape[-1] != self.length:
            raise ValueError(
                f"spectra must have {self.length} pixels on the model grid, got {stretched.shape[-1]}"
            )
        inputs = torch.cat(
            [patchify_spectra(stretched, self.patch), patchify_spectra(weight, self.patch)], dim=-1
        )
        tokens = self.patch_embed(inputs)
        identity = torch.stack(
            [self.mode_embedding[get_spectral_mode(mode).name] for mode in modes]
        )
        identity = identity[mode_index][:, None, :]
        summary, patch_states = self.encode_tokens(tokens, identity, patch_mask)
        return summary, self.flux_head(patch_states)


class SpectrumDecoder(nn.Module):
    """Light transformer that reconstructs a whole stretched spectrum from one embedding.

    Parameters
    ----------
    latent_dim : int
        Width of the input embedding.
    length, patch : int
        Pixels of the output grid and per output token.
    width, depth, heads : int
        Size of the decoder.
    refiner_kernel : int
        Kernel of the `SpectrumRefiner` applied to the decoded spectrum (0: none).

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import SpectrumDecoder
    >>> SpectrumDecoder(8, length=64, patch=16, width=16, depth=1, heads=2)(torch.zeros(3, 8)).shape
    torch.Size([3, 64])
    """

    def __init__(
        self,
        latent_dim: int,
        length: int = 512,
        patch: int = 16,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        refiner_kernel: int = 0,
    ) -> None:
        super().__init__()
        self.condition = nn.Linear(latent_dim, width)
        self.position = nn.Parameter(torch.zeros(1, length // patch, width))
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.flux_head = nn.Linear(width, patch)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.position, std=0.02)
        # The refiner keeps its own initialisation (its last convolution at zero).
        self.refiner = SpectrumRefiner(length, patch, refiner_kernel) if refiner_kernel else None

    def forward(self, embedding: Tensor) -> Tensor:
        """Map ``(B, latent_dim)`` embeddings to ``(B, length)`` stretched spectra."""
        condition = self.condition(embedding)[:, None, :]
        # The condition rides as an extra token and is added to every position token.
        x = torch.cat([condition, self.position + condition], dim=1)
        for block in self.blocks:
            x = block(x)
        spectrum = self.flux_head(self.norm(x[:, 1:])).flatten(1)
        return spectrum if self.refiner is None else self.refiner(spectrum)


class SpectrumRefiner(nn.Module):
    """Residual convolutions over a decoded spectrum that mend the seams between patches.

    `SpectrumDecoder` writes each patch of pixels from its own token, so two neighbouring
    patches can disagree where they meet, and the reconstruction shows steps at every patch
    edge. The refiner sees the whole decoded spectrum together with a learned per-pixel code
    (initialised to where each pixel sits inside its patch) through three 1-D convolutions, whose
    receptive field spans more than a patch, and adds their output. The last convolution starts
    at zero, so a refiner added to a trained decoder changes nothing until it is trained.

    Parameters
    ----------
    length, patch : int
        Pixels of the spectrum and per decoder patch.
    kernel : int
        Odd kernel size of each convolution.
    channels : int
        Hidden channels.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import SpectrumRefiner
    >>> refiner = SpectrumRefiner(64, 16, kernel=9)
    >>> spectrum = torch.randn(2, 64)
    >>> bool(torch.equal(refiner(spectrum), spectrum))  # untrained: the identity
    True
    """

    def __init__(self, length: int, patch: int, kernel: int = 9, channels: int = 32) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"refiner kernel must be a positive odd number, got {kernel}")
        phase = 2 * math.pi * (torch.arange(length) % patch) / patch
        code = torch.stack([phase.sin(), phase.cos(), (phase / 2).sin(), (phase / 2).cos()])
        self.position = nn.Parameter(code[None].clone())
        self.convs = nn.ModuleList([
            nn.Conv1d(1 + code.shape[0], channels, kernel, padding=kernel // 2),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
        ])  # fmt: skip
        self.out = nn.Conv1d(channels, 1, kernel, padding=kernel // 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, spectrum: Tensor) -> Tensor:
        """Return ``spectrum + correction`` for ``(B, length)`` stretched spectra."""
        x = torch.cat([spectrum[:, None, :], self.position.expand(len(spectrum), -1, -1).to(spectrum.dtype)], dim=1)
        for conv in self.convs:
            x = F.gelu(conv(x))
        return spectrum + self.out(x)[:, 0]


class SpectrumLineReader(nn.Module):
    """Convolutional stem over spectrum patches with a readout that keeps their positions.

    Redshift lives in where the lines and breaks fall on the wavelength grid. A transformer
    that pools everything into a CLS token early learns the continuum shape first and reads
    line positions poorly; this branch keeps them. Each patch of ``patch`` pixels (stretched
    flux and weight) is embedded linearly, so the position of a line inside its patch is
    kept; residual 1-D convolutions over the patch tokens let neighbouring patches see each
    other (a line and its neighbours, a break); the readout reduces each token to a few
    channels and maps the whole *ordered* sequence linearly to ``n_tokens`` output tokens,
    so a feature at one wavelength and the same feature at another give different outputs.

    Parameters
    ----------
    length, patch : int
        Pixels of the model grid and per patch.
    width : int
        Channels of the convolutional stem.
    depth : int
        Residual convolution layers.
    kernel : int
        Odd kernel size of the convolutions, in patches.
    readout_channels : int
        Channels per patch kept for the readout.
    n_tokens, out_width : int
        Output tokens and their width.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import SpectrumLineReader
    >>> reader = SpectrumLineReader(length=64, patch=16, width=32, depth=2, n_tokens=2, out_width=24)
    >>> reader(torch.zeros(3, 64), torch.ones(3, 64)).shape
    torch.Size([3, 2, 24])
    """

    def __init__(
        self,
        length: int = 512,
        patch: int = 16,
        width: int = 192,
        depth: int = 3,
        kernel: int = 5,
        readout_channels: int = 16,
        n_tokens: int = 2,
        out_width: int = 192,
    ) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"line reader kernel must be a positive odd number, got {kernel}")
        if length % patch:
            raise ValueError(f"patch={patch} must divide length={length}")
        self.patch = patch
        self.n_tokens = n_tokens
        self.out_width = out_width
        self.embed = nn.Linear(2 * patch, width)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(depth))
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, kernel, padding=kernel // 2) for _ in range(depth)
        )
        self.reduce = nn.Linear(width, readout_channels)
        self.readout = nn.Linear((length // patch) * readout_channels, n_tokens * out_width)
        self.out_norm = nn.LayerNorm(out_width)
        self.apply(init_weights)

    def forward(self, stretched: Tensor, weight: Tensor) -> Tensor:
        """``(N, L)`` stretched flux and weight to ``(N, n_tokens, out_width)`` tokens."""
        tokens = self.embed(
            torch.cat([patchify_spectra(stretched, self.patch), patchify_spectra(weight, self.patch)], dim=-1)
        )  # (N, P, width)
        for norm, conv in zip(self.norms, self.convs, strict=True):
            tokens = tokens + conv(F.gelu(norm(tokens)).transpose(1, 2)).transpose(1, 2)
        reduced = self.reduce(F.gelu(tokens)).flatten(1)  # (N, P * readout_channels), ordered
        out = self.readout(reduced).view(-1, self.n_tokens, self.out_width)
        return self.out_norm(out)
