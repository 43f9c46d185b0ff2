"""Fine-tune a pretrained embedder on your own labels, and scikit-learn estimators on embeddings.

Three lines adapt the model to a few hundred spectroscopic redshifts::

    embedder = MultimodalEmbedder.from_pretrained()
    tuned = fine_tune(embedder, images=images, spectra=spectra, labels=z_spec, task="redshift")
    save_embedder(tuned, "my_model.pt")        # MultimodalEmbedder.from_pretrained("my_model.pt")

`~jwst_embed.fine_tune` preprocesses the inputs once, then trains a head of
``jwst_embed.models.heads`` on the fused embedding: with the backbone frozen the
embeddings are computed once and only the head learns (seconds on a CPU);
unfrozen, the whole model learns end to end with a lower backbone learning rate.
The returned embedder holds a fine-tuned *copy* of the model; the original is
untouched. Heads of any kind in `~jwst_embed.models.config.HEAD_KINDS` are
described in ``ModelConfig.custom_heads`` so that they are saved and loaded
with the model.

`~jwst_embed.tuning.FineTuner` (`jwst_embed.tuning.trainer`) is the training loop;
`jwst_embed.tuning.heads` and `jwst_embed.tuning.labels` turn a task and its labels into a head
and a target array. `~jwst_embed.EmbeddingRegressor` and `~jwst_embed.EmbeddingClassifier`
(`jwst_embed.estimators`) are scikit-learn estimators on fused embeddings, for a quick property
estimate without touching the network.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import nn

from ..models.config import HEAD_KINDS
from ..models.serialization import save_model
from ..preprocessing import Batch, make_batch
from ..preprocessing.inputs import input_columns, relocate_input_error
from .heads import TASKS, resolve_head
from .labels import labels_for_head
from .trainer import FineTuner

__all__ = ["FineTuneHistory", "fine_tune", "save_embedder"]


def _is_embedder(obj: Any) -> bool:
    """A `~jwst_embed.MultimodalEmbedder` (checked by what it has: this module sits below it)."""
    return all(hasattr(obj, name) for name in ("model", "device", "image_grid", "spectral_grid", "embed"))


@dataclass
class FineTuneHistory:
    """What `~jwst_embed.fine_tune` did, kept on the returned embedder as ``fine_tune_history``.

    Parameters
    ----------
    task : str
        ``"redshift"``, ``"stellar_mass"``, ``"morphology"`` or ``"custom"``.
    head : str
        Name of the trained head in ``model.heads``.
    train_loss : list of float
        Mean training loss of each epoch.
    validation_loss : list of float
        Mean loss on the held-out objects after each epoch (empty without validation).
    n_train, n_validation : int
        Labelled objects trained on and held out.
    n_missing : int
        Objects skipped because their label was missing (NaN).
    freeze_backbone : bool
        Whether only the head was trained.
    """

    task: str
    head: str
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    n_train: int = 0
    n_validation: int = 0
    n_missing: int = 0
    freeze_backbone: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in the model file's metadata by `save_embedder`)."""
        return dataclasses.asdict(self)


# -- labels -----------------------------------------------------------------------------------------


def _make_batches(embedder, image_columns, spectrum_columns, rows: np.ndarray, batch_size: int, targets: np.ndarray):
    """Preprocess the objects ``rows`` in chunks of ``batch_size`` into Batches (targets attached)."""
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        try:
            batch = make_batch(
                images={band: [entries[i] for i in chunk] for band, entries in image_columns.items()} or None,
                spectra={mode: [entries[i] for i in chunk] for mode, entries in spectrum_columns.items()} or None,
                image_grid=embedder.image_grid,
                spectral_grid=embedder.spectral_grid,
            )
        except (ValueError, TypeError, u.UnitsError) as err:
            # Name the object by its index in the user's input, not in the chunk.
            relocated = relocate_input_error(err, lambda index, chunk=chunk: chunk[index])
            if relocated is err:
                raise
            raise relocated from err
        batch.targets["label"] = torch.as_tensor(targets[chunk], dtype=torch.float32)
        batches.append(batch)
    return batches


