"""Fine-tuning: a prediction head on the fused embedding, trained frozen or end to end.

`FineTuner` joins a pretrained `~jwst_embed.models.MultimodalModel` and a head of
`jwst_embed.models.heads` (or any module with ``forward(embedding)`` and
``loss(output, target)``). With ``freeze_backbone=True`` the embeddings are computed
once and only the head is trained (fast, the usual case); with ``False`` the
encoders and fusion are trained too, at a lower learning rate.

Examples
--------
>>> from jwst_embed.models import ModelConfig, MultimodalModel, RedshiftHead
>>> from jwst_embed.tuning import FineTuner
>>> from jwst_embed.training.pretrain import SyntheticSource
>>> model = MultimodalModel(ModelConfig.preset("tiny"))
>>> batches = [SyntheticSource(8, seed=1).batch(k) for k in range(2)]
>>> tuner = FineTuner(model, RedshiftHead(model.config.latent_dim, n_bins=32))
>>> losses = tuner.fit(batches, "redshift", epochs=2, lr=1e-3)
>>> len(losses), tuner.predict(batches)["z_median"].shape
(2, torch.Size([16]))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..devices import autocast, resolve_device

__all__ = ["FineTuner"]


class FineTuner:
    """Train a head on top of the fused embedding of a pretrained model.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The pretrained backbone.
    head : `~torch.nn.Module`
        Maps ``(B, latent_dim)`` embeddings to outputs and has ``loss(output, target)``
        (e.g. `~jwst_embed.models.RedshiftHead`, `~jwst_embed.models.MassHead`,
        `~jwst_embed.models.MorphologyHead`, `~jwst_embed.models.MLPHead`);
        ``predict(embedding)`` is used by `predict` when present.
    freeze_backbone : bool
        Train only the head (True) or the whole model end to end (False).
    device : str or `torch.device`, optional
        Where to train (``"auto"``: CUDA if available, else the CPU); by default the model's
        device.

    Attributes
    ----------
    history : list of float
        Mean training loss of each epoch, over all calls to `fit`.
    validation_history : list of float
        Mean loss on the ``validation`` objects after each epoch (when given to `fit`).
    """

    def __init__(self, model: nn.Module, head: nn.Module, freeze_backbone: bool = True, device=None) -> None:
        if not hasattr(head, "loss"):
            raise TypeError(f"head {type(head).__name__} has no loss(output, target) method")
        self.device = resolve_device(device) if device is not None else next(model.parameters()).device
        self.model, self.head = model.to(self.device), head.to(self.device)
        self.freeze_backbone = freeze_backbone
        self.history: list[float] = []
        self.validation_history: list[float] = []

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.device.type == "cuda" else None

    def _autocast(self):
        dtype = self.autocast_dtype
        return autocast(self.device, dtype)

    @torch.no_grad()
    def embed(self, batches: Iterable, progress: bool = False) -> Tensor:
        """Fused embeddings ``(N, latent_dim)`` (eval mode, on CPU) of all objects of ``batches``."""
        was_training = self.model.training
        self.model.eval()
        try:
            out = []
            for batch in tqdm(batches, disable=not progress, desc="embedding", unit="batch"):
                with self._autocast():
                    output = self.model(batch.to(self.device), mask_inputs=False, modality_dropout=False)
                out.append(output.fused.float().cpu())
        finally:
            self.model.train(was_training)
        if not out:
            raise ValueError("no batches to embed")
        return torch.cat(out)

    def fit(
        self,
        batches: Iterable,
        targets: str | Tensor | Sequence[Tensor],
        epochs: int = 20,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        backbone_lr: float | None = None,
        grad_clip: float = 1.0,
        seed: int = 0,
        progress: bool = False,
        validation: tuple[Iterable, str | Tensor | Sequence[Tensor]] | None = None,
    ) -> list[float]:
        """Train the head (and the backbone unless frozen).

        Parameters
        ----------
        batches : iterable of `~jwst_embed.preprocessing.Batch`
            Training objects (read once and kept; pass a list for large sets).
        targets : str, `~torch.Tensor` or sequence of `~torch.Tensor`
            A key of ``batch.targets`` (e.g. ``"redshift"``), one tensor for all
            objects in order, or one tensor per batch. Objects whose target is NaN
            (missing label) are left out.
        epochs : int
            Passes over the data.
        lr : float
            Learning rate of the head.
        weight_decay : float
            AdamW weight decay.
        batch_size : int
            Objects per step when the backbone is frozen (end to end, the given
            batches are the steps).
        backbone_lr : float, optional
            Learning rate of the backbone end to end (default ``lr / 10``).
        grad_clip : float
            Maximum gradient norm (0 = none).
        seed : int
            Seed of the shuffling.
        progress : bool
            Show a progress bar over epochs.
        validation : tuple, optional
            ``(batches, targets)`` of held-out objects, in the same forms as
            ``batches`` and ``targets``; their mean loss after each epoch goes to
            ``validation_history`` (and is shown on the progress bar).

        Returns
        -------
        losses : list of float
            Mean training loss per epoch.

        Raises
        ------
        ValueError
            If there are no batches, the targets do not match the objects, or no
            object has a finite target.
        """
        batches = list(batches)
        if not batches:
            raise ValueError("fit needs at least one batch")
        if epochs <= 0:
            raise ValueError(f"epochs must be positive, got {epochs}")
        per_batch = _split_targets(batches, targets)
        held_out = None
        if validation is not None:
            validation_batches = list(validation[0])
            if not validation_batches:
                raise ValueError("validation needs at least one batch")
            held_out = (validation_batches, _split_targets(validation_batches, validation[1]))
        generator = torch.Generator().manual_seed(seed)
        self._validation_losses: list[float] = []
        if self.freeze_backbone:
            losses = self._fit_frozen(
                batches, per_batch, epochs, lr, weight_decay, batch_size, grad_clip, generator, progress, held_out
            )
        else:
            losses = self._fit_end_to_end(
                batches, per_batch, epochs, lr, backbone_lr, weight_decay, grad_clip, generator, progress, held_out
            )
        self.history.extend(losses)
        self.validation_history.extend(self._validation_losses)
        return losses

    @torch.no_grad()
    def _head_loss(self, embeddings: Tensor, target: Tensor, batch_size: int = 1024) -> float:
        """Mean head loss over objects with a finite target, in eval mode (training flag restored)."""
        keep = _finite_rows(target)
        if not bool(keep.any()):
            return float("nan")
        embeddings, target = embeddings[keep].to(self.device), target[keep].to(self.device)
        was_training = self.head.training
        self.head.eval()
        total = 0.0
        for start in range(0, len(target), batch_size):
            rows = slice(start, start + batch_size)
            n = len(target[rows])
            total += float(self.head.loss(self.head(embeddings[rows]), target[rows])) * n
        self.head.train(was_training)
        return total / len(target)

    def _fit_frozen(
        self, batches, per_batch, epochs, lr, weight_decay, batch_size, grad_clip, generator, progress, held_out
    ):
        embeddings = self.embed(batches)
        target = torch.cat(per_batch)
        keep = _finite_rows(target)
        if not bool(keep.any()):
            raise ValueError("no object has a finite target")
        embeddings, target = embeddings[keep].to(self.device), target[keep].to(self.device)
        # Held-out embeddings are computed once too: the backbone does not change.
        held_out_embedded = (self.embed(held_out[0]), torch.cat(held_out[1])) if held_out else None
        optimizer = torch.optim.AdamW(self.head.parameters(), lr=lr, weight_decay=weight_decay)
        self.head.train()
        losses = []
        bar = tqdm(range(epochs), disable=not progress, desc="fine-tuning head", unit="epoch")
        for _ in bar:
            order = torch.randperm(len(target), generator=generator).to(self.device)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                loss = self.head.loss(self.head(embeddings[rows]), target[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip:
                    nn.utils.clip_grad_norm_(self.head.parameters(), grad_clip)
                optimizer.step()
                total, count = total + float(loss.detach()) * len(rows), count + len(rows)
            losses.append(total / count)
            self._after_epoch(bar, losses[-1], held_out_embedded and (lambda: held_out_embedded))
        self.head.eval()
        return losses

    def _after_epoch(self, bar, loss: float, held_out_embeddings) -> None:
        """Record the validation loss (``held_out_embeddings()`` gives embeddings and targets) and show both."""
        shown = {"loss": f"{loss:.4g}"}
        if held_out_embeddings is not None:
            embeddings, target = held_out_embeddings()
            self._validation_losses.append(self._head_loss(embeddings, target))
            shown["val_loss"] = f"{self._validation_losses[-1]:.4g}"
        bar.set_postfix(shown)

    def _fit_end_to_end(
        self, batches, per_batch, epochs, lr, backbone_lr, weight_decay, grad_clip, generator, progress, held_out
    ):
        backbone_lr = lr / 10 if backbone_lr is None else backbone_lr
        # The head may be a submodule of the model (model.heads): keep it out of the backbone group,
        # or AdamW sees the same parameter twice.
        head_ids = {id(p) for p in self.head.parameters()}
        backbone = [p for p in self.model.parameters() if id(p) not in head_ids]
        optimizer = torch.optim.AdamW(
            [{"params": backbone, "lr": backbone_lr}, {"params": list(self.head.parameters()), "lr": lr}],
            weight_decay=weight_decay,
        )
        parameters = [*backbone, *self.head.parameters()]
        was_training = self.model.training
        self.model.train()
        self.head.train()
        losses = []
        bar = tqdm(range(epochs), disable=not progress, desc="fine-tuning end to end", unit="epoch")
        try:
            for _ in bar:
                total, count = 0.0, 0
                for index in torch.randperm(len(batches), generator=generator).tolist():
                    target = per_batch[index].to(self.device)
                    keep = _finite_rows(target)
                    if not bool(keep.any()):
                        continue
                    with self._autocast():
                        # Modality dropout off: the head sees the embedding it will see at inference.
                        fused = self.model(batches[index].to(self.device), modality_dropout=False).fused
                    loss = self.head.loss(self.head(fused.float()[keep]), target[keep])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if grad_clip:
                        nn.utils.clip_grad_norm_(parameters, grad_clip)
                    optimizer.step()
                    n = int(keep.sum())
                    total, count = total + float(loss.detach()) * n, count + n
                if count == 0:
                    raise ValueError("no object has a finite target")
                losses.append(total / count)
                # The backbone changed: embed the held-out objects again (eval mode, then back to training).
                self._after_epoch(
                    bar, losses[-1], held_out and (lambda: (self.embed(held_out[0]), torch.cat(held_out[1])))
                )
                self.model.train()
                self.head.train()
        finally:
            self.model.train(was_training)
            self.head.eval()
        return losses

    @torch.no_grad()
    def predict(self, batches: Iterable) -> dict[str, Tensor]:
        """The head's ``predict`` (or raw output as ``"value"``) for all objects, concatenated, on CPU."""
        embeddings = self.embed(batches).to(self.device)
        self.head.eval()
        if hasattr(self.head, "predict"):
            result = self.head.predict(embeddings)
        else:
            result = {"value": self.head(embeddings)}
        return {key: value.cpu() for key, value in result.items()}


def _split_targets(batches: list, targets) -> list[Tensor]:
    """One target tensor (on CPU) per batch."""
    sizes = [len(batch) for batch in batches]
    if isinstance(targets, str):
        missing = [i for i, batch in enumerate(batches) if targets not in batch.targets]
        if missing:
            raise ValueError(f"batches {missing[:5]} have no target {targets!r}")
        return [batch.targets[targets].cpu() for batch in batches]
    if isinstance(targets, Tensor):
        if targets.shape[0] != sum(sizes):
            raise ValueError(f"targets have {targets.shape[0]} rows for {sum(sizes)} objects")
        return list(torch.split(targets.cpu(), sizes))
    targets = [torch.as_tensor(t).cpu() for t in targets]
    if [t.shape[0] for t in targets] != sizes:
        raise ValueError(f"per-batch targets have {[t.shape[0] for t in targets]} rows for batches of {sizes}")
    return targets


def _finite_rows(target: Tensor) -> Tensor:
    if not target.is_floating_point():
        return torch.ones(target.shape[0], dtype=torch.bool, device=target.device)
    return torch.isfinite(target.reshape(target.shape[0], -1)).all(dim=1)
