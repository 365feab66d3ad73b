"""A small AdamW over ``torch._foreach`` ops (the update of ``torch.optim.AdamW``, checked
against it in the tests). Owning it keeps its state a flat set of tensors for safetensors
checkpoints and spares each process torch.optim's import of ``torch._dynamo``; Muon
(``train/muon.py``) reuses it for the parameters it does not orthogonalise.
"""

from __future__ import annotations

import math

import torch


class AdamW:
    """Decoupled weight decay Adam (Loshchilov & Hutter), bias-corrected, per group decay.

    ``step(lr)`` updates every parameter that has a gradient; ``zero_grad()`` drops gradients.
    State: ``exp_avg`` and ``exp_avg_sq`` per parameter (in group order) and the step count.
    """

    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.groups = [{"params": list(g["params"]), "weight_decay": g["weight_decay"]} for g in groups]
        self.params = [p for g in self.groups for p in g["params"]]
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1 - b1 ** self.steps)
        bias2_sqrt = math.sqrt(1 - b2 ** self.steps)
        start = 0
        for group in self.groups:
            n = len(group["params"])
            idx = [i for i in range(start, start + n) if self.params[i].grad is not None]
            start += n
            if not idx:
                continue
            params = [self.params[i] for i in idx]
            grads = [p.grad for p in params]
            m = [self.exp_avg[i] for i in idx]
            v = [self.exp_avg_sq[i] for i in idx]
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, 1 - b2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, bias2_sqrt)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, m, denom, -step_size)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"exp_avg.{i}": t for i, t in enumerate(self.exp_avg)}
        out.update({f"exp_avg_sq.{i}": t for i, t in enumerate(self.exp_avg_sq)})
        return out

    def load_state(self, tensors: dict[str, torch.Tensor], steps: int) -> None:
        n = len(self.params)
        if sum(1 for k in tensors if k.startswith("exp_avg.")) != n:
            raise ValueError(f"optimizer state does not match the model's {n} parameters")
        for i, p in enumerate(self.params):
            self.exp_avg[i] = tensors[f"exp_avg.{i}"].to(p.device, p.dtype).clone()
            self.exp_avg_sq[i] = tensors[f"exp_avg_sq.{i}"].to(p.device, p.dtype).clone()
        self.steps = int(steps)
