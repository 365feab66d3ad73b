"""Wang et al.'s counterfactual rule, ``--queries FILE`` and ``lens --rule study --json``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from groklab.analysis.counterfactual import build_counterfactuals
from groklab.analysis.queries import read_query_rows, two_hop_queries
from groklab.cli import main
from groklab.data.flags import HOP1_NEW, HOP1_OOD
from groklab.errors import GroklabError


def _facts(dataset):
    return {(int(h), int(r)): (int(t), int(f)) for h, r, t, f in dataset.atomic}


@pytest.mark.parametrize("corrupt", ["h", "r1", "r2"])
def test_wang_rule_follows_his_candidate_sets(task_data, corrupt):
    queries = two_hop_queries(task_data, "test_inferred_iid", "causal")
    cf = build_counterfactuals(task_data, queries, corrupt, seed=1, rule="wang")
    facts = _facts(task_data)
    is_id = lambda key: key in facts and not facts[key][1] & (HOP1_OOD | HOP1_NEW)  # noqa: E731
    assert cf.stats["rule"] == "wang" and len(cf.clean) > 0
    heads_with_id_fact = {h for (h, r), (t, f) in facts.items() if is_id((h, r))}
    for (h, r1, r2), (h2, r12, r22), t, t2, b2 in zip(
            cf.clean.tokens, cf.corrupted.tokens, cf.clean.target.numpy(),
            cf.corrupted.target.numpy(), cf.corrupted.bridge.numpy()):
        if corrupt == "h":
            assert h2 != h and (r12, r22) == (r1, r2) and h2 in heads_with_id_fact
        elif corrupt == "r1":
            assert r12 != r1 and (h2, r22) == (h, r2) and is_id((h, r12))
        else:
            b = facts[(h, r1)][0]
            assert r22 != r2 and is_id((b, r22)) and facts[(b, r22)][0] != t
        # the counterfactual's answer never equals t; undefined chains are marked -1
        hop1 = facts.get((int(h2), int(r12)))
        chain = facts.get((hop1[0], int(r22))) if hop1 else None
        assert t2 == (chain[0] if chain else -1) and t2 != t
        assert b2 == (hop1[0] if hop1 else -1)


def test_wang_rule_admits_more_counterfactuals_than_groklabs(task_data):
    queries = two_hop_queries(task_data, "test_inferred_iid", "causal")
    ours = build_counterfactuals(task_data, queries, "h", seed=0)
    wang = build_counterfactuals(task_data, queries, "h", seed=0, rule="wang")
    assert wang.stats["with_counterfactual"] >= ours.stats["with_counterfactual"]
    assert ours.stats["undefined_answer"] == 0


def test_query_file_rows_and_items(task_data, tmp_path):
    data = task_data.split("test_inferred_iid")
    rows = np.nonzero(np.asarray(data.length) == 3)[0][:3]
    (tmp_path / "rows.json").write_text(json.dumps([int(r) for r in rows]))
    items = [" ".join(task_data.vocab[int(t)] for t in data.tokens[r]) for r in rows]
    (tmp_path / "items.txt").write_text("# three queries\n" + "\n".join(items) + "\n")
    for name in ("rows.json", "items.txt"):
        got = read_query_rows(tmp_path / name, task_data, "test_inferred_iid")
        assert got.tolist() == rows.tolist()
    q = two_hop_queries(task_data, "test_inferred_iid", "causal", rows=rows)
    assert q.index.tolist() == rows.tolist()
    (tmp_path / "bad.txt").write_text("<e_0> <e_0> <e_0>\n")
    with pytest.raises(GroklabError, match="queries item"):
        read_query_rows(tmp_path / "bad.txt", task_data, "test_inferred_iid")


def test_trace_cli_with_query_file_and_wang_rule(trained_run, tmp_path, capsys):
    from groklab.train import load_run

    data = load_run(trained_run).dataset.split("test_inferred_iid")
    rows = [int(r) for r in np.nonzero(np.asarray(data.length) == 3)[0][:20]]
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(rows))
    out = tmp_path / "t.json"
    assert main(["trace", str(trained_run), "--queries", str(qfile), "--cf-rule", "wang",
                 "--reverse", "--include-wrong", "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["counterfactuals"]["queries"] == 20 and s["counterfactuals"]["rule"] == "wang"
    assert s["reverse"] and "changed" in s and s["direction"].startswith("wang")
    assert "answers changed (Wang's measure)" in capsys.readouterr().out


def test_lens_cli_study_rule_json(trained_run, tmp_path, capsys):
    assert main(["lens", str(trained_run), "--rule", "study", "--json", "--n", "100",
                 "--out", str(tmp_path / "l.json")]) == 0
    obj = json.loads(capsys.readouterr().out)
    for key in ("n", "bridge_found", "bridge_found_correct", "target_found", "chance"):
        assert key in obj
    assert obj["rule"] == "study" and obj["n"] == 100
    assert obj["chance"] <= 0.2 and 0.0 <= obj["bridge_found_correct"] <= 1.0
