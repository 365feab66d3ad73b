"""Fit and leave-one-sweep-out evaluation on a synthetic corpus of hand-made sweep directories:
curves that rise by construction, so the numbers have a known answer."""

import json

import numpy as np
import pytest

from groklab.cli import main
from groklab.analysis.forecast_corpus import load_corpus
from groklab.analysis.forecast_evaluate import evaluate_target
from groklab.forecast.features import parse_target

from fckit import write_run

BUDGET = 200


def _curve(rate: float, noise: np.random.Generator) -> list[dict]:
    """Accuracy rising linearly at ``rate`` per step (0 = never), the loss falling with it."""
    rows = []
    for step in range(0, BUDGET + 1, 10):
        acc = float(np.clip(rate * step + noise.normal(0, 0.01), 0, 1))
        rows.append({"step": step, "loss": 1.0 / (1 + step), "lr": 1e-3, "weight_norm": 10 - step / 100,
                     "train_acc": min(1.0, step / 50), "acc/test_inferred_iid": acc,
                     "loss/test_inferred_iid": 3 * (1 - acc) + 0.1})
    return rows


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    dirs = []
    for k in range(3):
        d = root / f"sweep{k}"
        for i, rate in enumerate(np.linspace(0.0, 0.011, 12)):
            write_run(d / "trials" / f"t{i}", _curve(float(rate), rng), steps=BUDGET)
        dirs.append(d)
    return dirs


def test_leave_one_sweep_out_on_a_learnable_corpus(sweeps):
    runs = load_corpus(sweeps)
    assert len(runs) == 36
    res = evaluate_target(runs, parse_target("test_inferred_iid>=0.9"), fractions=(0.25, 0.5))
    # reach 0.9 within 200 steps <=> rate >= 0.0045: 7 of 12 rates per sweep
    assert res["n_runs"] == 36 and res["n_reach"] == 21
    r = res["fractions"]["0.25"]
    assert r["n_pending"] == 36 and r["n_reach"] == 21
    assert r["auroc"]["model"] > 0.9 and r["auroc"]["always"] == r["auroc"]["never"] == 0.5
    lo, hi = r["auroc"]["model_ci95"]
    assert lo <= r["auroc"]["model"] <= hi
    assert r["step_error"]["n"] == 21 and r["step_error"]["model"] < 0.25
    never, always = r["stop"]["never"], r["stop"]["always"]
    assert never["stopped"] == 36 and never["grok_killed"] == 21 and always["saved_steps"] == 0
    # stopping all 36 at step 50 saves 150 of every 200 steps
    assert never["saved_share"] == pytest.approx(150 / 200)


def test_fit_and_evaluate_commands_write_their_files(sweeps, tmp_path, capsys):
    model = tmp_path / "m.json"
    assert main(["forecast", "fit", *map(str, sweeps), "--out", str(model),
                 "--target", "test_inferred_iid>=0.9"]) == 0
    data = json.loads(model.read_text())
    assert data["format"] == "groklab-forecast" and data["meta"]["n_runs"] == 36
    out = tmp_path / "ev"
    assert main(["forecast", "--evaluate", *map(str, sweeps), "--out", str(out),
                 "--target", "test_inferred_iid>=0.9"]) == 0
    assert "| 25% | 36 (21) |" in capsys.readouterr().out
    for name in ("evaluation.json", "evaluation.md", "reliability_test_inferred_iid_ge_0.9.png",
                 "stopping_test_inferred_iid_ge_0.9.png"):
        assert (out / name).stat().st_size > 0
    # a forecast with the fitted model on one run of the corpus
    run = sweeps[0] / "trials" / "t11"
    assert main(["forecast", str(run), "--model", str(model), "--target", "test_inferred_iid>=0.9",
                 "--at", "50", "--json"]) == 0
    fc = json.loads(capsys.readouterr().out)
    assert fc["probability"] > 0.5 and fc["predicted_step"] is not None
