"""Configuration of the multimodal model: one dataclass, three size presets.

The dataclass is the whole configuration of `~jwst_embed.models.MultimodalModel`:
a checkpoint stores ``config.to_dict()`` next to the state dict and rebuilds
the model with ``ModelConfig.from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..preprocessing.stretch import IMAGE_SOFTENING_NJY, SPECTRUM_SOFTENING_NJY

__all__ = ["ModelConfig", "PRESETS", "HEAD_KINDS"]

#: Kinds of ``ModelConfig.custom_heads`` specs and the head class (``jwst_embed.models.heads``) each builds.
HEAD_KINDS: dict[str, str] = {
    "mlp": "MLPHead",
    "redshift": "RedshiftHead",
    "log_mass": "MassHead",
    "morphology": "MorphologyHead",
}


@dataclass
class ModelConfig:
    """Sizes, grids and training switches of `~jwst_embed.models.MultimodalModel`.

    Parameters
    ----------
    image_size : int
        Side of the square model image grid in pixels (0.04"/pixel by default).
    image_patch : int
        Side of a ViT patch in pixels; must divide ``image_size``.
    image_width, image_depth, image_heads : int
        Token width, number of transformer blocks and attention heads of the
        image encoder (shared by every band).
    spectrum_length : int
        Pixels of the model spectrum grid (log-wavelength, 0.6-5.3 um).
    spectrum_patch : int
        Pixels per spectrum patch; must divide ``spectrum_length``.
    spectrum_width, spectrum_depth, spectrum_heads : int
        Same as the image numbers, for the spectrum encoder.
    n_summary_tokens : int
        Learned summary ("register") tokens per modality, passed with the CLS
        token to the fusion; each modality contributes ``1 + n_summary_tokens``
        tokens.
    line_reader_depth : int
        Residual convolutions of the `~jwst_embed.models.SpectrumLineReader` beside the
        spectrum transformer (0: no line reader, as in models v1-v3). Its tokens keep the
        positions of lines and breaks, which carry the redshift, and join the spectrum's
        tokens in the fusion.
    line_reader_width, line_reader_kernel, line_reader_readout : int
        Channels of its convolutions, their kernel (in patches) and the channels per patch
        kept by its position-keeping readout.
    line_tokens : int
        Tokens the line reader adds to each spectrum's tokens.
    line_reader_weight : {"mask", "weight"}
        Second input channel of the line reader: ``"mask"`` (1 on good pixels, 0 on masked
        ones), so that it cannot hinge on the shape of the error array, or the encoders'
        inverse-variance weight.
    redshift_bins : int
        Bins of the built-in `~jwst_embed.models.RedshiftHead` (uniform in ln(1 + z), 0-16).
    redshift_label_sigma : float
        Width in ln(1 + z) of the Gaussian that smooths its training target.
    latent_dim : int
        Width of the shared latent space: per-modality embeddings, fusion tokens
        and the fused embedding.
    fusion_queries, fusion_depth, fusion_heads : int
        Learned queries of the cross-attention pooling, its number of blocks and heads.
    decoder_width, decoder_depth, decoder_heads : int
        Size of the light transformer that decodes a whole spectrum from an embedding.
    decoder_refiner : int
        Kernel size of the `~jwst_embed.models.SpectrumRefiner` that mends the seams between
        the decoder's patches (0: no refiner, as in models trained before it existed).
    mlp_ratio : float
        Hidden width of every transformer MLP relative to the token width.
    dropout : float
        Dropout in attention and MLPs.
    image_mask_ratio : float
        Fraction of image patches hidden in masked-image modelling.
    spectrum_mask_ratio : float
        Fraction of spectrum patches hidden in masked-spectrum modelling.
    modality_dropout : float
        Probability that a present modality is hidden from the *subset* fusion
        during training (never all of an object's modalities).
    prediction_heads : bool
        Build the redshift, stellar-mass and morphology heads
        (``jwst_embed.models.heads``) on the fused embedding as part of the model,
        so that they are trained with it (on the mock survey's labels) and saved
        and loaded with it.
    custom_heads : dict of str to dict
        Extra heads on the fused embedding, added to ``model.heads`` (replacing a
        built-in head of the same name), e.g. from fine-tuning on the user's
        labels (`jwst_embed.tuning`). Each maps a head name to a spec
        ``{"kind": kind, **arguments}``, ``kind`` one of ``HEAD_KINDS``
        (``"mlp"``, ``"redshift"``, ``"log_mass"``, ``"morphology"``) and the
        arguments those of the matching head class after ``in_dim``, e.g.
        ``{"kind": "mlp", "out_dim": 1, "hidden": 64, "depth": 1}``.
    image_softening_njy, spectrum_softening_njy : float
        The fixed input stretch ``asinh(flux / softening)`` of image pixels and spectral pixels
        (nJy; ``jwst_embed.preprocessing.stretch``); the decoder's spectra are in the spectral
        one. The weights depend on them, so they are part of the model (files written before
        they were recorded get the values they were trained with, the defaults).

    Examples
    --------
    >>> from jwst_embed.models import ModelConfig
    >>> config = ModelConfig.preset("tiny")
    >>> config.latent_dim, config.image_size // config.image_patch
    (64, 8)
    >>> ModelConfig.from_dict(config.to_dict()) == config
    True
    """

    image_size: int = 64
    image_patch: int = 8
    image_width: int = 192
    image_depth: int = 6
    image_heads: int = 4
    spectrum_length: int = 512
    spectrum_patch: int = 16
    spectrum_width: int = 192
    spectrum_depth: int = 4
    spectrum_heads: int = 4
    n_summary_tokens: int = 3
    line_reader_depth: int = 0
    line_reader_width: int = 192
    line_reader_kernel: int = 5
    line_reader_readout: int = 16
    line_tokens: int = 2
    line_reader_weight: str = "mask"
    redshift_bins: int = 256
    redshift_label_sigma: float = 0.015
    latent_dim: int = 256
    fusion_queries: int = 8
    fusion_depth: int = 2
    fusion_heads: int = 4
    decoder_width: int = 128
    decoder_depth: int = 2
    decoder_heads: int = 4
    decoder_refiner: int = 0
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    image_mask_ratio: float = 0.5
    spectrum_mask_ratio: float = 0.3
    modality_dropout: float = 0.5
    prediction_heads: bool = True
    custom_heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_softening_njy: float = IMAGE_SOFTENING_NJY
    spectrum_softening_njy: float = SPECTRUM_SOFTENING_NJY

    def __post_init__(self) -> None:
        if self.image_size % self.image_patch:
            raise ValueError(
                f"image_patch={self.image_patch} must divide image_size={self.image_size}"
            )
        if self.spectrum_length % self.spectrum_patch:
            raise ValueError(
                f"spectrum_patch={self.spectrum_patch} must divide "
                f"spectrum_length={self.spectrum_length}"
            )
        for width, heads, name in (
            (self.image_width, self.image_heads, "image"),
            (self.spectrum_width, self.spectrum_heads, "spectrum"),
            (self.latent_dim, self.fusion_heads, "fusion"),
            (self.decoder_width, self.decoder_heads, "decoder"),
        ):
            if width % heads:
                raise ValueError(f"{name} width {width} is not divisible by its {heads} heads")
        if self.line_reader_depth < 0 or (self.line_reader_depth and self.line_tokens < 1):
            raise ValueError(
                f"line_reader_depth must be >= 0 and line_tokens >= 1 with a line reader, got "
                f"{self.line_reader_depth} and {self.line_tokens}"
            )
        if self.line_reader_weight not in ("mask", "weight"):
            raise ValueError(f"line_reader_weight must be 'mask' or 'weight', got {self.line_reader_weight!r}")
        if self.redshift_bins < 8 or not self.redshift_label_sigma >= 0:
            raise ValueError(
                f"redshift_bins must be >= 8 and redshift_label_sigma >= 0, got {self.redshift_bins} "
                f"and {self.redshift_label_sigma}"
            )
        if self.decoder_refiner < 0 or (self.decoder_refiner and self.decoder_refiner % 2 == 0):
            raise ValueError(f"decoder_refiner must be 0 or a positive odd kernel size, got {self.decoder_refiner}")
        for name in ("image_mask_ratio", "spectrum_mask_ratio", "modality_dropout", "dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if not isinstance(self.custom_heads, dict):
            raise TypeError(f"custom_heads must be a dict {{name: spec}}, got {type(self.custom_heads).__name__}")
        for name, spec in self.custom_heads.items():
            if not isinstance(name, str) or not isinstance(spec, dict) or spec.get("kind") not in HEAD_KINDS:
                raise ValueError(
                    f"custom_heads[{name!r}] = {spec!r}: need a str name and a dict spec whose 'kind' is one of "
                    f"{', '.join(HEAD_KINDS)}"
                )

    @property
    def n_image_patches(self) -> int:
        """Patches per image, ``(image_size / image_patch)**2``."""
        return (self.image_size // self.image_patch) ** 2

    @property
    def tokens_per_modality(self) -> int:
        """Token slots per modality in the fusion: CLS + summary (+ line tokens for spectra)."""
        return 1 + self.n_summary_tokens + (self.line_tokens if self.line_reader_depth else 0)

    @property
    def n_spectrum_patches(self) -> int:
        """Patches per spectrum, ``spectrum_length / spectrum_patch``."""
        return self.spectrum_length // self.spectrum_patch

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """Return a named size preset, optionally with some fields changed.

        Parameters
        ----------
        name : {"tiny", "small", "base"}
            ``"tiny"`` (~0.4 M parameters, for tests), ``"small"`` (~8 M, the
            default shipped model, trainable on a CPU slowly or a GPU in minutes)
            or ``"base"`` (~80 M, for GPUs).
        **overrides
            Fields to change, e.g. ``dropout=0.1``.

        Returns
        -------
        config : `ModelConfig`

        Raises
        ------
        ValueError
            If the preset name is unknown.
        """
        try:
            values = PRESETS[name.lower()]
        except (KeyError, AttributeError):
            raise ValueError(
                f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}"
            ) from None
        return replace(cls(**values), **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON/TOML friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build a config from `to_dict` output; unknown keys are an error.

        Raises
        ------
        ValueError
            If ``values`` holds a key that is not a field.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**values)


#: Field values of the size presets (anything not listed keeps the dataclass default).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        image_width=64,
        image_depth=2,
        image_heads=2,
        spectrum_width=64,
        spectrum_depth=2,
        spectrum_heads=2,
        n_summary_tokens=1,
        latent_dim=64,
        fusion_queries=4,
        fusion_depth=1,
        fusion_heads=2,
        decoder_width=64,
        decoder_depth=1,
        decoder_heads=2,
        mlp_ratio=2.0,
    ),  # fmt: skip
    "small": dict(),
    "base": dict(
        image_width=512,
        image_depth=12,
        image_heads=8,
        spectrum_width=512,
        spectrum_depth=8,
        spectrum_heads=8,
        n_summary_tokens=4,
        latent_dim=512,
        fusion_queries=16,
        fusion_depth=4,
        fusion_heads=8,
        decoder_width=256,
        decoder_depth=4,
        decoder_heads=8,
    ),  # fmt: skip
}
