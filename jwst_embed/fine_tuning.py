"""Deprecated: fine-tuning moved to `jwst_embed.tuning` (this module goes in the next release).

``from jwst_embed.fine_tuning import fine_tune`` keeps working, with a `DeprecationWarning`;
import from `jwst_embed.tuning` (or use ``jwst_embed.fine_tune``) instead. The scikit-learn
estimators are in `jwst_embed.estimators` (and ``jwst_embed.EmbeddingRegressor``).
"""

import warnings

from .tuning import TASKS, FineTuneHistory, describe_head, fine_tune, save_embedder

__all__ = ["TASKS", "FineTuneHistory", "fine_tune", "save_embedder", "describe_head"]

warnings.warn(
    "jwst_embed.fine_tuning is deprecated and will be removed in the next release; "
    "import from jwst_embed.tuning (fine_tune, save_embedder, describe_head) or jwst_embed.estimators",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    # the estimators live in jwst_embed.estimators (importing scikit-learn takes a second)
    if name in ("EmbeddingRegressor", "EmbeddingClassifier"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
