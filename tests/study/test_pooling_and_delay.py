"""Seeds and delays: pooled intervals from known per-seed values, Wilson/Newcombe intervals, the
grokking-delay rule on hand-written metrics, claim 2 over seeds and the pooled claim-1 rows."""

import math

import pytest

from groklab.study import claims as C
from groklab.study.measure import difference, pool, rate, t975, wilson
from groklab.study.pooled import pool_claim1, pool_claim3


def test_pool_is_the_mean_with_the_hull_of_t_and_within_seed_intervals():
    seeds = [{"value": 0.8, "ci": [0.7, 0.9], "n": 50}, {"value": 0.9, "ci": [0.82, 0.96], "n": 50},
             {"value": 1.0, "ci": [0.93, 1.0], "n": 50}]
    p = pool(seeds)
    assert p["value"] == pytest.approx(0.9) and p["n"] == 150 and p["seeds"] == 3
    # t-interval: sd 0.1, k 3, t(2) = 4.303 -> half width 0.2484; it is wider than the mean
    # within-seed interval [.817, .953], so it is the hull
    half = 4.303 * 0.1 / math.sqrt(3)
    assert p["ci"] == pytest.approx([0.9 - half, 0.9 + half])
    assert pool(seeds, (0.0, 1.0))["ci"][1] == 1.0
    # three seeds that agree exactly keep their sampling interval (not a zero-width one)
    same = [{"value": 0.0, "ci": [0.0, 0.11], "n": 30}] * 3
    assert pool(same)["ci"] == pytest.approx([0.0, 0.11])
    # one seed: its own measure; missing seeds are dropped but counted
    assert pool([seeds[0]]) == seeds[0]
    part = pool([None, 0.5, 0.7])
    assert part["value"] == pytest.approx(0.6) and part["seeds"] == 2 and part["of"] == 3
    assert pool([None, None]) is None
    assert t975(2) == 4.303 and t975(200) == pytest.approx(1.97, abs=0.005)


def test_wilson_and_newcombe_intervals():
    w = wilson(0, 30)
    assert w["value"] == 0 and w["ci"][0] == 0 and w["ci"][1] == pytest.approx(0.1135, abs=1e-3)
    assert wilson(15, 30)["ci"] == pytest.approx([0.3315, 0.6685], abs=1e-3)
    assert rate(0.5, 30) == wilson(15, 30) and rate(None, 30)["value"] is None
    d = difference(wilson(27, 30), wilson(3, 30))
    assert d["value"] == pytest.approx(0.8) and 0.55 < d["ci"][0] < 0.8 < d["ci"][1] < 0.95


def _rows(train, iid, ood=None, every=100):
    steps = list(range(every, every * (len(train) + 1), every))
    return steps, train, iid, ood or [0.0] * len(train)


def test_delay_rule_on_hand_written_metrics():
    # memorised by step 200 (ID .1), generalised at step 600 = 3x: grokked
    g = C.grokking(*_rows([0.5, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.1, 0.2, 0.4, 0.7, 0.95],
                          [0.0, 0.0, 0.0, 0.1, 0.3, 0.6]))
    assert g["label"] == C.GROKKED_LABEL and (g["fit_step"], g["id_step"], g["ood_step"]) == (200, 600, 600)
    assert g["id_delay"] == 400 and g["ratio"] == 3.0 and "grokked" in C.grokking_why(g)
    # ID already .6 when the training set is fit: generalised while fitting, whatever the delay
    g = C.grokking(*_rows([0.5, 1.0, 1.0, 1.0, 1.0, 1.0], [0.3, 0.6, 0.7, 0.8, 0.85, 0.95]))
    assert g["label"] == C.WHILE_FITTING and "ID already 0.60" in C.grokking_why(g)
    # ID low at the fit but reached at 1.5x: too short a delay
    g = C.grokking(*_rows([0.5, 1.0, 1.0, 1.0], [0.1, 0.2, 0.95, 1.0]))
    assert g["label"] == C.WHILE_FITTING and g["ratio"] == 1.5
    # generalised before it fit (the tiny TRM's way)
    g = C.grokking(*_rows([0.5, 0.9, 0.95, 1.0], [0.5, 0.95, 1.0, 1.0]))
    assert g["label"] == C.WHILE_FITTING and g["id_delay"] == -200
    assert C.grokking(*_rows([0.5, 1.0, 1.0], [0.1, 0.2, 0.3]))["label"] == C.NO_GENERALISATION
    assert C.grokking(*_rows([0.5, 0.6], [0.1, 0.2]))["label"] == C.NO_FIT
    # two evaluations after the fit are needed to call it a delay: fit at 100, gen at 200 = 2x
    g = C.grokking(*_rows([1.0, 1.0], [0.1, 0.95]))
    assert g["label"] == C.WHILE_FITTING


