"""Pretraining: `TrainConfig`, data sources and the `Trainer` behind ``jwst-embed train``.

The trainer reads `~jwst_embed.preprocessing.Batch` objects from a *data source*
with random access by batch index (`DataSource`): batch ``k`` depends only on the
source's seed and ``k``. Process ``rank`` of ``world_size`` trains at step ``s`` on
batch ``s * world_size + rank``, so every process sees distinct objects and a
resumed run continues the stream exactly where it stopped: the checkpoint stores
the step, and the data-stream state follows from it.

One step: masked inputs (random patches hidden, drawn from a generator seeded by
``(seed, step, rank)``), `~jwst_embed.training.PretrainingLoss`, AdamW with weight
decay on matrices only, gradient clipping, a cosine schedule with linear warm-up;
bf16 autocast on CUDA. Rank 0 logs to ``metrics.csv``, validates on a fixed mock
set (`~jwst_embed.training.validation.quick_validation`) and writes ``latest.pt``
(atomically) and finally ``model.pt``.

Examples
--------
>>> from jwst_embed.training.pretrain import SyntheticSource, TrainConfig, Trainer
>>> config = TrainConfig(preset="tiny", batch_size=4, max_steps=2, out_dir=None, validate_every=0)
>>> trainer = Trainer(config, source=SyntheticSource(4, seed=0), progress=False)
>>> len(trainer.train())
2
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_model,
)
from .distributed import DistributedContext, init_distributed, shutdown_distributed
from .validation import quick_validation

__all__ = [
    "TrainConfig",
    "DataSource",
    "IndexedSource",
    "SurveySource",
    "FileSource",
    "SyntheticSource",
    "Trainer",
    "cosine_with_warmup",
    "parameter_groups",
    "METRIC_COLUMNS",
]

#: Columns of ``metrics.csv`` (empty where a value was not computed at that step).
METRIC_COLUMNS = (
    "step", "samples", "loss", "lr", "grad_norm",
    "spectrum_mask", "image_mask", "contrastive", "views", "consistency", "decoder", "decoder_subset", "temperature",
    "samples_per_s",
    "val_redshift_sigma_nmad", "val_redshift_outlier_fraction", "val_spectrum_r2", "val_spectrum_r2_images",
    "val_spectrum_r2_median", "val_spectrum_r2_images_median",
)  # fmt: skip


def _seed_from(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in ("jwst_embed", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


# ---------------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything a pretraining run needs; every field has a default that works.

    Parameters
    ----------
    preset : {"tiny", "small", "base"}
        Model size (`~jwst_embed.models.ModelConfig.preset`).
    model : dict
        Overrides of `~jwst_embed.models.ModelConfig` fields (TOML table ``[model]``).
    loss : dict
        `~jwst_embed.training.LossWeights` fields (TOML table ``[loss]``).
    survey : dict
        `~jwst_embed.simulation.survey.SurveyConfig` fields, e.g. ``bands``
        (TOML table ``[survey]``); ignored with ``data``.
    data : str, optional
        A prepared mock HDF5 file to train on instead of the on-the-fly survey.
    synthetic : bool
        Train on `SyntheticSource` (simple galaxy-like tensors; for tests and
        benchmarks when the mock survey's library is not installed).
    batch_size : int
        Objects per step *per process*.
    lr, min_lr_fraction : float
        Peak learning rate and the floor of the cosine decay as a fraction of it.
    weight_decay : float
        AdamW weight decay, applied to matrices only (not to biases, norms, embeddings vectors).
    betas : tuple of float
        AdamW betas.
    warmup_steps, max_steps : int
        Linear warm-up length and total number of optimiser steps.
    max_time_s : float
        Stop after this many seconds of training even before ``max_steps`` (0 = no limit); the
        final checkpoint and ``model.pt`` are written as at the end of a full run.
    grad_clip : float
        Maximum global gradient norm (0 = no clipping).
    checkpoint_every, validate_every, log_every : int
        Intervals in steps (0 = never; a final checkpoint is always written).
    n_validation : int
        Objects in the fixed validation set (a held-out stream of the same source).
    seed : int
        Seed of the model initialisation, the data stream and the masks.
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    precision : {"auto", "bf16", "fp32"}
        ``"auto"`` = bf16 autocast on CUDA, fp32 on CPU.
    compile : bool
        Wrap the model in `torch.compile`.
    deterministic : bool
        ``torch.use_deterministic_algorithms(True)`` during training.
    num_threads : int
        CPU threads for torch (0 = torch's default).
    out_dir : str or None
        Output folder (``metrics.csv``, ``latest.pt``, ``model.pt``); None writes nothing.

    Examples
    --------
    >>> from jwst_embed.training.pretrain import TrainConfig
    >>> TrainConfig(preset="tiny", max_steps=10).resolved_precision(torch.device("cpu"))
    'fp32'
    """

    preset: str = "small"
    model: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    survey: dict = field(default_factory=dict)
    data: str | None = None
    synthetic: bool = False
    batch_size: int = 64
    lr: float = 3e-4
    min_lr_fraction: float = 0.05
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 1000
    max_steps: int = 50_000
    max_time_s: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 1000
    validate_every: int = 1000
    log_every: int = 10
    n_validation: int = 1024
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    deterministic: bool = False
    num_threads: int = 0
    out_dir: str | None = "runs/pretrain"

    def __post_init__(self) -> None:
        from ..models import ModelConfig

        ModelConfig.preset(self.preset, **self.model)  # validates preset name and overrides
        self.betas = tuple(float(b) for b in self.betas)
        for name in ("batch_size", "max_steps"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "validate_every", "log_every", "n_validation", "num_threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.min_lr_fraction <= 1 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig: need lr > 0, 0 <= min_lr_fraction <= 1, weight_decay >= 0, grad_clip >= 0")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        if self.data is not None and self.synthetic:
            raise ValueError("TrainConfig: give either data (a file) or synthetic=True, not both")
        if self.out_dir is not None:
            self.out_dir = str(self.out_dir)
        if self.data is not None:
            self.data = str(self.data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (TOML/JSON friendly; loads back with `from_dict`)."""
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values

    @classmethod
    def known_keys(cls) -> list[str]:
        """Names of the fields (= the keys a TOML file may use)."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a dict; unknown keys are a `ValueError` listing the known ones."""
        unknown = sorted(set(values) - set(cls.known_keys()))
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known keys: {', '.join(cls.known_keys())}")
        return cls(**dict(values))

    @classmethod
    def from_toml(cls, path: str | os.PathLike, **overrides: Any) -> TrainConfig:
        """Read a TOML file (every key optional; see ``configs/pretrain_default.toml``).

        Parameters
        ----------
        path : path-like
            The file. Top-level keys are fields; ``[model]``, ``[loss]`` and
            ``[survey]`` tables fill the dict fields.
        **overrides
            Fields that take precedence over the file (e.g. from the command line).

        Raises
        ------
        ValueError
            If the file has an unknown key (the message lists the known keys) or a bad value.
        FileNotFoundError
            If the file does not exist.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training configuration {path} does not exist")
        with open(path, "rb") as handle:
            try:
                values = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path} is not valid TOML: {error}") from None
        unknown = sorted(set(values) - set(cls.known_keys()))
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known keys: {', '.join(cls.known_keys())}")
        values.update(overrides)
        return cls.from_dict(values)

    def resolved_precision(self, device: torch.device) -> str:
        """``"bf16"`` or ``"fp32"`` for this device."""
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" else "fp32"
        return self.precision


# ---------------------------------------------------------------------------------- data
@runtime_checkable
class DataSource(Protocol):
    """What the trainer reads: a stream of Batches that can restart at any batch index."""

    def batches(self, start_index: int = 0, stride: int = 1) -> Iterator:
        """Yield batches ``start_index, start_index + stride, ...`` (endless)."""
        ...


class IndexedSource:
    """A `DataSource` with random access: subclasses implement ``batch(index, size=None)``.

    ``validation_batches(n)`` returns a fixed held-out set of ``n`` objects.
    """

    batch_size: int

    def batch(self, index: int, size: int | None = None):  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, start_index: int = 0, stride: int = 1) -> Iterator:
        index = start_index
        while True:
            yield self.batch(index)
            index += stride

    def validation_batches(self, n_objects: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


class SurveySource(IndexedSource):
    """Batches of the on-the-fly mock survey (`~jwst_embed.simulation.survey.MockSurvey`).

    Parameters
    ----------
    survey : `~jwst_embed.simulation.survey.MockSurvey`
        The survey (simulating on the training device).
    batch_size : int
        Objects per batch.
    seed : int
        Stream seed; the validation set is drawn from a separate stream of the same survey.
    """

    def __init__(self, survey, batch_size: int, seed: int = 0) -> None:
        self.survey, self.batch_size, self.seed = survey, int(batch_size), int(seed)

    def batch(self, index: int, size: int | None = None, seed: int | None = None):
        from ..simulation.survey import batch_generator

        generator = batch_generator(self.seed if seed is None else seed, index, self.survey.device)
        return self.survey.to_batch(self.survey.sample(size or self.batch_size, generator=generator))

    def validation_batches(self, n_objects: int) -> list:
        seed = _seed_from("validation", self.seed) % (2**31)
        sizes = _chunk_sizes(n_objects, self.batch_size)
        return [self.batch(k, size, seed=seed) for k, size in enumerate(sizes)]


class FileSource(IndexedSource):
    """Batches from a prepared mock HDF5 file (`~jwst_embed.simulation.catalogue.MockCatalogue`).

    The first ``holdout`` objects are the validation set and never trained on;
    the rest are reshuffled every epoch with a permutation seeded by ``(seed, epoch)``
    (incomplete last batches of an epoch are dropped so every batch has ``batch_size`` objects).

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    batch_size : int
        Objects per batch.
    seed : int
        Shuffling seed.
    holdout : int
        Objects kept for validation.
    device : str or `torch.device`
        Where the batches go.

    Raises
    ------
    ValueError
        If the file has no objects left for training after the holdout.
    """

    def __init__(self, path, batch_size: int, seed: int = 0, holdout: int = 0, device="cpu") -> None:
        from ..simulation.catalogue import MockCatalogue

        self.catalogue = MockCatalogue(path)
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)
        self.holdout = min(int(holdout), len(self.catalogue) // 2)
        self.n_train = len(self.catalogue) - self.holdout
        if self.n_train <= 0:
            raise ValueError(f"{path}: no objects to train on")
        self.batches_per_epoch = max(1, self.n_train // self.batch_size)

    def batch(self, index: int, size: int | None = None):
        epoch, position = divmod(int(index), self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n_train) + self.holdout
        chunk = order[position * self.batch_size : (position + 1) * self.batch_size]
        return _to_device(self.catalogue.read(chunk), self.device)

    def validation_batches(self, n_objects: int) -> list:
        n = min(n_objects, self.holdout)
        return [
            _to_device(self.catalogue.read(slice(start, start + size)), self.device)
            for start, size in zip(range(0, n, self.batch_size), _chunk_sizes(n, self.batch_size), strict=False)
        ]


class SyntheticSource(IndexedSource):
    """Simple galaxy-like batches with labels, needing neither the SPS library nor files.

    Each object has a redshift and a stellar mass; its images in ``bands`` are
    round Gaussian profiles whose flux follows the mass and whose colour follows
    the redshift, and its PRISM spectrum is a power-law continuum with
    H-alpha and [O III] lines at the redshifted wavelengths, with Gaussian noise.
    Learnable structure, labels (``redshift``, ``log_mass``, ``morphology``,
    ``spectrum_noiseless``) and the `~jwst_embed.preprocessing.Batch` layout of the
    mock survey, for tests, benchmarks and the CLI when the simulator is not installed.

    Parameters
    ----------
    batch_size : int
        Objects per batch.
    seed : int
        Stream seed (batch ``k`` depends only on ``(seed, k)``).
    bands : tuple of str
        NIRCam bands.
    image_size, spectrum_length : int
        Model grid sizes (must match the model's configuration).
    spectrum_fraction : float
        Fraction of objects with a spectrum.
    device : str or `torch.device`
        Where the tensors are made.
    """

    def __init__(
        self,
        batch_size: int,
        seed: int = 0,
        bands: tuple[str, ...] = ("F115W", "F150W", "F277W", "F444W"),
        image_size: int = 64,
        spectrum_length: int = 512,
        spectrum_fraction: float = 0.75,
        device="cpu",
    ) -> None:
        from ..bands import get_band

        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)
        self.bands = tuple(get_band(b).name for b in bands)
        self.pivot_um = torch.tensor([get_band(b).pivot_wavelength.to_value("um") for b in self.bands])
        self.image_size, self.spectrum_length, self.spectrum_fraction = image_size, spectrum_length, spectrum_fraction
        self.wavelength_um = torch.logspace(math.log10(0.6), math.log10(5.3), spectrum_length, dtype=torch.float64).float()

    def batch(self, index: int, size: int | None = None, seed: int | None = None):
        from ..preprocessing.batch import Batch, ModalityTensors, modality_order

        n = size or self.batch_size
        g = torch.Generator().manual_seed(_seed_from("synthetic", self.seed if seed is None else seed, index))
        redshift = torch.expm1(torch.empty(n).uniform_(math.log1p(0.2), math.log1p(10.0), generator=g))
        log_mass = torch.empty(n).uniform_(8.0, 11.5, generator=g)
        morphology = torch.randint(0, 6, (n,), generator=g)
        # Continuum f_nu ~ A (lambda / 2 um)^beta, redder at higher redshift; A follows the mass.
        amplitude = 30.0 * 10 ** (0.8 * (log_mass - 9.0)) / (1.0 + redshift) ** 0.5
        beta = 0.3 * redshift - 1.0
        size_px = 1.0 + 0.5 * morphology.float() + torch.rand(n, generator=g)
        band_flux = amplitude[:, None] * (self.pivot_um[None, :] / 2.0) ** beta[:, None]
        coords = torch.arange(self.image_size) - (self.image_size - 1) / 2
        r2 = coords[None, :, None] ** 2 + coords[None, None, :] ** 2
        profile = torch.exp(-0.5 * r2 / size_px[:, None, None] ** 2)
        profile = profile / profile.sum(dim=(1, 2), keepdim=True)
        image_sigma = 0.5  # nJy per pixel
        images = {}
        for b, band in enumerate(self.bands):
            noiseless = band_flux[:, b, None, None] * profile
            noisy = noiseless + image_sigma * torch.randn(noiseless.shape, generator=g)
            ivar = torch.full_like(noisy, 1.0 / image_sigma**2)
            images[band] = ModalityTensors(values=noisy, ivar=ivar, mask=torch.zeros_like(noisy, dtype=torch.bool))
        wave = self.wavelength_um[None, :]
        continuum = amplitude[:, None] * (wave / 2.0) ** beta[:, None]
        lines = torch.zeros_like(continuum)
        for rest_um, strength in ((0.6563, 3.0), (0.5007, 4.0)):
            centre = rest_um * (1.0 + redshift[:, None])
            lines += strength * amplitude[:, None] * torch.exp(-0.5 * ((wave - centre) / (0.01 * centre)) ** 2)
        noiseless_spectrum = continuum + lines
        spectrum_sigma = 20.0  # nJy per pixel
        has_spectrum = torch.rand(n, generator=g) < self.spectrum_fraction
        spectrum = noiseless_spectrum + spectrum_sigma * torch.randn(noiseless_spectrum.shape, generator=g)
        mask = ~has_spectrum[:, None].expand_as(spectrum)
        spectra = {
            "PRISM": ModalityTensors(
                values=torch.where(mask, 0.0, spectrum),
                ivar=torch.where(mask, 0.0, torch.full_like(spectrum, 1.0 / spectrum_sigma**2)),
                mask=mask.clone(),
            )
        }
        columns = {band: torch.ones(n, dtype=torch.bool) for band in self.bands}
        columns["PRISM"] = has_spectrum
        present = torch.stack([columns[name] for name in modality_order(columns)], dim=1)
        batch = Batch(
            images=images,
            spectra=spectra,
            present=present,
            modalities=modality_order([*self.bands, "PRISM"]),
            targets={
                "redshift": redshift,
                "log_mass": log_mass,
                "morphology": morphology,
                "spectrum_noiseless": noiseless_spectrum,
            },
        )
        return _to_device(batch, self.device)

    def validation_batches(self, n_objects: int) -> list:
        seed = _seed_from("validation", self.seed)
        return [self.batch(k, size, seed=seed) for k, size in enumerate(_chunk_sizes(n_objects, self.batch_size))]


def _all_agree(flag: bool, context) -> bool:
    """Rank 0's value of ``flag`` on every rank (no communication outside distributed runs)."""
    if not context.distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def _chunk_sizes(n: int, batch_size: int) -> list[int]:
    return [min(batch_size, n - start) for start in range(0, n, batch_size)]


def _to_device(batch, device: torch.device):
    if device.type == "cpu" and getattr(batch.present, "device", device) == device:
        return batch
    return batch.to(device)


# ---------------------------------------------------------------------------------- optimisation
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
    >>> from jwst_embed.training.pretrain import cosine_with_warmup
    >>> [round(cosine_with_warmup(s, 2, 6), 2) for s in range(7)]
    [0.5, 1.0, 1.0, 0.85, 0.5, 0.15, 0.0]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_fraction + (1.0 - min_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _PretrainingModule(nn.Module):
    """Model and loss in one module, so DDP synchronises the loss's temperature too."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss_fn(self.model(batch, mask_inputs=True, generator=generator))


# ---------------------------------------------------------------------------------- trainer
class Trainer:
    """Pretrain a `~jwst_embed.models.MultimodalModel` (single process, or one rank of ``torchrun``).

    Parameters
    ----------
    config : `TrainConfig`
        The run's configuration.
    source : `DataSource`, optional
        Where batches come from; by default built from ``config`` (the mock survey
        on the training device, ``config.data``, or `SyntheticSource`).
    model : `~jwst_embed.models.MultimodalModel`, optional
        A model to train; by default ``MultimodalModel(ModelConfig.preset(config.preset, **config.model))``.
    progress : bool
        Show a progress bar (rank 0 only).
    context : `~jwst_embed.training.distributed.DistributedContext`, optional
        Process placement; by default from `init_distributed` (``torchrun``'s environment).

    Attributes
    ----------
    history : list of dict
        Per-step ``loss``, ``lr``, ``grad_norm`` and loss terms of this process
        (and validation metrics on the steps that had them).
    step : int
        Optimiser steps done.
    """

    def __init__(self, config: TrainConfig, source: DataSource | None = None, model: nn.Module | None = None,
                 progress: bool = True, context: DistributedContext | None = None) -> None:  # fmt: skip
        from ..models import ModelConfig, MultimodalModel
        from .losses import LossWeights, PretrainingLoss

        self.config = config
        self.context = context if context is not None else init_distributed(config.device)
        self.device = self.context.device
        self.precision = config.resolved_precision(self.device)
        self.progress = progress
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = model if model is not None else MultimodalModel(ModelConfig.preset(config.preset, **config.model))
        self.model.to(self.device)
        self.loss_fn = PretrainingLoss(LossWeights(**config.loss)).to(self.device)
        self.source = source if source is not None else self._default_source()
        self.survey_config = getattr(getattr(self.source, "survey", None), "config", None)

        self.optimizer = torch.optim.AdamW(
            parameter_groups([self.model, self.loss_fn], config.weight_decay), lr=config.lr, betas=config.betas
        )
        schedule = lambda step: cosine_with_warmup(step, config.warmup_steps, config.max_steps, config.min_lr_fraction)  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        module: nn.Module = _PretrainingModule(self.model, self.loss_fn)
        if self.context.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # Absent bands/modes leave some parameters without gradient in some steps.
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)
        if config.compile:
            # Compile the transformer blocks (where the FLOPs are) in place, so state-dict keys
            # do not change; the batch bookkeeping around them (presence masks, data-dependent row
            # selection, band lookups through astropy) stays eager.
            from ..models._layers import CrossAttentionBlock, TransformerBlock

            for block in self.model.modules():
                if isinstance(block, TransformerBlock | CrossAttentionBlock):
                    block.compile(dynamic=None)
        self._module = module
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._validation_set: list | None = None
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None

    # -- construction helpers ------------------------------------------------------------------
    def _default_source(self) -> IndexedSource:
        config, model_config = self.config, self.model.config
        if config.synthetic:
            options = {k: v for k, v in config.survey.items() if k in ("bands", "spectrum_fraction")}
            return SyntheticSource(config.batch_size, config.seed, image_size=model_config.image_size,
                                   spectrum_length=model_config.spectrum_length, device=self.device, **options)  # fmt: skip
        if config.data is not None:
            return FileSource(config.data, config.batch_size, config.seed, holdout=config.n_validation, device=self.device)
        from ..simulation.survey import MockSurvey, SurveyConfig

        survey_config = SurveyConfig.from_dict(config.survey)
        if survey_config.spectral_grid.n_pixels != model_config.spectrum_length or (
            survey_config.image_grid.n_pixels != model_config.image_size
        ):
            raise ValueError(
                f"survey grids ({survey_config.image_grid.n_pixels} px images, {survey_config.spectral_grid.n_pixels} px spectra) "
                f"do not match the model ({model_config.image_size}, {model_config.spectrum_length}); "
                "set [model] image_size / spectrum_length or the survey grids to agree"
            )
        return SurveySource(MockSurvey(survey_config, device=self.device), config.batch_size, config.seed)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """``torch.bfloat16`` under bf16 precision, else None (no autocast)."""
        return torch.bfloat16 if self.precision == "bf16" else None

    def _step_generator(self, step: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(_seed_from("masks", self.config.seed, step, self.context.rank))
        return generator

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full training state as tensors and plain values (see `~jwst_embed.training.checkpoint`)."""
        from .. import __version__

        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "next_batch_index": self.step * self.context.world_size,
            "world_size": self.context.world_size,
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(),
            "train_config": self.config.to_dict(),
            "model_config": self.model.config.to_dict(),
            "survey_config": self.survey_config.to_dict() if self.survey_config is not None else None,
            "versions": {"jwst_embed": __version__, "torch": str(torch.__version__)},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state written by `state_dict` (model, optimiser, schedule, step, RNG)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a jwst_embed training checkpoint (format {state.get('format')!r})")
        if state["model_config"] != self.model.config.to_dict():
            raise ValueError("the checkpoint's model configuration differs from this run's; use the same preset and [model]")
        if state["world_size"] != self.context.world_size:
            raise ValueError(
                f"checkpoint written by {state['world_size']} processes, resuming with {self.context.world_size}: "
                "the data stream would not continue exactly; resume with the same number of processes"
            )
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        restore_rng_state(state["rng"])

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the training state atomically (rank 0 only; default ``out_dir/latest.pt``)."""
        if not self.context.is_main:
            return None
        if path is None:
            if self.out_dir is None:
                return None
            path = self.out_dir / "latest.pt"
        return atomic_save(self.state_dict(), path)

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load ``path`` (default ``out_dir/latest.pt``) if it exists; return whether it did."""
        if path is None:
            if self.out_dir is None or not (self.out_dir / "latest.pt").is_file():
                return False
            path = self.out_dir / "latest.pt"
        self.load_state_dict(load_checkpoint(path, map_location="cpu"))
        return True

    # -- training -------------------------------------------------------------------------------
    def train(self, resume: bool | str | os.PathLike = False, until_step: int | None = None) -> list[dict[str, float]]:
        """Run optimiser steps up to ``config.max_steps`` (or ``until_step``).

        Parameters
        ----------
        resume : bool or path-like
            True: continue from ``out_dir/latest.pt`` if it exists; a path:
            continue from that checkpoint (which must exist).
        until_step : int, optional
            Stop after this step (the schedule still runs to ``max_steps``); for
            splitting a run into parts.

        Returns
        -------
        history : list of dict
            One entry per step done in this call.
        """
        config, context = self.config, self.context
        if resume:
            path = None if resume is True else resume
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"checkpoint {path} does not exist")
            self.resume(path)
        end = min(config.max_steps, until_step if until_step is not None else config.max_steps)
        writer = _MetricsWriter(self.out_dir / "metrics.csv", self.step) if (self.out_dir and context.is_main) else None
        if self.out_dir is not None and context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        previous_deterministic, previous_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        self._module.train()
        stream = self.source.batches(self.step * context.world_size + context.rank, context.world_size)
        bar = tqdm(total=end, initial=self.step, disable=not (self.progress and context.is_main), unit="step",
                   desc="pretraining", dynamic_ncols=True)  # fmt: skip
        done: list[dict[str, float]] = []
        last_time, last_step = time.perf_counter(), self.step
        started = last_time
        out_of_time = False
        try:
            while self.step < end:
                batch = _to_device(next(stream), self.device)
                record = self._train_step(batch)
                self.step += 1
                record["step"] = self.step
                record["samples"] = self.step * config.batch_size * context.world_size
                # A wall-clock budget (e.g. a lent GPU): every rank must stop at the same step, so
                # rank 0 decides and the decision is broadcast.
                out_of_time = bool(config.max_time_s) and _all_agree(
                    time.perf_counter() - started >= config.max_time_s, context
                )
                is_last = self.step == end or out_of_time
                # Validate at multiples of validate_every and at the end of runs long enough to have reached one.
                due = config.validate_every and (
                    self.step % config.validate_every == 0 or (is_last and self.step >= config.validate_every)
                )
                if context.is_main and due:
                    metrics = self.validate()
                    record.update({f"val_{k}": v for k, v in metrics.items()})
                    bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                if writer is not None and (
                    (config.log_every and self.step % config.log_every == 0) or is_last or any(k.startswith("val_") for k in record)
                ):
                    now = time.perf_counter()
                    record["samples_per_s"] = (self.step - last_step) * config.batch_size * context.world_size / max(now - last_time, 1e-9)
                    last_time, last_step = now, self.step
                    writer.write(record)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0 and not is_last:
                    self.save_checkpoint()
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                done.append(record)
                self.history.append(record)
                if out_of_time:
                    bar.write(f"stopping at step {self.step}: max_time_s = {config.max_time_s} reached")
                    break
            self.save_checkpoint()
            if (self.step >= config.max_steps or out_of_time) and self.out_dir is not None and context.is_main:
                save_model(self.out_dir / "model.pt", self.model, {"step": self.step, "train_config": config.to_dict()})
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            torch.use_deterministic_algorithms(previous_deterministic)
            torch.set_num_threads(previous_threads)
        return done

    def _train_step(self, batch) -> dict[str, float]:
        config = self.config
        generator = self._step_generator(self.step)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            total, parts = self._module(batch, generator)
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        if not torch.isfinite(total):
            # Skip the update rather than poison the weights; the step still counts (schedule, data).
            self.scheduler.step()
            return {"loss": float("nan"), "lr": lr, "grad_norm": float("nan")}
        total.backward()
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        if config.grad_clip:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip))
        else:
            grad_norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])))
        self.optimizer.step()
        self.scheduler.step()
        record = {"loss": float(total.detach()), "lr": lr, "grad_norm": grad_norm}
        record.update({name: float(value) for name, value in parts.items()})
        return record

    def validation_set(self) -> list:
        """The fixed validation batches (built once, on the training device)."""
        if self._validation_set is None:
            n = self.config.n_validation
            make = getattr(self.source, "validation_batches", None)
            self._validation_set = [_to_device(b, self.device) for b in make(n)] if (make and n) else []
        return self._validation_set

    def validate(self) -> dict[str, float]:
        """`~jwst_embed.training.validation.quick_validation` on the fixed validation set."""
        batches = self.validation_set()
        if not batches:
            return {}
        return quick_validation(self.model, batches, autocast_dtype=self.autocast_dtype)

    def close(self) -> None:
        """Leave the process group if this trainer's `init_distributed` opened it."""
        shutdown_distributed(self.context)


class _MetricsWriter:
    """Append rows to ``metrics.csv``; on resume, drop rows after the resumed step."""

    def __init__(self, path: Path, resumed_step: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict[str, str]] = []
        if path.is_file() and resumed_step > 0:
            with open(path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if row.get("step") and int(row["step"]) <= resumed_step]
        self._handle = open(path, "w", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.DictWriter(self._handle, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        self._writer.writeheader()
        self._writer.writerows(kept)
        self._handle.flush()

    def write(self, record: Mapping[str, float]) -> None:
        self._writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in record.items()})
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
