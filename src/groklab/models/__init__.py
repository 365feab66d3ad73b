"""groklab.models: decoder, looped and recursive transformers with TransformerLens-style hooks.

See docs/models.md and docs/architecture.md section 2.
"""

from groklab.models.base import GrokModel
from groklab.models.config import FAMILIES, LOSSES, MIXERS, ModelConfig
from groklab.models.decoder import Decoder
from groklab.models.hooks import HookedModel, HookPoint
from groklab.models.layout import MASK_ID, PAD_ID, answer_logits, make_inputs
from groklab.models.looped import Looped
from groklab.models.recursive import Recursive
from groklab.models.registry import build_model, count_params, describe
from groklab.models.stablemax import log_stablemax, stablemax_cross_entropy

__all__ = [
    "GrokModel", "ModelConfig", "FAMILIES", "LOSSES", "MIXERS", "Decoder", "Looped", "Recursive",
    "HookedModel", "HookPoint", "MASK_ID", "PAD_ID", "answer_logits", "make_inputs",
    "build_model", "count_params", "describe", "log_stablemax", "stablemax_cross_entropy",
]