def _split_batches(batches: list, rows: np.ndarray, targets: np.ndarray, batch_size: int) -> list:
    """Re-chunk Batches to the objects ``rows`` (indices over all batches, in order), labels attached."""
    offsets = np.cumsum([0] + [len(batch) for batch in batches])
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        parts = []
        for k, batch in enumerate(batches):
            local = chunk[(chunk >= offsets[k]) & (chunk < offsets[k + 1])] - offsets[k]
            if local.size:
                parts.append(batch.index(torch.as_tensor(local, dtype=torch.long)))
        merged = parts[0] if len(parts) == 1 else Batch.collate(parts)
        merged.targets = {**merged.targets, "label": torch.as_tensor(targets[chunk], dtype=torch.float32)}
        out.append(merged)
    return out


def fine_tune(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    labels: Any = None,
    task: str | nn.Module | tuple[str, nn.Module] = "redshift",
    freeze_backbone: bool = True,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 64,
    validation_fraction: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    *,
    backbone_lr: float | None = None,
    weight_decay: float = 1e-4,
    batches: Any = None,
) -> Any:
    """Fine-tune a copy of ``embedder``'s model on labelled objects; the original is untouched.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        The pretrained embedder.
    images, spectra :
        The labelled objects, as for `~jwst_embed.MultimodalEmbedder.embed` (NIRCam
        NDData cutouts keyed by band, NIRSpec Spectrum objects; ``None`` = absent).
    labels : array-like or `~astropy.units.Quantity`
        One label per object; NaN (or None for morphology) = missing, the object is
        skipped. Redshift: dimensionless. Stellar mass: log10(M/Msun) as numbers or
        in ``u.dex(u.Msun)``, or masses in ``u.Msun``. Morphology: names from
        ``jwst_embed.models.heads.MORPHOLOGY_CLASSES`` or integer indices. A custom
        head: numbers ``(N,)`` or ``(N, out_dim)``.
    task : str, `~torch.nn.Module` or (str, `~torch.nn.Module`)
        ``"redshift"`` (trains ``model.heads["redshift"]``), ``"stellar_mass"``
        (``"log_mass"``), ``"morphology"``, or a new head with
        ``loss(output, target)`` reading the fused embedding, optionally named
        (default name ``"custom"``), e.g. ``("size", MLPHead(latent_dim, 1))``.
        A head from ``jwst_embed.models.heads`` is saved with the model.
    freeze_backbone : bool
        True: embed once and train only the head (fast). False: train the whole
        model end to end, the backbone at ``backbone_lr``.
    epochs : int
        Passes over the labelled objects.
    lr : float
        Learning rate of the head.
    batch_size : int
        Objects per preprocessing chunk and per training step.
    validation_fraction : float
        Fraction (0 to <1) of the labelled objects held out, chosen at random with
        ``seed``; their loss per epoch goes to the history.
    seed : int
        Seed of the split and the shuffling.
    progress : bool
        Progress bars over preprocessing and epochs.
    backbone_lr : float, optional
        Learning rate of the backbone end to end (default ``lr / 10``).
    weight_decay : float
        AdamW weight decay.
    batches : `~jwst_embed.preprocessing.Batch` or list of them, optional
        Already preprocessed objects, instead of ``images`` / ``spectra``
        (``labels`` then has one entry per object over all batches, in order).

    Returns
    -------
    `~jwst_embed.MultimodalEmbedder`
        A new embedder on the same device with the fine-tuned model copy; its
        ``fine_tune_history`` attribute is a ``FineTuneHistory`` (per-epoch losses).

    Raises
    ------
    TypeError
        ``embedder`` is not a `~jwst_embed.MultimodalEmbedder`; bad ``task`` or labels.
    ValueError
        No labels, a label count that differs from the number of objects, no
        finite label, invalid labels (negative redshift, linear masses given as
        numbers, unknown morphology class), bad ``epochs``, ``batch_size`` or
        ``validation_fraction``, or a preprocessing error (naming the object).
    astropy.units.UnitsError
        Labels with a unit that does not fit the task.

    Examples
    --------
    A toy catalogue of 40 point-like galaxies whose "spectroscopic redshift" grows with
    their brightness; in practice ``images`` and ``spectra`` are your cutouts and spectra.

    >>> import os, tempfile
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> from jwst_embed import MultimodalEmbedder
    >>> from jwst_embed.tuning import fine_tune, save_embedder
    >>> rng = np.random.default_rng(0)
    >>> z_spec = rng.uniform(1.0, 4.0, 40)
    >>> cutouts = []
    >>> for z in z_spec:
    ...     pixels = rng.normal(0.0, 0.5, (64, 64))
    ...     pixels[30:34, 30:34] += 2.0 * z
    ...     cutouts.append(NDData(pixels, unit=u.nJy, meta={"pixel_scale": 0.04},
    ...                           uncertainty=StdDevUncertainty(np.full((64, 64), 0.5))))
    >>> embedder = MultimodalEmbedder.from_pretrained(device="cpu")
    >>> tuned = fine_tune(embedder, images={"F150W": cutouts}, labels=z_spec, task="redshift",
    ...                   epochs=5, progress=False)
    >>> history = tuned.fine_tune_history
    >>> history.n_train, len(history.train_loss), bool(history.train_loss[-1] < history.train_loss[0])
    (40, 5, True)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_embedder(tuned, os.path.join(folder, "my_model.pt"))
    ...     reloaded = MultimodalEmbedder.from_pretrained(path, device="cpu")
    >>> reloaded.latent_dim
    256
    """
    if not _is_embedder(embedder):
        raise TypeError(f"embedder must be a MultimodalEmbedder, got {type(embedder).__name__}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")

    model = copy.deepcopy(embedder.model)  # the user's embedder keeps its weights
    task_name, head_name, head, spec = resolve_head(model, task)

    if batches is not None:
        if images is not None or spectra is not None:
            raise ValueError("give either batches or images/spectra, not both")
        batches = list(batches) if isinstance(batches, list | tuple) else [batches]
        n_objects = sum(len(batch) for batch in batches)
    else:
        image_columns, spectrum_columns = input_columns(images, spectra)
        n_objects = len(next(iter({**image_columns, **spectrum_columns}.values())))
    targets = labels_for_head(head, labels)
    if targets.shape[0] != n_objects:
        raise ValueError(f"labels has {targets.shape[0]} entries but there are {n_objects} objects")
    labelled = np.flatnonzero(np.isfinite(targets.reshape(n_objects, -1)).all(axis=1))
    if labelled.size == 0:
        raise ValueError("no object has a label (all NaN)")

    rng = np.random.default_rng(seed)
    order = rng.permutation(labelled)
    n_validation = int(round(validation_fraction * len(order)))
    if validation_fraction > 0 and not 0 < n_validation < len(order):
        raise ValueError(
            f"validation_fraction={validation_fraction} of {len(order)} labelled objects leaves no training "
            "or no validation objects"
        )
    validation_rows, train_rows = np.sort(order[:n_validation]), np.sort(order[n_validation:])

    if batches is not None:
        make = lambda rows: _split_batches(batches, rows, targets, int(batch_size))  # noqa: E731
    else:
        make = lambda rows: _make_batches(  # noqa: E731
            embedder, image_columns, spectrum_columns, rows, int(batch_size), targets
        )
    train_batches = make(train_rows)
    validation = (make(validation_rows), "label") if n_validation else None

    if spec is not None or head_name not in (model.heads or {}):
        if model.heads is None:
            model.heads = nn.ModuleDict()
        model.heads[head_name] = head
    if spec is not None:
        model.config = dataclasses.replace(model.config, custom_heads={**model.config.custom_heads, head_name: spec})

    tuner = FineTuner(model, head, freeze_backbone=freeze_backbone, device=embedder.device)
    losses = tuner.fit(
        train_batches,
        "label",
        epochs=int(epochs),
        lr=lr,
        weight_decay=weight_decay,
        batch_size=int(batch_size),
        backbone_lr=backbone_lr,
        seed=seed,
        progress=progress,
        validation=validation,
    )
    _warn_if_diverged(list(losses), lr)
    tuned = type(embedder)(model.eval(), device=embedder.device)  # a new embedder of the same class
    # a frozen backbone leaves the fused embeddings as they were, and with them their whitening;
    # a trained one moves them, and a stale whitening would mislead the similarity search
    tuned.similarity_whitening = getattr(embedder, "similarity_whitening", None) if freeze_backbone else None
    tuned.fine_tune_history = FineTuneHistory(
        task=task_name,
        head=head_name,
        train_loss=list(losses),
        validation_loss=list(tuner.validation_history),
        n_train=len(train_rows),
        n_validation=n_validation,
        n_missing=n_objects - len(labelled),
        freeze_backbone=bool(freeze_backbone),
    )
    return tuned


