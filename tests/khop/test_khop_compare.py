"""`groklab compare` on k-hop splits (analysis/compare.py, compare_khop_models): two small real
looped runs (200 steps, ~3 CPU-s each) on 2- and 3-hop queries, compared on a 3-hop split."""

import json

import numpy as np
import pytest
import torch

from groklab.analysis.compare import compare_models
from groklab.analysis.io import load_at
from groklab.analysis.khop import bridge_order, khop_counterfactuals, khop_queries
from groklab.analysis.tracing import correct_mask, subset_counterfactuals, summarize_trace, trace_grid
from groklab.cli import main
from groklab.data import DataConfig, make_dataset
from groklab.models import ModelConfig, build_model

DATA = dict(entities=24, relations=6, out_degree=6, phi=2.0, seed=3, id_test_ratio=0.05,
            hops=[2, 3], test_hops=[4], probe_cap=200)
H3 = "train_inferred_h3"   # the 200-step runs answer ~60% of these (test splits: ~15%)


def _train(path, seed, data=DATA, steps=200):
    from groklab.train import config_from_dict, train_run

    train_run(config_from_dict({
        "data": dict(data),
        "model": {"family": "looped", "n_layers": 1, "n_loops": 2, "d_model": 64, "n_heads": 2,
                  "max_len": 4},
        "optim": {"lr": 1e-2, "warmup_steps": 10, "weight_decay": 0.1},
        "train": {"steps": steps, "batch_size": 128, "eval_every": steps,
                  "checkpoint_every": steps, "seed": seed, "device": "cpu", "plots": False,
                  "threads": 1}}), path, quiet=True)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("khopcmp")
    return _train(root / "s0", 0), _train(root / "s1", 1)


def _both_correct_cf(model_a, model_b, dataset, split, corrupt, n=300, seed=0):
    """The counterfactuals compare must trace, built here from the k-hop tools alone."""
    queries, _ = khop_queries(dataset, split, model_a.layout, n=n, seed=seed)
    cf = khop_counterfactuals(dataset, queries, corrupt, seed)
    keep = correct_mask(model_a, cf) & correct_mask(model_b, cf)
    return subset_counterfactuals(cf, keep)


