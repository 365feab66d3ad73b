"""Logit lens: bridge decoded mid-network on a trained decoder; exactness; every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysiskit import small_model
from groklab.analysis.lens import (control_tokens, lens_callback, lens_metrics, lens_ranks,
                                   resolve_positions, summarize_lens)
from groklab.analysis.queries import two_hop_queries
from groklab.errors import GroklabError


def test_trained_decoder_decodes_bridge_at_r1_mid_network(trained):
    model, dataset = trained
    queries = two_hop_queries(dataset, "test_inferred_iid", model.answer_slot)
    s = summarize_lens(lens_ranks(model, queries))
    stages, r1 = s["stages"], s["positions"].index("r1")
    mrr = np.array(s["bridge"]["mrr"])
    top1 = np.array(s["bridge"]["top1"])
    middle = range(1, len(stages) - 1)
    best = max(middle, key=lambda i: top1[i, r1])
    print(f"n={s['n']} acc={s['accuracy']:.3f} bridge MRR at r1 per stage "
          f"{np.round(mrr[:, r1], 3).tolist()}, top-1 {np.round(top1[:, r1], 3).tolist()}, "
          f"found at r2 {s['bridge']['found']:.3f} (control {s['bridge']['found_control']:.3f}), "
          f"by position {s['bridge']['found_by_position']}")
    assert s["n"] >= 200
    assert top1[best, r1] >= 0.6 and mrr[best, r1] >= 0.7          # most queries, mid-network
    assert top1[0, r1] == 0.0                                        # not at the input stage
    assert s["bridge"]["found_by_position"]["r1"] >= 0.8
    assert s["bridge"]["positions"] == ["r2"]                        # causal default
    assert s["bridge"]["found"] == s["bridge"]["found_by_position"]["r2"]
    assert s["bridge"]["found_control"] <= 0.2                       # an unrelated entity is not
    # the answer is decodable at the answer position only at the end, and as often as it is right
    a_last = np.array(s["answer"]["top1"])[-1, s["positions"].index("r2")]
    assert a_last == pytest.approx(s["accuracy"])
    assert s["accuracy"] <= s["answer"]["found"] <= s["accuracy"] + 0.05


def test_causal_r1_decode_is_the_atomic_answer(trained):
    """Why r1 is not a default 'bridge found' position for causal models: the state at r1 of
    ``h r1 r2`` is the state of the atomic query ``h r1``, trained to output b."""
    model, dataset = trained
    queries = two_hop_queries(dataset, "test_inferred_iid", model.answer_slot, n=100)
    res = lens_ranks(model, queries)
    atomic = model(queries.input_ids[:, :2])[:, 1]
    b_logit = atomic.gather(1, queries.bridge[:, None])
    np.testing.assert_array_equal(res.ranks["bridge"][:, -1, 1],
                                  (atomic >= b_logit).sum(1).numpy())


@pytest.mark.parametrize("family", ["decoder", "looped", "recursive"])
def test_lens_last_stage_equals_model_output(family, task_data):
    model = small_model(family, task_data.vocab_size)
    queries = two_hop_queries(task_data, "test_inferred_iid", model.answer_slot, n=64)
    logits, cache = model.run_with_cache(queries.input_ids, names=model.residual_stages())
    last = model.decode_residual(cache[model.residual_stages()[-1]])
    torch.testing.assert_close(last, logits, rtol=0, atol=0)
    res = lens_ranks(model, queries, batch_size=16)  # batching must not change anything
    rows = torch.arange(len(queries))
    answer_logits = logits[rows, queries.answer_pos]
    expected = (answer_logits >= answer_logits[rows, queries.target][:, None]).sum(-1)
    got = res.ranks["answer"][np.arange(len(queries)), -1, queries.answer_pos.numpy()]
    np.testing.assert_array_equal(got, expected.numpy())
    assert res.ranks["bridge"].shape == (len(queries), len(model.lens_stages()),
                                         queries.input_ids.shape[1])
    np.testing.assert_array_equal(res.prediction, answer_logits.argmax(-1).numpy())


def test_lens_recomputes_final_norm_per_stage(task_data):
    """An intermediate state is decoded through LayerNorm statistics of that state itself."""
    model = small_model("decoder", task_data.vocab_size)
    queries = two_hop_queries(task_data, "test_inferred_iid", False, n=8)
    res = lens_ranks(model, queries)
    _, cache = model.run_with_cache(queries.input_ids, names=model.residual_stages())
    state = cache["blocks.0.hook_resid_post"]
    ln = model.ln_final
    normed = torch.nn.functional.layer_norm(state, ln.normalized_shape, ln.weight, ln.bias, ln.eps)
    logits = normed @ model.wte.weight.T
    bridge_logit = logits.gather(-1, queries.bridge.view(-1, 1, 1).expand(-1, 3, 1))
    expected = (logits >= bridge_logit).sum(-1)
    np.testing.assert_array_equal(res.ranks["bridge"][:, 1], expected.numpy())


def test_positions_resolution_and_errors():
    labels = ["h", "r1", "r2"]
    assert resolve_positions("auto", labels, causal=True, kind="bridge") == [2]
    assert resolve_positions("auto", labels, causal=True, kind="answer") == [2]
    assert resolve_positions("auto", labels + ["mask"], causal=False, kind="bridge") == [0, 1, 2, 3]
    assert resolve_positions(["r1"], labels, causal=True, kind="bridge") == [1]
    with pytest.raises(GroklabError, match="bridge_positions"):
        resolve_positions(["mask"], labels, causal=True, kind="bridge")


def test_ties_are_not_top1():
    from groklab.analysis.lens import _ranks

    flat = torch.zeros(2, 3, 5)                       # a constant decode: no token is top-1
    assert (_ranks(flat, torch.tensor([0, 4])) == 5).all()
    peaked = flat.clone()
    peaked[0, :, 2] = 1.0
    assert _ranks(peaked, torch.tensor([2, 2]))[0].tolist() == [1, 1, 1]


def test_control_tokens_differ_from_bridge():
    bridge = torch.tensor([5, 5, 5, 7, 9, 9])
    control = control_tokens(bridge)
    assert (control != bridge).all()
    assert set(control.tolist()) <= set(bridge.tolist())


def test_lens_metrics_callback_keys_and_values(trained):
    model, dataset = trained
    row = lens_callback(splits=("test_inferred_iid", "no_such_split"), n=128)(0, model, dataset, {})
    assert set(row) == {f"lens/test_inferred_iid/{k}" for k in
                        ("bridge_found", "bridge_mrr", "bridge_found_control", "answer_found",
                         "study_bridge_found", "study_bridge_found_correct", "study_target_found",
                         "study_chance", "study_chance_correct", "study_n_correct")}
    at_r1 = lens_metrics(model, dataset, "test_inferred_iid", n=128, bridge_positions=["r1"])
    assert at_r1["lens/test_inferred_iid/bridge_found"] >= 0.8
    assert row["lens/test_inferred_iid/bridge_found_control"] <= 0.2
    assert model.training is False
    again = lens_metrics(model, dataset, "test_inferred_iid", n=128)
    assert again == row  # seeded sample: same numbers


def test_lens_rejects_split_without_two_hop_queries(trained):
    model, dataset = trained
    with pytest.raises(GroklabError, match="id_atomic"):
        two_hop_queries(dataset, "id_atomic", model.answer_slot)
    with pytest.raises(GroklabError, match="split"):
        two_hop_queries(dataset, "nope", model.answer_slot)
