"""Muon for the hidden weight matrices, AdamW for everything else (``optim.optimizer: muon``).

Muon (Jordan et al. 2024; ``torch.optim.Muon`` in torch >= 2.9) replaces each matrix's
momentum by its orthogonalisation: a few Newton-Schulz iterations push every singular value
of the (Nesterov) momentum towards 1, so each step moves all directions of the matrix alike.
The update equals ``torch.optim.Muon``'s (checked against it in the tests), with two
differences that groklab needs: its state is a flat set of tensors (safetensors checkpoints),
and a matrix may carry leading member dimensions (a stacked ensemble, ``train.ensemble``),
orthogonalised per member by batched matmuls.

Which parameters are "hidden matrices" is decided by :func:`muon_split`: the weights of the
``nn.Linear`` layers except the unembedding (``lm_head``); embeddings, the unembedding, norms
and biases stay with AdamW (the usual split: Muon is for hidden layers).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from groklab.train.adamw import AdamW

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's (Keller Jordan's) quintic
NS_STEPS = 5
NS_EPS = 1e-7
ADJUST_LR = ("match_rms_adamw", "original")


def newton_schulz(g: torch.Tensor, steps: int = NS_STEPS, eps: float = NS_EPS,
                  dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Approximate orthogonalisation ``U V^T`` of the last two dimensions of ``g``.

    The quintic's coefficients trade exactness for speed: the singular values come out in
    [0.68, 1.14] on Gaussian matrices rather than exactly 1 (torch.optim.Muon's documentation:
    "S' ~ Uniform(0.5, 1.5), which turns out not to hurt model performance"). ``dtype``:
    torch.optim.Muon computes in bf16 (tensor cores on a GPU); see :data:`ns_dtype`.
    """
    a, b, c = NS_COEFFICIENTS
    lead = g.shape[:-2]
    x = g.to(dtype).reshape(-1, *g.shape[-2:]) if lead else g.to(dtype)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).clamp(min=eps)
    # fused multiply-adds, as torch.optim.Muon does: the same bf16 roundings
    addmm = torch.baddbmm if lead else torch.addmm
    for _ in range(steps):
        gram = x @ x.mT
        poly = addmm(gram, gram, gram, beta=b, alpha=c)
        x = addmm(x, poly, x, beta=a)
    if tall:
        x = x.mT
    return x.reshape(g.shape) if lead else x


def ns_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA as torch.optim.Muon; float32 on a CPU, where it is faster (a tiny-preset
    step's eight matrices: 4.8 vs 6.6 ms on the 2-core CPU of docs/performance.md) and keeps a
    stacked ensemble's members within float32 rounding of separate runs (bf16 would amplify
    the batched kernels' 1e-6 differences to ~1e-3)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def adjusted_lr(lr: float, shape: torch.Size, how: str) -> float:
    """torch.optim.Muon's per-matrix learning rate: ``match_rms_adamw`` (Moonshot:
    ``0.2 sqrt(max(A, B))``, so AdamW's lr and weight decay carry over) or ``original``."""
    rows, cols = shape[-2], shape[-1]
    if how == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr * math.sqrt(max(1.0, rows / cols))


class Muon:
    """Nesterov momentum, Newton-Schulz orthogonalisation, decoupled weight decay."""

    def __init__(self, params: list[torch.Tensor], weight_decay: float, momentum: float = 0.95,
                 nesterov: bool = True, adjust_lr: str = "match_rms_adamw",
                 dtype: torch.dtype | None = None):
        self.params = list(params)
        self.dtype = dtype  # None: ns_dtype of each matrix's device
        self.weight_decay, self.momentum, self.nesterov = weight_decay, momentum, nesterov
        self.adjust = adjust_lr
        self.buf = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        for p, buf in zip(self.params, self.buf):
            if p.grad is None:
                continue
            buf.lerp_(p.grad, 1 - self.momentum)
            update = p.grad.lerp(buf, self.momentum) if self.nesterov else buf
            update = newton_schulz(update, dtype=self.dtype or ns_dtype(p.device))
            if self.weight_decay:
                p.mul_(1 - lr * self.weight_decay)
            p.add_(update.to(p.dtype), alpha=-adjusted_lr(lr, p.shape, self.adjust))


class MuonAdamW:
    """Muon over ``muon_params``, AdamW over ``adamw_groups``; the interface of :class:`AdamW`
    (``step(lr)``, ``zero_grad``, ``steps``, ``state_tensors``, ``load_state``)."""

    def __init__(self, muon_params: list[torch.Tensor], adamw_groups: list[dict],
                 betas: tuple[float, float], eps: float, weight_decay: float,
                 momentum: float = 0.95, adjust_lr: str = "match_rms_adamw"):
        self.muon = Muon(muon_params, weight_decay, momentum=momentum, adjust_lr=adjust_lr)
        self.adamw = AdamW(adamw_groups, betas=betas, eps=eps)
        self.params = self.muon.params + self.adamw.params

    @property
    def steps(self) -> int:
        return self.adamw.steps

    def step(self, lr: float) -> None:
        self.muon.step(lr)
        self.adamw.step(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"muon_buf.{i}": t for i, t in enumerate(self.muon.buf)}
        out.update(self.adamw.state_tensors())
        return out

    def load_state(self, tensors: dict[str, torch.Tensor], steps: int) -> None:
        n = len(self.muon.params)
        if sum(1 for k in tensors if k.startswith("muon_buf.")) != n:
            raise ValueError(f"optimizer state does not match the model's {n} Muon matrices")
        for i, p in enumerate(self.muon.params):
            self.muon.buf[i] = tensors[f"muon_buf.{i}"].to(p.device, p.dtype).clone()
        self.adamw.load_state({k: v for k, v in tensors.items() if not k.startswith("muon_buf.")}, steps)


def muon_split(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(hidden weight matrices for Muon, every other trainable parameter for AdamW)."""
    unembed = getattr(model, "lm_head", None)
    hidden = {id(m.weight) for m in model.modules()
              if isinstance(m, nn.Linear) and m is not unembed and m.weight.requires_grad}
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if id(p) in hidden], [p for p in params if id(p) not in hidden]
