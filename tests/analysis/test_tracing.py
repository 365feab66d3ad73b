"""Causal tracing: counterfactuals, patching sanity, batched = loop, Wang's circuit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysiskit import small_model
from groklab.analysis.counterfactual import Counterfactuals, build_counterfactuals
from groklab.analysis.queries import two_hop_queries
from groklab.analysis.tracing import (input_stage, patch_run, prepare_counterfactuals,
                                      summarize_trace, trace_grid, trace_grid_loop, trace_stages)
from groklab.data.flags import HOP1_OOD
from groklab.errors import GroklabError

FAMILIES = ["decoder", "looped", "recursive"]


def _facts(dataset):
    return {(int(h), int(r)): (int(t), int(f)) for h, r, t, f in dataset.atomic}


@pytest.mark.parametrize("corrupt", ["h", "r1", "r2"])
def test_counterfactual_changes_one_token_and_the_true_answer(task_data, corrupt):
    queries = two_hop_queries(task_data, "test_inferred_iid", "causal")
    cf = build_counterfactuals(task_data, queries, corrupt, seed=3)
    facts = _facts(task_data)
    col = ["h", "r1", "r2"].index(corrupt)
    assert len(cf.clean) >= 0.9 * len(queries)
    diff = cf.clean.tokens != cf.corrupted.tokens
    assert diff[:, col].all() and diff.sum() == len(cf.clean)  # exactly one token changed
    for (h, r1, r2), t2, b2, t in zip(cf.corrupted.tokens, cf.corrupted.target.tolist(),
                                      cf.corrupted.bridge.tolist(), cf.clean.target.tolist()):
        b, kind1 = facts[(int(h), int(r1))]   # recomputed through the graph
        answer, kind2 = facts[(b, int(r2))]
        assert (b, answer) == (b2, t2) and t2 != t
        assert not (kind1 | kind2) & HOP1_OOD  # ID query -> ID counterfactual
    np.testing.assert_array_equal(cf.corrupted.input_ids[:, col], cf.corrupted.tokens[:, col])
    again = build_counterfactuals(task_data, queries, corrupt, seed=3)
    np.testing.assert_array_equal(again.corrupted.tokens, cf.corrupted.tokens)  # seeded


def test_counterfactuals_change_the_trained_models_answer(trained):
    model, dataset = trained
    cf = prepare_counterfactuals([model], dataset, "test_inferred_iid", "r1", n=300)
    logits = model(cf.corrupted.input_ids)[torch.arange(len(cf.clean)), cf.corrupted.answer_pos]
    pred = logits.argmax(-1)
    assert len(cf.clean) >= 150
    assert (pred == cf.corrupted.target).all() and (pred != cf.clean.target).all()
    assert cf.stats["both_correct"] == len(cf.clean) <= cf.stats["with_counterfactual"]


@pytest.mark.parametrize("family", FAMILIES)
def test_patching_sanity_every_family(family, task_data):
    model = small_model(family, task_data.vocab_size)
    queries = two_hop_queries(task_data, "test_inferred_iid", model.answer_slot, n=24)
    cf = build_counterfactuals(task_data, queries, "r1")
    n, t_len = cf.clean.input_ids.shape
    stages = trace_stages(model)
    # grid shapes: input + every residual stage; positions include the recursive mask slot
    expected_rows = {"decoder": 3, "looped": 5, "recursive": 7}[family]
    assert len(stages) == expected_rows and t_len == (4 if family == "recursive" else 3)
    # clean into itself: nothing changes, at any cell
    same = trace_grid(model, Counterfactuals("r1", cf.clean, cf.clean, {}))
    np.testing.assert_allclose(same.prob_clean, np.broadcast_to(
        same.base_prob_clean[:, None, None], same.prob_clean.shape), rtol=1e-5, atol=1e-6)
    # every position at the input stage: exactly the clean run
    stage = input_stage(model)
    _, cache = model.run_with_cache(cf.clean.input_ids, names=[stage])
    everything = torch.ones(n, t_len, dtype=torch.bool)
    patched = patch_run(model, cf.corrupted.input_ids, stage, cache[stage], everything)
    torch.testing.assert_close(patched, model(cf.clean.input_ids), rtol=1e-5, atol=1e-5)
    # the last stage at the answer position decides the output: fully restored there
    res = trace_grid(model, cf)
    answer_col = cf.clean.answer_pos[0].item()
    np.testing.assert_allclose(res.prob_clean[:, -1, answer_col], res.source_prob_clean,
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_grid_equals_one_query_loop(family, task_data):
    model = small_model(family, task_data.vocab_size, seed=1)
    queries = two_hop_queries(task_data, "test_inferred_iid", model.answer_slot, n=6)
    cf = build_counterfactuals(task_data, queries, "h")
    for reverse in (False, True):
        loop = trace_grid_loop(model, cf, reverse=reverse)
        for batch_size in (8192, 5):  # one chunk, and chunks smaller than the row count
            fast = trace_grid(model, cf, reverse=reverse, batch_size=batch_size)
            np.testing.assert_array_equal(fast.top1, loop.top1)
            np.testing.assert_allclose(fast.prob_clean, loop.prob_clean, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(fast.prob_corrupt, loop.prob_corrupt, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("corrupt", ["h", "r1"])
def test_trained_decoder_r1_low_then_last_position_high(trained, corrupt):
    """Wang et al.: the bridge is resolved at the r1 position in the lower layers and the
    second hop is applied at the last position in the upper layers."""
    model, dataset = trained
    res = trace_grid(model, prepare_counterfactuals([model], dataset, "test_inferred_iid",
                                                    corrupt, n=300))
    s = summarize_trace(res)
    grid = np.array(s["restored"])
    r1, last = s["positions"].index("r1"), s["positions"].index("r2")
    print(f"corrupt {corrupt}, n={s['n']}, restored (stages bottom-up x h,r1,r2): "
          f"{np.round(grid, 3).tolist()}")
    lower, upper = grid[1:-1], grid[-1]
    assert lower[:, r1].max() >= 0.5           # r1 position matters in a lower layer ...
    assert lower[:, last].max() <= 0.2         # ... where the last position does not yet
    assert upper[last] >= 0.95 and upper[r1] <= 0.1   # at the top only the last position
    assert grid[0, ["h", "r1"].index(corrupt)] >= 0.95  # the corrupted token itself
    # reverse: the corrupted token patched into the clean run carries its answer t'
    rev = trace_grid(model, res.cf, reverse=True)
    col = ["h", "r1"].index(corrupt)
    assert rev.flipped[:, 0, col].mean() >= 0.95


def test_no_query_left_is_a_clear_error(task_data):
    model = small_model("decoder", task_data.vocab_size)  # untrained: answers nothing right
    with pytest.raises(GroklabError, match="no query left to trace"):
        prepare_counterfactuals([model], task_data, "test_inferred_iid", "r1", n=50)
    cf = prepare_counterfactuals([model], task_data, "test_inferred_iid", "r1", n=50,
                                 require_correct=False)
    assert len(cf.clean) == cf.stats["with_counterfactual"] and cf.stats["both_correct"] == 0
    with pytest.raises(GroklabError, match="corrupt"):
        build_counterfactuals(task_data, cf.clean, "r3")
