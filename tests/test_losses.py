"""Tests of the pretraining losses in jwst_embed.training.losses."""

import math

import numpy as np
import pytest
import torch

from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.training import (
    LossWeights,
    PretrainingLoss,
    masked_image_loss,
    masked_spectrum_loss,
    pairwise_infonce,
    redshift_neighbour_loss,
    spectrum_decoder_loss,
    subset_consistency_loss,
)


def _value(tensor):
    """Python float of a scalar tensor (detached: torch warns on float() of a graph tensor)."""
    return tensor.detach().item()


def test_masked_loss_counts_only_hidden_weighted_pixels():
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(3, 4, 5, generator=generator)
    target = torch.randn(3, 4, 5, generator=generator)
    weight = torch.rand(3, 4, 5, generator=generator)
    weight[0, 0, 0] = 0.0
    hidden = torch.rand(3, 4, generator=generator) < 0.5
    hidden[0, 0] = True
    loss = masked_spectrum_loss(prediction, target, weight, hidden)
    # Independent reference with numpy.
    w = weight.numpy() * hidden.numpy()[..., None]
    expected = (w * (prediction.numpy() - target.numpy()) ** 2).sum() / w.sum()
    assert _value(loss) == pytest.approx(expected, rel=1e-5)
    # Visible patches and zero-weight pixels do not matter.
    changed = prediction.clone()
    changed[~hidden] += 100.0
    changed[0, 0, 0] += 100.0
    assert _value(masked_image_loss(changed, target, weight, hidden)) == pytest.approx(
        _value(loss), rel=1e-6
    )


def test_losses_with_nothing_to_count_are_zero_not_nan():
    prediction = torch.randn(2, 3, 4, requires_grad=True)
    zero = masked_spectrum_loss(
        prediction, torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    )
    assert _value(zero) == 0.0
    assert (
        _value(spectrum_decoder_loss(prediction[:, 0], torch.ones(2, 4), torch.zeros(2, 4))) == 0.0
    )


def _manual_infonce(a, b, temperature):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = a @ b.T / temperature

    def ce(m):
        return np.mean(np.log(np.exp(m).sum(axis=1)) - np.diag(m))

    return 0.5 * (ce(logits) + ce(logits.T))


