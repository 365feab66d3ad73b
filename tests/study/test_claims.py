"""Verdict rules: each claim's rule decides by its stated thresholds, never beyond its inputs."""

from groklab.study import claims as C


def _tl(ood, bridge, train=None):
    steps = list(range(0, 100 * len(ood), 100))
    return C.timeline(steps, train or [1.0] * len(ood), ood, bridge)


def test_timeline_first_steps_and_finals():
    t = _tl([0.0, 0.3, 0.6, 0.95], [0.1, 0.95, 0.95, 0.97], train=[0.2, 0.995, 1.0, 1.0])
    assert t["train_fit_step"] == 100
    assert t["bridge_high_step"] == 100
    assert t["ood_half_step"] == 200 and t["ood_high_step"] == 300
    assert t["final_ood"] == 0.95 and t["max_bridge"] == 0.97
    assert not t["accuracy_without_circuit"]
    # bridge high while OOD < .5 for only 2 evaluations, not at the end: no flag
    assert not t["circuit_without_accuracy"]


def test_dissociation_needs_persistence_or_final():
    brief = _tl([0.1, 0.1, 0.1, 0.9], [0.1, 0.95, 0.95, 0.95])
    assert not brief["circuit_without_accuracy"]
    long = _tl([0.1, 0.1, 0.1, 0.1, 0.9], [0.1, 0.95, 0.95, 0.95, 0.95])
    assert long["circuit_without_accuracy"]
    at_end = _tl([0.2, 0.5, 0.92], [0.1, 0.2, 0.3])
    assert at_end["accuracy_without_circuit"] and not at_end["circuit_without_accuracy"]


def test_claim2_verdicts():
    flagged = {"recursive/second_hop": _tl([0.2, 0.5, 0.97], [0.1, 0.3, 0.4]),
               "recursive/natural": _tl([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])}
    assert C.judge_claim2(flagged).verdict == C.SUPPORTED
    nothing = {"recursive/natural": _tl([0.0, 0.01], [0.0, 0.2])}
    v = C.judge_claim2(nothing)
    assert v.verdict == C.INCONCLUSIVE and "0 of 1" in v.reason
    # causal families are shown but not judged (their lens rate is no circuit indicator)
    decoder_only = {"decoder/second_hop": _tl([0.2, 0.5, 0.97], [0.1, 0.3, 0.4])}
    assert C.judge_claim2(decoder_only).verdict == C.INCONCLUSIVE
    coupled = {f"recursive/{k}": _tl([0.5, 0.95], [0.6, 0.95]) for k in ("a", "b")}
    assert C.judge_claim2(coupled).verdict == C.NOT_SUPPORTED


GROKKED = {"label": C.GROKKED_LABEL, "why": "grokked: fit at 500, ID >= .9 at 2,000"}
DISSIMILAR = {"value": 0.2, "ci": [-0.1, 0.5], "n": 40, "step": 500}


def _c1(fam, sim, lo, hi, a=0.95, b=0.97, bridge=(0.95, 0.9, 1.0, 40), diff=(0.0, -0.1, 0.1),
        neg=DISSIMILAR, grok=GROKKED, free=12):
    """Claim-1 evidence of one family: (b) path similarity and CI over ``free`` free cells, its
    negative control, (a) bridge found on correct OOD predictions (value, CI, n), (c) one
    transfer difference with its CI, the natural run's grokking label."""
    return {"family": fam, "acc_grokked": a, "acc_nongrokked": b, "grokking": grok,
            "path": {"value": sim, "ci": [lo, hi], "free_cells": free, "cells": 15,
                     "free": {"value": sim, "ci": [lo, hi]}},
            "negative_control": neg,
            "bridge_correct_ood": {"value": bridge[0], "ci": [bridge[1], bridge[2]],
                                   "n": bridge[3]},
            "transfer_diff": {"new_old": {"value": diff[0], "ci": [diff[1], diff[2]], "n": 30}}}


