"""The study's lens rule and Wang et al.'s tracing metric, on hand-built grids."""

from __future__ import annotations

import numpy as np
import torch

from groklab.analysis.counterfactual import Counterfactuals
from groklab.analysis.lens import LensResult, study_rule_summary
from groklab.analysis.queries import Queries
from groklab.analysis.tracing import TraceResult, summarize_trace


def _queries(n: int, target, bridge, layout="study") -> Queries:
    tokens = np.tile(np.array([[10, 20, 21]]), (n, 1))
    ids = torch.zeros(n, 5, dtype=torch.long)
    return Queries("s", np.arange(n), tokens, np.zeros(n, dtype=np.int64), ids,
                   torch.full((n,), 3), torch.as_tensor(target), torch.as_tensor(bridge),
                   ["h", "r1", "r2", "ans", "end"], layout)


def test_study_rule_counts_any_stage_and_any_position():
    # 4 queries x 3 stages x 5 positions; rank 1 = the token is the top-1 decode there
    ranks = {k: np.full((4, 3, 5), 7, dtype=np.int32) for k in ("bridge", "answer", "r2", "control")}
    ranks["bridge"][0, 0, 4] = 1          # q0: b top-1 at the first stage, last position
    ranks["bridge"][1, 2, 0] = 1          # q1: b at the last stage, position h
    ranks["bridge"][2, 1, 2] = 2          # q2: only rank 2: not found
    ranks["answer"][:3, 2, 3] = 1         # t at the answer slot for q0-q2
    ranks["answer"][3, 0, 1] = 1          # q3: t somewhere else, early
    ranks["control"][2, 1, 1] = 1         # the control is found for q2 only
    q = _queries(4, [9] * 4, [8] * 4)
    res = LensResult(q, ["init", "z", "y"], q.positions, ranks,
                     prediction=np.array([9, 9, 9, 5]), causal=False)
    s = study_rule_summary(res)
    assert s["rule"] == "study" and s["n"] == 4 and s["n_correct"] == 3
    assert s["bridge_found"] == 0.5                    # q0, q1 of 4
    assert s["bridge_found_correct"] == 2 / 3          # q0, q1 of the correct q0-q2
    assert s["target_found"] == 1.0                    # q3's t is found although it is wrong
    assert s["chance"] == 0.25 and s["chance_correct"] == 1 / 3
    # per stage, over the correct queries: q0 at init, q1 at y
    assert s["bridge_found_by_stage"] == {"init": round(1 / 3, 6), "z": 0.0, "y": round(1 / 3, 6)}


def _trace(top1: np.ndarray, base_top1: np.ndarray, t_clean) -> TraceResult:
    n = len(t_clean)
    q = _queries(n, t_clean, [8] * n, layout="causal")
    cf = Counterfactuals("r1", q, q.with_tokens(q.tokens, [4] * n, [8] * n),
                         {"queries": n, "with_counterfactual": n, "rule": "groklab",
                          "undefined_answer": 0, "both_correct": n, "require_correct": False})
    z = np.zeros(top1.shape, np.float32)
    return TraceResult(cf, ["s0", "s1"], ["h", "r1", "r2"], True, top1, z, z,
                       np.zeros(n), np.zeros(n), base_top1)


def test_changed_equals_one_minus_restored_when_every_clean_answer_is_right():
    rng = np.random.default_rng(0)
    t = np.array([9, 9, 9])
    top1 = rng.choice([9, 4, 6], size=(3, 2, 3))
    res = _trace(top1, base_top1=t.copy(), t_clean=t)        # unpatched clean runs all right
    np.testing.assert_array_equal(res.changed, ~res.restored)
    s = summarize_trace(res)
    np.testing.assert_allclose(np.array(s["changed"]), 1 - np.array(s["restored"]))


def test_changed_differs_from_one_minus_restored_when_a_clean_answer_is_wrong():
    t = np.array([9, 9])
    base = np.array([9, 6])                 # query 1's unpatched clean run answers 6, not 9
    top1 = np.array([[[9, 4, 9], [9, 9, 9]],
                     [[6, 6, 9], [4, 6, 6]]])
    s = summarize_trace(_trace(top1, base, t))
    # by hand: restored = top1 == 9; changed = top1 != base
    restored = [[(1 + 0) / 2, (0 + 0) / 2, (1 + 1) / 2], [(1 + 0) / 2, (1 + 0) / 2, (1 + 0) / 2]]
    changed = [[(0 + 0) / 2, (1 + 0) / 2, (0 + 1) / 2], [(0 + 1) / 2, (0 + 0) / 2, (0 + 0) / 2]]
    assert s["restored"] == restored and s["changed"] == changed
    assert s["changed"] != (1 - np.array(restored)).tolist()
