"""Tests of jwst_embed.models: shapes, subsets of modalities, absent-data invariance, checkpoints, heads."""

import math

import numpy as np
import pytest
import torch

from jwst_embed.models import (
    BandEmbedding,
    MassHead,
    ModelConfig,
    MorphologyHead,
    MultimodalModel,
    RedshiftHead,
    sample_modality_subset,
)
from jwst_embed.preprocessing import Batch, ModalityTensors

BANDS = ("F150W", "F444W")
MODALITIES = (*BANDS, "PRISM")
N_OBJECTS = 6


def _value(tensor):
    """Python float of a scalar tensor (detached: torch warns on float() of a graph tensor)."""
    return tensor.detach().item()


def make_batch(config, present=None, seed=0, n_objects=N_OBJECTS):
    """A batch of smooth positive 'galaxies' (nJy) with unit ivar and a few masked pixels."""
    generator = torch.Generator().manual_seed(seed)
    size, length = config.image_size, config.spectrum_length
    y, x = torch.meshgrid(
        torch.arange(size) - size / 2, torch.arange(size) - size / 2, indexing="ij"
    )
    images = {}
    for k, band in enumerate(BANDS):
        amplitude = 20.0 * (1 + torch.rand(n_objects, 1, 1, generator=generator)) * (k + 1)
        values = amplitude * torch.exp(-(x**2 + y**2) / 20.0) + torch.randn(
            n_objects, size, size, generator=generator
        )
        mask = torch.rand(n_objects, size, size, generator=generator) < 0.02
        values = torch.where(mask, torch.zeros_like(values), values)
        ivar = torch.where(mask, torch.zeros_like(values), torch.ones_like(values))
        images[band] = ModalityTensors(values.float(), ivar.float(), mask)
    wavelength = torch.linspace(0, 1, length)
    continuum = 100.0 * (1 + torch.rand(n_objects, 1, generator=generator)) * (1 + wavelength)
    values = continuum + 10.0 * torch.randn(n_objects, length, generator=generator)
    spectra = {
        "PRISM": ModalityTensors(
            values.float(),
            torch.full_like(values, 0.01),
            torch.zeros_like(values, dtype=torch.bool),
        )
    }
    if present is None:
        present = torch.ones(n_objects, len(MODALITIES), dtype=torch.bool)
    for column, tensors in enumerate([*images.values(), *spectra.values()]):
        # A Batch requires absent entries to be fully masked with ivar 0.
        absent = ~present[:, column]
        tensors.values[absent], tensors.ivar[absent], tensors.mask[absent] = 0.0, 0.0, True
    return Batch(images=images, spectra=spectra, present=present, modalities=MODALITIES, targets={})


@pytest.fixture(scope="module")
def config():
    return ModelConfig.preset("tiny")


@pytest.fixture(scope="module")
def model(config):
    torch.manual_seed(0)
    return MultimodalModel(config).eval()


def test_presets_sizes():
    counts = {
        name: sum(p.numel() for p in MultimodalModel(ModelConfig.preset(name)).parameters())
        for name in ("tiny", "small")
    }
    assert 1e5 < counts["tiny"] < 1e6
    assert 5e6 < counts["small"] < 1e7
    assert ModelConfig.preset("base").image_width == 512


def test_config_roundtrip_and_validation():
    config = ModelConfig.preset("small", dropout=0.1)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.dropout == 0.1
    with pytest.raises(ValueError, match="preset"):
        ModelConfig.preset("huge")
    with pytest.raises(ValueError, match="divide"):
        ModelConfig(image_size=60, image_patch=8)
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"widht": 3})


