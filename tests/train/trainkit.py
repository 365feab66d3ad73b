"""Helpers for the training tests: a micro dataset recipe and small run configs."""

from __future__ import annotations

from groklab.train import config_from_dict

MICRO_DATA = dict(entities=24, relations=6, out_degree=6, phi=4.0, seed=3, id_test_ratio=0.05)


def micro_config(data_path=None, **sections):
    """A RunConfig for a 1-layer d=32 decoder; ``sections`` update data/model/optim/train."""
    raw = {
        "data": dict(MICRO_DATA),
        "model": {"family": "decoder", "n_layers": 1, "d_model": 32, "n_heads": 2, "max_len": 4},
        "optim": {"lr": 3e-3, "weight_decay": 0.1, "warmup_steps": 10},
        "train": {"steps": 60, "batch_size": 64, "eval_every": 20, "checkpoint_every": 20,
                  "device": "cpu", "plots": False},
        "data_path": str(data_path) if data_path else None,
    }
    for name, values in sections.items():
        raw[name].update(values)
    return config_from_dict(raw)
