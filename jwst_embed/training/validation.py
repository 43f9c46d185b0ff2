"""Quick validation during pretraining: kNN redshift from the fused embedding, spectrum R^2.

These are sanity numbers computed every few hundred steps on a fixed mock set,
not the benchmark results (those come from trained heads, `benchmarks/`). The metrics are
those of `jwst_embed.metrics`:

- ``redshift_sigma_nmad``: sigma_NMAD = 1.4826 median(|dz - median(dz)|) with
  dz = (z_pred - z_true) / (1 + z_true), where z_pred is a k-nearest-neighbour
  regression (scikit-learn ``KNeighborsRegressor``, ``weights="distance"``) fit on
  the fused embeddings of the first half of the validation set and evaluated on
  the second half; the embeddings are L2-normalised, so Euclidean neighbours are
  cosine neighbours. ``redshift_outlier_fraction`` is the fraction with |dz| > 0.15.
- ``spectrum_r2``: the spectrum decoder's output from the fused embedding of
  *all* present modalities against the noiseless mock spectrum, both in the
  model's stretched space (``asinh(f_nu / SPECTRUM_SOFTENING_NJY)``) on the model
  grid; per object 1 - sum((f_rec - f_true)^2) / sum((f_true - mean f_true)^2),
  averaged over the objects that have a spectrum.
  ``spectrum_r2_median`` is the median over objects (robust to the few nearly flat
  spectra whose tiny variance makes their R^2 hugely negative).
- ``spectrum_r2_images``: the same with the spectrum hidden from the model
  (decoded from the fused embedding of the images alone), over the objects that
  have a spectrum *and* at least one image: spectrum prediction from imaging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from ..devices import autocast
from ..metrics import morphology_f1, outlier_fraction, sigma_nmad
from ..metrics import spectrum_r2 as r2_of_arrays
from ..models.multimodal import DECODER_MODE

__all__ = [
    "sigma_nmad",
    "outlier_fraction",
    "knn_redshift",
    "spectrum_r2",
    "quick_validation",
]


def knn_redshift(embeddings, redshift, n_neighbors: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Predict redshifts of the second half of a set from the first half's, by kNN.

    Parameters
    ----------
    embeddings : array-like
        ``(N, D)`` embeddings, N >= 4; L2-normalised here.
    redshift : array-like
        ``(N,)`` true redshifts.
    n_neighbors : int
        Neighbours (capped at the size of the first half).

    Returns
    -------
    z_pred, z_true : `~numpy.ndarray`
        Predictions for and true redshifts of the second half.

    Raises
    ------
    ValueError
        If there are fewer than 4 objects or the lengths differ.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.training.validation import knn_redshift
    >>> z = np.linspace(0.5, 5.0, 40)
    >>> angle = z / 5.0
    >>> embedding = np.stack([np.cos(angle), np.sin(angle)], axis=1)[np.r_[0:40:2, 1:40:2]]
    >>> z_pred, z_true = knn_redshift(embedding, z[np.r_[0:40:2, 1:40:2]], n_neighbors=2)
    >>> bool(np.abs(z_pred - z_true).max() < 0.2)
    True
    """
    from sklearn.neighbors import KNeighborsRegressor

    embeddings = np.asarray(embeddings, dtype=np.float64)
    redshift = np.asarray(redshift, dtype=np.float64).ravel()
    if embeddings.ndim != 2 or embeddings.shape[0] != redshift.size or redshift.size < 4:
        raise ValueError(
            f"need (N, D) embeddings and N redshifts with N >= 4, got {embeddings.shape} and {redshift.size}"
        )
    norm = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = embeddings / np.maximum(norm, 1e-12)
    half = redshift.size // 2
    regressor = KNeighborsRegressor(n_neighbors=max(1, min(n_neighbors, half)), weights="distance")
    regressor.fit(embeddings[:half], redshift[:half])
    return regressor.predict(embeddings[half:]), redshift[half:]


