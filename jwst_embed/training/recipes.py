"""How the shipped default models were made, as library calls: `train_default_model` rebuilds them.

v5 (``MultimodalEmbedder.from_pretrained("v5")``) is v3 (pretrained with
`jwst_embed.training.Trainer`, ``jwst-embed train``) extended by a spectrum line reader and a
512-bin redshift head (`add_line_reader`), then trained with ``jwst_embed.training.downstream``:

1. the line reader alone, with a redshift head on its own tokens (6,000 steps of 128);
2. the line reader, fusion, heads and decoder on a pool of 30,000 mock galaxies whose images
   v3's frozen image encoder encoded once, in two legs (4,000 and 2,000 steps of 128 at
   learning-rate scales 1 and 0.5; the first resets the redshift head): this gave v4;
3. one more leg on a pool of 200,000 galaxies (4,724 steps of 512 at scale 0.5): v5.

v6 is v5 with fresh stellar-mass and morphology heads fit on its frozen, clean embeddings of
simulator 0.3's mocks: ``python benchmarks/refit_heads.py --input jwst_embed-default-v5.pt
--output jwst_embed-default-v6.pt --heads log_mass morphology --lr 2e-3 --decoder-steps 0`` (two
minutes on two CPU cores after the embeddings). The default model v8
(``MultimodalEmbedder.from_pretrained("default")``) is v6 with its image path trained for two
CPU legs (``jwst-embed train --config configs/finetune_images_cpu.toml``, then
``configs/finetune_images_cpu_leg2.toml``); the model card has the numbers.

Each leg after the first starts from the float16 file the previous one wrote, as the shipped
models did. Phase 1 and the v4 legs took about 1.8 h on two CPU cores; the last leg ran on an
H100 in 434 s, its pool drawn from the GPU's random stream (other galaxies than a CPU draws with
the same seed) and its learning-rate schedule following a time budget instead of a step count
(here: 4,724 steps). A rebuild therefore follows the shipped weights' procedure and data
distribution, not their bits. The logs of the original legs are in
``benchmarks/results/default_v4/`` (``training_leg3.json`` is a third CPU leg that was tried and
not shipped).

Examples
--------
>>> from jwst_embed.training.recipes import train_default_model
>>> model = train_default_model("runs/default_v5", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..devices import resolve_device
from ..models import ModelConfig, MultimodalModel
from ..models.serialization import load_model, save_model
from ..simulation import MockSurvey, SurveyConfig
from ..weights import fetch_weights
from .downstream import (
    DownstreamConfig,
    TokenPool,
    build_token_pool,
    evaluate_pool,
    train_downstream,
    train_line_reader,
)

__all__ = ["DEFAULT_LEGS", "LINE_READER_FIELDS", "POOL_SEED", "VALIDATION_SEED", "Leg", "add_line_reader",
           "half_precision_copy", "train_default_model"]  # fmt: skip

#: The fields v4 and v5 change in v3's configuration: a line reader and a finer redshift head.
LINE_READER_FIELDS = dict(line_reader_depth=3, line_tokens=2, line_reader_weight="mask", redshift_bins=512,
                          redshift_label_sigma=0.008)  # fmt: skip
#: Survey seeds of the training pool and the validation pool (apart from the benchmarks' seeds).
POOL_SEED, VALIDATION_SEED = 424242, 424243


@dataclass(frozen=True)
class Leg:
    """One leg of phase 2 (`~jwst_embed.training.train_downstream`).

    Parameters
    ----------
    pool : int
        Mock galaxies in the training pool (drawn with ``POOL_SEED``).
    steps : int
        Optimiser steps.
    batch_size : int
        Objects per step.
    lr_scale : float
        Factor on both peak learning rates of `~jwst_embed.training.DownstreamConfig`.
    reset_heads : tuple of str
        Heads re-initialised before the leg.
    """

    pool: int
    steps: int
    batch_size: int = 128
    lr_scale: float = 1.0
    reset_heads: tuple[str, ...] = ()


#: The legs that made the shipped default model v5 (the first two made v4).
DEFAULT_LEGS: tuple[Leg, ...] = (
    Leg(pool=30_000, steps=4000, lr_scale=1.0, reset_heads=("redshift",)),
    Leg(pool=30_000, steps=2000, lr_scale=0.5),
    Leg(pool=200_000, steps=4724, batch_size=512, lr_scale=0.5),
)


def add_line_reader(model: MultimodalModel, fields: dict | None = None) -> MultimodalModel:
    """A copy of ``model`` with a spectrum line reader and a new redshift head (the rest kept).

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        A model without a line reader, e.g. v3.
    fields : dict, optional
        Configuration fields to change; default `LINE_READER_FIELDS`.

    Returns
    -------
    model : `~jwst_embed.models.MultimodalModel`
        float32, with every tensor of ``model`` whose name and shape it still has, except the
        redshift head's; the line reader and the redshift head are freshly initialised.

    Examples
    --------
    >>> from jwst_embed.models import ModelConfig, MultimodalModel
    >>> small = MultimodalModel(ModelConfig.preset("tiny"))
    >>> bigger = add_line_reader(small, dict(line_reader_depth=1, line_reader_width=32, redshift_bins=64))
    >>> bigger.line_reader is not None, bigger.config.redshift_bins
    (True, 64)
    """
    config = ModelConfig.from_dict({**model.config.to_dict(), **(LINE_READER_FIELDS if fields is None else fields)})
    extended = MultimodalModel(config)
    own = extended.state_dict()
    kept = {key: value for key, value in model.float().state_dict().items()
            if key in own and own[key].shape == value.shape and not key.startswith("heads.redshift.")}  # fmt: skip
    extended.load_state_dict(kept, strict=False)
    return extended


def half_precision_copy(model: MultimodalModel) -> MultimodalModel:
    """A float16 copy on the CPU (the shipped precision), leaving the training model as it is.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`

    Returns
    -------
    copy : `~jwst_embed.models.MultimodalModel`
    """
    copy = MultimodalModel(model.config)
    copy.load_state_dict({key: value.detach().cpu() for key, value in model.state_dict().items()})
    return copy.half()


def train_default_model(
    out: str | os.PathLike,
    init: str | os.PathLike | MultimodalModel = "v3",
    legs: Sequence[Leg] = DEFAULT_LEGS,
    line_reader_steps: int = 6000,
    validation: int = 2000,
    device: str | torch.device = "auto",
    progress: bool = True,
    pool_batch: int = 256,
    on_leg: Callable[[int, dict], None] | None = None,
) -> MultimodalModel:
    """Rebuild the default model: `add_line_reader` on ``init``, phase 1, then the ``legs``.

    Parameters
    ----------
    out : path-like
        Folder for ``phase1.pt``, ``model_leg<k>.pt`` (float16, each leg's result),
        ``model.pt`` (the last) and ``history.json``; created if missing.
    init : str, path-like or `~jwst_embed.models.MultimodalModel`, optional
        The model to extend: a registry name (default ``"v3"``, fetched and hash-checked), a
        model file or a model.
    legs : sequence of `Leg`, optional
        Phase 2; default `DEFAULT_LEGS` (v5).
    line_reader_steps : int, optional
        Phase 1 steps (batch 128).
    validation : int, optional
        Galaxies in the validation pool (``VALIDATION_SEED``) scored after every leg.
    device : str or `torch.device`, optional
        ``"auto"``: CUDA when present, else the CPU.
    progress : bool, optional
        Progress bars.
    pool_batch : int, optional
        Galaxies simulated and encoded at once when building a pool.
    on_leg : callable, optional
        Called as ``on_leg(k, scores)`` after leg ``k`` (1-based) with its validation scores.

    Returns
    -------
    model : `~jwst_embed.models.MultimodalModel`
        The last leg's model, float16 on the CPU, as written to ``out/model.pt``.

    Raises
    ------
    ValueError
        If ``legs`` is empty or a leg asks for no steps.
    """
    if not legs or any(leg.steps < 1 or leg.pool < 1 for leg in legs):
        raise ValueError("legs must hold at least one leg, each with a positive pool and number of steps")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    torch.manual_seed(0)
    if isinstance(init, MultimodalModel):
        base = init
    else:
        path = Path(init) if Path(init).suffix or os.sep in str(init) else fetch_weights(str(init))
        base = load_model(path)
    model = add_line_reader(base).to(device)
    history: dict = {"legs": []}
    first = DownstreamConfig(line_reader_steps=int(line_reader_steps), batch_size=128)
    history["phase1"] = train_line_reader(model, MockSurvey(SurveyConfig(bands=()), device=device), first, progress)
    save_model(out / "phase1.pt", half_precision_copy(model), {"phase": 1, "steps": int(line_reader_steps)})

    survey = MockSurvey(SurveyConfig(), device=device)
    instrument = survey.spectrum_simulator.instrument
    pools: dict[int, TokenPool] = {}
    checked = build_token_pool(model, survey, int(validation), seed=VALIDATION_SEED, batch_size=pool_batch, progress=progress)
    for number, leg in enumerate(legs, start=1):
        if number > 1:  # every later leg starts from the float16 file the previous one wrote, as the shipped ones did
            model = half_precision_copy(model).float().to(device)
        if leg.pool not in pools:
            pools = {leg.pool: build_token_pool(model, survey, leg.pool, seed=POOL_SEED, batch_size=pool_batch,
                                                progress=progress)}  # fmt: skip
        config = DownstreamConfig(line_reader_steps=int(line_reader_steps), steps=leg.steps, batch_size=leg.batch_size)
        config.lr_new *= leg.lr_scale
        config.lr_pretrained *= leg.lr_scale
        log = train_downstream(model, pools[leg.pool], instrument, config, validation=checked,
                               progress=progress, reset_heads=leg.reset_heads)  # fmt: skip
        scores = evaluate_pool(model, checked, instrument, config)
        save_model(out / f"model_leg{number}.pt", half_precision_copy(model), {"leg": number, **dataclasses.asdict(leg)})
        history["legs"].append({"leg": dataclasses.asdict(leg), "log": log, "validation": scores})
        (out / "history.json").write_text(json.dumps(history, indent=1, default=str))
        if on_leg is not None:
            on_leg(number, scores)
    final = half_precision_copy(model)
    save_model(out / "model.pt", final, {"recipe": "jwst_embed.training.recipes.train_default_model",
                                          "legs": [dataclasses.asdict(leg) for leg in legs]})  # fmt: skip
    return final.eval()
