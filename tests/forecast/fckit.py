"""Helpers for the forecast tests: hand-written metrics rows and run directories around them."""

from __future__ import annotations

import json
from pathlib import Path

from groklab.train import load_config

# Five evaluations of a 100-step budget, written by hand (docs/forecast.md lists the features;
# test_features.py computes the expected values from these numbers by hand).
ROWS = [
    {"step": 0, "loss": None, "lr": 0.0, "weight_norm": 10.0, "train_acc": 0.1,
     "acc/test_inferred_iid": 0.0, "loss/test_inferred_iid": 4.0, "acc/test_inferred_ood": 0.0},
    {"step": 10, "loss": 2.0, "lr": 1e-3, "weight_norm": 12.0, "train_acc": 0.5,
     "acc/test_inferred_iid": 0.1, "loss/test_inferred_iid": 3.0, "acc/test_inferred_ood": 0.0},
    {"step": 20, "loss": 1.0, "lr": 1e-3, "weight_norm": 11.0, "train_acc": 0.995,
     "acc/test_inferred_iid": 0.2, "loss/test_inferred_iid": 2.5, "acc/test_inferred_ood": 0.0,
     "lens/test_inferred_iid/bridge_found": 0.3, "lens/test_inferred_iid/bridge_found_control": 0.1},
    {"step": 30, "loss": 0.5, "lr": 1e-3, "weight_norm": 9.0, "train_acc": 1.0,
     "acc/test_inferred_iid": 0.5, "loss/test_inferred_iid": 2.0, "acc/test_inferred_ood": 0.0,
     "lens/test_inferred_iid/bridge_found": 0.4, "lens/test_inferred_iid/bridge_found_control": 0.1},
    {"step": 40, "loss": 0.25, "lr": 5e-4, "weight_norm": 8.0, "train_acc": 1.0,
     "acc/test_inferred_iid": 0.6, "loss/test_inferred_iid": 1.5, "acc/test_inferred_ood": 0.0,
     "lens/test_inferred_iid/bridge_found": 0.6, "lens/test_inferred_iid/bridge_found_control": 0.2},
]


def write_run(path: Path, rows, steps: int = 100) -> Path:
    """A run directory (config.yaml, metrics.jsonl, summary.json) around hand-written rows."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = load_config("tiny", [f"train.steps={steps}"])
    (path / "config.yaml").write_text(cfg.to_yaml())
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    last = rows[-1]["step"] if rows else 0
    (path / "summary.json").write_text(json.dumps({"steps": last, "finished": True, "stopped": "max_steps"}))
    return path
