"""Training downstream of frozen encoders: a spectrum line reader, the fusion, heads and decoder.

Encoding images is most of the cost of a training step, and a trained image encoder need not
change when the spectrum path does. This module trains what lies after the encoders of a
`~jwst_embed.models.MultimodalModel` (its `~jwst_embed.models.SpectrumLineReader`, the fusion,
the prediction heads and the spectrum decoder) in two phases, on the CPU in minutes or on a GPU:

1. `train_line_reader`: the line reader alone on mock spectra (fresh objects every step), with
   a redshift head on its own tokens: its supervised signal on its own view;
2. `train_downstream`: everything downstream on a `TokenPool` of mock galaxies whose image
   tokens were encoded once by the frozen image encoder (`build_token_pool`) and whose spectra
   get fresh noise every step; each step draws which bands and whether the spectrum an object
   shows, and the loss is the pretraining loss (`~jwst_embed.training.PretrainingLoss`:
   heads on the fused embedding of everything and of a random subset, the images-vs-spectra
   contrast, subset consistency, the decoder) plus the redshift head on the PRISM-only view.

The image encoder, the spectrum transformer and their projections stay frozen, so the
per-modality embeddings and masked-modelling skills of the starting model are kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..metrics import morphology_f1, outlier_fraction, sigma_nmad, spectrum_r2
from ..models.heads import RedshiftHead
from ..preprocessing.batch import Batch, ModalityTensors, modality_order
from ..preprocessing.stretch import model_inputs
from ..simulation import batch_generator
from ..simulation.prism import REFERENCE_EXPOSURE_S
from ..simulation.sample_batch import sample_to_batch
from .losses import LossWeights, PretrainingLoss
from .optim import freeze_all_but

__all__ = [
    "DownstreamConfig",
    "TokenPool",
    "build_token_pool",
    "train_line_reader",
    "train_downstream",
    "evaluate_pool",
]

#: Modules trained by `train_downstream`; everything else is frozen.
DOWNSTREAM_MODULES = ("line_reader", "line_projection", "fusion", "heads", "spectrum_decoder")
_NEW_MODULES = ("line_reader", "line_projection")


@dataclass
class DownstreamConfig:
    """Settings of `train_line_reader` and `train_downstream` (defaults work on a CPU).

    Parameters
    ----------
    line_reader_steps, steps : int
        Optimiser steps of the two phases.
    batch_size : int
        Objects per step.
    lr_new, lr_pretrained : float
        Peak learning rates of new modules (line reader, new heads) and of modules that start
        from trained weights (fusion, other heads, decoder); cosine decay to 5%.
    band_probability, spectrum_probability : float
        Chance that an object shows each image band, and its spectrum, in a step (at least
        one modality is always shown).
    loss : dict
        `~jwst_embed.training.LossWeights` overrides for phase 2 (the masked-modelling and
        per-modality contrastive terms are off: their encoders are frozen).
    spectrum_view_redshift : float
        Weight of the redshift loss on the fused embedding of the spectrum alone.
    seed : int
        Seed of the data stream and initialisation.
    """

    line_reader_steps: int = 3000
    steps: int = 3000
    batch_size: int = 128
    lr_new: float = 1e-3
    lr_pretrained: float = 2e-4
    band_probability: float = 0.6
    spectrum_probability: float = 0.85
    loss: dict = field(default_factory=dict)
    spectrum_view_redshift: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TokenPool:
    """Mock galaxies with their image tokens encoded once, and noiseless spectra to re-observe.

    Attributes
    ----------
    bands : tuple of str
        Image bands, in the order of ``image_tokens``' second axis.
    image_tokens : `~torch.Tensor`
        ``(N, n_bands, 1 + n_summary_tokens, D)`` float16 projected tokens of the frozen
        image encoder.
    spectrum_noiseless : `~torch.Tensor`
        ``(N, L)`` slit-lossed noiseless PRISM spectra (nJy) on the model grid.
    exposure_s : `~torch.Tensor`
        ``(N,)`` PRISM exposure times (s).
    labels : dict of str to `~torch.Tensor`
        ``redshift``, ``log_mass``, ``morphology`` and the true ``spectrum_noiseless``
        without slit loss (the decoder's target), ``(N, ...)``.
    """

    bands: tuple[str, ...]
    image_tokens: Tensor
    spectrum_noiseless: Tensor
    exposure_s: Tensor
    labels: dict[str, Tensor]

    def __len__(self) -> int:
        return self.image_tokens.shape[0]

    @property
    def device(self) -> torch.device:
        """Where the pool's tensors live (batches are drawn there)."""
        return self.image_tokens.device

    def to(self, device: str | torch.device) -> TokenPool:
        """The pool with every tensor on ``device`` (itself if already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return TokenPool(self.bands, self.image_tokens.to(device), self.spectrum_noiseless.to(device),
                         self.exposure_s.to(device), {key: value.to(device) for key, value in self.labels.items()})  # fmt: skip

    def save(self, path: str | Path) -> None:
        """Write the pool as a dict of tensors (`torch.load` with ``weights_only=True`` reads it)."""
        torch.save(
            {"bands": list(self.bands), "image_tokens": self.image_tokens,
             "spectrum_noiseless": self.spectrum_noiseless, "exposure_s": self.exposure_s,
             "labels": self.labels},
            path,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> TokenPool:
        """Read a pool written by `save`."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        return cls(tuple(data["bands"]), data["image_tokens"], data["spectrum_noiseless"],
                   data["exposure_s"], data["labels"])  # fmt: skip


