"""Stablemax cross-entropy against a hand computation; finite for huge logits."""

import math

import torch

from groklab.models import ModelConfig, build_model, log_stablemax, stablemax_cross_entropy


def _s(x: float) -> float:
    return x + 1 if x >= 0 else 1 / (1 - x)


def test_matches_reference_computation():
    logits = torch.tensor([[2.0, -1.0, 0.0, 0.5], [-3.0, -0.5, 4.0, 1.0]])
    target = torch.tensor([0, 3])
    expected = []
    for row, t in zip(logits.tolist(), target.tolist()):
        s = [_s(v) for v in row]
        expected.append(-math.log(s[t] / sum(s)))
    # row 0: s = [3, 0.5, 1, 1.5] -> -log(3/6) = log 2
    assert abs(expected[0] - math.log(2)) < 1e-12
    got = stablemax_cross_entropy(logits, target)
    assert got.dtype == torch.float32
    assert abs(got.item() - sum(expected) / 2) < 1e-6
    probs = log_stablemax(logits).exp()
    assert torch.allclose(probs.sum(-1), torch.ones(2, dtype=torch.float64))


def test_finite_for_large_logits_and_gradients():
    logits = torch.tensor([[1e30, -1e30, 0.0], [-1e6, 1e6, 3.0], [1e4, 1e4, -1e4]],
                          requires_grad=True)
    target = torch.tensor([1, 0, 2])
    loss = stablemax_cross_entropy(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 10
    assert torch.isfinite(logits.grad).all()
    # a confidently right prediction has a small loss
    good = stablemax_cross_entropy(torch.tensor([[1e6, 0.0, -5.0]]), torch.tensor([0]))
    assert 0 <= good.item() < 1e-5


def test_model_loss_dispatch():
    logits = torch.tensor([[2.0, -1.0, 0.0, 0.5]])
    target = torch.tensor([0])
    ce = build_model(ModelConfig(d_model=8, n_heads=2, n_layers=1), 4).loss(logits, target)
    sm = build_model(ModelConfig(d_model=8, n_heads=2, n_layers=1, loss="stablemax"), 4)
    assert abs(ce.item() - torch.nn.functional.cross_entropy(logits, target).item()) < 1e-6
    assert abs(sm.loss(logits, target).item() - math.log(2)) < 1e-6
