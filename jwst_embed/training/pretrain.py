"""Pretraining: the `Trainer` behind ``jwst-embed train``, which runs a `TrainConfig`.

(`TrainConfig` lives in `jwst_embed.training.config` and is importable from here too.)

The trainer reads `~jwst_embed.preprocessing.Batch` objects from a *data source*
(`~jwst_embed.training.data`; the sources are re-exported here)
with random access by batch index (`DataSource`): batch ``k`` depends only on the
source's seed and ``k``. Process ``rank`` of ``world_size`` trains at step ``s`` on
batch ``s * world_size + rank``, so every process sees distinct objects and a
resumed run continues the stream exactly where it stopped: the checkpoint stores
the step, and the data-stream state follows from it.

One step: masked inputs (random patches hidden, drawn from a generator seeded by
``(seed, step, rank)``), `~jwst_embed.training.PretrainingLoss`, AdamW with weight
decay on matrices only, gradient clipping, a cosine schedule with linear warm-up;
bf16 autocast on CUDA. Rank 0 logs to ``metrics.csv``, validates on a fixed mock
set (``jwst_embed.training.validation.quick_validation``) and writes ``latest.pt``
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
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..devices import autocast
from .checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_model,
)
from .config import TrainConfig

# The data sources (.data) and optimiser helpers (.optim) are listed in those modules' __all__;
# imported here for the trainer and so that ``from jwst_embed.training.pretrain import
# SyntheticSource, cosine_with_warmup`` keeps working.
from .data import (
    MOCK_SURVEY,
    DataSource,
    FileSource,
    IndexedSource,
    MixedSource,
    SurveySource,
    SyntheticSource,
    mix_counts,
    seed_from,
    to_device,
)
from .distributed import DistributedContext, init_distributed, shutdown_distributed
from .optim import cosine_with_warmup, freeze_all_but, parameter_groups
from .validation import quick_validation
from .whitening import fit_similarity_whitening

__all__ = [
    "TrainConfig",
    "Trainer",
    "METRIC_COLUMNS",
]

#: Settings that define a run's data stream and batches: resuming with other values is refused.
_STREAM_FIELDS = ("seed", "batch_size", "synthetic", "mix")

#: Files a run writes into its ``out_dir``; a new run refuses a folder holding any of them.
RUN_FILES = ("metrics.csv", "latest.pt", "model.pt")

#: Columns of ``metrics.csv`` (empty where a value was not computed at that step).
METRIC_COLUMNS = (
    "step", "samples", "loss", "lr", "grad_norm",
    "spectrum_mask", "image_mask", "contrastive", "views", "consistency", "decoder", "decoder_subset",
    "redshift", "stellar_mass", "morphology", "redshift_neighbours", "temperature",
    "samples_per_s",
    "val_redshift_sigma_nmad", "val_redshift_outlier_fraction", "val_spectrum_r2", "val_spectrum_r2_images",
    "val_spectrum_r2_median", "val_spectrum_r2_images_median",
    "val_head_redshift_sigma_nmad", "val_head_redshift_outlier_fraction", "val_head_log_mass_sigma",
    "val_head_morphology_f1",
)  # fmt: skip


def _all_agree(flag: bool, context) -> bool:
    """Rank 0's value of ``flag`` on every rank (no communication outside distributed runs)."""
    if not context.distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


