"""Fine-tuning: adapt a pretrained embedder to your own labels (one home for the API and the loop).

`~jwst_embed.fine_tune` is the function users call (also `~jwst_embed.MultimodalEmbedder.fine_tune` and
``jwst_embed.fine_tune``), `FineTuner` the training loop beneath it, `save_embedder` writes the
result, `describe_head` records a custom head in the model configuration.
"""

from .fine_tune import FineTuneHistory, fine_tune, save_embedder
from .heads import TASKS, describe_head
from .trainer import FineTuner

__all__ = ["TASKS", "FineTuneHistory", "FineTuner", "describe_head", "fine_tune", "save_embedder"]