def _warn_if_diverged(losses: list[float], lr: float) -> None:
    """Warn when the training loss ended non-finite or far above where it started."""
    if not losses:
        return
    first, last = losses[0], losses[-1]
    if not math.isfinite(last) or last > first + 10.0 * max(abs(first), 1.0):
        warnings.warn(
            f"fine-tuning diverged: the training loss went from {first:.4g} to {last:.4g}; the model "
            f"returned is not usable. Try a lower learning rate (lr={lr:g}) or fewer epochs.",
            RuntimeWarning,
            stacklevel=3,
        )


def save_embedder(
    embedder: Any, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write an embedder's model (with its fine-tuned heads and its similarity whitening) as a model file.

    `~jwst_embed.MultimodalEmbedder.from_pretrained` loads it back with the same
    predictions.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        E.g. the result of `~jwst_embed.fine_tune`.
    path : path-like
        Output file (written atomically), e.g. ``"my_model.pt"``.
    metadata : mapping, optional
        Plain values to keep with the model; the fine-tuning history is added.

    Returns
    -------
    path : `~pathlib.Path`

    Raises
    ------
    TypeError
        If a head in ``model.heads`` is neither built in nor described in
        ``config.custom_heads`` (a head class that cannot be rebuilt from data).

    Examples
    --------
    >>> import tempfile
    >>> from jwst_embed import MultimodalEmbedder
    >>> from jwst_embed.tuning import save_embedder
    >>> from jwst_embed.models import ModelConfig, MultimodalModel
    >>> embedder = MultimodalEmbedder(MultimodalModel(ModelConfig.preset("tiny")), device="cpu")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = MultimodalEmbedder.from_pretrained(save_embedder(embedder, f"{tmp}/model.pt"), device="cpu")
    >>> loaded.model.config == embedder.model.config
    True
    """
    if not _is_embedder(embedder):
        raise TypeError(f"embedder must be a MultimodalEmbedder, got {type(embedder).__name__}")
    model = embedder.model
    # Only heads the config describes are rebuilt by load_model: refuse anything else now, not at load.
    config = model.config
    expected = dict.fromkeys(TASKS.values(), None) if config.prediction_heads else {}
    expected.update({name: HEAD_KINDS[spec["kind"]] for name, spec in config.custom_heads.items()})
    expected = {
        name: kind or {"redshift": "RedshiftHead", "log_mass": "MassHead", "morphology": "MorphologyHead"}[name]
        for name, kind in expected.items()
    }
    actual = {name: type(head).__name__ for name, head in (model.heads or {}).items()}
    if expected != actual:
        raise TypeError(
            f"the model's heads {actual} are not those its config describes ({expected}); fine-tune with "
            "heads from jwst_embed.models.heads so that they can be saved"
        )
    history = getattr(embedder, "fine_tune_history", None)
    extra = {"fine_tune": history.to_dict()} if history is not None else {}
    whitening = getattr(embedder, "similarity_whitening", None)
    extras = {"similarity_whitening": whitening.to_payload()} if whitening is not None else None
    return save_model(path, model, {**extra, **dict(metadata or {})}, extras=extras)
