"""Claim 1's three measures on a micro study whose both_full model reaches training saturation:
(a) bridge found on its correct OOD predictions, (b) path similarity to the natural model,
(c) the transfer difference of the two finetuned models, each with an interval and its n."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from groklab.study import engine, stages
from groklab.study.claims import FIT, judge_claim1
from groklab.study.layout import SATURATED
from groklab.study.pipeline import Study
from groklab.study.scales import CONTROL, get_scale
from groklab.train.metrics import read_metrics

pytestmark = pytest.mark.slow

# micro graph, a recursive model that fits its training set in ~300 steps (measured: train
# accuracy 1.0 at step 300 with d=64, batch 256, lr 1e-2)
RECURSIVE = dict(family="recursive", n_layers=2, d_model=64, n_heads=2, h_cycles=2, l_cycles=1,
                 mixer="mlp_t", format="study", max_len=5)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    micro = get_scale("micro")
    scale = dataclasses.replace(
        micro, models={"recursive": RECURSIVE},
        optim={"recursive": dict(lr=1e-2, weight_decay=0.1, warmup_steps=10, ema_decay=0.99)},
        train=dict(batch_size=256, checkpoint_every=[[None, 50]], plots=False),
        pretrain_steps={"recursive": 300}, eval_every={"recursive": 50})
    st = Study(tmp_path_factory.mktemp("c1") / "study", scale, ("recursive",), device="cpu",
               log=lambda *a: None)
    st.open()
    stages.stage_data(st)
    needed = {"natural", "both_full", CONTROL}
    st.train_all([s for s in st.pretrain_specs() if s.source in needed])
    st.train_all([s for s in st.finetune_specs() if s.source == "natural"])
    stages.stage_claim1(st)
    return st


def test_nongrokked_model_is_both_full_at_its_first_checkpoint_after_saturation(study):
    c1 = json.loads((study.analysis_dir / "claim1-recursive.json").read_text())
    rows = read_metrics(study.run_dir("pretrain", "recursive", "both_full") / "metrics.jsonl")
    fit = next(r["step"] for r in rows if r["train_acc"] >= FIT)
    assert c1["train_fit_step"] == fit and c1["saturation_step"] == fit  # checkpoints every 50
    # its finetune started from that checkpoint
    init = json.loads((study.run_dir("finetune", "recursive", SATURATED) / "init_from.json").read_text())
    assert init["step"] == c1["saturation_step"]


def test_measure_a_bridge_on_correct_ood_predictions(study):
    c1 = json.loads((study.analysis_dir / "claim1-recursive.json").read_text())
    a = c1["bridge_correct_ood"]
    # recomputed here: the study lens rule over every OOD query, restricted to correct ones
    again = engine.bridge_on_correct(study.run_dir("pretrain", "recursive", "both_full"),
                                     c1["saturation_step"], "test_inferred_ood", 100)
    assert a["n"] == again["n"] and a["value"] == again["value"]
    assert a["n"] == round(a["accuracy"] * a["queries"])
    lo, hi = a["ci"]
    if a["n"]:
        assert lo <= a["value"] <= hi and 0 <= lo and hi <= 1
    assert a["chance"]["n"] == a["n"]


def test_measure_b_paths_and_measure_c_transfer(study):
    c1 = json.loads((study.analysis_dir / "claim1-recursive.json").read_text())
    path = c1["path"]
    assert path["value"] is not None or path["error"]
    if path["value"] is not None:
        assert path["ci"][0] <= path["value"] <= path["ci"][1] and path["n"] > 0
    diffs = c1["transfer_diff"]
    assert set(diffs) == {"atomic_new", "new_old", "old_new", "new_new"}
    for cat, d in diffs.items():
        rows = read_metrics(study.run_dir("finetune", "recursive", "natural") / "metrics.jsonl")
        sat = read_metrics(study.run_dir("finetune", "recursive", SATURATED) / "metrics.jsonl")
        # the paired difference is the two final EMs, over the same n items
        assert np.isclose(d["a"], rows[-1][f"acc/{cat}"]) and np.isclose(d["b"], sat[-1][f"acc/{cat}"])
        assert np.isclose(d["value"], d["a"] - d["b"]) and d["ci"][0] <= d["value"] <= d["ci"][1]
    # the free cells of the tracing grid and the negative control: the natural run's first
    # checkpoint after its fit, compared only if it did not compose ID queries then
    if path["value"] is not None:
        assert 0 <= path["free_cells"] <= path["cells"]
    neg = c1["negative_control"]
    if neg.get("step") is not None:
        acc = engine.accuracy_at(study.run_dir("pretrain", "recursive", "natural"), neg["step"],
                                 ("test_inferred_iid",))["test_inferred_iid"]
        assert np.isclose(neg["iid_at_step"], acc)
        assert ("no memorising checkpoint" in neg.get("error", "")) == (acc >= 0.5)
    else:
        assert "never fit" in neg["error"]
    # the phi = max control is an extra row
    assert "similarity" in c1["phi_max_control"]
    verdict = judge_claim1([c1])
    assert verdict.verdict in ("supported", "not supported", "inconclusive at this scale")
    assert "recursive:" in verdict.reason
