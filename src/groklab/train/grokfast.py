"""Grokfast gradient filters (Lee et al. 2024, arXiv 2405.20233).

Both amplify the slow (low-frequency) component of the gradient before the optimizer step:

- EMA: ``mu <- alpha * mu + (1 - alpha) * g`` (``mu`` starts at the first gradient), then
  ``g <- g + lamb * mu``.
- MA: keep the last ``window`` gradients (the current one included); once the window is full,
  ``g <- g + lamb * mean(window)``; before that the gradient is left unchanged.

The state is a flat dict of tensors so checkpoints can store it in safetensors.
"""

from __future__ import annotations

import torch


class GradFilter:
    """Base: ``apply(params)`` rewrites ``p.grad`` in place; ``state_tensors``/``load_state`` for checkpoints."""

    def apply(self, params: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError


class EMAFilter(GradFilter):
    def __init__(self, alpha: float = 0.98, lamb: float = 2.0):
        self.alpha, self.lamb = alpha, lamb
        self.mu: list[torch.Tensor] | None = None

    def apply(self, params):
        grads = [p.grad for p in params if p.grad is not None]
        if self.mu is None:
            self.mu = [g.detach().clone() for g in grads]
        else:
            torch._foreach_lerp_(self.mu, grads, 1.0 - self.alpha)
        torch._foreach_add_(grads, self.mu, alpha=self.lamb)

    def state_tensors(self):
        if self.mu is None:
            return {}
        return {f"mu.{i}": t for i, t in enumerate(self.mu)}

    def load_state(self, tensors):
        keys = sorted((k for k in tensors if k.startswith("mu.")), key=lambda k: int(k[3:]))
        self.mu = [tensors[k] for k in keys] or None


class MAFilter(GradFilter):
    """Moving average over a ring buffer; a running sum keeps each step O(params)."""

    def __init__(self, window: int = 100, lamb: float = 5.0):
        self.window, self.lamb = window, lamb
        self.buf: list[torch.Tensor] | None = None   # per param: (window, *shape)
        self.total: list[torch.Tensor] | None = None  # per param: sum over the buffer
        self.count = 0                                # gradients seen so far

    def apply(self, params):
        grads = [p.grad for p in params if p.grad is not None]
        if self.buf is None:
            self.buf = [g.new_zeros((self.window, *g.shape)) for g in grads]
            self.total = [torch.zeros_like(g) for g in grads]
        slot = self.count % self.window
        if self.count >= self.window:
            torch._foreach_sub_(self.total, [b[slot] for b in self.buf])
        for b, g in zip(self.buf, grads):
            b[slot].copy_(g)
        torch._foreach_add_(self.total, grads)
        self.count += 1
        if slot == self.window - 1:  # full pass over the ring: recompute to stop rounding drift
            for t, b in zip(self.total, self.buf):
                torch.sum(b, dim=0, out=t)
        if self.count >= self.window:
            torch._foreach_add_(grads, self.total, alpha=self.lamb / self.window)

    def state_tensors(self):
        if self.buf is None:
            return {}
        out = {"count": torch.tensor(self.count, dtype=torch.int64)}
        out.update({f"buf.{i}": b for i, b in enumerate(self.buf)})
        out.update({f"total.{i}": t for i, t in enumerate(self.total)})
        return out

    def load_state(self, tensors):
        if "count" not in tensors:
            return
        self.count = int(tensors["count"])
        n = sum(1 for k in tensors if k.startswith("buf."))
        self.buf = [tensors[f"buf.{i}"] for i in range(n)]
        self.total = [tensors[f"total.{i}"] for i in range(n)]


def build_filter(kind: str, alpha: float, lamb: float, window: int) -> GradFilter | None:
    """``kind`` is ``none``, ``ema`` or ``ma``."""
    if kind == "none":
        return None
    if kind == "ema":
        return EMAFilter(alpha=alpha, lamb=lamb)
    if kind == "ma":
        return MAFilter(window=window, lamb=lamb)
    raise ValueError(f"unknown grokfast filter {kind!r}")