def _tl(acc_wo: bool):
    t = C.timeline([0, 100, 200], [1.0] * 3, [0.2, 0.95, 0.97], [0.1, 0.2, 0.2], [0.1, 0.6, 0.7])
    if not acc_wo:
        t = C.timeline([0, 100], [1.0] * 2, [0.0, 0.0], [0.0, 0.0])
    return {"recursive/second_hop": t}


def test_claim2_over_seeds_needs_a_replicated_dissociation():
    assert C.judge_claim2_seeds([_tl(True)]).verdict == C.SUPPORTED       # one seed: as before
    two_of_three = C.judge_claim2_seeds([_tl(True), _tl(True), _tl(False)])
    assert two_of_three.verdict == C.SUPPORTED and "2/3 seeds" in two_of_three.reason
    one_of_three = C.judge_claim2_seeds([_tl(True), _tl(False), _tl(False)])
    assert one_of_three.verdict == C.INCONCLUSIVE and one_of_three.decide


def _c1(value_a, sim, neg, label=C.GROKKED_LABEL):
    return {"family": "decoder", "acc_grokked": 0.95, "acc_nongrokked": 0.97,
            "grokking": {"label": label, "why": label},
            "bridge_correct_ood": {"value": value_a, "ci": [value_a - 0.05, min(1, value_a + 0.05)],
                                   "n": 40, "chance": {"value": 0.05, "ci": [0, 0.1], "n": 40}},
            "bridge_correct_iid": {"value": 0.9, "ci": [0.85, 0.95], "n": 100},
            "path": {"value": sim, "ci": [sim - 0.05, min(1, sim + 0.05)], "n": 50,
                     "free_cells": 8, "cells": 15,
                     "free": {"value": sim, "ci": [sim - 0.05, min(1, sim + 0.05)], "n": 50}},
            "negative_control": {"value": neg, "ci": [neg - 0.2, neg + 0.2], "n": 40},
            "transfer_diff": {"new_old": {"value": 0.0, "ci": [-0.1, 0.1], "n": 30}}}


def test_pooled_claim1_rows_feed_the_single_seed_rule():
    rows = pool_claim1([[_c1(0.95, 0.92, 0.1)], [_c1(0.97, 0.94, 0.2)], [_c1(0.93, 0.93, 0.0)]])
    (r,) = rows
    assert r["bridge_correct_ood"]["value"] == pytest.approx(0.95)
    assert r["bridge_correct_ood"]["n"] == 120 and r["bridge_correct_ood"]["per_seed"] == [0.95, 0.97, 0.93]
    assert r["path"]["free"]["value"] == pytest.approx(0.93) and r["path"]["free_cells"] == 8
    assert C.judge_claim1(rows).verdict == C.SUPPORTED
    # one seed whose natural run generalised while fitting makes the label 'mixed': undecided
    mixed = pool_claim1([[_c1(0.95, 0.92, 0.1)], [_c1(0.97, 0.94, 0.2, label=C.WHILE_FITTING)]])
    assert mixed[0]["grokking"]["label"] == "mixed"
    assert C.judge_claim1(mixed).verdict == C.INCONCLUSIVE
    # a seed with an error is left out of the pool, not averaged in
    err = pool_claim1([[_c1(0.95, 0.92, 0.1)], [{"family": "decoder", "error": "never fit"}]])
    assert err[0]["seeds_with_evidence"] == 1 and err[0]["bridge_correct_ood"]["value"] == 0.95


def test_pooled_claim3_pools_rates_with_their_n():
    row = lambda no: {"run": "decoder/natural", "pretrained_iid": 0.95, "atomic_new": 1.0,  # noqa: E731
                      "new_old": no, "old_new": 0.0, "new_new": 0.0,
                      "n": {"new_old": 40, "old_new": 40, "new_new": 40, "atomic_new": 80}}
    pooled = pool_claim3([{"decoder/natural": row(0.9)}, {"decoder/natural": row(0.8)}])
    r = pooled["decoder/natural"]
    assert r["new_old"]["value"] == pytest.approx(0.85) and r["new_old"]["n"] == 80
    assert r["asymmetry"]["value"] == pytest.approx(0.85)
    assert C.judge_claim3(list(pooled.values())).verdict == C.SUPPORTED