def test_claim1_verdicts():
    assert C.judge_claim1([_c1("decoder", 0.93, 0.85, 0.97)]).verdict == C.SUPPORTED
    # (b) below the threshold refutes it
    assert C.judge_claim1([_c1("decoder", 0.3, 0.1, 0.5)]).verdict == C.NOT_SUPPORTED
    # (b) straddling: inconclusive, and the reason says what was missing
    v = C.judge_claim1([_c1("decoder", 0.8, 0.7, 0.9)])
    assert v.verdict == C.INCONCLUSIVE and "straddles" in v.reason
    # (a): the non-grokked model's correct OOD answers without the bridge refute it
    v = C.judge_claim1([_c1("recursive", 0.93, 0.85, 0.97, bridge=(0.2, 0.1, 0.3, 40))])
    assert v.verdict == C.NOT_SUPPORTED and "(a)" in v.reason
    # (a) on too few correct predictions cannot decide
    v = C.judge_claim1([_c1("recursive", 0.93, 0.85, 0.97, bridge=(1.0, 1.0, 1.0, 3))])
    assert v.verdict == C.INCONCLUSIVE and "only 3 correct" in v.reason
    # (c): a transfer difference whose CI lies outside +-0.2 refutes it; a wide CI is undecided
    assert C.judge_claim1([_c1("d", 0.93, 0.85, 0.97, diff=(0.5, 0.3, 0.7))]).verdict == C.NOT_SUPPORTED
    v = C.judge_claim1([_c1("d", 0.93, 0.85, 0.97, diff=(0.1, -0.2, 0.4))])
    assert v.verdict == C.INCONCLUSIVE and "not within" in v.reason
    # a model that does not compose ID queries makes its family ineligible
    v = C.judge_claim1([_c1("decoder", 0.95, 0.9, 0.99, a=0.4)])
    assert v.verdict == C.INCONCLUSIVE and "does not compose" in v.reason
    # ... and the reason names which model fell short, with its accuracy
    assert "the natural model answers 0.400" in v.reason and "both_full at" not in v.reason
    v = C.judge_claim1([_c1("recursive", 0.95, 0.9, 0.99, b=0.592)])
    assert "both_full at training saturation answers 0.592" in v.reason
    assert "the natural model answers" not in v.reason
    # families disagree -> inconclusive
    mixed = [_c1("decoder", 0.95, 0.9, 0.99), _c1("recursive", 0.3, 0.1, 0.5)]
    assert C.judge_claim1(mixed).verdict == C.INCONCLUSIVE
    # no comparison possible
    none = {"family": "decoder", "acc_grokked": 0.0, "error": "both_full never fit"}
    assert C.judge_claim1([none]).verdict == C.INCONCLUSIVE


def test_claim1_needs_grokking_a_dissimilar_negative_control_and_free_cells():
    ok = _c1("decoder", 0.93, 0.85, 0.97)
    v = C.judge_claim1([ok])
    assert v.verdict == C.SUPPORTED and v.per_family["decoder"]["verdict"] == C.SUPPORTED
    # a natural run that generalised while fitting is not a grokked model
    v = C.judge_claim1([_c1("decoder", 0.93, 0.85, 0.97,
                            grok={"label": C.WHILE_FITTING, "why": "generalised while fitting"})])
    assert v.verdict == C.INCONCLUSIVE and "did not grok" in v.reason and v.decide
    # a negative control that the path test also calls similar: the test has no power
    similar = {"value": 0.95, "ci": [0.9, 0.99], "n": 40}
    v = C.judge_claim1([_c1("decoder", 0.93, 0.85, 0.97, neg=similar)])
    assert v.verdict == C.INCONCLUSIVE and "negative control" in v.reason
    v = C.judge_claim1([_c1("decoder", 0.93, 0.85, 0.97, neg={"error": "no memorising checkpoint"})])
    assert v.verdict == C.INCONCLUSIVE and "no memorising checkpoint" in v.reason
    # two free cells: a correlation over them is +-1 whatever the models do
    v = C.judge_claim1([_c1("decoder", 0.99, 0.98, 1.0, free=2)])
    assert v.verdict == C.INCONCLUSIVE and "only 2 of 15 tracing cells are free" in v.reason
    # a dissimilar path still refutes, whatever the control says
    assert C.judge_claim1([_c1("decoder", 0.3, 0.1, 0.5, neg=similar)]).verdict == C.NOT_SUPPORTED


