"""Pretraining objectives: masked modelling, pairwise contrastive alignment, subset consistency.

Every reconstruction loss compares *stretched* flux (the model's input space) and is
weighted by the weight channel of `jwst_embed.preprocessing.model_inputs`, a
bounded function of the inverse variance that is 0 on masked pixels: noisy and
masked pixels count little or nothing, and no single very-high-S/N pixel can
dominate as a raw inverse variance would let it. Losses are computed in float32
also under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..preprocessing.stretch import asinh_stretch

__all__ = [
    "masked_spectrum_loss",
    "masked_image_loss",
    "spectrum_decoder_loss",
    "pairwise_infonce",
    "subset_consistency_loss",
    "supervised_loss",
    "redshift_neighbour_loss",
    "LossWeights",
    "PretrainingLoss",
]

# CLIP's bounds on the contrastive temperature: logit scale at most 100.
_LOG_TEMPERATURE_MIN = math.log(0.01)
_LOG_TEMPERATURE_MAX = math.log(1.0)


def _weighted_mse(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    weight = weight.float()
    squared = (prediction.float() - target.float()) ** 2
    # clamp: a batch whose selected pixels all have zero weight gives 0, not 0/0.
    return (weight * squared).sum() / weight.sum().clamp_min(1e-6)


def masked_spectrum_loss(
    prediction: Tensor, target_stretched: Tensor, weight: Tensor, patch_mask: Tensor
) -> Tensor:
    """Weighted mean squared error on the hidden spectrum patches.

    Parameters
    ----------
    prediction, target_stretched, weight : `~torch.Tensor`
        ``(N, P, patch)`` predicted and true stretched flux and pixel weights.
    patch_mask : `~torch.Tensor`
        ``(N, P)`` bool, True = patch was hidden (only these count).

    Returns
    -------
    loss : `~torch.Tensor`
        Scalar, ``sum(w (pred - target)^2) / sum(w)`` over hidden patches.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.training import masked_spectrum_loss
    >>> target = torch.ones(1, 2, 4)
    >>> hidden = torch.tensor([[True, False]])
    >>> float(masked_spectrum_loss(torch.zeros(1, 2, 4), target, torch.ones(1, 2, 4), hidden))
    1.0
    """
    return _weighted_mse(
        prediction, target_stretched, weight * patch_mask[..., None].to(weight.dtype)
    )


def masked_image_loss(
    prediction: Tensor, target_stretched: Tensor, weight: Tensor, patch_mask: Tensor
) -> Tensor:
    """Weighted mean squared error on the hidden image patches (masked-image modelling).

    Same as `masked_spectrum_loss` with ``(N, P, patch**2)`` patches of
    single-band images (all bands stacked).

    Parameters
    ----------
    prediction, target_stretched, weight : `~torch.Tensor`
        ``(N, P, patch**2)`` predicted and true stretched flux and pixel weights.
    patch_mask : `~torch.Tensor`
        ``(N, P)`` bool, True = patch was hidden (only these count).

    Returns
    -------
    loss : `~torch.Tensor`
        Scalar float32, ``sum(w (pred - target)^2) / sum(w)`` over hidden patches
        (0 when no hidden pixel has weight).
    """
    return _weighted_mse(
        prediction, target_stretched, weight * patch_mask[..., None].to(weight.dtype)
    )


def spectrum_decoder_loss(prediction: Tensor, target_stretched: Tensor, weight: Tensor) -> Tensor:
    """Weighted mean squared error of a whole decoded spectrum ``(B, L)``.

    Objects without a spectrum have zero weight and do not count.

    Parameters
    ----------
    prediction, target_stretched, weight : `~torch.Tensor`
        ``(B, L)`` decoded and true stretched flux and pixel weights.

    Returns
    -------
    loss : `~torch.Tensor`
        Scalar float32, ``sum(w (pred - target)^2) / sum(w)`` (0 when all weights are 0).
    """
    return _weighted_mse(prediction, target_stretched, weight)


def _zero_like_graph(tensors: Sequence[Tensor]) -> Tensor:
    # A zero that still depends on the inputs, so backward() works when a term is empty.
    return sum((t.float().sum() * 0.0 for t in tensors), torch.zeros((), device=tensors[0].device))


def pairwise_infonce(
    embeddings: Mapping[str, Tensor],
    present: Tensor,
    modalities: Sequence[str],
    log_temperature: Tensor,
) -> Tensor:
    """Symmetric InfoNCE between every pair of modalities, over the objects that have both.

    Parameters
    ----------
    embeddings : mapping of str to `~torch.Tensor`
        ``(B, D)`` per-modality embeddings (normalised here).
    present : `~torch.Tensor`
        ``(B, M)`` bool presence; column order ``modalities``.
    modalities : sequence of str
        Names of the columns of ``present``.
    log_temperature : `~torch.Tensor`
        Scalar log of the softmax temperature (clamped to [log 0.01, 0]).

    Returns
    -------
    loss : `~torch.Tensor`
        Mean over pairs with at least two objects having both modalities of
        ``(CE(a b^T / T) + CE(b a^T / T)) / 2``; zero (still differentiable) if
        there is no such pair.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.training import pairwise_infonce
    >>> e = {"F150W": torch.eye(3), "PRISM": torch.eye(3)}
    >>> present = torch.ones(3, 2, dtype=torch.bool)
    >>> loss = pairwise_infonce(e, present, ("F150W", "PRISM"), torch.tensor(-3.0))
    >>> bool(loss < 1e-6)
    True
    """
    temperature = log_temperature.clamp(_LOG_TEMPERATURE_MIN, _LOG_TEMPERATURE_MAX).exp()
    names = [name for name in modalities if name in embeddings]
    if len(names) < 2:
        return _zero_like_graph([*embeddings.values(), log_temperature])
    # All pairs at once, without host synchronisation: (P, B, B) similarity matrices in which
    # objects lacking either modality of a pair are masked out of rows and columns.
    stacked = F.normalize(torch.stack([embeddings[name].float() for name in names]), dim=-1)
    columns = present[:, [modalities.index(name) for name in names]].T  # (M', B)
    first, second = torch.triu_indices(len(names), len(names), offset=1, device=stacked.device)
    both = columns[first] & columns[second]  # (P, B)
    logits = torch.einsum("pbd,pcd->pbc", stacked[first], stacked[second]) / temperature
    # A large finite negative (not -inf) keeps fully masked rows finite; they are dropped below.
    logits = logits.masked_fill(~(both[:, :, None] & both[:, None, :]), -1e9)
    diagonal = logits.diagonal(dim1=1, dim2=2)
    per_object = 0.5 * (logits.logsumexp(dim=2) + logits.logsumexp(dim=1)) - diagonal
    n_objects = both.sum(dim=1)
    per_pair = torch.where(both, per_object, torch.zeros_like(per_object)).sum(
        dim=1
    ) / n_objects.clamp_min(1)
    usable = (n_objects >= 2).float()
    return (per_pair * usable).sum() / usable.sum().clamp_min(1.0)


def subset_consistency_loss(
    fused_full: Tensor, fused_subset: Tensor, rows: Tensor | None = None, detach_full: bool = True
) -> Tensor:
    """Mean cosine distance between the fused embedding of a subset and of all modalities.

    Parameters
    ----------
    fused_full, fused_subset : `~torch.Tensor`
        ``(B, D)`` embeddings of all present modalities and of a subset.
    rows : `~torch.Tensor`, optional
        ``(B,)`` bool, the objects to average over (e.g. those where something
        was dropped); all if omitted.
    detach_full : bool
        Stop the gradient through ``fused_full`` (default). The full embedding
        is the teacher: it holds information the subset lacks, and letting the
        loss also pull it toward the subset would teach it to forget exactly
        that information (the collapse-to-common-content failure).

    Returns
    -------
    loss : `~torch.Tensor`
        Scalar in [0, 2].
    """
    if detach_full:
        fused_full = fused_full.detach()
    distance = 1.0 - F.cosine_similarity(fused_full.float(), fused_subset.float(), dim=-1)
    if rows is not None:
        if not bool(rows.any()):
            return _zero_like_graph([fused_subset])
        distance = distance[rows]
    return distance.mean()


def redshift_neighbour_loss(
    embedding: Tensor, redshift: Tensor, width: float = 0.05, temperature: float = 0.1
) -> Tensor | None:
    """Ask an embedding's nearest neighbours (by cosine similarity) to share its redshift.

    For every object with a known redshift, the softmax over the cosine similarities to the
    other such objects of the batch (``/ temperature``) is pulled towards a Gaussian kernel in
    ln(1 + z) of width ``width``: the cross-entropy between the two, averaged over objects.
    The prediction heads can read redshift from an embedding in which it is only one direction
    among many; this term makes it shape the embedding's neighbourhoods (similarity search,
    nearest-neighbour transfer of labels), which the heads do not.

    Parameters
    ----------
    embedding : `~torch.Tensor`
        ``(B, D)`` embeddings (normalised here).
    redshift : `~torch.Tensor`
        ``(B,)`` redshifts; NaN marks an unknown one.
    width : float
        Kernel width in ln(1 + z).
    temperature : float
        Softmax temperature of the cosine similarities.

    Returns
    -------
    loss : `~torch.Tensor` or None
        Scalar float32, or None when fewer than three objects have a redshift.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.training import redshift_neighbour_loss
    >>> z = torch.tensor([1.0, 1.01, 5.0, 5.02])
    >>> ordered = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0], [0.05, 1.0]])
    >>> mixed = ordered[[0, 2, 1, 3]]
    >>> bool(redshift_neighbour_loss(ordered, z) < redshift_neighbour_loss(mixed, z))
    True
    """
    redshift = redshift.reshape(redshift.shape[0]).float()
    known = torch.isfinite(redshift)
    if int(known.sum()) < 3:
        return None
    unit = F.normalize(embedding[known].float(), dim=-1)
    x = torch.log1p(redshift[known].clamp_min(0.0))
    off_diagonal = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    logits = (unit @ unit.T / temperature).masked_fill(~off_diagonal, -1e9)
    kernel = (-0.5 * ((x[:, None] - x[None, :]) / width) ** 2).masked_fill(~off_diagonal, -1e9)
    target = kernel.softmax(dim=1)  # every row has a nearest other object, however far
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


#: Batch target read by each prediction head of `~jwst_embed.models.MultimodalModel`.
HEAD_TARGETS = {"redshift": "redshift", "log_mass": "log_mass", "morphology": "morphology"}


def supervised_loss(head: nn.Module, embedding: Tensor, target: Tensor) -> Tensor | None:
    """A prediction head's loss over the objects whose label is known (finite).

    Parameters
    ----------
    head : `~torch.nn.Module`
        A head of ``jwst_embed.models.heads`` (``forward`` and ``loss``).
    embedding : `~torch.Tensor`
        ``(B, D)`` embeddings.
    target : `~torch.Tensor`
        ``(B,)`` labels; NaN marks an unknown label.

    Returns
    -------
    loss : `~torch.Tensor` or None
        Scalar float32, or None when no object has a label.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import MassHead
    >>> from jwst_embed.training import supervised_loss
    >>> head = MassHead(4)
    >>> loss = supervised_loss(head, torch.zeros(3, 4), torch.tensor([9.0, float("nan"), 10.0]))
    >>> bool(torch.isfinite(loss))
    True
    """
    target = target.reshape(target.shape[0])
    known = torch.isfinite(target.float())
    if not bool(known.any()):
        return None
    return head.loss(head(embedding[known]), target[known])


@dataclass
class LossWeights:
    """Weights of the pretraining loss terms (0 switches a term off).

    ``redshift``, ``stellar_mass`` and ``morphology`` weight the prediction heads' losses
    on the mock labels (applied to the fused embedding of all modalities and of the
    random subset). ``decoder_noiseless`` (a switch) makes the spectrum decoder reproduce
    the noiseless mock spectrum of *every* object, when the batch carries it, instead of
    the noisy observed spectrum of the objects that have one. ``redshift_neighbours``
    weights `redshift_neighbour_loss` on the same fused embeddings (off by default).
    """

    spectrum_mask: float = 1.0
    image_mask: float = 1.0
    contrastive: float = 1.0
    consistency: float = 1.0
    decoder: float = 1.0
    decoder_subset: float = 0.5
    views: float = 1.0
    redshift: float = 1.0
    stellar_mass: float = 0.5
    morphology: float = 0.5
    decoder_noiseless: float = 1.0
    redshift_neighbours: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class PretrainingLoss(nn.Module):
    """Weighted sum of the pretraining losses for one `~jwst_embed.models.ModelOutput`.

    Holds the learned contrastive temperature, so add its parameters to the optimiser.

    Parameters
    ----------
    weights : `LossWeights`, optional
        Term weights.
    temperature : float
        Initial InfoNCE temperature.
    learn_temperature : bool
        Train the temperature (a parameter) or keep it fixed (a buffer).

    Examples
    --------
    >>> from jwst_embed.training import PretrainingLoss
    >>> loss_fn = PretrainingLoss()
    >>> round(float(loss_fn.temperature), 3)
    0.07
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        temperature: float = 0.07,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__()
        self.weights = weights if weights is not None else LossWeights()
        value = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(value)
        else:
            self.register_buffer("log_temperature", value)

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.detach().clamp(_LOG_TEMPERATURE_MIN, _LOG_TEMPERATURE_MAX).exp()

    def forward(
        self, output, targets: Mapping[str, Tensor] | None = None, heads: Mapping[str, nn.Module] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(total, parts)``; ``parts`` maps each computed term to its detached value.

        ``targets`` (the batch's labels) and ``heads`` (the model's prediction heads) add the
        supervised terms; without them only the self-supervised terms are computed.
        """
        w = self.weights
        targets = targets or {}
        terms: dict[str, tuple[float, Tensor]] = {}
        # the supervised terms read the fused embedding of all modalities and of the random subset
        embeddings = [output.fused] + ([output.fused_subset] if output.fused_subset is not None else [])
        if heads is not None:
            for name, weight_name in (("redshift", "redshift"), ("log_mass", "stellar_mass"), ("morphology", "morphology")):
                weight, label = getattr(w, weight_name), HEAD_TARGETS[name]
                if not weight or name not in heads or label not in targets:
                    continue
                losses = [supervised_loss(heads[name], e, targets[label]) for e in embeddings]
                losses = [loss for loss in losses if loss is not None]
                if losses:
                    terms[weight_name] = (weight, sum(losses) / len(losses))
        if w.redshift_neighbours and "redshift" in targets:
            losses = [redshift_neighbour_loss(e, targets["redshift"]) for e in embeddings]
            losses = [loss for loss in losses if loss is not None]
            if losses:
                terms["redshift_neighbours"] = (w.redshift_neighbours, sum(losses) / len(losses))
        if w.decoder_noiseless and "spectrum_noiseless" in targets and output.decoded_spectrum is not None:
            # Every mock object has a true spectrum: reconstruct it (denoised, also for objects
            # observed without one), with equal weight per pixel.
            truth = targets["spectrum_noiseless"].float()
            target = torch.nan_to_num(asinh_stretch(truth, output.spectrum_softening_njy))
            weight = torch.isfinite(truth).float()
            # Objects without a true spectrum (real ones mixed with mocks: all NaN) keep their
            # observed spectrum as the target, with its own weights.
            unknown = ~torch.isfinite(truth).any(dim=1, keepdim=True)
            if output.spectrum_target is not None:
                target = torch.where(unknown, output.spectrum_target.float(), target)
                weight = torch.where(unknown, output.spectrum_weight.float(), weight)
            output.spectrum_target, output.spectrum_weight = target, weight
        if output.spectrum_reconstruction is not None and w.spectrum_mask:
            r = output.spectrum_reconstruction
            terms["spectrum_mask"] = (
                w.spectrum_mask,
                masked_spectrum_loss(r.prediction, r.target, r.weight, r.patch_mask),
            )
        if output.image_reconstruction is not None and w.image_mask:
            r = output.image_reconstruction
            terms["image_mask"] = (
                w.image_mask,
                masked_image_loss(r.prediction, r.target, r.weight, r.patch_mask),
            )
        if w.contrastive and len(output.modalities) > 1:
            loss = pairwise_infonce(
                output.modality_embeddings, output.present, output.modalities, self.log_temperature
            )
            terms["contrastive"] = (w.contrastive, loss)
        if w.views and output.fused_images is not None:
            loss = pairwise_infonce(
                {"images": output.fused_images, "spectra": output.fused_spectra},
                output.views_present,
                ("images", "spectra"),
                self.log_temperature,
            )
            terms["views"] = (w.views, loss)
        if output.fused_subset is not None and w.consistency:
            changed = (output.subset_present != output.present).any(dim=1)
            terms["consistency"] = (
                w.consistency,
                subset_consistency_loss(output.fused, output.fused_subset, changed),
            )
        if output.spectrum_target is not None:
            if w.decoder and output.decoded_spectrum is not None:
                loss = spectrum_decoder_loss(
                    output.decoded_spectrum, output.spectrum_target, output.spectrum_weight
                )
                terms["decoder"] = (w.decoder, loss)
            if w.decoder_subset and output.decoded_spectrum_subset is not None:
                loss = spectrum_decoder_loss(
                    output.decoded_spectrum_subset, output.spectrum_target, output.spectrum_weight
                )
                terms["decoder_subset"] = (w.decoder_subset, loss)
        if not terms:
            raise ValueError(
                "no loss term applies to this output (all weights zero or no inputs to reconstruct)"
            )
        total = sum(weight * loss for weight, loss in terms.values())
        parts = {name: loss.detach() for name, (_, loss) in terms.items()}
        parts["temperature"] = self.temperature
        return total, parts
