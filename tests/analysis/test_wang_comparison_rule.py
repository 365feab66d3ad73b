"""Wang et al.'s counterfactual rule for the comparison task (their causal_tracing_comparison.py):
the candidate sets against a plain-Python oracle, and `groklab trace --cf-rule wang` on a small
real comparison run."""

from __future__ import annotations

import json

import pytest

from groklab.analysis.comparison import build_comparison_counterfactuals, comparison_queries
from groklab.analysis.io import load_at
from groklab.analysis.tracing import keep_answered, summarize_trace, trace_grid
from groklab.cli import main
from groklab.data.flags import HOP1_OOD
from groklab.train import config_from_dict, train_run

CMP_TASK = {"task": "comparison", "entities": 24, "relations": 3, "values": 6, "ood_ratio": 0.25,
            "phi": 3.0, "id_test_ratio": 0.2, "seed": 0}


@pytest.fixture(scope="module")
def cmp_run(tmp_path_factory):
    """A comparison decoder trained for 300 steps (~5 CPU-s): it answers part of the queries."""
    run = tmp_path_factory.mktemp("wangcmp") / "run"
    train_run(config_from_dict({
        "data": CMP_TASK,
        "model": {"family": "decoder", "n_layers": 2, "d_model": 64, "n_heads": 4, "max_len": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 10},
        "train": {"steps": 300, "batch_size": 64, "eval_every": 300, "checkpoint_every": 300,
                  "plots": False, "device": "cpu", "threads": 1}}), run, quiet=True)
    return run


def _oracle(dataset):
    """(e, a) -> (value token, OOD?), the value tokens in order and the label of two values."""
    facts = {(int(e), int(a)): (int(v), bool(f & HOP1_OOD)) for e, a, v, f in dataset.atomic}
    values = sorted({v for v, _ in facts.values()})
    lt = dataset.vocab.index("<lt>")

    def label(v1, v2):
        return lt + (0 if v1 < v2 else 1 if v1 == v2 else 2)
    return facts, values, label


def _wang_set(facts, values, a, e1, e2, corrupt, attributes):
    """Wang's candidates for one query, in plain Python."""
    v1, v2 = facts[(e1, a)][0], facts[(e2, a)][0]
    if corrupt == "attr":
        return {x for x in attributes if x != a}
    own, other, old = (v1, v2, e1) if corrupt == "e1" else (v2, v1, e2)
    rank = values.index
    allowed = {other} if own != other else {values[i] for i in (rank(other) - 1, rank(other) + 1)
                                            if 0 <= i < len(values)}
    return {e for (e, x), (v, ood) in facts.items() if x == a and not ood and e != old
            and v in allowed}


@pytest.mark.parametrize("split", ["test_inferred_iid", "test_inferred_ood"])
@pytest.mark.parametrize("corrupt", ["e1", "e2", "attr"])
def test_wang_comparison_rule_follows_his_candidate_sets(cmp_run, split, corrupt):
    _, dataset, _ = load_at(cmp_run)
    facts, values, label = _oracle(dataset)
    attributes = sorted({a for (_, a) in facts})
    queries = comparison_queries(dataset, split, "causal")
    cf = build_comparison_counterfactuals(dataset, queries, corrupt, seed=2, rule="wang")
    assert cf.stats["rule"] == "wang" and cf.stats["match_kind"] is False
    sets = [_wang_set(facts, values, *map(int, q), corrupt, attributes) for q in queries.tokens]
    assert cf.stats["with_counterfactual"] == sum(1 for s in sets if s) > 0
    kept = {int(i): s for i, s in zip(queries.index, sets)}
    col = ["attr", "e1", "e2"].index(corrupt)
    unchanged, picked = 0, set()
    for row, clean, alt, t, t2 in zip(cf.clean.index, cf.clean.tokens.tolist(),
                                      cf.corrupted.tokens.tolist(), cf.clean.target.tolist(),
                                      cf.corrupted.target.tolist()):
        assert [i for i in range(3) if clean[i] != alt[i]] == [col]
        assert alt[col] in kept[int(row)]
        picked.add(alt[col])
        a, e1, e2 = alt
        assert t2 == label(facts[(e1, a)][0], facts[(e2, a)][0])  # the label through the facts
        if corrupt == "attr":
            unchanged += t2 == t
        else:
            assert t2 != t  # the nearest flipping value: e1/e2 always change the label
            if label(*(facts[(e, clean[0])][0] for e in clean[1:])) != dataset.vocab.index("<eq>"):
                assert t2 == dataset.vocab.index("<eq>")
            assert not facts[(alt[col], a)][1]  # Wang draws from ID facts only
    assert cf.stats["label_unchanged"] == unchanged
    assert len(picked) > 1  # a random draw, not one fixed candidate


def test_wang_rule_differs_from_groklab_on_ood_queries(cmp_run):
    """OOD queries: groklab matches the OOD entity with an OOD one, Wang's rule picks ID facts."""
    _, dataset, _ = load_at(cmp_run)
    facts, _, _ = _oracle(dataset)
    queries = comparison_queries(dataset, "test_inferred_ood", "causal")
    ours = build_comparison_counterfactuals(dataset, queries, "e1", seed=0)
    wang = build_comparison_counterfactuals(dataset, queries, "e1", seed=0, rule="wang")
    ood = lambda cf: [facts[(e1, a)][1] for a, e1, _ in cf.corrupted.tokens.tolist()]  # noqa: E731
    assert len(ours.clean) > 0 and all(ood(ours)) and not any(ood(wang))


def test_trace_cf_rule_wang_on_a_comparison_run(cmp_run, tmp_path, capsys):
    model, dataset, _ = load_at(cmp_run)
    out = tmp_path / "t.json"
    assert main(["trace", str(cmp_run), "--corrupt", "attr", "--cf-rule", "wang", "--n", "200",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "under the wang rule" in text
    got = json.loads(out.read_text())
    queries = comparison_queries(dataset, "test_inferred_iid", model.layout, n=200, seed=0)
    cf = keep_answered([model], build_comparison_counterfactuals(dataset, queries, "attr", seed=0,
                                                                 rule="wang"),
                       "test_inferred_iid", True)
    want = summarize_trace(trace_grid(model, cf))
    assert got["counterfactuals"]["rule"] == "wang" and got["n"] == want["n"] == len(cf.clean) > 0
    assert got["counterfactuals"]["label_unchanged"] == cf.stats["label_unchanged"]
    for key in ("restored", "changed", "prob_clean", "flipped"):
        assert got[key] == want[key], key
