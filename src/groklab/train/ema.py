"""Exponential moving average of the weights, kept as a separate model used for evaluation."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """``shadow <- decay * shadow + (1 - decay) * param`` after every optimizer step.

    ``self.model`` is a frozen copy of the live model holding the averaged parameters (buffers
    are copied from the live model at each update), ready for evaluation and checkpoints.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        self._shadow = list(self.model.parameters())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        live = list(model.parameters())
        torch._foreach_lerp_(self._shadow, [p.detach() for p in live], 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
