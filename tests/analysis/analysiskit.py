"""Shared set-up of the analysis tests: one small composition task and model recipes."""

from __future__ import annotations

import torch

from groklab.models import ModelConfig, build_model

# 50 entities, 10 relations, out_degree 8 (so new facts can be injected), a 10% ID test
# (~290 test_inferred_iid queries). A 2-layer d=128 decoder learns ID composition on it in
# 1,250 steps (test_inferred_iid ~0.8; about 30-50 s on a 2-core CPU).
TASK = {"entities": 50, "relations": 10, "out_degree": 8, "phi": 6.0, "id_test_ratio": 0.1,
        "seed": 0}
TRAINED_RUN = {
    "data": TASK,
    "model": {"family": "decoder", "n_layers": 2, "d_model": 128, "n_heads": 4, "max_len": 4},
    "optim": {"lr": 5e-3, "weight_decay": 1.0, "warmup_steps": 100},
    "train": {"steps": 1250, "batch_size": 256, "eval_every": 250, "checkpoint_every": 500,
              "plots": False, "device": "cpu", "seed": 0},
}


def small_model(family: str, vocab_size: int, seed: int = 0, **overrides):
    """A small untrained model of ``family`` (seeded)."""
    torch.manual_seed(seed)
    kw = {"decoder": dict(n_layers=2), "looped": dict(n_layers=2, n_loops=2),
          "recursive": dict(n_layers=2, h_cycles=2, l_cycles=2)}[family]
    kw.update(overrides)
    cfg = ModelConfig(family=family, d_model=32, n_heads=4, max_len=4, **kw)
    return build_model(cfg, vocab_size).eval()
