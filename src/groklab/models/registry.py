"""build_model: ModelConfig + vocabulary size -> GrokModel; count_params."""

from __future__ import annotations

from torch import nn

from groklab.errors import bad_value
from groklab.models.base import GrokModel
from groklab.models.config import ModelConfig
from groklab.models.decoder import Decoder
from groklab.models.looped import Looped
from groklab.models.recursive import Recursive

MODEL_CLASSES: dict[str, type[GrokModel]] = {
    "decoder": Decoder, "looped": Looped, "recursive": Recursive}


def build_model(cfg: ModelConfig, vocab_size: int) -> GrokModel:
    """Validate ``cfg`` and build the model of ``cfg.family`` (weights from the global RNG)."""
    cfg.validate()
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise bad_value("vocab_size", vocab_size, "an integer >= 3")
    return MODEL_CLASSES[cfg.family](cfg, vocab_size)


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, tied weights counted once; buffers excluded."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe(model: GrokModel) -> str:
    """One line for logs, e.g. ``decoder: 2 layers, d=128, 410,368 parameters``."""
    cfg = model.cfg
    return (f"{cfg.family}: {cfg.n_layers} layers, d={cfg.d_model}, "
            f"{count_params(model):,} parameters")