@pytest.mark.parametrize(
    "pattern",
    [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (True, False, True),
        (True, True, True),
    ],
    ids=["F150W", "F444W", "PRISM", "F150W+PRISM", "all"],
)
def test_every_subset_gives_finite_normalised_embedding(model, config, pattern):
    present = torch.tensor([pattern] * N_OBJECTS)
    output = model(make_batch(config, present))
    assert output.fused.shape == (N_OBJECTS, config.latent_dim)
    assert torch.isfinite(output.fused).all()
    torch.testing.assert_close(output.fused.norm(dim=1), torch.ones(N_OBJECTS))
    for name, present_here in zip(MODALITIES, pattern, strict=True):
        embedding = output.modality_embeddings[name]
        assert embedding.shape == (N_OBJECTS, config.latent_dim)
        assert bool((embedding.norm(dim=1) > 0.5).all()) == present_here
    assert output.tokens["PRISM"].shape == (
        N_OBJECTS,
        1 + config.n_summary_tokens,
        config.latent_dim,
    )
    assert output.decoded_spectrum.shape == (N_OBJECTS, config.spectrum_length)


def _fill_absent_with_garbage(batch, seed):
    generator = torch.Generator().manual_seed(seed)
    for j, name in enumerate(batch.modalities):
        tensors = batch.images[name] if name in batch.images else batch.spectra[name]
        absent = ~batch.present[:, j]
        shape = tensors.values[absent].shape
        tensors.values[absent] = 1e4 * torch.randn(shape, generator=generator)
        tensors.ivar[absent] = torch.rand(shape, generator=generator) * 1e3
        tensors.mask[absent] = torch.rand(shape, generator=generator) < 0.5