def _c3(run, iid, new, no, on, nn, n=100):
    return {"run": run, "pretrained_iid": iid, "atomic_new": new, "new_old": no,
            "old_new": on, "new_new": nn, "n": {c: n for c in ("new_old", "old_new", "new_new")}}


def test_claim3_verdicts():
    ok = [_c3("d/natural", 0.95, 1.0, 0.9, 0.02, 0.0), _c3("d/scratch", None, 1.0, 0.3, 0.0, 0.0)]
    v = C.judge_claim3(ok)
    assert v.verdict == C.SUPPORTED and v.details["judged"] == ["d/natural"]
    # second-hop EM clearly >= .5 refutes; so does a new_old CI below .1 (no first-hop use)
    assert C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.9, 0.7, 0.0)]).verdict == C.NOT_SUPPORTED
    assert C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.02, 0.0, 0.0)]).verdict == C.NOT_SUPPORTED
    v = C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.3, 0.2, 0.0)])
    assert v.verdict == C.INCONCLUSIVE and any("needs >= 0.5" in d for d in v.decide)
    # new facts not learned or model never composed: nothing to judge
    assert C.judge_claim3([_c3("d/natural", 0.95, 0.5, 0.9, 0.0, 0.0)]).verdict == C.INCONCLUSIVE
    assert C.judge_claim3([_c3("d/natural", 0.2, 1.0, 0.9, 0.0, 0.0)]).verdict == C.INCONCLUSIVE


def test_claim3_is_judged_per_family_and_tests_the_asymmetry():
    # the TRM's reversed asymmetry (old_new above new_old) is a refutation in that family, and
    # a best-of over families no longer hides it
    rows = [_c3("decoder/natural", 0.95, 1.0, 0.9, 0.02, 0.0, n=200),
            _c3("recursive/natural", 0.95, 1.0, 0.04, 0.30, 0.0, n=200)]
    v = C.judge_claim3(rows)
    assert v.per_family["decoder"]["verdict"] == C.SUPPORTED
    assert v.per_family["recursive"]["verdict"] == C.NOT_SUPPORTED
    assert "reversed" in " ".join(v.per_family["recursive"]["why"])
    assert v.verdict == C.INCONCLUSIVE          # the families disagree
    # the asymmetry is new_old minus second hop with Newcombe's interval
    e = C.claim3_evidence(rows[1])
    assert abs(e["asymmetry"]["value"] - (0.04 - 0.30)) < 1e-12 and e["second_hop_split"] == "old_new"
    assert e["asymmetry"]["ci"][1] < 0
    # a non-natural model cannot carry the family
    only_other = [_c3("decoder/both_full", 0.95, 1.0, 0.9, 0.0, 0.0)]
    assert C.judge_claim3(only_other).verdict == C.INCONCLUSIVE


def test_claim4_verdicts_with_censoring():
    row = lambda aug, nat, budget=10_000: {"family": "recursive", "aug_steps": aug,  # noqa: E731
                                           "nat_steps": nat, "nat_budget": budget}
    assert C.judge_claim4([row(1000, 8000)], 0.5).verdict == C.SUPPORTED
    v = C.judge_claim4([row(1000, None)], 0.5)        # natural never: budget is a lower bound
    assert v.verdict == C.SUPPORTED and ">= 10.0x" in v.reason
    assert C.judge_claim4([row(1000, None, budget=3000)], 0.5).verdict == C.INCONCLUSIVE
    assert C.judge_claim4([row(1000, 1500)], 0.5).verdict == C.NOT_SUPPORTED
    assert C.judge_claim4([row(None, 1500)], 0.5).verdict == C.INCONCLUSIVE
    # what would decide a censored, too-short natural run: 5x both_full's steps
    v = C.judge_claim4([row(750, None, budget=1500)], 0.5)
    assert v.verdict == C.INCONCLUSIVE and "natural needs a budget >= 3,750 steps" in v.decide[0]
    # a budget of exactly 5x both_full's step is 5x (exp(log(5)) is one ulp below 5)
    v = C.judge_claim4([row(1500, None, budget=7500)], 0.5)
    assert v.verdict == C.SUPPORTED and ">= 5.0x" in v.reason and not v.decide
    assert C.judge_claim4([row(1500, None, budget=7499)], 0.5).verdict == C.INCONCLUSIVE