def _cosine(step: int, steps: int, warmup: int = 100, position: int | None = None) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 5% at ``position`` = ``steps``."""
    warm = min(1.0, (step + 1) / warmup)
    position = step if position is None else position
    return warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(position, steps) / max(steps, 1))))


@torch.no_grad()
def build_token_pool(model, survey, n_objects: int, seed: int, batch_size: int = 256, progress: bool = True) -> TokenPool:
    """Simulate mock galaxies and encode their images once with the model's frozen image encoder.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
    survey : `~jwst_embed.simulation.MockSurvey`
        With bands and spectra; its batches come from ``batch_generator(seed, k)``.
    n_objects : int
        Pool size.
    seed : int
        Survey seed (keep it apart from validation and benchmark seeds).
    batch_size : int
        Objects simulated and encoded at once.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pool : `TokenPool`
    """
    from tqdm.auto import tqdm

    model.eval()
    parts: dict[str, list[Tensor]] = {}
    n_batches = math.ceil(n_objects / batch_size)
    for index in tqdm(range(n_batches), desc="token pool", disable=not progress):
        size = min(batch_size, n_objects - index * batch_size)
        sample = survey.sample(size, generator=batch_generator(seed, index, survey.device))
        batch = sample_to_batch(sample, survey.config)
        tokens = model.encode_images(batch)
        pieces = {
            "image_tokens": torch.stack([tokens[band] for band in survey.config.bands], dim=1).half().cpu(),
            "spectrum_noiseless": sample["spectrum_noiseless"].float().cpu(),
            "exposure_s": sample["exposure_s"].float().cpu(),
            "redshift": sample["redshift"].float().cpu(),
            "log_mass": sample["log_mass"].float().cpu(),
            "morphology": sample["morphology"].long().cpu(),
        }
        for key, value in pieces.items():
            parts.setdefault(key, []).append(value)
    data = {key: torch.cat(value) for key, value in parts.items()}
    labels = {key: data[key] for key in ("redshift", "log_mass", "morphology")}
    # the decoder reproduces the noiseless spectrum (slit loss included, as observed)
    labels["spectrum_noiseless"] = data["spectrum_noiseless"]
    return TokenPool(tuple(survey.config.bands), data["image_tokens"], data["spectrum_noiseless"],
                     data["exposure_s"], labels)  # fmt: skip


def _pool_batch(pool: TokenPool, rows: Tensor, instrument, generator: torch.Generator, config: DownstreamConfig,
                shown: Tensor | None = None) -> tuple[Batch, dict[str, Tensor]]:
    """A Batch of pool objects with fresh spectral noise, and their cached image tokens."""
    n, n_bands, device = rows.numel(), len(pool.bands), pool.device
    rows = rows.to(device)
    noiseless = pool.spectrum_noiseless[rows]
    observed = instrument.native_noise.draw(noiseless, REFERENCE_EXPOSURE_S / pool.exposure_s[rows], generator)
    if shown is None:
        probability = torch.tensor([config.band_probability] * n_bands + [config.spectrum_probability], device=device)
        shown = torch.rand(n, n_bands + 1, generator=generator, device=device) < probability
        empty = ~shown.any(dim=1)
        pick = torch.randint(0, n_bands + 1, (n,), generator=generator, device=device)
        shown[empty, pick[empty]] = True
    shown = shown.to(device)
    images = {}
    cached = {}
    for k, band in enumerate(pool.bands):
        images[band] = ModalityTensors(torch.zeros(n, 1, 1, device=device), torch.zeros(n, 1, 1, device=device),
                                       torch.ones(n, 1, 1, dtype=torch.bool, device=device))  # fmt: skip
        cached[band] = pool.image_tokens[rows, k].float()
    has_spectrum = shown[:, -1]
    mask = observed["spectrum_mask"] | ~has_spectrum[:, None]
    spectra = {"PRISM": ModalityTensors(
        torch.where(mask, 0.0, observed["spectrum"]), torch.where(mask, 0.0, observed["spectrum_ivar"]), mask
    )}  # fmt: skip
    order = modality_order([*pool.bands, "PRISM"])
    columns = {band: shown[:, k] for k, band in enumerate(pool.bands)} | {"PRISM": has_spectrum}
    present = torch.stack([columns[name] for name in order], dim=1)
    targets = {key: value[rows] for key, value in pool.labels.items()}
    return Batch(images=images, spectra=spectra, present=present, targets=targets), cached


def train_line_reader(model, survey, config: DownstreamConfig | None = None, progress: bool = True) -> list[dict]:
    """Phase 1: train the model's line reader alone, with a redshift head on its own tokens.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        With ``config.line_reader_depth > 0``; its line reader and line projection are trained.
    survey : `~jwst_embed.simulation.MockSurvey`
        Source of fresh spectra (its images are not used: give it ``bands=()`` for speed).
    config : `DownstreamConfig`, optional
    progress : bool
        Show a progress bar.

    Returns
    -------
    history : list of dict
        ``step`` and ``loss`` every 50 steps.
    """
    from tqdm.auto import tqdm

    config = config or DownstreamConfig()
    if model.line_reader is None:
        raise ValueError("the model has no line reader (ModelConfig.line_reader_depth = 0)")
    torch.manual_seed(config.seed)
    n_line = model.config.line_tokens * model.config.latent_dim
    head = RedshiftHead(n_line, n_bins=model.config.redshift_bins, label_sigma=model.config.redshift_label_sigma)
    modules = nn.ModuleList([model.line_reader, model.line_projection, head])
    for parameter in modules.parameters():
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(modules.parameters(), lr=config.lr_new, weight_decay=0.01)
    modules.train()
    history, running = [], []
    for step in tqdm(range(config.line_reader_steps), desc="line reader", disable=not progress):
        for group in optimiser.param_groups:
            group["lr"] = config.lr_new * _cosine(step, config.line_reader_steps)
        sample = survey.sample(config.batch_size, generator=batch_generator(config.seed + 7_000_003, step, survey.device))
        stretched, weight = model_inputs(
            sample["spectrum"], sample["spectrum_ivar"], sample["spectrum_mask"], model.config.spectrum_softening_njy
        )
        if model.config.line_reader_weight == "mask":
            weight = (weight > 0).float()
        tokens = model.line_projection(model.line_reader(stretched.float(), weight.float()))
        loss = head.loss(head(tokens.flatten(1)), sample["redshift"])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimiser.step()
        running.append(loss.item())
        if (step + 1) % 50 == 0:
            history.append({"step": step + 1, "loss": float(np.mean(running))})
            running = []
    return history


def train_downstream(model, pool: TokenPool, instrument, config: DownstreamConfig | None = None,
                     validation: TokenPool | None = None, validate_every: int = 500,
                     progress: bool = True, reset_heads: tuple[str, ...] = (),
                     max_seconds: float | None = None, on_validation=None) -> list[dict]:
    """Phase 2: train the line reader, fusion, heads and decoder on a `TokenPool`.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
    pool : `TokenPool`
        From `build_token_pool` with the same model's image encoder.
    instrument : `~jwst_embed.simulation.PrismInstrument`
        Draws the spectra's noise (``noise="native"``), e.g. ``survey.spectrum_simulator.instrument``.
    config : `DownstreamConfig`, optional
    validation : `TokenPool`, optional
        Scored by `evaluate_pool` every ``validate_every`` steps and at the end.
    validate_every : int
        Interval in steps.
    progress : bool
        Show a progress bar.
    reset_heads : tuple of str
        Heads newly built (trained at ``lr_new``), e.g. ``("redshift",)`` for a head with new bins.
    max_seconds : float, optional
        Time budget: training stops after this many seconds (or ``config.steps`` steps, whichever
        comes first), and the learning-rate schedule follows the larger of the step and time
        fractions, so a run cut by time still ends at the low learning rate.
    on_validation : callable, optional
        Called as ``on_validation(step, scores)`` after each validation (e.g. to checkpoint).

    Returns
    -------
    history : list of dict
        Loss terms every 50 steps and validation scores.

    Notes
    -----
    The pool is moved to the model's device; noise and input subsets are drawn there.
    """
    from tqdm.auto import tqdm

    config = config or DownstreamConfig()
    if instrument.native_noise is None:
        raise ValueError("the instrument must draw native-pixel noise (PrismInstrument(noise='native'))")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    device = next(model.parameters()).device
    if instrument.native_noise.device.type != device.type:
        raise ValueError(f"the instrument draws noise on {instrument.native_noise.device}, the model is on {device}")
    pool = pool.to(device)
    validation = validation.to(device) if validation is not None else None
    torch.manual_seed(config.seed)
    trainable = freeze_all_but(model, [name for name in DOWNSTREAM_MODULES if getattr(model, name, None) is not None])
    new = {id(p) for name in _NEW_MODULES if getattr(model, name) is not None for p in getattr(model, name).parameters()}
    for name in reset_heads:
        new |= {id(p) for p in model.heads[name].parameters()}
    groups = [
        {"params": [p for p in trainable if id(p) in new], "lr": config.lr_new, "peak": config.lr_new},
        {"params": [p for p in trainable if id(p) not in new], "lr": config.lr_pretrained, "peak": config.lr_pretrained},
    ]
    optimiser = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.01)
    weights = LossWeights(**{"spectrum_mask": 0.0, "image_mask": 0.0, "contrastive": 0.0, **config.loss})
    loss_fn = PretrainingLoss(weights)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    history, running = [], {}
    start = time.perf_counter()
    last_step = config.steps
    for step in tqdm(range(config.steps), desc="downstream", disable=not progress):
        elapsed = time.perf_counter() - start
        if max_seconds is not None and elapsed >= max_seconds:
            last_step = step
            break
        # a schedule position in steps: the step fraction, or the time fraction if that is ahead
        position = step if max_seconds is None else max(step, int(config.steps * elapsed / max_seconds))
        model.train()
        for group in optimiser.param_groups:
            group["lr"] = group["peak"] * _cosine(step, config.steps, position=position)
        rows = torch.randint(0, len(pool), (config.batch_size,), generator=generator, device=device)
        batch, cached = _pool_batch(pool, rows, instrument, generator, config)
        output = model(batch, mask_inputs=False, generator=generator, modality_dropout=True, cached_image_tokens=cached)
        total, parts = loss_fn(output, batch.targets, model.heads)
        if config.spectrum_view_redshift and output.fused_spectra is not None:
            view = output.views_present[:, 1]
            if bool(view.any()):
                head = model.heads["redshift"]
                loss = head.loss(head(output.fused_spectra[view]), batch.targets["redshift"][view])
                total = total + config.spectrum_view_redshift * loss
                parts["redshift_spectrum_view"] = loss.detach()
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(trainable, 1.0)
        optimiser.step()
        for key, value in parts.items():
            running.setdefault(key, []).append(float(value))
        if (step + 1) % 50 == 0:
            record = {"step": step + 1, "seconds": round(time.perf_counter() - start, 1)}
            record |= {key: float(np.mean(values)) for key, values in running.items()}
            history.append(record)
            running = {}
        if validation is not None and ((step + 1) % validate_every == 0 or step + 1 == config.steps):
            _validate(model, validation, instrument, config, step + 1, history, progress, on_validation)
    if validation is not None and last_step < config.steps and last_step % validate_every:
        _validate(model, validation, instrument, config, last_step, history, progress, on_validation)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    return history


def _validate(model, validation, instrument, config, step, history, progress, on_validation) -> None:
    from tqdm.auto import tqdm

    scores = evaluate_pool(model, validation, instrument, config)
    history.append({"step": step, **{f"val_{k}": v for k, v in scores.items()}})
    if progress:
        tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    if on_validation is not None:
        on_validation(step, scores)


#: Input sets scored by `evaluate_pool`: name -> (bands shown, spectrum shown).
EVALUATION_SETS = {"PRISM": ((), True), "F150W+PRISM": (("F150W",), True), "F150W": (("F150W",), False)}


@torch.no_grad()
def evaluate_pool(model, pool: TokenPool, instrument, config: DownstreamConfig | None = None, seed: int = 12345) -> dict[str, float]:
    """Redshift, mass, morphology and spectrum scores of the model's heads on a `TokenPool`.

    The noise is drawn with a fixed seed, so calls are comparable. Returns
    ``z_sigma_nmad_<set>``, ``z_outliers_<set>`` for the ``EVALUATION_SETS``, and
    ``logm_sigma``, ``morph_f1`` and ``spec_r2_median`` for F150W + PRISM.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The model whose heads and decoder are scored.
    pool : `TokenPool`
        Cached image tokens, clean spectra and labels of the validation objects.
    instrument : `~jwst_embed.simulation.PrismInstrument`
        Draws the PRISM noise added to the pool's clean spectra.
    config : `DownstreamConfig`, optional
        Batch composition and noise options; the defaults if not given.
    seed : int, optional
        Seed of the noise draws.

    Returns
    -------
    scores : dict of str to float
        The scores named above.
    """
    config = config or DownstreamConfig()
    model.eval()
    pool = pool.to(next(model.parameters()).device)
    scores: dict[str, float] = {}
    rows = torch.arange(len(pool), device=pool.device)
    for name, (bands, spectrum) in EVALUATION_SETS.items():
        shown = torch.zeros(len(pool), len(pool.bands) + 1, dtype=torch.bool, device=pool.device)
        for band in bands:
            shown[:, pool.bands.index(band)] = True
        shown[:, -1] = spectrum
        generator = torch.Generator(device=pool.device).manual_seed(seed)
        z, logm, morph, r2 = [], [], [], []
        for chunk in rows.split(512):
            batch, cached = _pool_batch(pool, chunk, instrument, generator, config, shown[chunk])
            fused = model(batch, modality_dropout=False, cached_image_tokens=cached).fused
            z.append(model.heads["redshift"].predict(fused)["z_point"].cpu())
            logm.append(model.heads["log_mass"].predict(fused)["log_mass"].cpu())
            morph.append(model.heads["morphology"].predict(fused)["label"].cpu())
            decoded = model.spectrum_flux(model.spectrum_decoder(fused).double())
            r2.append(spectrum_r2(decoded.cpu().numpy(), pool.labels["spectrum_noiseless"][chunk].double().cpu().numpy()))
        z_true = pool.labels["redshift"].cpu().numpy()
        z_pred = torch.cat(z).numpy()
        scores[f"z_sigma_nmad_{name}"] = sigma_nmad(z_pred, z_true)
        scores[f"z_outliers_{name}"] = outlier_fraction(z_pred, z_true)
        if name == "F150W+PRISM":
            scores["logm_sigma"] = float(np.std(torch.cat(logm).numpy() - pool.labels["log_mass"].cpu().numpy()))
            scores["morph_f1"] = morphology_f1(pool.labels["morphology"].cpu().numpy(), torch.cat(morph).numpy())["f1_macro"]
            scores["spec_r2_median"] = float(np.median(np.concatenate(r2)))
    return scores
