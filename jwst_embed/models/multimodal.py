"""The multimodal model: encoders, projections to the shared space, fusion, spectrum decoder.

``MultimodalModel(config)(batch)`` reads a `~jwst_embed.preprocessing.Batch`
(physical flux in nJy with ivar and mask), stretches it with the package's fixed
asinh stretch (absolute brightness reaches the model), encodes only the present
band-images (all bands in one batched ViT call) and spectra, projects each
modality's CLS + summary tokens (and, with a line reader, each spectrum's line
tokens) to the shared latent space and pools the tokens of the present modalities
with learned queries into one embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..preprocessing.stretch import asinh_stretch, inverse_asinh_stretch, model_inputs
from . import heads as _heads
from ._layers import random_patch_mask
from .config import HEAD_KINDS, ModelConfig
from .fusion import FusionPooling, sample_modality_subset
from .heads import MassHead, MorphologyHead, RedshiftHead
from .image_encoder import BandEmbedding, ImageEncoder, patchify_images
from .spectrum_encoder import SpectrumDecoder, SpectrumEncoder, SpectrumLineReader, patchify_spectra

__all__ = ["MultimodalModel", "ModelOutput", "MaskedReconstruction", "DECODER_MODE", "build_head"]

#: Spectral mode whose model grid the spectrum decoder reconstructs.
DECODER_MODE = "PRISM"


def build_head(spec: dict, in_dim: int) -> nn.Module:
    """Build a prediction head from a ``ModelConfig.custom_heads`` spec.

    Parameters
    ----------
    spec : dict
        ``{"kind": kind, **arguments}``; ``kind`` is a key of
        ``jwst_embed.models.config.HEAD_KINDS``, the arguments those of the head
        class after ``in_dim``.
    in_dim : int
        Width of the embedding the head reads (``latent_dim``).

    Returns
    -------
    head : `~torch.nn.Module`

    Raises
    ------
    ValueError
        If the kind is unknown or the arguments do not fit the head class.

    Examples
    --------
    >>> from jwst_embed.models.multimodal import build_head
    >>> build_head({"kind": "mlp", "out_dim": 2, "hidden": 8, "depth": 1}, in_dim=4).net[-1].out_features
    2
    """
    arguments = dict(spec)
    kind = arguments.pop("kind", None)
    if kind not in HEAD_KINDS:
        raise ValueError(f"head spec {spec!r}: 'kind' must be one of {', '.join(HEAD_KINDS)}")
    try:
        return getattr(_heads, HEAD_KINDS[kind])(in_dim, **arguments)
    except TypeError as err:
        raise ValueError(f"head spec {spec!r} does not fit {HEAD_KINDS[kind]}: {err}") from err


@dataclass
class MaskedReconstruction:
    """Predictions and targets of masked-patch modelling, for the present rows only.

    All tensors are ``(N, P, pixels_per_patch)`` except ``patch_mask`` ``(N, P)``
    (True = patch was hidden and is to be reconstructed); ``N`` counts the
    encoded images (or spectra), all bands stacked.
    """

    prediction: Tensor
    target: Tensor
    weight: Tensor
    patch_mask: Tensor


@dataclass
class ModelOutput:
    """What `MultimodalModel.forward` returns. ``B`` objects, ``D = latent_dim``.

    Attributes
    ----------
    fused : `~torch.Tensor`
        ``(B, D)`` fused embedding of all present modalities, L2-normalised
        (compare with cosine similarity / dot products).
    modality_embeddings : dict of str to `~torch.Tensor`
        ``(B, D)`` L2-normalised projection of each modality's CLS token; zero
        rows where the modality is absent.
    tokens : dict of str to `~torch.Tensor`
        ``(B, config.tokens_per_modality, D)`` tokens handed to the fusion (zero plus
        the modality-type embedding where absent; masked out there). Image bands
        fill the slots of the line tokens with padding, which the fusion ignores.
    present : `~torch.Tensor`
        ``(B, M)`` bool presence used for ``fused``.
    modalities : tuple of str
        Column order of ``present``.
    fused_images, fused_spectra, views_present : `~torch.Tensor` or None
        Training only: the fused embedding of each object's images alone and of its
        spectra alone ``(B, D)``, and ``(B, 2)`` whether each view exists, for the
        images-vs-spectra contrastive term.
    fused_subset, subset_present : `~torch.Tensor` or None
        Fused embedding of a random non-empty subset of each object's modalities
        (modality dropout, training only) and that subset ``(B, M)``.
    image_reconstruction, spectrum_reconstruction : `MaskedReconstruction` or None
        Masked-patch predictions when ``mask_inputs`` was True.
    decoded_spectrum, decoded_spectrum_subset : `~torch.Tensor` or None
        ``(B, spectrum_length)`` stretched PRISM spectrum decoded from ``fused``
        (and from ``fused_subset``).
    spectrum_target, spectrum_weight : `~torch.Tensor` or None
        ``(B, spectrum_length)`` stretched observed PRISM spectrum and its weight
        (zero rows where there is no spectrum); None if the batch has no PRISM.
    token_padding : `~torch.Tensor` or None
        ``(M, tokens_per_modality)`` bool, the padding slots of each modality's tokens (for
        `MultimodalModel.fuse` of another subset).
    spectrum_softening_njy : float
        The model's spectral stretch (``config.spectrum_softening_njy``): decoded spectra are
        ``asinh(flux / spectrum_softening_njy)``.
    """

    fused: Tensor
    modality_embeddings: dict[str, Tensor]
    tokens: dict[str, Tensor]
    present: Tensor
    modalities: tuple[str, ...]
    fused_subset: Tensor | None = None
    fused_images: Tensor | None = None
    fused_spectra: Tensor | None = None
    views_present: Tensor | None = None
    subset_present: Tensor | None = None
    image_reconstruction: MaskedReconstruction | None = None
    spectrum_reconstruction: MaskedReconstruction | None = None
    decoded_spectrum: Tensor | None = None
    decoded_spectrum_subset: Tensor | None = None
    spectrum_target: Tensor | None = None
    spectrum_weight: Tensor | None = None
    token_padding: Tensor | None = None
    spectrum_softening_njy: float = 0.0


class MultimodalModel(nn.Module):
    """Embed any subset of NIRCam bands and NIRSpec spectra into one shared space.

    Parameters
    ----------
    config : `ModelConfig`, optional
        Sizes and switches; the ``"small"`` preset if omitted.

    Notes
    -----
    Shapes: images ``(B, image_size, image_size)`` per band, spectra
    ``(B, spectrum_length)`` per mode, ``present (B, M)``. Only present
    (object, modality) pairs are encoded, so compute scales with the data an
    object has, and absent tensors are never read.

    With ``mask_inputs=True`` the encoders see masked inputs and every output
    (fused, projections) is computed from those tokens: masking doubles as
    augmentation, as in FLIP, and saves a second encoder pass.

    Examples
    --------
    >>> from jwst_embed.models import ModelConfig, MultimodalModel
    >>> model = MultimodalModel(ModelConfig.preset("tiny"))
    >>> model.config.latent_dim
    64
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else ModelConfig.preset("small")
        n_summary = config.n_summary_tokens
        self.image_encoder = ImageEncoder(
            config.image_size, config.image_patch, config.image_width, config.image_depth,
            config.image_heads, n_summary, config.mlp_ratio, config.dropout,
        )  # fmt: skip
        self.spectrum_encoder = SpectrumEncoder(
            config.spectrum_length, config.spectrum_patch, config.spectrum_width, config.spectrum_depth,
            config.spectrum_heads, n_summary, config.mlp_ratio, config.dropout,
        )  # fmt: skip
        # One projection per modality kind: per-band projections would leave an unseen band without one;
        # band identity is already in the tokens.
        self.image_projection = nn.Sequential(
            nn.Linear(config.image_width, config.latent_dim), nn.LayerNorm(config.latent_dim)
        )
        self.spectrum_projection = nn.Sequential(
            nn.Linear(config.spectrum_width, config.latent_dim), nn.LayerNorm(config.latent_dim)
        )
        # Beside the transformer, a convolutional branch whose readout keeps where the lines fall.
        self.line_reader: SpectrumLineReader | None = None
        self.line_projection: nn.Module | None = None
        if config.line_reader_depth:
            self.line_reader = SpectrumLineReader(
                config.spectrum_length, config.spectrum_patch, config.line_reader_width,
                config.line_reader_depth, config.line_reader_kernel, config.line_reader_readout,
                config.line_tokens, config.spectrum_width,
            )  # fmt: skip
            self.line_projection = nn.Sequential(
                nn.Linear(config.spectrum_width, config.latent_dim), nn.LayerNorm(config.latent_dim)
            )
        self.band_type = BandEmbedding(config.latent_dim)
        self.spectrum_type = nn.ParameterDict(
            {
                name: nn.Parameter(torch.zeros(config.latent_dim))
                for name in self.spectrum_encoder.mode_embedding
            }
        )
        self.fusion = FusionPooling(
            config.latent_dim,
            config.fusion_queries,
            config.fusion_depth,
            config.fusion_heads,
            config.mlp_ratio,
            config.dropout,
        )
        self.spectrum_decoder = SpectrumDecoder(
            config.latent_dim, config.spectrum_length, config.spectrum_patch, config.decoder_width,
            config.decoder_depth, config.decoder_heads, config.mlp_ratio, config.dropout,
            config.decoder_refiner,
        )  # fmt: skip
        # The heads read the fused embedding; trained jointly (the mock survey's labels are free),
        # they make the embedding carry redshift and mass, which self-supervision alone does slowly.
        self.heads: nn.ModuleDict | None = (
            nn.ModuleDict(
                {
                    "redshift": RedshiftHead(
                        config.latent_dim, n_bins=config.redshift_bins, label_sigma=config.redshift_label_sigma
                    ),
                    "log_mass": MassHead(config.latent_dim),
                    "morphology": MorphologyHead(config.latent_dim),
                }
            )
            if config.prediction_heads
            else None
        )
        # Heads described by the config (e.g. from fine-tuning) are rebuilt here, so they load like the rest.
        for name, spec in config.custom_heads.items():
            if self.heads is None:
                self.heads = nn.ModuleDict()
            self.heads[name] = build_head(spec, config.latent_dim)

    # -- boundary -------------------------------------------------------------------------------
    @staticmethod
    def _check_batch(batch) -> tuple[tuple[str, ...], Tensor]:
        modalities = tuple(batch.modalities)
        present = batch.present.bool()
        if present.ndim != 2 or present.shape[1] != len(modalities):
            raise ValueError(
                f"batch.present must be (B, {len(modalities)}) for modalities {modalities}, got {tuple(present.shape)}"
            )
        known = set(batch.images) | set(batch.spectra)
        missing = [name for name in modalities if name not in known]
        if missing:
            raise ValueError(
                f"modalities {missing} are in batch.modalities but have no tensors in the batch"
            )
        if set(batch.images) & set(batch.spectra):
            raise ValueError(
                f"names used both as band and spectral mode: {set(batch.images) & set(batch.spectra)}"
            )
        empty = ~present.any(dim=1)
        if bool(empty.any()):
            rows = torch.nonzero(empty).flatten().tolist()
            raise ValueError(f"objects {rows[:10]} have no present modality; cannot embed them")
        return modalities, present

    # -- encoding -------------------------------------------------------------------------------
    def _encode_kind(self, kind, tensors, modalities, present, mask_inputs, generator, cached=None):
        """Encode every present (object, modality) pair of one kind in one call.

        Returns the (rows, cols) of the encoded pairs, projected tokens (N, S, D) padded to
        ``config.tokens_per_modality``, the masked reconstruction (or None) and the stretched
        inputs. ``cached`` maps image bands to ``(B, 1 + n_summary_tokens, D)`` projected tokens
        computed before (`encode_images`); those bands are not encoded again.
        """
        config = self.config
        if kind == "image":
            encoder, projection, softening = (
                self.image_encoder,
                self.image_projection,
                config.image_softening_njy,
            )
            ratio, n_patches, patchify, patch = (
                config.image_mask_ratio,
                config.n_image_patches,
                patchify_images,
                config.image_patch,
            )
        else:
            encoder, projection, softening = (
                self.spectrum_encoder,
                self.spectrum_projection,
                config.spectrum_softening_njy,
            )
            ratio, n_patches, patchify, patch = (
                config.spectrum_mask_ratio,
                config.n_spectrum_patches,
                patchify_spectra,
                config.spectrum_patch,
            )
        names = [name for name in modalities if name in tensors]
        cached = cached or {}
        cached_parts = []
        rows, cols, kind_index, stretched, weight = [], [], [], [], []
        for index, name in enumerate(names):
            col = modalities.index(name)
            row = torch.nonzero(present[:, col]).flatten()
            if row.numel() == 0:
                continue
            if name in cached:
                cached_parts.append((row, torch.full_like(row, col), cached[name][row]))
                continue
            item = tensors[name]
            # Only present rows are read: absent tensors may hold anything.
            s, w = model_inputs(item.values[row], item.ivar[row], item.mask[row], softening)
            rows.append(row)
            cols.append(torch.full_like(row, col))
            kind_index.append(torch.full_like(row, index))
            stretched.append(s)
            weight.append(w)
        if not rows and not cached_parts:
            return None
        if not rows:
            projected = self._pad_tokens(torch.cat([part[2] for part in cached_parts]))
            return (
                torch.cat([part[0] for part in cached_parts]), torch.cat([part[1] for part in cached_parts]),
                projected, None, None, None,
            )  # fmt: skip
        stretched, weight = torch.cat(stretched).float(), torch.cat(weight).float()
        kind_index = torch.cat(kind_index)
        patch_mask = None
        if mask_inputs and ratio > 0:
            patch_mask = random_patch_mask(
                stretched.shape[0], n_patches, ratio, stretched.device, generator
            )
        summary, prediction = encoder(stretched, weight, names, kind_index, patch_mask)
        reconstruction = None
        if patch_mask is not None:
            reconstruction = MaskedReconstruction(
                prediction, patchify(stretched, patch), patchify(weight, patch), patch_mask
            )
        projected = projection(summary)
        if kind == "spectrum" and self.line_reader is not None:
            # the line reader always sees the whole spectrum: hiding patches would hide lines
            channel = (weight > 0).to(weight.dtype) if self.config.line_reader_weight == "mask" else weight
            line_tokens = self.line_projection(self.line_reader(stretched, channel))
            projected = torch.cat([projected, line_tokens.to(projected.dtype)], dim=1)
        projected = self._pad_tokens(projected)
        rows, cols = torch.cat(rows), torch.cat(cols)
        if cached_parts:
            rows = torch.cat([rows, *(part[0] for part in cached_parts)])
            cols = torch.cat([cols, *(part[1] for part in cached_parts)])
            cached_tokens = self._pad_tokens(torch.cat([part[2] for part in cached_parts]))
            projected = torch.cat([projected, cached_tokens.to(projected.dtype)])
        return rows, cols, projected, reconstruction, stretched, weight

    def _pad_tokens(self, projected: Tensor) -> Tensor:
        """Pad ``(N, S, D)`` tokens with zeros to ``(N, config.tokens_per_modality, D)``."""
        missing = self.config.tokens_per_modality - projected.shape[1]
        return F.pad(projected, (0, 0, 0, missing)) if missing > 0 else projected

    def token_padding(self, modalities, batch_spectra) -> Tensor:
        """``(M, tokens_per_modality)`` bool, True where a modality's token slot is padding.

        Image bands have no line tokens, so with a line reader their last slots are padding.
        """
        n_slots = self.config.tokens_per_modality
        n_real = 1 + self.config.n_summary_tokens
        padding = torch.zeros(len(modalities), n_slots, dtype=torch.bool)
        for j, name in enumerate(modalities):
            if name not in batch_spectra:
                padding[j, n_real:] = True
        return padding

    def spectrum_flux(self, decoded: Tensor) -> Tensor:
        """Decoded (stretched) spectra as flux densities in nJy: the inverse of the spectral stretch.

        Parameters
        ----------
        decoded : `~torch.Tensor`
            ``(B, spectrum_length)`` as in ``ModelOutput.decoded_spectrum``.

        Returns
        -------
        flux : `~torch.Tensor`
            ``(B, spectrum_length)`` f_nu in nJy on the model grid.
        """
        return inverse_asinh_stretch(decoded, self.config.spectrum_softening_njy)

    def stretched_spectrum(self, flux_njy: Tensor) -> Tensor:
        """Spectra in nJy in the space the decoder works in: ``asinh(flux / spectrum_softening_njy)``.

        Parameters
        ----------
        flux_njy : `~torch.Tensor`
            ``(B, spectrum_length)`` f_nu in nJy.

        Returns
        -------
        stretched : `~torch.Tensor`
        """
        return asinh_stretch(flux_njy, self.config.spectrum_softening_njy)

    def fuse(self, tokens: Tensor, present: Tensor, padding: Tensor) -> Tensor:
        """Fused embedding of the ``present`` modalities from their tokens.

        Parameters
        ----------
        tokens : `~torch.Tensor`
            ``(B, M, tokens_per_modality, D)`` tokens (with their type embedding), as in
            `ModelOutput.tokens` stacked over ``modalities``.
        present : `~torch.Tensor`
            ``(B, M)`` bool: which modalities to fuse for each object (any subset of those
            encoded; at least one per object).
        padding : `~torch.Tensor`
            ``(M, tokens_per_modality)`` bool from `token_padding`.

        Returns
        -------
        fused : `~torch.Tensor`
            ``(B, D)`` L2-normalised.
        """
        ignore = ~present[:, :, None] | padding.to(present.device)[None, :, :]
        return self.fusion(tokens.flatten(1, 2), ignore.flatten(1))

    def _type_embedding(self, batch, modalities: tuple[str, ...]) -> Tensor:
        bands = [name for name in modalities if name in batch.images]
        band_vectors = dict(zip(bands, self.band_type(bands), strict=True)) if bands else {}
        vectors = []
        for name in modalities:
            if name in band_vectors:
                vectors.append(band_vectors[name])
            elif name in self.spectrum_type:
                vectors.append(self.spectrum_type[name])
            else:
                raise ValueError(
                    f"unknown spectral mode {name!r}; the model knows {list(self.spectrum_type)}"
                )
        return torch.stack(vectors)

    def forward(
        self,
        batch,
        mask_inputs: bool = False,
        generator: torch.Generator | None = None,
        modality_dropout: bool | None = None,
        cached_image_tokens: dict[str, Tensor] | None = None,
        decode: bool = True,
    ) -> ModelOutput:
        """Embed a batch.

        Parameters
        ----------
        batch : `~jwst_embed.preprocessing.Batch`
            Physical flux (nJy), ivar and mask per modality, and ``present``.
        mask_inputs : bool
            Hide random patches (``config.image_mask_ratio`` / ``spectrum_mask_ratio``)
            and return their reconstructions for the masked-modelling losses.
        generator : `torch.Generator`, optional
            Random source for masks and modality dropout (on the batch's device).
        modality_dropout : bool, optional
            Also fuse a random subset of each object's modalities (``fused_subset``);
            default: in training mode when ``config.modality_dropout > 0``.
        cached_image_tokens : dict of str to `~torch.Tensor`, optional
            Projected tokens of image bands from `encode_images`, ``(B, 1 + n_summary_tokens, D)``
            per band: those bands are not encoded again (training downstream of a frozen
            image encoder). Masked-image modelling does not apply to them.
        decode : bool
            Run the spectrum decoder (``decoded_spectrum``); False saves its cost when only the
            embedding or the heads are wanted.

        Returns
        -------
        output : `ModelOutput`

        Raises
        ------
        ValueError
            If an object has no present modality, ``present`` does not match
            ``modalities``, or a modality has no tensors or wrong grid size.
        """
        modalities, present = self._check_batch(batch)
        n_objects, n_tokens = present.shape[0], self.config.tokens_per_modality
        padding = self.token_padding(modalities, batch.spectra)
        encoded = {
            "image": self._encode_kind(
                "image", batch.images, modalities, present, mask_inputs, generator, cached_image_tokens
            ),
            "spectrum": self._encode_kind(
                "spectrum", batch.spectra, modalities, present, mask_inputs, generator
            ),
        }
        parts = [item for item in encoded.values() if item is not None]
        dtype = parts[0][2].dtype
        tokens = parts[0][2].new_zeros(n_objects, len(modalities), n_tokens, self.config.latent_dim)
        for rows, cols, projected, *_ in parts:
            tokens = tokens.index_put((rows, cols), projected.to(dtype))
        modality_embeddings = {
            name: F.normalize(tokens[:, j, 0].float(), dim=-1) for j, name in enumerate(modalities)
        }
        tokens = tokens + self._type_embedding(batch, modalities).to(dtype)[None, :, None, :]
        fused = self.fuse(tokens, present, padding)
        output = ModelOutput(
            fused=fused,
            modality_embeddings=modality_embeddings,
            tokens={name: tokens[:, j] for j, name in enumerate(modalities)},
            present=present,
            modalities=modalities,
            decoded_spectrum=self.spectrum_decoder(fused) if decode else None,
            spectrum_softening_njy=self.config.spectrum_softening_njy,
        )
        if modality_dropout is None:
            modality_dropout = self.training and self.config.modality_dropout > 0
        if modality_dropout:
            subset = sample_modality_subset(present, self.config.modality_dropout, generator)
            output.subset_present = subset
            output.fused_subset = self.fuse(tokens, subset, padding)
            output.decoded_spectrum_subset = self.spectrum_decoder(output.fused_subset) if decode else None
        if modality_dropout and batch.images and batch.spectra:
            # Two views of each object that share no pixels: its images and its spectra. Bands of
            # one object share their morphology, so a band-vs-band contrast can be won on shape
            # alone; images-vs-spectrum can only be won on what both carry, the SED (redshift,
            # colours, brightness).
            is_image = torch.tensor([name in batch.images for name in modalities], device=present.device)
            image_view = present & is_image[None, :]
            spectrum_view = present & ~is_image[None, :]
            views = torch.stack([image_view.any(dim=1), spectrum_view.any(dim=1)], dim=1)
            # Objects lacking a view still need one unmasked token for the attention; their rows
            # are excluded from the loss through views_present.
            image_view = torch.where(views[:, :1], image_view, present)
            spectrum_view = torch.where(views[:, 1:], spectrum_view, present)
            output.fused_images = self.fuse(tokens, image_view, padding)
            output.fused_spectra = self.fuse(tokens, spectrum_view, padding)
            output.views_present = views
        output.token_padding = padding
        if encoded["image"] is not None:
            output.image_reconstruction = encoded["image"][3]
        if encoded["spectrum"] is not None:
            output.spectrum_reconstruction = encoded["spectrum"][3]
            rows, cols, _, _, stretched, weight = encoded["spectrum"]
            if DECODER_MODE in modalities:
                chosen = cols == modalities.index(DECODER_MODE)
                target = stretched.new_zeros(n_objects, self.config.spectrum_length)
                output.spectrum_target = target.index_put((rows[chosen],), stretched[chosen])
                output.spectrum_weight = torch.zeros_like(target).index_put(
                    (rows[chosen],), weight[chosen]
                )
        return output

    @torch.no_grad()
    def encode_images(self, batch) -> dict[str, Tensor]:
        """Projected tokens ``(B, 1 + n_summary_tokens, D)`` of every image band of ``batch``.

        Rows where a band is absent hold zeros. Feed them back as ``cached_image_tokens`` to
        train what lies downstream of a frozen image encoder without encoding images again.
        """
        modalities, present = self._check_batch(batch)
        out = {}
        for band in batch.images:
            col = modalities.index(band)
            only = present.clone()
            only[:, :] = False
            only[:, col] = present[:, col]
            tokens = torch.zeros(
                len(present), 1 + self.config.n_summary_tokens, self.config.latent_dim, device=present.device
            )
            encoded = self._encode_kind("image", {band: batch.images[band]}, modalities, only, False, None)
            if encoded is not None:
                rows, _, projected, *_ = encoded
                tokens[rows] = projected[:, : tokens.shape[1]].float()
            out[band] = tokens
        return out

    @torch.no_grad()
    def embed(self, batch) -> Tensor:
        """Fused ``(B, latent_dim)`` L2-normalised embedding, in eval mode (deterministic).

        The module's training flag is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            return self.forward(batch, mask_inputs=False, modality_dropout=False).fused
        finally:
            self.train(was_training)
