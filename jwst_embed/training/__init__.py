"""Pretraining: losses, the trainer, checkpoints, distributed runs, validation (fine-tuning is in `jwst_embed.tuning`)."""

from .checkpoint import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    atomic_save,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_model,
    to_plain,
)
from .config import TrainConfig
from .data import (
    MOCK_SURVEY,
    DataSource,
    FileSource,
    IndexedSource,
    MixedSource,
    SurveySource,
    SyntheticSource,
    mix_counts,
)
from .distributed import (
    DistributedContext,
    all_reduce_mean,
    init_distributed,
    shutdown_distributed,
)
from .downstream import (
    DownstreamConfig,
    TokenPool,
    build_token_pool,
    evaluate_pool,
    train_downstream,
    train_line_reader,
)
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses_all
from .optim import cosine_with_warmup, parameter_groups
from .pretrain import METRIC_COLUMNS, Trainer
from .validation import knn_redshift, outlier_fraction, quick_validation, sigma_nmad, spectrum_r2

__all__ = [
    *_losses_all,
    "TrainConfig",
    "Trainer",
    "DataSource",
    "IndexedSource",
    "SurveySource",
    "FileSource",
    "SyntheticSource",
    "MixedSource",
    "mix_counts",
    "MOCK_SURVEY",
    "cosine_with_warmup",
    "parameter_groups",
    "METRIC_COLUMNS",
    "DownstreamConfig",
    "TokenPool",
    "build_token_pool",
    "train_line_reader",
    "train_downstream",
    "evaluate_pool",
    "atomic_save",
    "load_checkpoint",
    "save_model",
    "load_model",
    "to_plain",
    "capture_rng_state",
    "restore_rng_state",
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "DistributedContext",
    "init_distributed",
    "shutdown_distributed",
    "all_reduce_mean",
    "sigma_nmad",
    "outlier_fraction",
    "knn_redshift",
    "spectrum_r2",
    "quick_validation",
]


def __getattr__(name: str):
    # FineTuner moved to jwst_embed.tuning (one home for fine-tuning); the old name warns for a release
    if name == "FineTuner":
        import warnings

        from ..tuning import FineTuner

        warnings.warn(
            "jwst_embed.training.FineTuner is deprecated and will be removed in the next release; "
            "import it from jwst_embed.tuning",
            DeprecationWarning,
            stacklevel=2,
        )
        return FineTuner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
