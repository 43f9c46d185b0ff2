"""Image encoder: one ViT shared by every NIRCam band, band identity from its pivot wavelength.

A band is told to the model by a continuous embedding of log(pivot wavelength)
(Fourier features + MLP) plus a learned per-band offset. A filter never seen in
training keeps a zero offset and still gets a sensible identity from its
wavelength, between those of its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..bands import NIRCAM_BANDS, get_band
from ._layers import PatchTokenEncoder, TransformerBlock

__all__ = ["BandEmbedding", "ImageEncoder", "patchify_images"]

# Wavelength range that the Fourier features map to [-1, 1]: NIRCam and PRISM.
_LOG_WAVELENGTH_MIN = math.log(0.6)
_LOG_WAVELENGTH_MAX = math.log(5.3)


def _float32_log_um(wavelength_um: float) -> float:
    # The float32 log that forward always computed, kept as a Python float (exactly
    # representable), so embeddings stay bit-identical to those of earlier versions.
    return float(torch.log(torch.tensor(wavelength_um, dtype=torch.float32)))


# log(pivot / um) of every NIRCam band, built once: forward then does no astropy work
# (astropy Quantities inside forward break torch.compile / dynamo tracing).
_LOG_PIVOT_UM: dict[str, float] = {
    name: _float32_log_um(band.pivot_wavelength.to_value("um"))
    for name, band in NIRCAM_BANDS.items()
}


def _band_name_and_log_pivot(band) -> tuple[str, float]:
    """Canonical name and log(pivot / um) of ``band``; unknown names raise `get_band`'s ValueError."""
    if isinstance(band, str) and band in _LOG_PIVOT_UM:
        return band, _LOG_PIVOT_UM[band]
    # Other spellings ("f150w", "NIRCAM_F150W") and Band objects: the slow path through get_band.
    name = get_band(band).name
    if name in _LOG_PIVOT_UM:
        return name, _LOG_PIVOT_UM[name]
    return name, _float32_log_um(get_band(name).pivot_wavelength.to_value("um"))


