"""Tests of jwst_embed.similarity: nearest neighbours and the embedding index."""

from __future__ import annotations

import numpy as np
import pytest

from jwst_embed.embedder import EmbeddingResult
from jwst_embed.similarity import EmbeddingIndex, nearest_neighbors


@pytest.fixture
def embeddings():
    return np.random.default_rng(0).normal(size=(300, 16))


def _brute_force(query, embeddings, k):
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = q @ e.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_matches_brute_force(embeddings):
    query = np.random.default_rng(1).normal(size=(7, 16))
    indices, similarities = nearest_neighbors(query, embeddings, k=5)
    expected_indices, expected_similarities = _brute_force(query, embeddings, 5)
    assert indices.shape == similarities.shape == (7, 5)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(similarities, expected_similarities, atol=1e-5)
    assert (np.diff(similarities, axis=1) <= 0).all()


def test_duplicate_is_found_first(embeddings):
    # Each object, slightly perturbed, finds its own (unperturbed) duplicate first.
    noisy = embeddings + 1e-3 * np.random.default_rng(2).normal(size=embeddings.shape)
    indices, similarities = nearest_neighbors(noisy, embeddings, k=3)
    np.testing.assert_array_equal(indices[:, 0], np.arange(len(embeddings)))
    assert (similarities[:, 0] > 0.999).all()
    # A single query gives 1-D results; a scaled copy is the same direction (cosine).
    index, similarity = nearest_neighbors(5.0 * embeddings[42], embeddings, k=2)
    assert index.shape == (2,) and index[0] == 42 and similarity[0] == pytest.approx(1.0, abs=1e-6)


def test_index_query_and_embedding_result(embeddings):
    result = EmbeddingResult(
        embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True),
        {"PRISM": np.zeros_like(embeddings)},
        np.ones((len(embeddings), 1), bool),
        ("PRISM",),
    )
    index = EmbeddingIndex().fit(result)
    assert len(index) == 300 and "n=300" in repr(index)
    indices, _ = index.query(result.fused[:4], k=1)
    np.testing.assert_array_equal(indices[:, 0], np.arange(4))
    # k larger than the index returns every object.
    indices, _ = index.query(result.fused[0], k=1000)
    assert sorted(indices.tolist()) == list(range(300))


