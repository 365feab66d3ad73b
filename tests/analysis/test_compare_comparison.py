"""`groklab compare` on comparison-task runs: the same queries and label-flipping
counterfactuals for both runs, the tracing grids `trace` produces, similarity 1 of a run with
itself, and one-line refusals of mismatched tasks, corruptions and value tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysiskit import TASK
from groklab.analysis.compare import check_same_values, compare_models
from groklab.analysis.comparison import comparison_queries
from groklab.analysis.io import load_at
from groklab.cli import main
from groklab.data import DataConfig, make_dataset
from groklab.errors import GroklabError
from groklab.train import config_from_dict, train_run

CMP_TASK = {"task": "comparison", "entities": 24, "relations": 3, "values": 6, "ood_ratio": 0.25,
            "phi": 3.0, "id_test_ratio": 0.2, "seed": 0}
MODEL = {"family": "decoder", "n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4}


def _train(run, data, steps):
    train_run(config_from_dict({
        "data": data, "model": MODEL, "optim": {"lr": 1e-2, "warmup_steps": 5},
        "train": {"steps": steps, "batch_size": 64, "eval_every": steps // 2,
                  "checkpoint_every": steps // 2, "plots": False, "device": "cpu"}}), run, quiet=True)
    return run


@pytest.fixture(scope="module")
def cmp_run(tmp_path_factory):
    """A comparison run that answers part of its ID queries right (both checkpoints do), so
    the default filter (answered right clean and corrupted) leaves queries to trace."""
    return _train(tmp_path_factory.mktemp("cmpcompare") / "run", CMP_TASK, 200)


@pytest.fixture(scope="module")
def composition_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("compcompare") / "run", TASK, 10)


def _similarities(result: dict) -> dict:
    return {k: v for k, v in result["similarity"].items() if not k.endswith("depth_diff")}


@pytest.mark.parametrize("corrupt", ["e1", "attr"])
def test_comparison_run_compared_with_itself_uses_the_trace_grids(cmp_run, tmp_path, capsys,
                                                                  corrupt):
    out = tmp_path / "cmp.json"
    assert main(["compare", str(cmp_run), str(cmp_run), "--corrupt", corrupt, "--n", "80",
                 "--boot", "50", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["task"] == "comparison" and r["trace"]["corrupt"] == corrupt
    assert not r["depth_aligned"] and r["trace"]["n"] > 0 and r["lens"]["n"] == 80
    sims = _similarities(r)
    assert sims["trace_restored_corr"] is not None          # defined: this grid is not constant
    for key, value in sims.items():
        assert value is None or value == pytest.approx(1.0), key
    ff = r["lens"]["first_found"]
    for key in ("v1", "v2"):
        assert ff[key]["same_stage_rate"] in (None, 1.0)
        assert ff[key]["mean_abs_depth_diff"]["value"] in (None, 0.0)
    # the grids compared are `groklab trace`'s on the same queries and counterfactuals
    tr_path = tmp_path / "tr.json"
    assert main(["trace", str(cmp_run), "--corrupt", corrupt, "--n", "80", "--out",
                 str(tr_path)]) == 0
    tr = json.loads(tr_path.read_text())
    for side in ("a", "b"):
        got = r["trace"][side]
        assert got["n"] == tr["n"] == r["trace"]["n"]
        assert got["positions"] == tr["positions"] == ["attr", "e1", "e2"]
        for key in ("restored", "changed", "prob_clean", "flipped"):
            assert got[key] == tr[key], (side, key)
    assert r["lens"]["a"]["correct"]["v1"]["grid"] == r["lens"]["b"]["correct"]["v1"]["grid"]
    assert "(comparison), corrupt " + corrupt in text and "lens v1 value MRR corr" in text
    assert (tmp_path / "cmp.png").is_file()


def test_two_checkpoints_of_a_comparison_run_differ(cmp_run):
    early, dataset, _ = load_at(cmp_run, 100)
    late, _, _ = load_at(cmp_run, 200)
    r = compare_models(early, late, dataset, corrupt="e1", n=80, n_boot=50)
    assert r["task"] == "comparison" and r["trace"]["n"] > 0
    sims = [v for v in _similarities(r).values() if v is not None]
    assert sims and min(sims) < 0.999          # another model: not identical everywhere
    # the same queries for both: the lens of A equals a lens of the early model alone
    alone = compare_models(early, early, dataset, corrupt="e1", n=80, n_boot=50)
    assert alone["lens"]["a"] == r["lens"]["a"]


@pytest.mark.parametrize("argv, needles", [
    (["compare", "{cmp}", "{comp}"], ["tasks differ", "A: comparison", "B: composition"]),
    (["compare", "{comp}", "{cmp}"], ["tasks differ", "A: composition", "B: comparison"]),
    (["compare", "{cmp}", "{cmp}", "--corrupt", "r1"], ["corrupt='r1'", "attr, e1, e2"]),
    (["compare", "{comp}", "{comp}", "--corrupt", "e1"], ["corrupt='e1'", "h, r1, r2"]),
])
def test_mismatched_compare_is_one_line_exit_2(cmp_run, composition_run, capsys, argv, needles):
    args = [a.replace("{cmp}", str(cmp_run)).replace("{comp}", str(composition_run)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("groklab: error:"), err
    for needle in needles:
        assert needle in err, err


def test_other_value_table_is_refused(cmp_run, tmp_path):
    _, dataset, _ = load_at(cmp_run)
    other = make_dataset(DataConfig(**{**CMP_TASK, "seed": 1}), tmp_path / "other")
    queries = comparison_queries(dataset, "test_inferred_iid", "causal", n=50)
    check_same_values(dataset, dataset, queries)
    with pytest.raises(GroklabError, match="same attribute values"):
        check_same_values(dataset, other, queries)
    assert not np.array_equal(other.atomic, dataset.atomic)