def test_claim4_pools_seeds_by_the_geometric_mean():
    row = {"family": "decoder", "aug_steps": [1000, 1000, 1000], "nat_steps": [9000, 8000, 8500],
           "nat_budget": [10_000] * 3}
    v = C.judge_claim4([row], 0.5)
    sp = C.speedup(row["aug_steps"], row["nat_steps"], row["nat_budget"])
    assert abs(sp["value"] - (9 * 8 * 8.5) ** (1 / 3)) < 1e-9 and sp["ci"][0] < sp["value"] < sp["ci"][1]
    assert v.verdict == C.SUPPORTED and sp["ci"][0] >= 5
    # one seed far lower widens the interval below 5x: undecided
    row["nat_steps"] = [9000, 2500, 8500]
    assert C.judge_claim4([row], 0.5).verdict == C.INCONCLUSIVE
    # censored in every seed, each seed's bound >= 5x, the pooled interval not: what decides
    # it is the budget at which the interval's lower end reaches 5x (cpu_grok's three seeds)
    row = {"family": "recursive", "aug_steps": [600, 700, 1200], "nat_steps": [None] * 3,
           "nat_budget": [7500] * 3}
    v = C.judge_claim4([row], 0.5)
    lo = C.speedup(row["aug_steps"], row["nat_steps"], row["nat_budget"])["ci"][0]
    assert v.verdict == C.INCONCLUSIVE and lo < 5 and "every seed's bound already reaches" in v.decide[0]
    need = round(7500 * 5 / lo)
    assert f"natural needs a budget >= {need:,} steps" in v.decide[0]
    longer = dict(row, nat_budget=[need + 1] * 3)
    assert C.judge_claim4([longer], 0.5).verdict == C.SUPPORTED


def test_accuracy_without_circuit_needs_a_lens_that_sees_the_bridge_on_id_queries():
    """OOD solved with a low OOD bridge rate counts only where the lens finds b on ID queries."""
    steps = [0, 100, 200]
    seeing = C.timeline(steps, [1.0] * 3, [0.2, 0.95, 0.97], [0.1, 0.2, 0.2], [0.1, 0.6, 0.7])
    assert seeing["accuracy_without_circuit"] and not seeing["lens_blind"]
    blind = C.timeline(steps, [1.0] * 3, [0.2, 0.95, 0.97], [0.1, 0.2, 0.2], [0.1, 0.18, 0.19])
    assert not blind["accuracy_without_circuit"] and blind["lens_blind"]
    assert blind["max_bridge_id"] == 0.19
    v = C.judge_claim2({"recursive/both_full": blind,
                        "recursive/natural": _tl([0.0, 0.0, 0.01], [0.1, 0.2, 0.2])})
    assert v.verdict == C.INCONCLUSIVE
    assert "lens blind in recursive/both_full" in v.reason and "at most 0.190 of correct ID" in v.reason
    assert v.details["lens_blind"] == ["recursive/both_full"]
    assert C.judge_claim2({"recursive/both_full": seeing}).verdict == C.SUPPORTED


def test_claim2_uses_target_found_and_reports_em_beside_it():
    """The study's 'OOD answer' is the lens target-found rate; EM is reported beside it."""
    steps = [0, 100, 200]
    # target found high (t decodable somewhere) while EM stays low, bridge low: the study's
    # measure shows accuracy without circuit, EM does not
    t = C.timeline(steps, [1.0] * 3, ood=[0.1, 0.2, 0.3], bridge=[0.1, 0.2, 0.2],
                   bridge_id=[0.5, 0.9, 0.95], target=[0.2, 0.95, 0.97],
                   chance_id=[0.0, 0.05, 0.05])
    assert t["answer_measure"] == "target_found" and t["final_target"] == 0.97
    assert t["accuracy_without_circuit"] and not t["em_accuracy_without_circuit"]
    v = C.judge_claim2({"recursive/second_hop": t})
    assert v.verdict == C.SUPPORTED and "exact-match" in v.reason
    # a lens that is no better than its chance control on correct ID queries is blind
    at_chance = C.timeline(steps, [1.0] * 3, ood=[0.1, 0.9, 0.95], bridge=[0.1, 0.2, 0.2],
                           bridge_id=[0.5, 0.6, 0.6], target=[0.2, 0.95, 0.97],
                           chance_id=[0.6, 0.7, 0.6])
    assert at_chance["lens_blind"] and not at_chance["accuracy_without_circuit"]
    # a family outside circuit_families is not judged
    assert C.judge_claim2({"looped/x": t}, circuit_families=("recursive",)).verdict == C.INCONCLUSIVE