def test_outlier_scores_find_the_unusual_object():
    rng = np.random.default_rng(3)
    cluster = np.array([1.0, 0.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(50, 4))
    odd = np.array([[0.0, 0.0, 0.0, 1.0]])
    index = EmbeddingIndex(np.vstack([cluster[:25], odd, cluster[25:]]))
    scores = index.outlier_scores(k=5)
    assert scores.shape == (51,) and int(np.argmax(scores)) == 25
    # Reference for one object: mean cosine distance to its 5 nearest others.
    vectors = index._vectors.astype(np.float64)
    similarity = np.delete(vectors @ vectors[0], 0)
    expected = np.mean(1.0 - np.sort(similarity)[::-1][:5])
    assert scores[0] == pytest.approx(expected, abs=1e-5)
    # A duplicate pair is not unusual: its nearest other is itself, at distance 0.
    pair = EmbeddingIndex(np.vstack([cluster, cluster[:1]]))
    assert pair.outlier_scores(k=1)[0] == pytest.approx(0.0, abs=1e-6)


def test_errors(embeddings):
    with pytest.raises(ValueError, match="width"):
        nearest_neighbors(np.ones(3), embeddings)
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbors(embeddings[0], embeddings, k=0)
    with pytest.raises(ValueError, match="all-zero"):
        nearest_neighbors(np.zeros(16), embeddings)
    bad = embeddings.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in rows \[3\]"):
        EmbeddingIndex(bad)
    with pytest.raises(ValueError, match="empty"):
        EmbeddingIndex().query(embeddings[0])
    with pytest.raises(ValueError, match="at least two"):
        EmbeddingIndex(embeddings[:1]).outlier_scores()
    with pytest.raises(TypeError, match="numeric"):
        nearest_neighbors("abc", embeddings)


# -- the similarity whitening ---------------------------------------------------------------------


def _population(n=4000, seed=0):
    """Unit vectors whose variance lies almost all along the first axis (the direction that
    swamps plain cosine similarity) while their neighbours differ in the small axes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)) * np.array([30.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    x[:, 0] += 100.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_whitening_fit_gives_unit_covariance():
    from jwst_embed.similarity import SimilarityWhitening

    population = _population()
    whitening = SimilarityWhitening.fit(population, floor=1e-6)
    white = whitening.apply(population)
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-8)
    assert whitening.dim == 6 and whitening.n_objects == 4000
    # the floor: eigenvalues below floor x the largest are not blown up
    floored = SimilarityWhitening.fit(population, floor=0.5)
    spread = np.linalg.eigvalsh(np.cov(floored.apply(population), rowvar=False))
    assert spread.max() == pytest.approx(1.0, rel=1e-8) and spread.min() < 0.9


def test_whitened_search_finds_neighbours_along_the_small_axes():
    """Plain cosine similarity ranks by the dominant axis; whitened, the small axes count too."""
    from jwst_embed.similarity import SimilarityWhitening

    population = _population()
    whitening = SimilarityWhitening.fit(population)
    reference, queries = population[:2000], population[2000:2200]
    plain_idx, _ = nearest_neighbors(queries, reference, k=5, whitening=None)
    white_idx, _ = nearest_neighbors(queries, reference, k=5, whitening=whitening)

    def small_axes_distance(indices):
        unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
        return np.linalg.norm(unit(reference[indices][:, :, 1:]) - unit(queries[:, None, 1:]), axis=-1).mean()

    assert small_axes_distance(white_idx) < 0.8 * small_axes_distance(plain_idx)
    # the same through the index, and with the whitening carried by an EmbeddingResult ("auto")
    index = EmbeddingIndex(reference, whitening=whitening)
    np.testing.assert_array_equal(index.query(queries, k=5)[0], white_idx)
    result = EmbeddingResult(fused=reference, modalities={"PRISM": reference}, present=np.ones((2000, 1), bool),
                             modality_names=("PRISM",), whitening=whitening)  # fmt: skip
    np.testing.assert_array_equal(EmbeddingIndex(result).query(queries, k=5)[0], white_idx)
    assert EmbeddingIndex(result).whitening is whitening
    np.testing.assert_array_equal(nearest_neighbors(queries, result, k=5)[0], white_idx)
    np.testing.assert_array_equal(nearest_neighbors(queries, result, k=5, whitening=None)[0], plain_idx)
    np.testing.assert_array_equal(EmbeddingIndex(reference).query(queries, k=5)[0], plain_idx)  # arrays: plain


def test_whitening_errors():
    from jwst_embed.similarity import SimilarityWhitening

    population = _population(200)
    with pytest.raises(ValueError, match="N >= 2 D"):
        SimilarityWhitening.fit(population[:10])
    with pytest.raises(ValueError, match="non-finite"):
        SimilarityWhitening.fit(np.where(np.arange(6) == 2, np.nan, population))
    with pytest.raises(ValueError, match="floor"):
        SimilarityWhitening.fit(population, floor=0.0)
    whitening = SimilarityWhitening.fit(population)
    with pytest.raises(ValueError, match="width 6"):
        nearest_neighbors(np.ones(4), np.ones((3, 4)), whitening=whitening)
    with pytest.raises(ValueError, match="'auto', None"):
        nearest_neighbors(population[:2], population, whitening="yes")
    with pytest.raises(TypeError, match="SimilarityWhitening"):
        EmbeddingIndex(population, whitening=np.eye(6))
    with pytest.raises(ValueError, match="whitening is for width 6"):
        EmbeddingResult(fused=np.ones((2, 4)), modalities={}, present=np.ones((2, 0), bool), modality_names=(),
                        whitening=whitening)  # fmt: skip
    other = SimilarityWhitening.fit(_population(200, seed=1))
    carrying = [EmbeddingResult(fused=population[:5], modalities={}, present=np.ones((5, 0), bool), modality_names=(),
                                whitening=w) for w in (whitening, other)]  # fmt: skip
    with pytest.raises(ValueError, match="different whitenings"):
        nearest_neighbors(carrying[0], carrying[1])
    with pytest.raises(ValueError, match="another whitening"):
        EmbeddingIndex(carrying[0]).query(carrying[1])


def test_whitening_travels_in_the_model_file(tmp_path):
    """save_model(extras=...) -> from_pretrained: the embedder and its results carry it; unknown extras fail."""
    import torch

    from jwst_embed import MultimodalEmbedder
    from jwst_embed.models import ModelConfig, MultimodalModel
    from jwst_embed.models.serialization import load_model, load_model_and_extras, save_model
    from jwst_embed.similarity import SimilarityWhitening

    model = MultimodalModel(ModelConfig.preset("tiny"))
    dim = model.config.latent_dim
    whitening = SimilarityWhitening.fit(np.random.default_rng(0).normal(size=(4 * dim, dim)))
    path = save_model(tmp_path / "model.pt", model, extras={"similarity_whitening": whitening.to_payload()})
    loaded, extras = load_model_and_extras(path)
    assert set(extras) == {"similarity_whitening"}
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in load_model(path).state_dict().items())
    embedder = MultimodalEmbedder.from_pretrained(path, device="cpu")
    stored = embedder.similarity_whitening
    np.testing.assert_allclose(stored.transform, whitening.transform.astype(np.float32), rtol=0, atol=0)
    assert stored.n_objects == 4 * dim
    plain = MultimodalEmbedder.from_pretrained(save_model(tmp_path / "plain.pt", model), device="cpu")
    assert plain.similarity_whitening is None
    with pytest.raises(ValueError, match="unknown model-file extras"):
        save_model(tmp_path / "bad.pt", model, extras={"optimiser": 1})