@pytest.mark.parametrize("training", [False, True])
def test_absent_modalities_do_not_change_output(model, config, training):
    present = torch.tensor(
        [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=torch.bool
    )
    batch = make_batch(config, present)
    model.train(training)
    try:
        reference = model(batch, mask_inputs=training, generator=torch.Generator().manual_seed(1))
        _fill_absent_with_garbage(batch, seed=5)
        garbage = model(batch, mask_inputs=training, generator=torch.Generator().manual_seed(1))
    finally:
        model.eval()
    assert torch.equal(reference.fused, garbage.fused)
    for name in MODALITIES:
        assert torch.equal(reference.modality_embeddings[name], garbage.modality_embeddings[name])
    if training:
        assert torch.equal(reference.fused_subset, garbage.fused_subset)
        assert torch.equal(
            reference.image_reconstruction.prediction, garbage.image_reconstruction.prediction
        )
    # ... while changing a present modality does change it (the test can fail).
    batch.images["F150W"].values[0] *= 3.0
    changed = model(batch)
    assert not torch.allclose(changed.fused[0], reference.fused[0])
    torch.testing.assert_close(changed.fused[1:], model(batch).fused[1:])


def test_absolute_brightness_reaches_the_embedding(model, config):
    batch = make_batch(config)
    bright = make_batch(config)
    for tensors in [*bright.images.values(), *bright.spectra.values()]:
        tensors.values.mul_(10.0)
        tensors.ivar.div_(100.0)
    cosine = (model.embed(batch) * model.embed(bright)).sum(dim=1)
    assert (cosine < 0.9999).all()


def test_no_present_modality_raises(model, config):
    present = torch.ones(N_OBJECTS, 3, dtype=torch.bool)
    present[2] = False
    with pytest.raises(ValueError, match=r"objects \[2\] have no present modality"):
        model(make_batch(config, present))


def test_bad_batch_shapes_raise(model, config):
    batch = make_batch(config)
    batch.present = batch.present[:, :2]
    with pytest.raises(ValueError, match="present"):
        model(batch)
    small = make_batch(ModelConfig.preset("tiny", image_size=32))
    with pytest.raises(ValueError, match="64x64"):
        model(small)


def test_masked_outputs_shapes(config):
    torch.manual_seed(0)
    model = MultimodalModel(config).train()
    present = torch.tensor(
        [[1, 0, 1], [0, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.bool
    )
    output = model(
        make_batch(config, present), mask_inputs=True, generator=torch.Generator().manual_seed(0)
    )
    n_images = int(present[:, :2].sum())
    image = output.image_reconstruction
    assert (
        image.prediction.shape
        == image.target.shape
        == (n_images, config.n_image_patches, config.image_patch**2)
    )
    assert (
        image.patch_mask.sum(dim=1) == round(config.image_mask_ratio * config.n_image_patches)
    ).all()
    spectrum = output.spectrum_reconstruction
    assert spectrum.prediction.shape == (
        int(present[:, 2].sum()),
        config.n_spectrum_patches,
        config.spectrum_patch,
    )
    assert output.fused_subset.shape == output.fused.shape
    assert (output.subset_present <= output.present).all() and output.subset_present.any(
        dim=1
    ).all()
    # Spectrum target rows are zero weight exactly where there is no spectrum.
    assert torch.equal(output.spectrum_weight.sum(dim=1) > 0, present[:, 2])


def test_embed_is_deterministic_and_restores_mode(config):
    model = MultimodalModel(ModelConfig.preset("tiny", dropout=0.2)).train()
    batch = make_batch(config)
    first, second = model.embed(batch), model.embed(batch)
    assert torch.equal(first, second)
    assert model.training


def test_state_dict_loads_with_weights_only(model, config, tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"config": config.to_dict(), "state_dict": model.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    restored = MultimodalModel(ModelConfig.from_dict(checkpoint["config"]))
    restored.load_state_dict(checkpoint["state_dict"])
    batch = make_batch(config)
    assert torch.equal(restored.embed(batch), model.embed(batch))


def test_bf16_autocast_cpu(model, config):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(make_batch(config))
    assert output.fused.dtype == torch.float32 and torch.isfinite(output.fused).all()


def test_band_embedding_continuous_and_unknown_band():
    embedding = BandEmbedding(8)
    vectors = embedding(["F150W", "f150w", "F200W"])
    torch.testing.assert_close(vectors[0], vectors[1])
    assert not torch.allclose(vectors[0], vectors[2])
    with pytest.raises(ValueError, match="unknown NIRCam band"):
        embedding(["F999W"])


def test_band_embedding_compiles_and_keeps_state_dict_keys():
    """forward must not touch astropy (dynamo cannot trace Quantities): compile with the
    cheap "eager" backend, with fullgraph=True so any graph break fails, and compare."""
    dynamo = pytest.importorskip("torch._dynamo")
    from jwst_embed.bands import NIRCAM_BANDS

    torch.manual_seed(0)
    embedding = BandEmbedding(8)
    # Checkpoints written before the pivot cache must still load: same keys.
    expected = {f"mlp.{i}.{kind}" for i in (0, 2) for kind in ("weight", "bias")}
    assert set(embedding.state_dict()) == expected | {f"offsets.{name}" for name in NIRCAM_BANDS}
    with torch.no_grad():
        embedding.offsets["F444W"].normal_()  # so the per-band offsets take part in the comparison
    bands = ["F150W", "F444W", "F200W"]
    eager = embedding(bands)
    dynamo.reset()
    try:
        compiled = torch.compile(embedding, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(bands), eager, rtol=0, atol=0)
        # Alternative spellings take the get_band path; results must agree with eager.
        torch.testing.assert_close(compiled(["f150w", "NIRCAM_F444W"]), eager[:2], rtol=0, atol=0)
    finally:
        dynamo.reset()


# Dynamo warns that it cannot trace Tensor.index_put (a graph break in the batch bookkeeping,
# which then runs eagerly); harmless here, the point is that tracing no longer recurses into astropy.
@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace the builtin:UserWarning")
def test_tiny_model_compiles_and_matches_eager(model, config):
    dynamo = pytest.importorskip("torch._dynamo")
    batch = make_batch(config, seed=3)
    with torch.no_grad():
        eager = model(batch)
        dynamo.reset()
        try:
            compiled = torch.compile(model, backend="eager")(batch)
        finally:
            dynamo.reset()
    torch.testing.assert_close(compiled.fused, eager.fused)


def test_sample_modality_subset_properties():
    generator = torch.Generator().manual_seed(0)
    present = torch.rand(500, 4, generator=generator) > 0.4
    present[:, 0] |= ~present.any(dim=1)
    subset = sample_modality_subset(present, 0.7, generator)
    assert (subset <= present).all() and subset.any(dim=1).all()
    kept = subset.sum() / present.sum()
    assert 0.3 < float(kept) < 0.6  # ~30% kept, plus the restored ones
    assert torch.equal(sample_modality_subset(present, 0.0, generator), present)


def test_redshift_head_uniform_pdf_quantiles():
    head = RedshiftHead(4, n_bins=64, z_max=16.0)
    for parameter in head.parameters():
        torch.nn.init.zeros_(parameter)
    result = head.predict(torch.zeros(2, 4))
    torch.testing.assert_close(result["pdf"].sum(dim=1), torch.ones(2))
    # Uniform in log(1+z) over [0, log 17]: quantile q is at (1+z) = 17**q.
    for name, q in (("z_16", 0.16), ("z_median", 0.5), ("z_84", 0.84)):
        torch.testing.assert_close(
            result[name], torch.full((2,), 17.0**q - 1), rtol=1e-4, atol=1e-4
        )


def _peaked_pdf(head: RedshiftHead, peaks: dict[float, float]) -> torch.Tensor:
    """One PDF with narrow peaks {redshift: probability} on ``head``'s bins."""
    pdf = torch.zeros(1, head.log1pz_centers.numel())
    for z, mass in peaks.items():
        centre = int(torch.bucketize(torch.tensor(math.log1p(z)), head.log1pz_edges)) - 1
        pdf[0, centre - 1 : centre + 2] += mass / 3
    return pdf


def test_redshift_point_estimate_stays_in_the_most_probable_peak():
    head = RedshiftHead(4, n_bins=512, z_max=16.0)
    # three separate peaks, the first the most probable: the median falls in the second one
    pdf = _peaked_pdf(head, {1.0: 0.4, 3.0: 0.3, 7.0: 0.3})
    median = float(torch.expm1(head._quantile(pdf, 0.5)))
    assert abs(median - 3.0) / 4.0 < 0.02
    assert abs(float(head.point_estimate(pdf)) - 1.0) / 2.0 < 0.01
    # a peak that wins by less than WINDOW_GAIN does not move the median
    pdf = _peaked_pdf(head, {1.0: 0.34, 3.0: 0.33, 7.0: 0.33})
    assert abs(float(head.point_estimate(pdf)) - 3.0) / 4.0 < 0.02
    # single-peaked (even broad and skewed) and flat PDFs keep their median
    for pdf in (
        _peaked_pdf(head, {2.0: 0.6, 2.3: 0.4}),
        torch.softmax(-((head.log1pz_centers - 1.5).abs() / 0.3)[None, :], dim=1),
        torch.full((1, 512), 1.0 / 512),
    ):
        torch.testing.assert_close(head.point_estimate(pdf), torch.expm1(head._quantile(pdf, 0.5)))
    # predict() reports it for a batch
    result = head.predict(torch.zeros(3, 4))
    torch.testing.assert_close(result["z_point"], head.point_estimate(result["pdf"]))


def test_heads_learn_simple_targets():
    torch.manual_seed(0)
    features = torch.randn(64, 8)
    redshift = torch.expm1(0.5 + 0.4 * features[:, 0].clamp(-2, 2))
    log_mass = 9.0 + 0.5 * features[:, 1]
    label = (features[:, 2] > 0).long() + 2 * (features[:, 3] > 0).long()
    for head, target in (
        (RedshiftHead(8, n_bins=64), redshift),
        (MassHead(8), log_mass),
        (MorphologyHead(8), label),
    ):
        optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
        losses = []
        for _ in range(60):
            loss = head.loss(head(features), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(_value(loss))
        assert math.isfinite(losses[-1]) and losses[-1] < 0.7 * losses[0]
    z = RedshiftHead(8, n_bins=64)
    prediction = z.predict(features)
    assert (prediction["z_16"] <= prediction["z_median"]).all() and (
        prediction["z_median"] <= prediction["z_84"]
    ).all()
    mass = MassHead(8).predict(features)
    assert (mass["log_mass_sigma"] > 0).all()
    assert np.isfinite(mass["log_mass"].numpy()).all()


def test_spectrum_refiner_starts_as_identity_and_mends_patch_seams():
    """The refiner adds nothing until trained, and learns to remove steps at patch edges."""
    from jwst_embed.models import SpectrumRefiner

    with pytest.raises(ValueError, match="odd"):
        SpectrumRefiner(64, 16, kernel=4)
    torch.manual_seed(0)
    length, patch = 128, 16
    refiner = SpectrumRefiner(length, patch, kernel=9, channels=16)
    x = torch.linspace(0, 1, length)
    smooth = torch.stack([a * x + b * torch.sin(6 * x + c) for a, b, c in torch.rand(256, 3)])
    # One random offset per patch: the seams a patch-wise decoder leaves.
    stepped = smooth + 0.2 * torch.randn(256, length // patch).repeat_interleave(patch, dim=1)
    assert torch.equal(refiner(stepped), stepped)
    optimizer = torch.optim.Adam(refiner.parameters(), lr=3e-3)

    @torch.no_grad()
    def seam_error() -> float:
        """Mean jump across patch edges, minus the smooth curve's own jump there."""
        out = refiner(stepped)
        edges = torch.arange(patch, length, patch)
        jump = (out[:, edges] - out[:, edges - 1]) - (smooth[:, edges] - smooth[:, edges - 1])
        return float(jump.abs().mean())

    before = seam_error()
    for _ in range(300):
        optimizer.zero_grad()
        loss = (refiner(stepped) - smooth).square().mean()
        loss.backward()
        optimizer.step()
    assert seam_error() < 0.5 * before


def test_decoder_refiner_is_optional_in_the_state_dict():
    """A model with ``decoder_refiner`` adds only refiner keys and, untrained, decodes alike."""
    plain_config = ModelConfig.preset("tiny")
    refined_config = ModelConfig.preset("tiny", decoder_refiner=9)
    torch.manual_seed(0)
    plain = MultimodalModel(plain_config).eval()
    refined = MultimodalModel(refined_config).eval()
    missing, unexpected = refined.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("spectrum_decoder.refiner.") for key in missing)
    embedding = torch.randn(3, plain_config.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(refined.spectrum_decoder(embedding), plain.spectrum_decoder(embedding))
    assert ModelConfig.from_dict(refined_config.to_dict()).decoder_refiner == 9
    with pytest.raises(ValueError, match="decoder_refiner"):
        ModelConfig.preset("tiny", decoder_refiner=8)


def test_the_input_stretch_is_part_of_the_model(tmp_path):
    from jwst_embed.models.serialization import load_checkpoint, load_model, save_model
    from jwst_embed.preprocessing.stretch import IMAGE_SOFTENING_NJY, SPECTRUM_SOFTENING_NJY

    config = ModelConfig.preset("tiny")
    # files written before the stretch was recorded get the values their weights were trained with
    assert (config.image_softening_njy, config.spectrum_softening_njy) == (IMAGE_SOFTENING_NJY, SPECTRUM_SOFTENING_NJY)
    old = config.to_dict()
    del old["image_softening_njy"], old["spectrum_softening_njy"]
    assert ModelConfig.from_dict(old) == config
    # a model with another stretch keeps it in its file, and uses it
    other = MultimodalModel(ModelConfig.preset("tiny", spectrum_softening_njy=50.0))
    path = save_model(tmp_path / "model.pt", other)
    assert load_checkpoint(path)["config"]["spectrum_softening_njy"] == 50.0
    loaded = load_model(path)
    assert loaded.config.spectrum_softening_njy == 50.0
    flux = torch.tensor([[0.0, 50.0, -500.0]])
    torch.testing.assert_close(loaded.spectrum_flux(loaded.stretched_spectrum(flux)), flux)
    assert float(loaded.stretched_spectrum(torch.tensor([50.0]))) == pytest.approx(math.asinh(1.0))
