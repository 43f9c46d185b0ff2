"""scikit-learn estimators on fused embeddings: a property from embeddings without touching the network.

`EmbeddingRegressor` and `EmbeddingClassifier` (standardised ridge / logistic regression by
default, or any scikit-learn estimator) take fused embeddings, an `~jwst_embed.EmbeddingResult`,
or a dict of images and spectra that their embedder embeds. Kept apart from
``jwst_embed.fine_tuning`` so that ``import jwst_embed`` does not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import astropy.units as u
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

from .embedder import EmbeddingResult, MultimodalEmbedder

__all__ = ["EmbeddingRegressor", "EmbeddingClassifier"]


def _embeddings(embedder, X, batch_size: int) -> np.ndarray:
    if isinstance(X, EmbeddingResult):
        return X.fused
    if isinstance(X, Mapping):
        unknown = set(X) - {"images", "spectra"}
        if unknown:
            raise ValueError(f"X as a dict takes the keys 'images' and 'spectra', got {sorted(unknown)}")
        if embedder is None:
            raise ValueError("X holds images/spectra: give the estimator an embedder to embed them")
        return embedder.embed(images=X.get("images"), spectra=X.get("spectra"), batch_size=batch_size).fused
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"X must be (N, D) embeddings or a dict of images/spectra, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("X contains NaN or inf embeddings")
    return values


class _EmbeddingEstimator(BaseEstimator):
    def __init__(self, embedder: MultimodalEmbedder | None = None, estimator: Any = None, batch_size: int = 64):
        self.embedder = embedder
        self.estimator = estimator
        self.batch_size = batch_size

    def _default_estimator(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit(self, X, y):
        features = _embeddings(self.embedder, X, self.batch_size)
        if y is None:
            raise ValueError("fit needs y, one label per object")
        y = y.value if isinstance(y, u.Quantity) else y
        y = np.asarray(y)
        if y.shape[0] != features.shape[0]:
            raise ValueError(f"y has {y.shape[0]} entries but X has {features.shape[0]} objects")
        keep = np.ones(len(y), bool)
        if y.dtype.kind == "f":
            keep = np.isfinite(y.reshape(len(y), -1)).all(axis=1)
        elif y.dtype.kind == "O":
            keep = np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in y])
        if not keep.any():
            raise ValueError("no object has a label (all missing)")
        estimator = self.estimator if self.estimator is not None else self._default_estimator()
        self.estimator_ = clone(estimator).fit(features[keep], y[keep])
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X):
        """Predict for embeddings or for images/spectra.

        Parameters
        ----------
        X : array-like ``(N, D)``, `~jwst_embed.EmbeddingResult` or dict
            Fused embeddings, or ``{"images": ..., "spectra": ...}`` to embed with ``embedder``.

        Returns
        -------
        `~numpy.ndarray`
            One prediction per object.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(_embeddings(self.embedder, X, self.batch_size))


class EmbeddingRegressor(RegressorMixin, _EmbeddingEstimator):
    """A scikit-learn regressor on fused embeddings (redshift, log mass, any number).

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`, optional
        Embeds ``X`` when it is ``{"images": ..., "spectra": ...}``; not needed for arrays.
    estimator : scikit-learn regressor, optional
        Fitted on the embeddings (cloned); default ``StandardScaler`` + ``RidgeCV``.
    batch_size : int
        Objects embedded at a time.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.estimators import EmbeddingRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 8)); y = X @ np.arange(8.0)
    >>> EmbeddingRegressor().fit(X, y).score(X, y) > 0.99
    True
    """

    def _default_estimator(self):
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))

    def fit(self, X, y):
        """Fit on embeddings (or images/spectra, embedded first); NaN labels are skipped.

        Parameters
        ----------
        X : array-like ``(N, D)``, `~jwst_embed.EmbeddingResult` or dict
            Fused embeddings, or ``{"images": ..., "spectra": ...}``.
        y : array-like or `~astropy.units.Quantity`
            ``(N,)`` or ``(N, K)`` targets (a Quantity's value is used).

        Returns
        -------
        self
        """
        return self._fit(X, y)


class EmbeddingClassifier(ClassifierMixin, _EmbeddingEstimator):
    """A scikit-learn classifier on fused embeddings (morphology, any class label).

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`, optional
        Embeds ``X`` when it is ``{"images": ..., "spectra": ...}``; not needed for arrays.
    estimator : scikit-learn classifier, optional
        Fitted on the embeddings (cloned); default ``StandardScaler`` + ``LogisticRegression``.
    batch_size : int
        Objects embedded at a time.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator.
    classes_ : `~numpy.ndarray`
        The class labels seen in `fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.estimators import EmbeddingClassifier
    >>> X = np.r_[np.zeros((20, 4)), np.ones((20, 4))]; y = ["disk"] * 20 + ["merger"] * 20
    >>> EmbeddingClassifier().fit(X, y).predict(X[[0, -1]]).tolist()
    ['disk', 'merger']
    """

    def _default_estimator(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    def fit(self, X, y):
        """Fit on embeddings (or images/spectra, embedded first); None / NaN labels are skipped.

        Parameters
        ----------
        X : array-like ``(N, D)``, `~jwst_embed.EmbeddingResult` or dict
            Fused embeddings, or ``{"images": ..., "spectra": ...}``.
        y : array-like
            ``(N,)`` class labels (names or integers).

        Returns
        -------
        self
        """
        self._fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like ``(N, D)``, `~jwst_embed.EmbeddingResult` or dict
            As for ``predict``.

        Returns
        -------
        `~numpy.ndarray`
            ``(N, n_classes)``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(_embeddings(self.embedder, X, self.batch_size))