# ---------------------------------------------------------------------------------- model + loss
class _PretrainingModule(nn.Module):
    """Model and loss in one module, so DDP synchronises the loss's temperature too."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, mask_inputs: bool = True) -> None:
        super().__init__()
        self.model, self.loss_fn, self.mask_inputs = model, loss_fn, mask_inputs

    def forward(self, batch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        output = self.model(batch, mask_inputs=self.mask_inputs, generator=generator)
        return self.loss_fn(output, getattr(batch, "targets", None), getattr(self.model, "heads", None))


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
        # Another run's files in out_dir, seen before any process of this run can write there
        # (the ranks meet in init_distributed first), so every rank decides alike in train().
        folder = Path(config.out_dir) if config.out_dir is not None else None
        self._previous_run = [name for name in RUN_FILES if folder is not None and (folder / name).exists()]
        self.context = context if context is not None else init_distributed(config.device)
        self.device = self.context.device
        self.precision = config.resolved_precision(self.device)
        self.progress = progress
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        init_path = self._init_path(config.init_from) if config.init_from is not None else None
        if model is None and config.preset == "init":
            model = MultimodalModel(load_model(init_path).config)
        self.model = model if model is not None else MultimodalModel(ModelConfig.preset(config.preset, **config.model))
        if init_path is not None:
            self._initialise_from(init_path)
        self.model.to(self.device)
        if config.train_modules is not None:
            # the others are frozen (and so left out of the optimiser), the losses still flow through them
            freeze_all_but(self.model, config.train_modules)
        self.loss_fn = PretrainingLoss(LossWeights(**config.loss), temperature=config.temperature).to(self.device)
        self.source = source if source is not None else self._default_source()
        self.survey_config = getattr(getattr(self.source, "survey", None), "config", None)

        self.optimizer = torch.optim.AdamW(
            parameter_groups([self.model, self.loss_fn], config.weight_decay), lr=config.lr, betas=config.betas
        )
        schedule = lambda step: cosine_with_warmup(step, config.warmup_steps, config.max_steps, config.min_lr_fraction)  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        module: nn.Module = _PretrainingModule(self.model, self.loss_fn, config.mask_inputs)
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
        entries = config.data_entries
        if len(entries) > 1 or (entries and config.mix is not None):
            counts = mix_counts(config.mix or [1.0] * len(entries), config.batch_size)
            holdouts = mix_counts(counts, max(config.n_validation, len(entries))) if config.n_validation else [0] * len(entries)
            return MixedSource([
                self._one_source(entry, count, seed_from("mix", config.seed, i) % 2**31, holdout)
                for i, (entry, count, holdout) in enumerate(zip(entries, counts, holdouts, strict=True))
                if count > 0
            ])  # fmt: skip
        if entries:
            return self._one_source(entries[0], config.batch_size, config.seed, config.n_validation)
        return self._one_source(MOCK_SURVEY, config.batch_size, config.seed, config.n_validation)

    def _one_source(self, entry: str, batch_size: int, seed: int, holdout: int) -> IndexedSource:
        config, model_config = self.config, self.model.config
        if entry != MOCK_SURVEY:
            return FileSource(entry, batch_size, seed, holdout=holdout, device=self.device)
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
        return SurveySource(MockSurvey(survey_config, device=self.device), batch_size, seed)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """``torch.bfloat16`` under bf16 precision, else None (no autocast)."""
        return torch.bfloat16 if self.precision == "bf16" else None

    def _step_generator(self, step: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed_from("masks", self.config.seed, step, self.context.rank))
        return generator

    @staticmethod
    def _init_path(name_or_path: str) -> Path:
        """The model file of ``init_from``: a file, or a registered name (fetched, hash-checked)."""
        from ..weights import REGISTRY, fetch_weights

        if Path(name_or_path).is_file():
            return Path(name_or_path)
        if name_or_path in REGISTRY:
            return fetch_weights(name_or_path)
        raise FileNotFoundError(f"init_from: model file {name_or_path} does not exist (nor is it a registered model name)")

    def _initialise_from(self, path: Path) -> None:
        """Copy the weights of a model file into the new model (continued pretraining)."""
        source = load_model(path)
        if source.config.to_dict() != self.model.config.to_dict():
            raise ValueError(
                f"init_from: {path} holds a {source.config.to_dict()} model, but this run builds "
                f"{self.model.config.to_dict()}; set preset (and [model]) to match the file"
            )
        # Shipped models are stored in float16; the copy into float32 parameters is exact.
        self.model.load_state_dict(source.state_dict())

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full training state as tensors and plain values (see ``jwst_embed.training.checkpoint``)."""
        from ..version import version as __version__

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
        # the data stream and its batches are defined by these: another value would not continue
        # the run but silently start a different one on top of it
        previous = state.get("train_config") or {}
        changed = [f"{key} {previous[key]!r} -> {getattr(self.config, key)!r}" for key in _STREAM_FIELDS
                   if key in previous and previous[key] != getattr(self.config, key)]  # fmt: skip
        if changed:
            raise ValueError(
                f"the checkpoint's run used other settings ({'; '.join(changed)}): resume with the same "
                "settings, or start a new run (--init-from to start from its weights)"
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
    def train(self, resume: bool | str | os.PathLike = False, until_step: int | None = None,
              overwrite: bool = False) -> list[dict[str, float]]:  # fmt: skip
        """Run optimiser steps up to ``config.max_steps`` (or ``until_step``).

        Parameters
        ----------
        resume : bool or path-like
            True: continue from ``out_dir/latest.pt`` if it exists; a path:
            continue from that checkpoint (which must exist).
        until_step : int, optional
            Stop after this step (the schedule still runs to ``max_steps``); for
            splitting a run into parts.
        overwrite : bool, optional
            Start a new run in an ``out_dir`` that holds another run's files (``metrics.csv``,
            ``latest.pt``, ``model.pt``), replacing them. Without it such a folder is refused.

        Returns
        -------
        history : list of dict
            One entry per step done in this call.

        Raises
        ------
        FileExistsError
            A new run (no ``resume``) would overwrite another run's files in ``out_dir``.
        """
        config, context = self.config, self.context
        if not resume and not overwrite and self.step == 0 and self._previous_run:
            raise FileExistsError(
                f"{self.out_dir} holds another run ({', '.join(self._previous_run)}): resume it with --resume, "
                "choose another --out, or pass --overwrite to replace it"
            )
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
                batch = to_device(next(stream), self.device)
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
                # the model file carries the whitening of its fused embeddings of the validation
                # mocks, which similarity search applies; only in runs that validated (the set is
                # built already: simulating it just for this would cost a short run minutes)
                whitening = (fit_similarity_whitening(self.model, self._validation_set, self.autocast_dtype)
                             if self._validation_set else None)  # fmt: skip
                extras = {"similarity_whitening": whitening.to_payload()} if whitening is not None else None
                save_model(self.out_dir / "model.pt", self.model, {"step": self.step, "train_config": config.to_dict()},
                           extras=extras)  # fmt: skip
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
        with autocast(self.device, self.autocast_dtype):
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
            self._validation_set = [to_device(b, self.device) for b in make(n)] if (make and n) else []
        return self._validation_set

    def validate(self) -> dict[str, float]:
        """``jwst_embed.training.validation.quick_validation`` on the fixed validation set."""
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
