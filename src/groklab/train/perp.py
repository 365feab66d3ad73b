"""⊥Grad (Prieto et al. 2025, "Grokking at the Edge of Numerical Stability", arXiv 2501.04697).

After a model has fitted its training set, much of the gradient points along the weights
themselves: following it only scales the logits up (naive loss minimisation) until the
softmax saturates. ⊥Grad removes that component from each parameter tensor's gradient,
``g_perp = g - (<w, g> / <w, w>) w``, and rescales ``g_perp`` to the norm of ``g`` (as the
paper's ``OrthoGrad`` does), so the optimizer's step size is unchanged. ``optim.perp_grad``.
"""

from __future__ import annotations

import torch

EPS = 1e-30  # the reference implementation's guard for zero weights / zero projections


@torch.no_grad()
def perp_grad_(params: list[torch.Tensor], member_dims: int = 0) -> None:
    """Rewrite each ``p.grad`` in place as its component orthogonal to ``p`` (norm kept).

    ``member_dims`` leading dimensions index independent models (a stacked ensemble): the
    projection is then taken per member, over the remaining dimensions.
    """
    for p in params:
        g = p.grad
        if g is None:
            continue
        dims = tuple(range(member_dims, p.ndim))
        w, gf = p.detach().float(), g.float()
        coef = (w * gf).sum(dims, keepdim=True) / ((w * w).sum(dims, keepdim=True) + EPS)
        orth = gf - coef * w
        scale = _norm(gf, dims) / (_norm(orth, dims) + EPS)
        g.copy_(orth * scale)


def _norm(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return torch.linalg.vector_norm(t, dim=dims, keepdim=True) if dims else t.abs()
