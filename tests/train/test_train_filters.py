"""Grokfast gradient filters (EMA, MA), the weight EMA and the LR schedule, on toy numbers."""

from collections import deque

import pytest
import torch

from groklab.train.ema import WeightEMA
from groklab.train.grokfast import EMAFilter, MAFilter
from groklab.train.optim import build_optimizer, lr_at, param_groups
from groklab.models import ModelConfig, build_model


def _grad_sequence(n, shape=(3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(n)]


def _filtered(filt, grads):
    """Feed each gradient through ``filt`` as a parameter's .grad; return what the optimizer sees."""
    p = torch.zeros_like(grads[0], requires_grad=True)
    out = []
    for g in grads:
        p.grad = g.clone()
        filt.apply([p])
        out.append(p.grad.clone())
    return out


def test_grokfast_ema_matches_the_formula():
    grads = _grad_sequence(12)
    alpha, lamb = 0.9, 2.0
    mu, expected = None, []
    for g in grads:  # Lee et al.: mu starts at the first gradient, then g + lamb * mu
        mu = g.clone() if mu is None else alpha * mu + (1 - alpha) * g
        expected.append(g + lamb * mu)
    got = _filtered(EMAFilter(alpha=alpha, lamb=lamb), grads)
    for e, o in zip(expected, got):
        torch.testing.assert_close(o, e)
    assert not torch.allclose(got[-1], grads[-1])  # the filter really changed the gradient


def test_grokfast_ma_matches_the_formula_over_several_windows():
    grads = _grad_sequence(23)
    window, lamb = 5, 3.0
    queue, expected = deque(maxlen=window), []
    for g in grads:  # unchanged until the window is full, then g + lamb * mean(last window)
        queue.append(g)
        expected.append(g + lamb * sum(queue) / window if len(queue) == window else g.clone())
    got = _filtered(MAFilter(window=window, lamb=lamb), grads)
    for t, (e, o) in enumerate(zip(expected, got)):
        torch.testing.assert_close(o, e, msg=f"step {t}")


@pytest.mark.parametrize("make", [lambda: EMAFilter(0.8, 2.0), lambda: MAFilter(4, 1.5)])
def test_grokfast_state_roundtrip_continues_identically(make):
    grads = _grad_sequence(15, seed=1)
    whole = _filtered(make(), grads)
    first = make()
    _filtered(first, grads[:7])
    second = make()
    second.load_state({k: v.clone() for k, v in first.state_tensors().items()})
    torch.testing.assert_close(_filtered(second, grads[7:]), whole[7:], rtol=0, atol=0)


def test_weight_ema_closed_form():
    lin = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(lin.weight, 1.0)
    ema = WeightEMA(lin, decay=0.9)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    for _ in range(10):
        ema.update(lin)
    # shadow_n = w + decay^n (w0 - w) for a constant live weight w
    expected = 3.0 + 0.9 ** 10 * (1.0 - 3.0)
    torch.testing.assert_close(ema.model.weight, torch.full((2, 2), expected))
    assert not ema.model.weight.requires_grad
    torch.testing.assert_close(lin.weight, torch.full((2, 2), 3.0))  # the live model is untouched


def test_lr_schedule_warmup_constant_cosine():
    assert lr_at(1, 1e-3, 10, "constant", 100) == pytest.approx(1e-4)
    assert lr_at(5, 1e-3, 10, "constant", 100) == pytest.approx(5e-4)
    assert lr_at(10, 1e-3, 10, "constant", 100) == pytest.approx(1e-3)
    assert lr_at(99, 1e-3, 10, "constant", 100) == pytest.approx(1e-3)
    assert lr_at(1, 1e-3, 0, "constant", 100) == pytest.approx(1e-3)
    # cosine from lr after warmup to lr * min_lr_ratio at the last step, halfway in the middle
    assert lr_at(10, 1e-3, 10, "cosine", 110, 0.1) == pytest.approx(1e-3)
    assert lr_at(60, 1e-3, 10, "cosine", 110, 0.1) == pytest.approx(0.55e-3)
    assert lr_at(110, 1e-3, 10, "cosine", 110, 0.1) == pytest.approx(1e-4)
    assert lr_at(500, 1e-3, 10, "cosine", 110, 0.1) == pytest.approx(1e-4)


def test_no_weight_decay_on_norms_and_biases():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, max_len=4), 20)
    decay, no_decay = param_groups(model, 0.5)
    named = dict(model.named_parameters())
    no_decay_names = {n for n, p in named.items() if any(p is q for q in no_decay["params"])}
    assert no_decay_names and all(n.endswith("bias") or "ln" in n for n in no_decay_names)
    assert any(p is named["wte.weight"] for p in decay["params"])
    # behaviour: one step with zero gradients shrinks only the decayed weights
    opt = build_optimizer(model, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.5)
    before = {n: p.detach().clone() for n, p in named.items()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step(0.1)
    for n, p in named.items():
        if n in no_decay_names:
            torch.testing.assert_close(p, before[n], rtol=0, atol=0)
        else:
            torch.testing.assert_close(p, before[n] * (1 - 0.1 * 0.5))


def test_adamw_matches_torch_adamw():
    torch.manual_seed(0)
    a = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, max_len=4), 20)
    b = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, max_len=4), 20)
    b.load_state_dict(a.state_dict())
    init = a.wte.weight.detach().clone()
    ours = build_optimizer(a, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
    ref = torch.optim.AdamW(param_groups(b, 0.1), lr=1e-3, betas=(0.9, 0.98), eps=1e-8)
    ids = torch.randint(0, 20, (8, 3))
    for step in range(1, 6):
        lr = 1e-3 * step  # a changing learning rate, as under warmup
        for model in (a, b):
            model(ids).square().mean().backward()
        for group in ref.param_groups:
            group["lr"] = lr
        ours.step(lr)
        ref.step()
        ours.zero_grad()
        ref.zero_grad()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
    assert (a.wte.weight - init).abs().max() > 1e-3  # the updates were real