def spectrum_r2(prediction: Tensor, truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """`jwst_embed.metrics.spectrum_r2` of tensors, as a tensor (the validation loop's form).

    Parameters
    ----------
    prediction, truth : `~torch.Tensor`
        ``(B, L)`` reconstructed and true spectra on the same grid (any device).
    valid : `~torch.Tensor`, optional
        ``(B, L)`` bool, pixels to use (all if omitted).

    Returns
    -------
    r2 : `~torch.Tensor`
        ``(B,)`` float64 on the CPU; NaN for objects whose truth is constant.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.training.validation import spectrum_r2
    >>> truth = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    >>> spectrum_r2(truth, truth).tolist(), spectrum_r2(truth.mean().expand(1, 4), truth).tolist()
    ([1.0], [0.0])
    """

    def plain(tensor):
        return None if tensor is None else tensor.detach().double().cpu().numpy()

    return torch.from_numpy(r2_of_arrays(plain(prediction), plain(truth), plain(valid)))


@torch.no_grad()
def quick_validation(
    model: torch.nn.Module,
    batches: Iterable,
    n_neighbors: int = 10,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Validation metrics of a `~jwst_embed.models.MultimodalModel` on fixed batches.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The (unwrapped) model; evaluated in eval mode, its mode restored after.
    batches : iterable of `~jwst_embed.preprocessing.Batch`
        The fixed validation set, already on the model's device, with
        ``targets["redshift"]`` and (for the R^2) ``targets["spectrum_noiseless"]``.
    n_neighbors : int
        k of the kNN redshift regression.
    autocast_dtype : `torch.dtype`, optional
        Run the model under autocast with this dtype (e.g. ``torch.bfloat16`` on GPU).

    Returns
    -------
    metrics : dict of str to float
        ``redshift_sigma_nmad``, ``redshift_outlier_fraction`` (needs >= 4
        objects with redshifts), ``spectrum_r2`` and ``spectrum_r2_images``
        (when there are spectra with noiseless targets); see the module docstring.
        With prediction heads on the model, also ``head_redshift_sigma_nmad``,
        ``head_redshift_outlier_fraction`` (the redshift head's median),
        ``head_log_mass_sigma`` (standard deviation of the mass residual) and
        ``head_morphology_f1`` (macro F1).
        Keys whose inputs are missing are left out (never NaN).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    embeddings, redshifts, r2_all, r2_images = [], [], [], []
    heads = getattr(model, "heads", None)
    head_outputs: dict[str, list[Tensor]] = {"z": [], "z_true": [], "m": [], "m_true": [], "c": [], "c_true": []}
    try:
        for batch in batches:
            with autocast(device, autocast_dtype):
                output = model(batch, mask_inputs=False, modality_dropout=False)
            embeddings.append(output.fused.float().cpu())
            targets: Mapping[str, Tensor] = getattr(batch, "targets", None) or {}
            # objects without the label (e.g. a real file in a mix) count as unknown, not left out
            redshifts.append(targets["redshift"].float().cpu() if "redshift" in targets
                             else torch.full((len(output.fused),), float("nan")))  # fmt: skip
            if heads is not None:
                fused = output.fused.float()
                for key, head, label, read in (
                    ("z", "redshift", "redshift", lambda r: r["z_point"]),
                    ("m", "log_mass", "log_mass", lambda r: r["log_mass"]),
                    ("c", "morphology", "morphology", lambda r: r["label"]),
                ):
                    if head in heads and label in targets:
                        head_outputs[key].append(read(heads[head].predict(fused)).float().cpu())
                        head_outputs[f"{key}_true"].append(targets[label].float().cpu())
            if "spectrum_noiseless" not in targets or DECODER_MODE not in batch.modalities:
                continue
            truth = model.stretched_spectrum(targets["spectrum_noiseless"].float())
            has_spectrum = batch.present[:, batch.modalities.index(DECODER_MODE)].bool()
            if bool(has_spectrum.any()):
                r2 = spectrum_r2(output.decoded_spectrum.float()[has_spectrum], truth[has_spectrum])
                r2_all.append(r2.cpu())
            bands = [name for name in batch.modalities if name in batch.images]
            if not bands:
                continue
            images_only = batch.select(bands)
            usable = has_spectrum & images_only.present.any(dim=1)
            if bool(usable.any()):
                # Objects left without any modality cannot be embedded: keep only the usable rows.
                subset = images_only.index(torch.nonzero(usable).flatten())
                with autocast(device, autocast_dtype):
                    decoded = model(subset, mask_inputs=False, modality_dropout=False).decoded_spectrum
                r2_images.append(spectrum_r2(decoded.float(), truth[usable]).cpu())
    finally:
        model.train(was_training)
    metrics: dict[str, float] = {}
    # Labels may be missing (NaN) in real-data files: every metric uses the labelled objects only.
    if redshifts:
        redshift, embedding = torch.cat(redshifts).numpy(), torch.cat(embeddings).numpy()
        known = np.isfinite(redshift)
        if known.sum() >= 4:
            z_pred, z_true = knn_redshift(embedding[known], redshift[known], n_neighbors)
            metrics["redshift_sigma_nmad"] = sigma_nmad(z_pred, z_true)
            metrics["redshift_outlier_fraction"] = outlier_fraction(z_pred, z_true)
    if head_outputs["z"]:
        z_pred, z_true = torch.cat(head_outputs["z"]).numpy(), torch.cat(head_outputs["z_true"]).numpy()
        known = np.isfinite(z_true)
        if known.any():
            metrics["head_redshift_sigma_nmad"] = sigma_nmad(z_pred[known], z_true[known])
            metrics["head_redshift_outlier_fraction"] = outlier_fraction(z_pred[known], z_true[known])
    if head_outputs["m"]:
        residual = torch.cat(head_outputs["m"]) - torch.cat(head_outputs["m_true"])
        if bool(torch.isfinite(residual).any()):
            metrics["head_log_mass_sigma"] = float(residual[torch.isfinite(residual)].std())
    if head_outputs["c"]:
        c_pred, c_true = torch.cat(head_outputs["c"]).numpy(), torch.cat(head_outputs["c_true"]).numpy()
        known = np.isfinite(c_true)
        if known.any():
            metrics["head_morphology_f1"] = morphology_f1(c_true[known].astype(np.int64), c_pred[known].astype(np.int64))["f1_macro"]
    for name, values in (("spectrum_r2", r2_all), ("spectrum_r2_images", r2_images)):
        if values:
            values = torch.cat(values)
            values = values[torch.isfinite(values)]
            if values.numel():
                metrics[name] = float(values.mean())
                # The mean is the reference's statistic, but a few nearly flat (faint) spectra with
                # tiny variance can drive it far below zero; the median shows what a typical object gets.
                metrics[f"{name}_median"] = float(values.median())
    return metrics