def patchify_images(images: Tensor, patch: int) -> Tensor:
    """Cut ``(N, H, W)`` images into ``(N, (H/patch)*(W/patch), patch*patch)`` patches, row-major.

    Parameters
    ----------
    images : `~torch.Tensor`
        ``(N, H, W)`` single-band images; H and W must be multiples of ``patch``.
    patch : int
        Side of a square patch in pixels.

    Returns
    -------
    patches : `~torch.Tensor`
        ``(N, (H/patch)*(W/patch), patch*patch)``; patches in row-major order over the
        image, pixels row-major within a patch.

    Raises
    ------
    ValueError
        If ``images`` is not 3-D.
    RuntimeError
        If H or W is not a multiple of ``patch`` (from `torch.Tensor.reshape`).
    """
    n, height, width = images.shape
    grid = images.reshape(n, height // patch, patch, width // patch, patch)
    return grid.permute(0, 1, 3, 2, 4).reshape(n, -1, patch * patch)


class BandEmbedding(nn.Module):
    """Identity vector of a NIRCam band: MLP(Fourier(log pivot)) + learned offset.

    Parameters
    ----------
    dim : int
        Output width.
    n_frequencies : int
        Sine/cosine pairs of the Fourier features of log(pivot wavelength).

    Examples
    --------
    >>> from jwst_embed.models import BandEmbedding
    >>> BandEmbedding(16)(["F150W", "F444W"]).shape
    torch.Size([2, 16])
    """

    def __init__(self, dim: int, n_frequencies: int = 6) -> None:
        super().__init__()
        self.register_buffer(
            "frequencies",
            math.pi * 2.0 ** torch.arange(n_frequencies, dtype=torch.float32),
            persistent=False,
        )
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_frequencies + 1, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        # Zero-initialised and only trained for bands seen in training; others keep zero.
        self.offsets = nn.ParameterDict(
            {name: nn.Parameter(torch.zeros(dim)) for name in NIRCAM_BANDS}
        )

    def forward(self, bands: Sequence[str]) -> Tensor:
        """Return ``(len(bands), dim)`` identity vectors; unknown names raise ValueError."""
        looked_up = [_band_name_and_log_pivot(band) for band in bands]
        canonical = [name for name, _ in looked_up]
        device = self.frequencies.device
        log_pivot = torch.tensor(
            [value for _, value in looked_up], dtype=torch.float32, device=device
        )
        position = (
            2.0 * (log_pivot - _LOG_WAVELENGTH_MIN) / (_LOG_WAVELENGTH_MAX - _LOG_WAVELENGTH_MIN)
            - 1.0
        )
        angles = position[:, None] * self.frequencies
        features = torch.cat([position[:, None], angles.sin(), angles.cos()], dim=1)
        zero = torch.zeros_like(self.offsets[canonical[0]]) if canonical else None
        offsets = [self.offsets[name] if name in self.offsets else zero for name in canonical]
        if not offsets:
            return features.new_zeros(0, self.mlp[-1].out_features)
        return self.mlp(features) + torch.stack(offsets)


class ImageEncoder(PatchTokenEncoder):
    """ViT over stretched flux and weight channels of single-band cutouts.

    Parameters
    ----------
    image_size, patch : int
        Image side and patch side in pixels.
    width, depth, heads : int
        Token width, number of blocks, attention heads.
    n_summary_tokens : int
        Learned summary tokens returned with the CLS token.
    mlp_ratio, dropout : float
        Transformer MLP ratio and dropout.

    Notes
    -----
    Inputs are the two channels of `jwst_embed.preprocessing.model_inputs`: the
    asinh-stretched flux (absolute brightness kept, never normalised per object)
    and a weight in [0, 1] that is 0 on masked pixels. Hidden patches
    (``patch_mask``) are replaced by a learned mask token before the encoder
    (SimMIM-style), and a linear head predicts their stretched flux.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import ImageEncoder
    >>> encoder = ImageEncoder(image_size=16, patch=8, width=32, depth=1, heads=2)
    >>> flux, weight = torch.zeros(3, 16, 16), torch.ones(3, 16, 16)
    >>> summary, patches = encoder(flux, weight, ["F150W"], torch.zeros(3, dtype=torch.long))
    >>> summary.shape, patches.shape
    (torch.Size([3, 2, 32]), torch.Size([3, 4, 64]))
    """

    def __init__(
        self,
        image_size: int = 64,
        patch: int = 8,
        width: int = 192,
        depth: int = 6,
        heads: int = 4,
        n_summary_tokens: int = 1,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.patch = patch
        n_patches = (image_size // patch) ** 2
        self.patch_embed = nn.Linear(2 * patch * patch, width)
        self.position = nn.Parameter(torch.zeros(1, n_patches, width))
        self.summary_tokens = nn.Parameter(torch.zeros(1, 1 + n_summary_tokens, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.band_embedding = BandEmbedding(width)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.pixel_head = nn.Linear(width, patch * patch)
        self.init_parameters()

    def forward(
        self,
        stretched: Tensor,
        weight: Tensor,
        bands: Sequence[str],
        band_index: Tensor,
        patch_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Encode a stack of single-band images of any bands.

        Parameters
        ----------
        stretched, weight : `~torch.Tensor`
            ``(N, H, W)`` stretched flux and weight (0 = masked pixel).
        bands : sequence of str
            Distinct band names; ``band_index`` indexes into it.
        band_index : `~torch.Tensor`
            ``(N,)`` long, the band of each image.
        patch_mask : `~torch.Tensor`, optional
            ``(N, P)`` bool, True = hide the patch from the encoder.

        Returns
        -------
        summary : `~torch.Tensor`
            ``(N, 1 + n_summary_tokens, width)``: CLS token first.
        pixel_prediction : `~torch.Tensor`
            ``(N, P, patch**2)`` predicted stretched flux of every patch
            (only the hidden ones are trained).
        """
        if stretched.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"images must be {self.image_size}x{self.image_size} pixels on the model grid, "
                f"got {tuple(stretched.shape[-2:])}"
            )
        inputs = torch.cat(
            [patchify_images(stretched, self.patch), patchify_images(weight, self.patch)], dim=-1
        )
        tokens = self.patch_embed(inputs)
        identity = self.band_embedding(bands)[band_index][:, None, :]
        summary, patch_states = self.encode_tokens(tokens, identity, patch_mask)
        return summary, self.pixel_head(patch_states)
