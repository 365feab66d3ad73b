"""Inference-path comparison: identical models agree, CIs are seeded, shapes are handled."""

from __future__ import annotations

import numpy as np
import pytest

from analysiskit import TASK, small_model
from groklab.analysis.compare import (bootstrap_weights, check_same_graph, compare_models,
                                      grid_correlation, to_depth)
from groklab.analysis.io import load_at
from groklab.analysis.queries import two_hop_queries
from groklab.data import DataConfig, make_dataset
from groklab.errors import GroklabError


def test_model_compared_with_itself_is_identical(trained):
    model, dataset = trained
    r = compare_models(model, model, dataset, n=120, n_boot=200)
    assert r["trace"]["n"] >= 60 and not r["depth_aligned"]
    for block in (r["trace"]["restored_corr"], r["trace"]["prob_corr"], r["lens"]["bridge_mrr_corr"]):
        assert block["value"] == pytest.approx(1.0)
        assert block["ci"][0] == pytest.approx(1.0) and block["ci"][1] == pytest.approx(1.0)
    ff = r["lens"]["first_found"]
    assert ff["same_stage_rate"] == 1.0 and ff["mean_abs_depth_diff"]["value"] == 0.0


def test_earlier_checkpoint_has_a_similar_but_not_identical_path(trained_run, trained):
    model, dataset = trained
    early, _, _ = load_at(trained_run, 500)
    r = compare_models(early, model, dataset, n=300, n_boot=300, seed=1)
    corr = r["trace"]["restored_corr"]
    print({k: v for k, v in r["similarity"].items()}, corr["ci"])
    assert corr["ci"][0] <= corr["value"] <= corr["ci"][1]
    assert corr["value"] >= 0.8                        # same circuit, formed early
    again = compare_models(early, model, dataset, n=300, n_boot=300, seed=1)
    assert again["trace"]["restored_corr"] == corr     # seeded bootstrap: reproducible


def test_different_depths_align_and_layouts_are_refused(task_data):
    decoder = small_model("decoder", task_data.vocab_size)
    looped = small_model("looped", task_data.vocab_size, seed=2)
    r = compare_models(decoder, looped, task_data, n=40, n_boot=50, require_correct=False)
    assert r["depth_aligned"]
    assert len(r["trace"]["a"]["stages"]) == 3 and len(r["trace"]["b"]["stages"]) == 5
    recursive = small_model("recursive", task_data.vocab_size)
    with pytest.raises(GroklabError, match="input layouts differ"):
        compare_models(decoder, recursive, task_data, n=40, require_correct=False)


def test_other_graph_is_refused(task_data, tmp_path):
    other = make_dataset(DataConfig(**{**TASK, "seed": 1}), tmp_path / "other")
    queries = two_hop_queries(task_data, "test_inferred_iid", False, n=50)
    check_same_graph(task_data, task_data, queries)
    with pytest.raises(GroklabError, match="same knowledge graph"):
        check_same_graph(task_data, other, queries)


def test_to_depth_interpolates_linearly():
    grid = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 3.0]])   # 3 stages x 2 positions
    out = to_depth(grid, 5)
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(out[:, 1], [1.0, 1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(to_depth(grid, 3), grid)
    np.testing.assert_allclose(to_depth(grid[:1], 4), np.repeat(grid[:1], 4, axis=0))


def test_bootstrap_correlation_is_seeded_and_widens_with_noise():
    rng = np.random.default_rng(0)
    a = (rng.random((200, 4, 3)) < np.linspace(0.1, 0.9, 12).reshape(4, 3)).astype(float)
    close = np.where(rng.random(a.shape) < 0.05, 1 - a, a)
    noisy = np.where(rng.random(a.shape) < 0.4, 1 - a, a)
    c1 = grid_correlation(a, close, n_boot=500, seed=3)
    c2 = grid_correlation(a, noisy, n_boot=500, seed=3)
    assert c1 == grid_correlation(a, close, n_boot=500, seed=3)
    assert c1["ci"][0] <= c1["value"] <= c1["ci"][1]
    assert c1["value"] > c2["value"]
    assert c1["ci"][1] - c1["ci"][0] < c2["ci"][1] - c2["ci"][0]
    w = bootstrap_weights(10, 7, seed=0)
    np.testing.assert_allclose(w.sum(1), 1.0)


def test_cf_rule_wang_traces_wangs_counterfactuals(trained, trained_run, tmp_path):
    """`compare --cf-rule wang` uses the same counterfactuals as `trace --cf-rule wang`."""
    from groklab.analysis.tracing import prepare_counterfactuals
    from groklab.cli import main

    model, ds = trained
    corrupted = {}
    for rule in ("groklab", "wang"):
        res = compare_models(model, model, ds, split="test_inferred_iid", corrupt="r1", n=200,
                             n_boot=20, rule=rule)
        cf = prepare_counterfactuals([model], ds, "test_inferred_iid", "r1", 200, 0, rule=rule)
        assert res["cf_rule"] == rule and res["trace"]["n"] == len(cf.clean)
        corrupted[rule] = dict(zip(cf.clean.index.tolist(), cf.corrupted.tokens.tolist()))
    # the rule is honoured: on the queries both keep, the two rules draw different counterfactuals
    both = corrupted["groklab"].keys() & corrupted["wang"].keys()
    assert len(both) > 10
    assert any(corrupted["groklab"][i] != corrupted["wang"][i] for i in both)
    out = tmp_path / "cmp.json"
    assert main(["compare", str(trained_run), str(trained_run), "--cf-rule", "wang", "--n", "50",
                 "--boot", "20", "--out", str(out)]) == 0
    import json
    assert json.loads(out.read_text())["cf_rule"] == "wang"
