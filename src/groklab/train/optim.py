"""AdamW with decay only on matrices, and the learning-rate schedule (warmup, then constant or cosine).

The optimizer is a small AdamW over ``torch._foreach`` ops (the update of
``torch.optim.AdamW``, checked against it in the tests). Owning it keeps its state a flat set
of tensors for safetensors checkpoints and spares each process torch.optim's import of
``torch._dynamo`` (seconds of start-up on a small CPU).
"""

from __future__ import annotations

import math

from torch import nn

from groklab.train.adamw import AdamW


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices (linear weights, embeddings) decay; norms and biases (ndim < 2) do not."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, betas: tuple[float, float], eps: float,
                    weight_decay: float, optimizer: str = "adamw", muon_momentum: float = 0.95,
                    muon_adjust_lr: str = "match_rms_adamw", lookup=None):
    """AdamW over :func:`param_groups`, or (``optimizer="muon"``) Muon over the hidden matrices
    and AdamW over the rest (:mod:`groklab.train.muon`); the learning rate is given to each
    ``step``. ``lookup`` maps each of ``model``'s parameters to the tensor actually optimized
    (a stacked ensemble's member-stacked tensor); the groups are decided on ``model``'s own."""
    lookup = lookup or (lambda p: p)
    if optimizer == "adamw":
        groups = param_groups(model, weight_decay)
        return AdamW([{**g, "params": [lookup(p) for p in g["params"]]} for g in groups],
                     betas=tuple(betas), eps=eps)
    if optimizer == "muon":
        from groklab.train.muon import MuonAdamW, muon_split  # muon.py builds on AdamW above

        hidden, rest = muon_split(model)
        decay = [lookup(p) for p in rest if p.ndim >= 2]
        no_decay = [lookup(p) for p in rest if p.ndim < 2]
        return MuonAdamW([lookup(p) for p in hidden],
                         [{"params": decay, "weight_decay": weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}],
                         betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                         momentum=muon_momentum, adjust_lr=muon_adjust_lr)
    raise ValueError(f"unknown optimizer {optimizer!r}")


def lr_at(step: int, lr: float, warmup_steps: int, schedule: str, total_steps: int,
          min_lr_ratio: float = 0.0) -> float:
    """Learning rate for optimizer update number ``step`` (1-based).

    Linear warmup ``lr * step / warmup_steps`` for ``step <= warmup_steps``; afterwards
    ``constant`` keeps ``lr`` and ``cosine`` decays from ``lr`` to ``lr * min_lr_ratio`` at
    ``total_steps`` (and stays there beyond it).
    """
    if warmup_steps > 0 and step <= warmup_steps:
        return lr * step / warmup_steps
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        floor = lr * min_lr_ratio
        return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}")
