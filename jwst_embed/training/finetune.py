"""Deprecated: `FineTuner` moved to `jwst_embed.tuning` (this module goes in the next release)."""

import warnings

from ..tuning.trainer import FineTuner

__all__ = ["FineTuner"]

warnings.warn(
    "jwst_embed.training.finetune is deprecated and will be removed in the next release; "
    "import FineTuner from jwst_embed.tuning",
    DeprecationWarning,
    stacklevel=2,
)
