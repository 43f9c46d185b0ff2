"""`TrainConfig`: everything a pretraining run (``jwst-embed train``) needs, from a TOML file or fields.

The `~jwst_embed.training.pretrain.Trainer` runs what it describes; it lives apart from the
trainer so that reading, checking and writing a configuration does not need the trainer.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from .data import mix_counts

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything a pretraining run needs; every field has a default that works.

    Parameters
    ----------
    preset : {"tiny", "small", "base", "init"}
        Model size (`~jwst_embed.models.ModelConfig.preset`); ``"init"``: the configuration of the
        ``init_from`` model (e.g. to continue from the shipped default model).
    model : dict
        Overrides of `~jwst_embed.models.ModelConfig` fields (TOML table ``[model]``).
    loss : dict
        `~jwst_embed.training.LossWeights` fields (TOML table ``[loss]``).
    temperature : float
        Initial contrastive (InfoNCE) temperature, which is then learned. A run started with
        ``init_from`` should begin at the temperature its source run ended with (the
        ``temperature`` column of that run's ``metrics.csv``): the model file does not hold it.
    survey : dict
        `~jwst_embed.simulation.survey.SurveyConfig` fields, e.g. ``bands``
        (TOML table ``[survey]``); ignored with ``data``.
    data : str or list of str, optional
        An HDF5 file to train on instead of the on-the-fly survey: mocks (``jwst-embed
        simulate``) or your own objects (``jwst-embed prepare``). Several entries are mixed in
        every batch (`~jwst_embed.training.MixedSource`); the entry ``"mock-survey"``
        stands for the on-the-fly mock survey (configured by ``survey``).
    mix : list of float, optional
        Shares of the ``data`` entries in every batch (e.g. ``[0.25, 0.75]``; need not sum
        to 1). Default: equal shares.
    init_from : str, optional
        A model file (``model.pt``, a training checkpoint) or a registered model name
        (``"default"``, ``"v5"``, ...; fetched and hash-checked) whose weights start this run:
        continued pretraining with a fresh optimiser and schedule. Its model configuration must
        be the one ``preset`` and ``model`` describe, or ``preset="init"`` takes it from the file. Unlike ``resume``, the
        step count, optimiser state and data stream start anew.
    train_modules : list of str, optional
        Train only these submodules of the model (dotted names as in ``model.named_modules()``,
        e.g. ``["image_encoder", "image_projection", "heads.morphology"]``); every other weight
        is frozen, though the losses still flow through it. With ``init_from``: improve one path
        (the images) while the outputs of the others (a spectrum alone) stay exactly as they
        were. Default: train everything.
    mask_inputs : bool
        Hide random image and spectrum patches and train their reconstruction (masked
        modelling). False: every loss sees the inputs whole, as users' objects are embedded
        (the supervised heads then learn on the embeddings they will be used on); the
        masked-modelling terms drop out.
    synthetic : bool
        Train on `~jwst_embed.training.SyntheticSource` (simple galaxy-like tensors; for tests and
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
    >>> from jwst_embed.training.config import TrainConfig
    >>> TrainConfig(preset="tiny", max_steps=10).resolved_precision(torch.device("cpu"))
    'fp32'
    """

    preset: str = "small"
    model: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    temperature: float = 0.07
    survey: dict = field(default_factory=dict)
    data: str | list[str] | None = None
    mix: list[float] | None = None
    init_from: str | None = None
    train_modules: list[str] | None = None
    mask_inputs: bool = True
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

        if self.preset == "init":
            if self.init_from is None or self.model:
                raise ValueError('TrainConfig: preset "init" takes the model configuration from init_from: give '
                                 "init_from and no [model] overrides")  # fmt: skip
        else:
            ModelConfig.preset(self.preset, **self.model)  # validates preset name and overrides
        self.betas = tuple(float(b) for b in self.betas)
        for name in ("batch_size", "max_steps"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "validate_every", "log_every", "n_validation", "num_threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.01 <= self.temperature <= 1:
            raise ValueError(f"TrainConfig.temperature must be in [0.01, 1], got {self.temperature}")
        if not self.lr > 0 or not 0 <= self.min_lr_fraction <= 1 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig: need lr > 0, 0 <= min_lr_fraction <= 1, weight_decay >= 0, grad_clip >= 0")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        if self.data is not None and self.synthetic:
            raise ValueError("TrainConfig: give either data (a file) or synthetic=True, not both")
        if self.out_dir is not None:
            self.out_dir = str(self.out_dir)
        if self.data is not None:
            entries = [self.data] if isinstance(self.data, (str, os.PathLike)) else list(self.data)
            if not entries:
                raise ValueError("TrainConfig.data: give at least one file (or leave it out)")
            entries = [str(entry) for entry in entries]
            self.data = entries[0] if len(entries) == 1 else entries
        if self.mix is not None:
            n_data = len(self.data_entries)
            self.mix = [float(share) for share in self.mix]
            if len(self.mix) != n_data:
                raise ValueError(f"TrainConfig.mix has {len(self.mix)} shares for {n_data} data entries")
            mix_counts(self.mix, self.batch_size)  # non-negative, one positive, enough objects per batch
        if self.init_from is not None:
            self.init_from = str(self.init_from)
        if self.train_modules is not None:
            if isinstance(self.train_modules, str) or not all(isinstance(name, str) for name in self.train_modules):
                raise ValueError(f"TrainConfig.train_modules must be a list of module names, got {self.train_modules!r}")
            if not self.train_modules:
                raise ValueError("TrainConfig.train_modules is empty: nothing would train (leave it out to train everything)")
            self.train_modules = list(self.train_modules)

    @property
    def data_entries(self) -> list[str]:
        """``data`` as a list (empty: train on the on-the-fly survey or synthetic batches)."""
        if self.data is None:
            return []
        return [self.data] if isinstance(self.data, str) else list(self.data)

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
