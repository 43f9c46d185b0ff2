"""Neural networks of jwst_embed: encoders, fusion, the multimodal model and prediction heads.

`MultimodalModel` reads a `~jwst_embed.preprocessing.Batch` and returns a
`ModelOutput` with the fused embedding; `ModelConfig.preset` picks a size.
"""

from .config import *  # noqa: F401,F403
from .config import __all__ as _config_all
from .fusion import *  # noqa: F401,F403
from .fusion import __all__ as _fusion_all
from .heads import *  # noqa: F401,F403
from .heads import __all__ as _heads_all
from .image_encoder import *  # noqa: F401,F403
from .image_encoder import __all__ as _image_all
from .multimodal import *  # noqa: F401,F403
from .multimodal import __all__ as _multimodal_all
from .spectrum_encoder import *  # noqa: F401,F403
from .spectrum_encoder import __all__ as _spectrum_all

__all__ = [*_config_all, *_image_all, *_spectrum_all, *_fusion_all, *_multimodal_all, *_heads_all]
