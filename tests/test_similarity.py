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
