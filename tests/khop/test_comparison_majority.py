"""`groklab evaluate` on the comparison task: every probe's accuracy beside its majority-class
rate (the rate of always answering the split's most common label)."""

import json
from collections import Counter

from groklab.cli import main
from groklab.train import config_from_dict, load_run, train_run


def test_evaluate_reports_the_majority_class_rate(tmp_path, capsys):
    cfg = config_from_dict({
        "data": {"task": "comparison", "entities": 20, "relations": 2, "values": 5, "phi": 3.0,
                 "seed": 1, "id_test_ratio": 0.1},
        "model": {"family": "decoder", "n_layers": 1, "d_model": 32, "n_heads": 2, "max_len": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 5},
        "train": {"steps": 20, "batch_size": 64, "eval_every": 20, "checkpoint_every": 20,
                  "device": "cpu", "plots": False},
    })
    run = tmp_path / "run"
    train_run(cfg, run, quiet=True)
    out = tmp_path / "ev.json"
    assert main(["evaluate", str(run), "--device", "cpu", "--out", str(out)]) == 0
    assert "majority" in capsys.readouterr().out
    t = json.loads(out.read_text())
    r = load_run(run)
    last = r.metrics[-1]
    for name, p in t["probes"].items():
        targets = r.dataset.split(name).target.tolist()
        if not targets:  # an empty probe (no OOD pair here) has no rate
            assert p["majority"] is None
            continue
        assert p["majority"] == max(Counter(targets).values()) / len(targets)
        assert p["accuracy"] == [last[f"acc/{name}"]]
    assert 0.33 <= t["probes"]["test_inferred_iid"]["majority"] < 1
