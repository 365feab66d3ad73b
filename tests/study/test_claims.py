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


def _c1(fam, sim, lo, hi, a=0.95, b=0.97, bridge=(0.95, 0.9, 1.0, 40), diff=(0.0, -0.1, 0.1)):
    """Claim-1 evidence of one family: (b) path similarity and CI, (a) bridge found on correct
    OOD predictions (value, CI, n), (c) one transfer difference with its CI."""
    return {"family": fam, "acc_grokked": a, "acc_nongrokked": b,
            "path": {"value": sim, "ci": [lo, hi]},
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
    # families disagree -> inconclusive
    mixed = [_c1("decoder", 0.95, 0.9, 0.99), _c1("recursive", 0.3, 0.1, 0.5)]
    assert C.judge_claim1(mixed).verdict == C.INCONCLUSIVE
    # no comparison possible
    none = {"family": "decoder", "acc_grokked": 0.0, "error": "both_full never fit"}
    assert C.judge_claim1([none]).verdict == C.INCONCLUSIVE


def _c3(run, iid, new, no, on, nn):
    return {"run": run, "pretrained_iid": iid, "atomic_new": new, "new_old": no,
            "old_new": on, "new_new": nn}


def test_claim3_verdicts():
    ok = [_c3("d/natural", 0.95, 1.0, 0.9, 0.02, 0.0), _c3("d/scratch", None, 1.0, 0.3, 0.0, 0.0)]
    v = C.judge_claim3(ok)
    assert v.verdict == C.SUPPORTED and v.details["eligible"] == ["d/natural"]
    assert C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.9, 0.6, 0.0)]).verdict == C.NOT_SUPPORTED
    assert C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.05, 0.0, 0.0)]).verdict == C.NOT_SUPPORTED
    assert C.judge_claim3([_c3("d/natural", 0.95, 1.0, 0.3, 0.2, 0.0)]).verdict == C.INCONCLUSIVE
    # new facts not learned or model never composed: nothing to judge
    assert C.judge_claim3([_c3("d/natural", 0.95, 0.5, 0.9, 0.0, 0.0)]).verdict == C.INCONCLUSIVE
    assert C.judge_claim3([_c3("d/natural", 0.2, 1.0, 0.9, 0.0, 0.0)]).verdict == C.INCONCLUSIVE


def test_claim4_verdicts_with_censoring():
    row = lambda aug, nat, budget=10_000: {"family": "recursive", "aug_steps": aug,  # noqa: E731
                                           "nat_steps": nat, "nat_budget": budget}
    assert C.judge_claim4([row(1000, 8000)], 0.5).verdict == C.SUPPORTED
    v = C.judge_claim4([row(1000, None)], 0.5)        # natural never: budget is a lower bound
    assert v.verdict == C.SUPPORTED and ">= 10.0x" in v.reason
    assert C.judge_claim4([row(1000, None, budget=3000)], 0.5).verdict == C.INCONCLUSIVE
    assert C.judge_claim4([row(1000, 1500)], 0.5).verdict == C.NOT_SUPPORTED
    assert C.judge_claim4([row(None, 1500)], 0.5).verdict == C.INCONCLUSIVE


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
           "path": {"value": 0.99, "ci": [0.98, 1.0]},
           "bridge_correct_ood": {"value": 0.1, "ci": [0.05, 0.18], "n": 100},
           "bridge_correct_iid": {"value": 0.17, "ci": [0.1, 0.24], "n": 130},
           "transfer_diff": {"new_old": {"value": 0.0, "ci": [-0.05, 0.05], "n": 700}}}
    v = C.judge_claim1([row])
    assert v.verdict == C.INCONCLUSIVE and "lens blind" in v.reason
    seeing = dict(row, bridge_correct_iid={"value": 0.9, "ci": [0.85, 0.95], "n": 130})
    assert C.judge_claim1([seeing]).verdict == C.NOT_SUPPORTED
