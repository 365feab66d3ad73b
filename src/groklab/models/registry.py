"""build_model: ModelConfig + vocabulary size -> GrokModel; count_params."""

from __future__ import annotations

import contextlib

import torch
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


_INITIALISERS = ("normal_", "trunc_normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_",
                 "xavier_uniform_", "xavier_normal_", "zeros_", "ones_", "constant_",
                 "orthogonal_")


@contextlib.contextmanager
def initialisers_off():
    """torch.nn.init's initialisers as no-ops (only for models built to be measured)."""
    saved = {name: getattr(nn.init, name) for name in _INITIALISERS}
    try:
        for name in _INITIALISERS:
            setattr(nn.init, name, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def build_shape_only(cfg: ModelConfig, vocab_size: int) -> GrokModel:
    """The model of ``cfg`` on the meta device, uninitialised: its shapes, parameter count and
    stages without memory. (Initialising on the meta device imports torch's Python reference
    kernels on first use: ~5 CPU-s per process, paid by every run's preflight otherwise.)"""
    with initialisers_off(), torch.device("meta"):
        return build_model(cfg, vocab_size)


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, tied weights counted once; buffers excluded."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe(model: GrokModel) -> str:
    """One line for logs, e.g. ``decoder: 2 layers, d=128, 410,368 parameters``."""
    cfg = model.cfg
    return (f"{cfg.family}: {cfg.n_layers} layers, d={cfg.d_model}, "
            f"{count_params(model):,} parameters")
