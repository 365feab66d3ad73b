"""AdamW with decay only on matrices, and the learning-rate schedule (warmup, then constant or cosine)."""

from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices (linear weights, embeddings) decay; norms and biases (ndim < 2) do not."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, lr: float, betas: tuple[float, float], eps: float,
                    weight_decay: float) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused kernel where torch has one for the device."""
    groups = param_groups(model, weight_decay)
    device = next(model.parameters()).device
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused)


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


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