def test_infonce_matches_reference_and_ignores_objects_without_the_pair():
    generator = torch.Generator().manual_seed(1)
    embeddings = {
        name: torch.randn(6, 4, generator=generator) for name in ("F150W", "F444W", "PRISM")
    }
    present = torch.tensor(
        [[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=torch.bool
    )
    modalities = ("F150W", "F444W", "PRISM")
    log_t = torch.tensor(math.log(0.2))
    loss = pairwise_infonce(embeddings, present, modalities, log_t)
    expected = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        both = (present[:, i] & present[:, j]).numpy()
        expected.append(
            _manual_infonce(
                embeddings[modalities[i]].numpy()[both],
                embeddings[modalities[j]].numpy()[both],
                0.2,
            )
        )
    assert _value(loss) == pytest.approx(np.mean(expected), rel=1e-5)
    # Objects missing one of a pair do not change that pair: garbage in absent rows.
    garbage = {name: value.clone() for name, value in embeddings.items()}
    for j, name in enumerate(modalities):
        garbage[name][~present[:, j]] = 1e3 * torch.randn(int((~present[:, j]).sum()), 4)
    assert _value(pairwise_infonce(garbage, present, modalities, log_t)) == pytest.approx(
        _value(loss), rel=1e-6
    )


def test_infonce_symmetric_and_skips_small_pairs():
    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    present = torch.ones(5, 2, dtype=torch.bool)
    log_t = torch.tensor(-2.0)
    forward = pairwise_infonce({"A": a, "B": b}, present, ("A", "B"), log_t)
    backward = pairwise_infonce({"A": b, "B": a}, present, ("A", "B"), log_t)
    reordered = pairwise_infonce({"A": a, "B": b}, present.flip(1), ("B", "A"), log_t)
    assert _value(forward) == pytest.approx(_value(backward), rel=1e-6)
    assert _value(forward) == pytest.approx(_value(reordered), rel=1e-6)
    # A pair shared by only one object is skipped; with no usable pair the loss is a differentiable zero.
    only_one = torch.tensor(
        [[True, True], [True, False], [False, True], [True, False], [False, True]]
    )
    a.requires_grad_(True)
    zero = pairwise_infonce({"A": a, "B": b}, only_one, ("A", "B"), log_t)
    assert _value(zero) == 0.0
    zero.backward()
    assert a.grad is not None


def test_infonce_temperature_gets_gradient():
    log_t = torch.tensor(math.log(0.07), requires_grad=True)
    e = torch.randn(4, 3)
    pairwise_infonce(
        {"A": e, "B": e + 0.1 * torch.randn(4, 3)},
        torch.ones(4, 2, dtype=torch.bool),
        ("A", "B"),
        log_t,
    ).backward()
    assert log_t.grad is not None and log_t.grad != 0


def test_subset_consistency():
    x = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    assert _value(subset_consistency_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert _value(subset_consistency_loss(x, -x)) == pytest.approx(2.0, abs=1e-6)
    full = x.clone().requires_grad_(True)
    subset = torch.randn(4, 3, requires_grad=True)
    subset_consistency_loss(full, subset).backward()
    assert full.grad is None and subset.grad is not None
    rows = torch.tensor([True, False, False, False])
    expected = 1 - torch.nn.functional.cosine_similarity(x[:1], subset[:1].detach()).item()
    assert _value(subset_consistency_loss(x, subset, rows)) == pytest.approx(expected, rel=1e-5)


def test_pretraining_loss_finite_and_decreases_on_fixed_batch():
    from test_models import make_batch

    torch.manual_seed(0)
    config = ModelConfig.preset("tiny")
    model = MultimodalModel(config).train()
    loss_fn = PretrainingLoss(LossWeights())
    present = torch.tensor(
        [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.bool
    )
    batch = make_batch(config, present)
    optimiser = torch.optim.AdamW([*model.parameters(), *loss_fn.parameters()], lr=2e-3)
    history = []
    for _ in range(12):
        # Same masks and dropped modalities every step: a fixed objective.
        output = model(batch, mask_inputs=True, generator=torch.Generator().manual_seed(0))
        total, parts = loss_fn(output)
        assert torch.isfinite(total)
        assert {
            "spectrum_mask",
            "image_mask",
            "contrastive",
            "consistency",
            "decoder",
            "decoder_subset",
        } <= set(parts)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        history.append(_value(total))
    assert history[-1] < 0.7 * history[0]
    assert loss_fn.log_temperature.grad is not None


def test_infonce_pair_with_one_object_does_not_count():
    generator = torch.Generator().manual_seed(3)
    embeddings = {name: torch.randn(4, 3, generator=generator) for name in ("A", "B", "C")}
    # A-B shared by 3 objects, A-C and B-C by one object only.
    present = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=torch.bool)
    log_t = torch.tensor(-1.0)
    with_c = pairwise_infonce(embeddings, present, ("A", "B", "C"), log_t)
    without_c = pairwise_infonce(
        {"A": embeddings["A"], "B": embeddings["B"]}, present[:, :2], ("A", "B"), log_t
    )
    assert _value(with_c) == pytest.approx(_value(without_c), rel=1e-6)
    rows = present[:, 0].numpy() & present[:, 1].numpy()
    expected = _manual_infonce(
        embeddings["A"].numpy()[rows], embeddings["B"].numpy()[rows], math.exp(-1.0)
    )
    assert _value(with_c) == pytest.approx(expected, rel=1e-5)


def test_views_term_contrasts_images_with_spectra():
    """The images-vs-spectra term appears in training when both kinds are present, and only then."""
    import torch

    from jwst_embed.models import ModelConfig, MultimodalModel
    from jwst_embed.preprocessing import Batch, ModalityTensors
    from jwst_embed.training import LossWeights, PretrainingLoss

    torch.manual_seed(0)
    b = 6
    images = {"F150W": ModalityTensors(torch.rand(b, 64, 64) * 5, torch.ones(b, 64, 64), torch.zeros(b, 64, 64, dtype=torch.bool))}
    spectra = {"PRISM": ModalityTensors(torch.rand(b, 512) * 100, torch.ones(b, 512), torch.zeros(b, 512, dtype=torch.bool))}
    model = MultimodalModel(ModelConfig.preset("tiny")).train()
    loss = PretrainingLoss(LossWeights())
    both = Batch(images=images, spectra=spectra)
    output = model(both, mask_inputs=True, generator=torch.Generator().manual_seed(1))
    assert output.views_present.all()
    total, parts = loss(output)
    assert "views" in parts and torch.isfinite(parts["views"])
    images_only = Batch(images=images, spectra={})
    _, parts = loss(model(images_only, mask_inputs=True, generator=torch.Generator().manual_seed(1)))
    assert "views" not in parts


def test_redshift_neighbour_loss_prefers_neighbourhoods_of_equal_redshift():
    generator = torch.Generator().manual_seed(0)
    z = torch.tensor([0.5, 0.52, 3.0, 3.05, 7.0, 7.1, float("nan")])
    # embeddings that group the redshift pairs, and the same vectors given to the wrong objects
    centres = torch.randn(3, 8, generator=generator)
    grouped = centres.repeat_interleave(2, dim=0) + 0.05 * torch.randn(6, 8, generator=generator)
    grouped = torch.cat([grouped, torch.randn(1, 8, generator=generator)])
    shuffled = grouped[[0, 2, 4, 1, 3, 5, 6]]
    good, bad = redshift_neighbour_loss(grouped, z), redshift_neighbour_loss(shuffled, z)
    assert torch.isfinite(good) and _value(good) < _value(bad) - 1.0
    # the object without a redshift takes no part: any vector there gives the same loss
    moved = grouped.clone()
    moved[-1] = grouped[0]
    assert _value(redshift_neighbour_loss(moved, z)) == pytest.approx(_value(good), rel=1e-6)
    # its gradient moves the embeddings towards lower loss
    x = shuffled.clone().requires_grad_(True)
    redshift_neighbour_loss(x, z).backward()
    assert _value(redshift_neighbour_loss(shuffled - 0.5 * x.grad, z)) < _value(bad)
    assert redshift_neighbour_loss(grouped[:2], z[:2]) is None


def test_redshift_neighbour_term_only_when_weighted():
    from test_models import make_batch

    torch.manual_seed(0)
    config = ModelConfig.preset("tiny")
    model = MultimodalModel(config).train()
    batch = make_batch(config, torch.ones(6, 3, dtype=torch.bool))
    output = model(batch, mask_inputs=False, generator=torch.Generator().manual_seed(0))
    targets = {"redshift": torch.linspace(0.5, 8.0, 6)}
    _, parts = PretrainingLoss(LossWeights())(output, targets, model.heads)
    assert "redshift_neighbours" not in parts
    _, parts = PretrainingLoss(LossWeights(redshift_neighbours=0.5))(output, targets, model.heads)
    assert torch.isfinite(parts["redshift_neighbours"])
