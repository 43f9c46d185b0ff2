"""The similarity whitening a trained model carries: fitted on its fused embeddings of mock galaxies.

`jwst_embed.similarity.SimilarityWhitening` needs a population of the model's own fused
embeddings, as users make them: from all of an object's inputs, and from some of them. At the end
of a ``jwst-embed train`` run that validated (``n_validation > 0`` and at least ``validate_every``
steps) the trainer embeds its fixed validation mocks three ways (all inputs, the spectra alone, the images
alone) and fits the whitening to the lot, so that the model file carries one like the shipped
models do (``benchmarks/fit_similarity_whitening.py`` made v9's from
28,521 mocks of six input sets).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..devices import autocast
from ..similarity import SimilarityWhitening

__all__ = ["fit_similarity_whitening"]


@torch.no_grad()
def fit_similarity_whitening(
    model: torch.nn.Module, batches: Iterable, autocast_dtype: torch.dtype | None = None
) -> SimilarityWhitening | None:
    """Fit a `~jwst_embed.similarity.SimilarityWhitening` to ``model``'s fused embeddings of ``batches``.

    Each batch is embedded with all its modalities, with its spectra alone and with its images
    alone (objects with none of a subset's modalities left out), so that the population mixes
    the input sets users embed.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The (unwrapped) model; evaluated in eval mode, its mode restored after.
    batches : iterable of `~jwst_embed.preprocessing.Batch`
        Mock galaxies on the model's device (e.g. the trainer's validation set).
    autocast_dtype : `torch.dtype`, optional
        Run the model under autocast with this dtype.

    Returns
    -------
    whitening : `~jwst_embed.similarity.SimilarityWhitening` or None
        None when the embeddings are too few to estimate the covariance (fewer than twice the
        embedding width).

    Examples
    --------
    >>> from jwst_embed.training.whitening import fit_similarity_whitening
    >>> whitening = fit_similarity_whitening(model, validation_batches)  # doctest: +SKIP
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    vectors = []
    try:
        for batch in batches:
            images = [name for name in batch.modalities if name in batch.images]
            spectra = [name for name in batch.modalities if name in batch.spectra]
            for names in (list(batch.modalities), spectra, images):
                if not names:
                    continue
                subset = batch.select(names)
                subset = subset.index(torch.nonzero(subset.present.any(dim=1)).flatten())
                if len(subset) == 0:
                    continue
                with autocast(device, autocast_dtype):
                    output = model(subset, mask_inputs=False, modality_dropout=False)
                vectors.append(output.fused.float().cpu())
    finally:
        model.train(was_training)
    if not vectors:
        return None
    population = torch.cat(vectors).double().numpy()
    if population.shape[0] < 2 * population.shape[1]:
        return None
    return SimilarityWhitening.fit(population)
