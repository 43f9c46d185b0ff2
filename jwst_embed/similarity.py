"""Similarity search over embeddings: nearest neighbours by cosine similarity, outlier scores.

Embeddings are compared by cosine similarity, computed as dot products of
L2-normalised vectors (the fused embeddings of `~jwst_embed.MultimodalEmbedder` are already
normalised; any others are normalised here). Exact brute-force search in chunks
of queries with numpy: a few hundred thousand objects of 256 numbers search in
seconds on a laptop, with memory bounded by the chunk.

A model can carry a `SimilarityWhitening`: the mean and inverse square root of the covariance
of its fused embeddings over its mock survey. Cosine similarity after it weighs every direction
the population varies in equally, instead of letting the few directions of largest variance
decide who is near whom. Embeddings from `jwst_embed.MultimodalEmbedder.embed` carry their model's
whitening, and the search here applies it unless told not to (``whitening=None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["nearest_neighbors", "EmbeddingIndex", "SimilarityWhitening"]

#: Smallest eigenvalue kept by `SimilarityWhitening.fit`, relative to the largest: directions
#: with less variance than this are not blown up (they hold noise, not structure).
WHITENING_FLOOR = 1e-3


@dataclass(frozen=True)
class SimilarityWhitening:
    """A linear map that whitens embeddings before cosine similarity: ``(x - mean) @ transform``.

    Parameters
    ----------
    mean : `~numpy.ndarray`
        ``(D,)`` mean embedding of the population it was fitted on.
    transform : `~numpy.ndarray`
        ``(D, D)`` inverse square root of that population's covariance (eigenvalues below
        ``floor`` times the largest raised to it).
    n_objects : int
        Size of the population.
    floor : float
        The eigenvalue floor used.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.similarity import SimilarityWhitening
    >>> rng = np.random.default_rng(0)
    >>> population = rng.normal(size=(5000, 3)) * [10.0, 1.0, 0.5]
    >>> whitening = SimilarityWhitening.fit(population)
    >>> np.round(np.std(whitening.apply(population), axis=0), 2).tolist()
    [1.0, 1.0, 1.0]
    >>> # a direction with less than `WHITENING_FLOOR` of the largest variance is not blown up
    >>> floored = SimilarityWhitening.fit(population * [1.0, 1.0, 0.01])
    >>> np.round(np.std(floored.apply(population * [1.0, 1.0, 0.01]), axis=0), 2).tolist()
    [1.0, 1.0, 0.02]
    """

    mean: np.ndarray
    transform: np.ndarray
    n_objects: int = 0
    floor: float = WHITENING_FLOOR

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        transform = np.asarray(self.transform, dtype=np.float64)
        if mean.ndim != 1 or transform.shape != (mean.size, mean.size):
            raise ValueError(f"mean must be (D,) and transform (D, D); got {mean.shape} and {transform.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(transform).all()):
            raise ValueError("the whitening has non-finite values")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "transform", transform)

    @property
    def dim(self) -> int:
        """Width ``D`` of the embeddings it applies to."""
        return int(self.mean.size)

    @classmethod
    def fit(cls, embeddings: Any, floor: float = WHITENING_FLOOR) -> SimilarityWhitening:
        """Fit to a population of embeddings (e.g. a model's fused embeddings of its mock survey).

        Parameters
        ----------
        embeddings : array-like
            ``(N, D)`` embeddings, N well above D (the covariance must be estimated).
        floor : float, optional
            Eigenvalues of the covariance below ``floor`` times the largest are raised to it.

        Returns
        -------
        whitening : `SimilarityWhitening`

        Raises
        ------
        ValueError
            Fewer objects than twice the width, non-finite values, or ``floor`` not in (0, 1].
        """
        array = np.asarray(getattr(embeddings, "fused", embeddings), dtype=np.float64)
        if array.ndim != 2 or array.shape[0] < 2 * array.shape[1]:
            raise ValueError(f"need an (N, D) population with N >= 2 D to fit a whitening, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("the embeddings have non-finite values")
        if not 0 < floor <= 1:
            raise ValueError(f"floor must lie in (0, 1], got {floor}")
        mean = array.mean(axis=0)
        eigenvalues, vectors = np.linalg.eigh(np.cov(array - mean, rowvar=False))
        if not eigenvalues[-1] > 0:
            raise ValueError("the embeddings do not vary: nothing to whiten")
        kept = np.maximum(eigenvalues, floor * eigenvalues[-1])
        # the symmetric (ZCA) root: whitened vectors stay closest to the originals
        transform = (vectors / np.sqrt(kept)) @ vectors.T
        return cls(mean=mean, transform=transform, n_objects=int(array.shape[0]), floor=float(floor))

    def apply(self, embeddings: Any) -> np.ndarray:
        """``(N, D)`` whitened embeddings (not normalised; cosine similarity normalises them).

        Raises
        ------
        ValueError
            If the width is not `dim`.
        """
        array = np.asarray(embeddings, dtype=np.float64)
        if array.shape[-1] != self.dim:
            raise ValueError(f"this whitening is for embeddings of width {self.dim}, got width {array.shape[-1]}")
        return (array - self.mean) @ self.transform

    def to_payload(self) -> dict[str, Any]:
        """Plain values and arrays to store in a model file (see `from_payload`)."""
        return {"mean": self.mean.astype(np.float32), "transform": self.transform.astype(np.float32),
                "n_objects": int(self.n_objects), "floor": float(self.floor)}  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Any) -> SimilarityWhitening:
        """The whitening stored by `to_payload` (arrays or tensors)."""
        try:
            mean, transform = (np.asarray(payload[key], dtype=np.float64) for key in ("mean", "transform"))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a stored similarity whitening: {error}") from None
        return cls(mean=mean, transform=transform, n_objects=int(payload.get("n_objects", 0)),
                   floor=float(payload.get("floor", WHITENING_FLOOR)))  # fmt: skip


def _resolve_whitening(whitening: Any, *embeddings: Any) -> SimilarityWhitening | None:
    """The whitening to use: ``"auto"`` takes the one the embeddings carry (all the same), if any."""
    if isinstance(whitening, str):
        if whitening != "auto":
            raise ValueError(f"whitening must be 'auto', None or a SimilarityWhitening, got {whitening!r}")
        carried = [getattr(item, "whitening", None) for item in embeddings if not isinstance(item, np.ndarray)]
        carried = [item for item in carried if item is not None]
        if not carried:
            return None
        if any(item is not carried[0] and not _same(item, carried[0]) for item in carried[1:]):
            raise ValueError("the embeddings carry different whitenings (made by different models?); pass one")
        return carried[0]
    if whitening is None or isinstance(whitening, SimilarityWhitening):
        return whitening
    raise TypeError(f"whitening must be 'auto', None or a SimilarityWhitening, got {type(whitening).__name__}")


def _same(a: SimilarityWhitening, b: SimilarityWhitening) -> bool:
    return a.dim == b.dim and np.array_equal(a.mean, b.mean) and np.array_equal(a.transform, b.transform)


def _search_matrix(embeddings: Any, name: str, whitening: SimilarityWhitening | None) -> np.ndarray:
    """`_as_matrix` of the embeddings, whitened first when a whitening is given."""
    if whitening is None:
        return _as_matrix(embeddings, name)
    raw = _as_matrix(embeddings, name)  # checks shape and values before whitening
    if raw.shape[1] != whitening.dim:
        raise ValueError(f"{name}: width {raw.shape[1]}, but the whitening is for width {whitening.dim}")
    # on the unit vectors, as the population it was fitted on (fused embeddings are unit vectors)
    return _as_matrix(whitening.apply(raw), name)

# Queries compared at a time: bounds the (chunk x N) similarity matrix in memory.
_QUERY_CHUNK = 1024


def _as_matrix(embeddings: Any, name: str) -> np.ndarray:
    """``(N, D)`` float32 L2-normalised copy of embeddings (an array or an EmbeddingResult)."""
    if hasattr(embeddings, "fused") and not isinstance(embeddings, np.ndarray):
        embeddings = embeddings.fused
    try:
        array = np.array(embeddings, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric (N, D) array, got {type(embeddings).__name__}") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {array.shape}")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} has non-finite values in rows {np.flatnonzero(~finite)[:10].tolist()}")
    norm = np.linalg.norm(array, axis=1)
    if not (norm > 0).all():
        raise ValueError(f"{name} has all-zero rows {np.flatnonzero(norm <= 0)[:10].tolist()}; they have no direction")
    return (array / norm[:, None]).astype(np.float32)


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return min(int(k), n)


def _top_k(query: np.ndarray, reference: np.ndarray, k: int, exclude: np.ndarray | None = None):
    """Indices and similarities of the ``k`` most similar reference rows, best first."""
    indices = np.empty((query.shape[0], k), dtype=np.int64)
    similarities = np.empty((query.shape[0], k), dtype=np.float32)
    for start in range(0, query.shape[0], _QUERY_CHUNK):
        stop = min(start + _QUERY_CHUNK, query.shape[0])
        scores = query[start:stop] @ reference.T
        if exclude is not None:
            scores[np.arange(stop - start), exclude[start:stop]] = -np.inf
        if k < scores.shape[1]:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
        part_scores = np.take_along_axis(scores, part, axis=1)
        # Stable sort on (-score, index) so ties come back in index order: deterministic.
        order = np.lexsort((part, -part_scores), axis=1)
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        similarities[start:stop] = np.take_along_axis(part_scores, order, axis=1)
    return indices, np.clip(similarities, -1.0, 1.0)


def nearest_neighbors(query: Any, embeddings: Any, k: int = 10, whitening: Any = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` embeddings most similar (cosine) to each query, best first.

    Parameters
    ----------
    query : array-like
        ``(D,)`` one query or ``(Q, D)`` queries (or an `~jwst_embed.EmbeddingResult`,
        whose ``fused`` embeddings are used).
    embeddings : array-like
        ``(N, D)`` embeddings to search (or an `~jwst_embed.EmbeddingResult`).
    k : int
        Number of neighbours; at most N are returned.
    whitening : ``"auto"``, None or `~jwst_embed.similarity.SimilarityWhitening`, optional
        Applied to queries and embeddings before the cosine similarity. ``"auto"`` (default):
        the whitening that `~jwst_embed.EmbeddingResult` inputs carry from their model (none
        for plain arrays); None: plain cosine similarity.

    Returns
    -------
    indices : `~numpy.ndarray`
        int64 rows of ``embeddings``, ``(k,)`` for one ``(D,)`` query, else ``(Q, k)``.
    similarities : `~numpy.ndarray`
        float32 cosine similarities in [-1, 1] (of the whitened vectors, if whitened), same
        shape, decreasing along the last axis.

    Raises
    ------
    ValueError
        Widths differ, empty input, non-finite or all-zero vectors, ``k < 1``, or the inputs
        carry different whitenings.
    TypeError
        If an input is not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.similarity import nearest_neighbors
    >>> embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> indices, similarities = nearest_neighbors([1.0, 0.1], embeddings, k=2)
    >>> indices.tolist(), [round(float(s), 3) for s in similarities]
    ([0, 2], [0.995, 0.774])
    """
    single = np.ndim(getattr(query, "fused", query)) == 1
    chosen = _resolve_whitening(whitening, query, embeddings)
    queries = _search_matrix(query, "query", chosen)
    reference = _search_matrix(embeddings, "embeddings", chosen)
    if queries.shape[1] != reference.shape[1]:
        raise ValueError(
            f"query has width {queries.shape[1]} but embeddings have width {reference.shape[1]}"
        )
    indices, similarities = _top_k(queries, reference, _check_k(k, reference.shape[0]))
    if single:
        return indices[0], similarities[0]
    return indices, similarities


class EmbeddingIndex:
    """An index of embeddings for similarity search and for finding unusual objects.

    Parameters
    ----------
    embeddings : array-like, optional
        ``(N, D)`` embeddings (or an `~jwst_embed.EmbeddingResult`); the index is fitted
        on them at once. Otherwise call `fit`.
    whitening : ``"auto"``, None or `~jwst_embed.similarity.SimilarityWhitening`, optional
        Applied before cosine similarity, to the indexed embeddings and to every query;
        ``"auto"``: the one an `~jwst_embed.EmbeddingResult` carries from its model.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.similarity import EmbeddingIndex
    >>> rng = np.random.default_rng(0)
    >>> cluster = rng.normal([1, 0, 0], 0.05, size=(20, 3))
    >>> index = EmbeddingIndex(np.vstack([cluster, [[0.0, 0.0, 1.0]]]))
    >>> int(np.argmax(index.outlier_scores(k=5)))      # the lonely object
    20
    >>> index.query(cluster[3], k=1)[0].tolist()        # an object finds itself first
    [3]
    """

    def __init__(self, embeddings: Any = None, whitening: Any = "auto") -> None:
        self._vectors: np.ndarray | None = None
        self._requested = whitening
        _resolve_whitening(whitening)  # a bad value fails here, not at fit
        self.whitening: SimilarityWhitening | None = None
        if embeddings is not None:
            self.fit(embeddings)

    def fit(self, embeddings: Any) -> EmbeddingIndex:
        """Store L2-normalised copies of the embeddings to search.

        Parameters
        ----------
        embeddings : array-like
            ``(N, D)`` embeddings (or an `~jwst_embed.EmbeddingResult`).

        Returns
        -------
        self : `EmbeddingIndex`

        Raises
        ------
        ValueError
            Empty input, non-finite or all-zero vectors.
        """
        self.whitening = _resolve_whitening(self._requested, embeddings)
        self._vectors = _search_matrix(embeddings, "embeddings", self.whitening)
        return self

    def _fitted(self) -> np.ndarray:
        if self._vectors is None:
            raise ValueError("the index is empty; call fit(embeddings) first")
        return self._vectors

    def __len__(self) -> int:
        return 0 if self._vectors is None else int(self._vectors.shape[0])

    def __repr__(self) -> str:
        width = None if self._vectors is None else self._vectors.shape[1]
        return f"EmbeddingIndex(n={len(self)}, dim={width})"

    def query(self, embedding: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` indexed objects most similar to each query embedding.

        Parameters
        ----------
        embedding : array-like
            ``(D,)`` or ``(Q, D)`` query embeddings (whitened as the index was).
        k : int
            Number of neighbours (at most the size of the index).

        Returns
        -------
        indices, similarities : `~numpy.ndarray`
            Rows of the index and cosine similarities, best first: ``(k,)`` for one
            ``(D,)`` query, else ``(Q, k)``.

        Raises
        ------
        ValueError
            As for `nearest_neighbors`, or if the index is empty.
        """
        vectors = self._fitted()
        single = np.ndim(getattr(embedding, "fused", embedding)) == 1
        carried = getattr(embedding, "whitening", None) if not isinstance(embedding, np.ndarray) else None
        if carried is not None and self.whitening is not None and not _same(carried, self.whitening):
            raise ValueError("the query carries another whitening than the index was built with")
        queries = _search_matrix(embedding, "query", self.whitening)
        if queries.shape[1] != vectors.shape[1]:
            raise ValueError(f"query has width {queries.shape[1]} but the index has width {vectors.shape[1]}")
        indices, similarities = _top_k(queries, vectors, _check_k(k, vectors.shape[0]))
        return (indices[0], similarities[0]) if single else (indices, similarities)

    def outlier_scores(self, k: int = 10) -> np.ndarray:
        """How unusual each indexed object is: mean cosine distance to its k nearest others.

        Parameters
        ----------
        k : int
            Neighbours averaged over (each object itself excluded); at most N - 1.

        Returns
        -------
        scores : `~numpy.ndarray`
            ``(N,)`` float64 mean of ``1 - cosine similarity``, in [0, 2]: large for
            objects unlike any other, small inside dense groups.

        Raises
        ------
        ValueError
            If the index holds fewer than two objects, or ``k < 1``.
        """
        vectors = self._fitted()
        n = vectors.shape[0]
        if n < 2:
            raise ValueError(f"outlier scores need at least two indexed objects, got {n}")
        k = _check_k(k, n - 1)
        _, similarities = _top_k(vectors, vectors, k, exclude=np.arange(n))
        return (1.0 - similarities.astype(np.float64)).mean(axis=1)
