"""k-nearest-neighbour baseline on the model's preprocessed pixels.

The features are exactly what the encoders read as flux (`~jwst_embed.preprocessing.model_inputs`):
``asinh(flux / softening)`` of each chosen modality with the fixed softening of its kind
(`~jwst_embed.preprocessing.IMAGE_SOFTENING_NJY` for NIRCam bands,
`~jwst_embed.preprocessing.SPECTRUM_SOFTENING_NJY` for spectra), masked pixels and absent
modalities set to 0, flattened and concatenated; optionally reduced by PCA. Brightness and
colours survive the stretch, so neighbours in this space are physically similar objects.
"""

from __future__ import annotations

import numpy as np

from jwst_embed.preprocessing.stretch import (
    IMAGE_SOFTENING_NJY,
    SPECTRUM_SOFTENING_NJY,
    model_inputs,
)

__all__ = ["PixelKNN", "pixel_features"]


def pixel_features(batch, modalities=None) -> np.ndarray:
    """Flattened stretched pixels of chosen modalities of a `~jwst_embed.preprocessing.Batch`.

    Parameters
    ----------
    batch : `~jwst_embed.preprocessing.Batch`
        Objects to describe.
    modalities : sequence of str, optional
        NIRCam bands and/or spectral modes (e.g. ``("F150W", "PRISM")``); default all of
        the batch's modalities, in the batch's canonical order.

    Returns
    -------
    features : `numpy.ndarray`
        (B, n_features) float32; 0 for masked pixels and absent modalities.

    Raises
    ------
    ValueError
        If a requested modality is not in the batch or none is requested.
    """
    names = tuple(batch.modalities) if modalities is None else tuple(modalities)
    if not names:
        raise ValueError("choose at least one modality")
    missing = [name for name in names if name not in batch.modalities]
    if missing:
        raise ValueError(
            f"modalities {missing} are not in the batch (it has {list(batch.modalities)})"
        )
    columns = []
    for name in names:
        tensors = batch[name]
        softening = SPECTRUM_SOFTENING_NJY if name in batch.spectra else IMAGE_SOFTENING_NJY
        mask = tensors.mask | ~batch.present_of(name).view(-1, *([1] * (tensors.values.ndim - 1)))
        stretched, _ = model_inputs(tensors.values, tensors.ivar, mask, softening)
        columns.append(stretched.detach().cpu().reshape(tensors.batch_size, -1).numpy())
    return np.concatenate(columns, axis=1).astype(np.float32, copy=False)


class PixelKNN:
    """k-nearest-neighbour regression or classification on stretched input pixels.

    Parameters
    ----------
    n_neighbors : int, optional
        Neighbours averaged (regression, distance-weighted) or voted (classification).
    task : {"regression", "classification"}, optional
        What `predict` returns: a mean of the neighbours' targets or a class.
    modalities : sequence of str, optional
        Modalities of a Batch used as features (default: all of the batch's); ignored
        when arrays of features are given.
    n_components : int or None, optional
        PCA dimensions the features are reduced to (``None``: no PCA). Capped at the
        number of training objects and features.
    weights : {"distance", "uniform"}, optional
        Neighbour weighting (scikit-learn's option).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 5)); y = x[:, 0] * 2
    >>> knn = PixelKNN(n_neighbors=5, n_components=None).fit(x, y)
    >>> bool(np.abs(knn.predict(x[:20]) - y[:20]).mean() < 0.5)
    True
    """

    def __init__(
        self,
        n_neighbors: int = 10,
        task: str = "regression",
        modalities=None,
        n_components: int | None = 64,
        weights: str = "distance",
    ) -> None:
        if task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
        if int(n_neighbors) < 1:
            raise ValueError(f"n_neighbors must be positive, got {n_neighbors}")
        if n_components is not None and int(n_components) < 1:
            raise ValueError(f"n_components must be positive or None, got {n_components}")
        self.n_neighbors = int(n_neighbors)
        self.task = task
        self.modalities = None if modalities is None else tuple(modalities)
        self.n_components = None if n_components is None else int(n_components)
        self.weights = weights
        self._pca = None
        self._model = None

    def _features(self, data) -> np.ndarray:
        from jwst_embed.preprocessing import Batch

        if isinstance(data, Batch):
            features = pixel_features(data, self.modalities)
        else:
            features = np.asarray(
                data.detach().cpu().numpy() if hasattr(data, "detach") else data, dtype=np.float32
            )
            if features.ndim != 2:
                raise ValueError(
                    f"features must be a Batch or a (N, n_features) array, got shape {features.shape}"
                )
        if not np.all(np.isfinite(features)):
            raise ValueError("features contain NaN or inf")
        return features

    def fit(self, data, y) -> PixelKNN:
        """Store the training objects (after PCA) and their targets.

        Parameters
        ----------
        data : `~jwst_embed.preprocessing.Batch` or array-like
            Training objects: a Batch, or (N, n_features) features.
        y : array-like
            (N,) or (N, n_targets) targets (class labels for classification).

        Returns
        -------
        self : `PixelKNN`

        Raises
        ------
        ValueError
            If the lengths differ, there are fewer objects than neighbours, or targets are
            not finite (regression).
        """
        from sklearn.decomposition import PCA
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        features = self._features(data)
        y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
        if y.shape[0] != features.shape[0]:
            raise ValueError(f"y has {y.shape[0]} rows, the features {features.shape[0]}")
        if features.shape[0] < self.n_neighbors:
            raise ValueError(
                f"need at least n_neighbors={self.n_neighbors} training objects, got {features.shape[0]}"
            )
        if self.task == "regression" and not np.all(np.isfinite(y)):
            raise ValueError("regression targets contain NaN or inf")
        if self.n_components is not None:
            n_components = min(self.n_components, *features.shape)
            self._pca = PCA(n_components=n_components, random_state=0).fit(features)
            features = self._pca.transform(features)
        estimator = KNeighborsRegressor if self.task == "regression" else KNeighborsClassifier
        self._model = estimator(n_neighbors=self.n_neighbors, weights=self.weights).fit(features, y)
        return self

    def predict(self, data) -> np.ndarray:
        """Predict targets (regression) or classes (classification).

        Parameters
        ----------
        data : `~jwst_embed.preprocessing.Batch` or array-like
            Objects to predict, described like the training data.

        Returns
        -------
        prediction : `numpy.ndarray`
            (N,) or (N, n_targets).

        Raises
        ------
        RuntimeError
            If called before `fit`.
        """
        if self._model is None:
            raise RuntimeError("call fit() before predict()")
        features = self._features(data)
        if self._pca is not None:
            features = self._pca.transform(features)
        return self._model.predict(features)

    def predict_proba(self, data) -> np.ndarray:
        """Class probabilities (classification only), (N, n_classes).

        Parameters
        ----------
        data : `~jwst_embed.preprocessing.Batch` or array-like
            Objects to classify.

        Returns
        -------
        probabilities : `numpy.ndarray`

        Raises
        ------
        RuntimeError
            If not fitted or the task is regression.
        """
        if self._model is None or self.task != "classification":
            raise RuntimeError("predict_proba needs a fitted classification PixelKNN")
        features = self._features(data)
        if self._pca is not None:
            features = self._pca.transform(features)
        return self._model.predict_proba(features)