def test_lens_validity_needs_enough_correct_queries_and_claim1_a_guards_a_blind_lens():
    steps = [0, 100, 200]
    # a bridge rate of .5 on 4 correct ID queries says nothing: still lens blind
    t = C.timeline(steps, [1.0] * 3, ood=[0.1, 0.95, 0.97], bridge=[0.1, 0.1, 0.1],
                   bridge_id=[0.5, 0.15, 0.15], target=[0.1, 0.95, 0.97],
                   chance_id=[0.0, 0.05, 0.05], n_correct_id=[4, 120, 128])
    assert t["lens_blind"] and not t["accuracy_without_circuit"] and t["max_bridge_id"] == 0.15
    # claim 1 (a): a low OOD bridge rate where the lens is blind on ID answers too is undecided
    row = {"family": "recursive", "acc_grokked": 0.98, "acc_nongrokked": 1.0,
           "path": {"value": 0.99, "ci": [0.98, 1.0]}, "negative_control": DISSIMILAR,
           "bridge_correct_ood": {"value": 0.1, "ci": [0.05, 0.18], "n": 100},
           "bridge_correct_iid": {"value": 0.17, "ci": [0.1, 0.24], "n": 130},
           "transfer_diff": {"new_old": {"value": 0.0, "ci": [-0.05, 0.05], "n": 700}}}
    v = C.judge_claim1([row])
    assert v.verdict == C.INCONCLUSIVE and "lens blind" in v.reason
    seeing = dict(row, bridge_correct_iid={"value": 0.9, "ci": [0.85, 0.95], "n": 130})
    assert C.judge_claim1([seeing]).verdict == C.NOT_SUPPORTED


def test_lens_blind_labels_every_run_whose_lens_misses_the_bridge_not_only_dissociations():
    """A blind lens cannot establish 'no dissociation' either: a run with a low OOD answer and a
    lens that misses the bridge on correct ID queries is lens blind too; a seeing one is not."""
    steps = [0, 100, 200]
    low_blind = C.timeline(steps, [1.0] * 3, ood=[0.0, 0.05, 0.1], bridge=[0.1, 0.2, 0.2],
                           bridge_id=[0.1, 0.12, 0.15], target=[0.0, 0.1, 0.2],
                           chance_id=[0.02, 0.02, 0.03], n_correct_id=[0, 120, 128])
    assert low_blind["lens_blind"] and not low_blind["masked_dissociation"]
    assert not low_blind["accuracy_without_circuit"] and not low_blind["circuit_without_accuracy"]
    low_seeing = C.timeline(steps, [1.0] * 3, ood=[0.0, 0.05, 0.1], bridge=[0.1, 0.2, 0.2],
                            bridge_id=[0.1, 0.7, 0.8], target=[0.0, 0.1, 0.2],
                            chance_id=[0.02, 0.02, 0.03], n_correct_id=[0, 120, 128])
    assert not low_seeing["lens_blind"]
    v = C.judge_claim2({"recursive/natural": low_blind, "recursive/both_full": low_seeing})
    assert v.verdict == C.INCONCLUSIVE and v.details["lens_blind"] == ["recursive/natural"]
    assert "lens blind in recursive/natural (the lens finds the bridge on at most 0.150" in v.reason
    assert "neither shown nor ruled out" in v.reason


def test_a_negative_control_without_free_cells_says_why():
    from groklab.study.stages import _path_fields
    p = {"similarity": 0.66, "ci_low": 0.63, "ci_high": 0.69, "n": 94, "similarity_free": None,
         "free_ci": [None, None], "cells": 9, "free_cells": 2}
    out = _path_fields(p)
    assert out["value"] is None and "2 of 9 tracing cells are free" in out["error"]
    fails, missing = [], []
    C._claim1_paths({"negative_control": out}, fails, missing)
    assert any("no negative control (no free-cell correlation" in m for m in missing)