def test_compare_on_a_khop_split_traces_the_query_tokens_of_both_runs(runs, tmp_path, capsys):
    a, b = runs
    out = tmp_path / "c.json"
    assert main(["compare", str(a), str(b), "--split", H3, "--corrupt", "r3", "--boot", "200",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(3 hops), corrupt r3" in text and "lens b2 MRR corr" in text
    got = json.loads(out.read_text())
    assert got["hops"] == 3 and got["positions"] == ["h", "r1", "r2", "r3"]  # pad1 dropped
    model_a, dataset, _ = load_at(a)
    model_b, _, _ = load_at(b)
    cf = _both_correct_cf(model_a, model_b, dataset, H3, "r3")
    assert got["trace"]["n"] == len(cf.clean) >= 3   # exactly the queries both answer right
    assert len(cf.clean) < cf.stats["with_counterfactual"]   # the filter removed some
    grids = {}
    for side, model in (("a", model_a), ("b", model_b)):
        want = summarize_trace(trace_grid(model, cf))
        assert want["positions"] == ["h", "r1", "r2", "r3", "pad1"]
        for key in ("restored", "prob_clean", "changed"):  # `trace`'s grid, pad column dropped
            np.testing.assert_allclose(got["trace"][side][key],
                                       [row[:4] for row in want[key]], atol=1e-6)
        grids[side] = np.array(got["trace"][side]["restored"]).ravel()
    r = np.corrcoef(grids["a"], grids["b"])[0, 1]
    assert got["similarity"]["trace_restored_corr"] == pytest.approx(r, abs=1e-6)
    lo, hi = got["trace"]["restored_corr"]["ci"]
    assert lo <= r + 1e-9 and hi <= 1 + 1e-9
    # the lens of each run: the bridge-order map of `lens --bridge-order` on the query tokens
    queries, bridges = khop_queries(dataset, H3, model_a.layout, n=300, seed=0)
    want = bridge_order(model_a, queries, bridges, positions=["h", "r1", "r2", "r3"])
    la = got["lens"]["a"]
    assert la["accuracy"] == pytest.approx(want["accuracy"]) and 0.3 < la["accuracy"] < 1
    assert la["found"] == want["found"] and la["first_stage"] == want["first_stage"]
    assert la["in_order"] == want["in_order"]
    assert got["lens"]["first_found"]["b1"]["positions"] == ["r1", "r2", "r3"]
    assert got["lens"]["first_found"]["b2"]["positions"] == ["r2", "r3"]
    for name in ("b1", "b2"):
        c = got["similarity"][f"lens_{name}_mrr_corr"]
        assert c is not None and -1 <= c <= 1


def test_compare_a_run_with_itself_on_a_khop_split_agrees_exactly(runs, tmp_path):
    a, _ = runs
    model, dataset, _ = load_at(a)
    res = compare_models(model, model, dataset, H3, "r2", n=150, seed=1, n_boot=50,
                         dataset_b=dataset)
    sim = res["similarity"]
    assert sim["trace_restored_corr"] == pytest.approx(1.0)
    assert sim["lens_b1_mrr_corr"] == pytest.approx(1.0)
    assert sim["lens_b2_mrr_corr"] == pytest.approx(1.0)
    for name in ("b1", "b2"):
        ff = res["lens"]["first_found"][name]
        assert ff["found_both"] > 0 and ff["same_stage_rate"] == 1.0
        assert ff["mean_abs_depth_diff"]["value"] == 0.0


def test_compare_two_hop_split_of_a_khop_dataset_no_longer_crashes(runs, tmp_path):
    """A k-hop dataset pads two-hop queries (width 5): compare used to unpack 3 tokens."""
    a, b = runs
    out = tmp_path / "c2.json"
    assert main(["compare", str(a), str(b), "--split", "train_inferred_h2", "--boot", "50",
                 "--corrupt", "r2", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["hops"] == 2 and got["trace"]["a"]["positions"] == ["h", "r1", "r2"]
    assert got["lens"]["a"]["positions"] == ["h", "r1", "r2"] and got["trace"]["n"] > 0


def test_compare_khop_non_causal_models_keep_every_position(tmp_path):
    ds = make_dataset(DataConfig(**{**DATA, "hops": (2, 3), "test_hops": (4,)}), tmp_path / "d")
    torch.manual_seed(0)
    cfg = dict(family="recursive", n_layers=2, d_model=32, n_heads=4, max_len=7, h_cycles=2,
               l_cycles=1, format="study")
    a = build_model(ModelConfig(**cfg), ds.vocab_size).eval()
    b = build_model(ModelConfig(**cfg), ds.vocab_size).eval()
    res = compare_models(a, b, ds, "test_inferred_iid_h3", "h", n=40, n_boot=20,
                         require_correct=False)
    assert res["positions"] == ["h", "r1", "r2", "r3", "ans", "end", "pad1"]
    assert res["trace"]["n"] == res["trace"]["a"]["counterfactuals"]["with_counterfactual"] > 0


@pytest.mark.parametrize("argv, needles", [
    (["--corrupt", "r4"], ["corrupt='r4' is invalid", "h, r1, r2, r3"]),
    (["--corrupt", "e1"], ["corrupt='e1' is invalid", "3-hop query"]),
])
def test_compare_bad_khop_corruption_is_one_line(runs, capsys, argv, needles):
    a, b = runs
    assert main(["compare", str(a), str(b), "--split", H3, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("groklab: error:"), err
    for needle in needles:
        assert needle in err, err


def test_compare_khop_runs_on_another_graph_is_refused(runs, tmp_path, capsys):
    a, _ = runs
    other = _train(tmp_path / "other", 0, {**DATA, "seed": 4}, steps=4)
    assert main(["compare", str(a), str(other), "--split", H3, "--include-wrong"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "compare:" in err and "same knowledge graph" in err, err


def test_trace_cf_rule_wang_on_a_khop_split_is_refused(runs, capsys):
    """Wang et al.'s code has no k-hop counterfactuals: refused, not silently ignored."""
    a, _ = runs
    assert main(["trace", str(a), "--split", H3, "--cf-rule", "wang", "--include-wrong"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cf_rule='wang' is invalid" in err, err
    assert "groklab on the 3-hop split" in err and "two-hop composition and comparison" in err


def test_compare_cf_rule_wang_on_a_khop_split_is_refused(runs, capsys):
    a, b = runs
    assert main(["compare", str(a), str(b), "--split", H3, "--cf-rule", "wang",
                 "--include-wrong"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cf_rule='wang' is invalid" in err, err
    assert "groklab on the 3-hop split" in err
