"""Stablemax cross-entropy (Prieto et al. 2025, used by TRM).

Stablemax replaces ``exp`` in softmax by ``s(x) = x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` for
``x < 0``: linear growth instead of exponential, so large logits cannot overflow and the loss
does not push logits to infinity once an example is fit. Computed in float64 (CPU/CUDA).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """Elementwise ``s(x)``: x + 1 for x >= 0, 1 / (1 - x) for x < 0 (always > 0)."""
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(s(x) / sum s(x))`` in float64."""
    s = stablemax_s(logits.double())
    return torch.log(s) - torch.log(s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log stablemax(logits)[target]`` over rows (float32 result); logits (N, V)."""
    logp = log_stablemax(logits, dim=-1)
    return -logp.gather(-1, target.long().unsqueeze(-1)).squeeze(-1).mean().float()


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ordinary cross-entropy, computed in float32 (safe under bf16 autocast)."""
    return F.cross_entropy(logits.float(), target.long())
