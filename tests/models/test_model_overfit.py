"""Sanity: each family memorises 32 random (h, r) -> t facts on CPU within a few hundred steps."""

import pytest
import torch

from groklab.models import ModelConfig, answer_logits, build_model, make_inputs

E, R = 16, 4


def random_facts(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randperm(E * R, generator=g)[:n]                 # distinct (h, r) pairs
    h, r = 3 + pairs // R, 3 + E + pairs % R
    t = 3 + torch.randint(0, E, (n,), generator=g)
    return torch.stack([h, r, torch.zeros_like(h)], 1), torch.full((n,), 2), t


def accuracy(model, ids, pos, t) -> float:
    model.eval()
    with torch.no_grad():
        acc = (answer_logits(model(ids), pos).argmax(-1) == t).float().mean().item()
    model.train()
    return acc


@pytest.mark.parametrize("kwargs", [
    dict(family="decoder"),
    dict(family="looped", n_loops=2),
    dict(family="recursive", mixer="mlp_t", loss="stablemax"),
    dict(family="recursive", mixer="attn"),
], ids=["decoder", "looped", "recursive_mlp_t_stablemax", "recursive_attn"])
def test_memorises_random_facts(kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        cfg = ModelConfig(n_layers=1, d_model=32, n_heads=2, max_len=4, h_cycles=2, l_cycles=2,
                          **kwargs)
        model = build_model(cfg, 3 + E + R)
        tokens, length, t = random_facts()
        ids, pos = make_inputs(tokens, length, model.layout)
        before = accuracy(model, ids, pos, t)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        for _ in range(150):
            loss = model.loss(answer_logits(model(ids), pos), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert before < 0.3
        assert accuracy(model, ids, pos, t) == 1.0
    finally:
        torch.set_num_threads(threads)
