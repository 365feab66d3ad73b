"""The study's claims as explicit, stated verdict rules over measured numbers.

Each ``judge_*`` function takes numbers read from run directories and returns a
:class:`Verdict`: one of ``supported`` / ``not supported`` / ``inconclusive at this scale``,
the rule that decided it (written into the report word for word) and the reason in numbers.
No rule ever returns a verdict that its inputs do not show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive at this scale"

# Thresholds, named once so the report states exactly what was applied.
FIT = 0.99            # training accuracy that counts as "fit"
COMPOSES = 0.9        # test_inferred_iid accuracy that counts as "composes in distribution"
SIMILAR = 0.8         # claim 1: path-similarity threshold (applies to the CI lower/upper bound)
HIGH = 0.9            # claim 2: "high" OOD accuracy / bridge-found rate
LOW = 0.5             # claim 2: "low"
PERSIST = 3           # claim 2: consecutive evaluations a dissociation must last (or hold at the end)
NEW_LEARNED = 0.9     # claim 3: new-fact EM that counts as learned
FIRST_HOP_OK = 0.5    # claim 3: new_old EM that shows first-hop use
SECOND_HOP_LOW = 0.1  # claim 3: old_new / new_new EM that counts as "almost never"
SECOND_HOP_HIGH = 0.5  # claim 3: old_new / new_new EM that would refute "almost never"
SPEEDUP_YES = 5.0     # claim 4: natural needs >= 5x the steps of both_full
SPEEDUP_NO = 2.0      # claim 4: natural within 2x of both_full refutes it


@dataclass
class Verdict:
    claim: str
    verdict: str
    rule: str
    reason: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- helpers
def first_step(steps: list[int], values: list[float | None], threshold: float) -> int | None:
    """First evaluation step at which ``value >= threshold`` (None if never)."""
    for s, v in zip(steps, values):
        if v is not None and v >= threshold:
            return s
    return None


def _persistent(flags: list[bool], k: int) -> bool:
    """True when ``flags`` holds at the last evaluation or on ``k`` consecutive ones."""
    if flags and flags[-1]:
        return True
    run = 0
    for f in flags:
        run = run + 1 if f else 0
        if run >= k:
            return True
    return False


# ---------------------------------------------------------------------------- claim 1
TRANSFER_EQUIV = 0.2  # claim 1 (c): transfer EM differences within +-this count as equivalent
MIN_CORRECT = 10      # claim 1 (a): fewest correct OOD predictions that can decide it

CLAIM1_RULE = (
    f"Per model family, the study's comparison: the naturally trained model at the end of its "
    f"budget (grokked) against the both_full model stopped at training saturation (the first "
    f"checkpoint with train accuracy >= {FIT}: fully supervised, non-grokked). Eligible only "
    f"if both compose ID queries (test_inferred_iid >= {COMPOSES}). Three measures, each with "
    f"a bootstrap 95% CI: (a) among both_full's correct OOD predictions, the fraction with the "
    f"bridge found by the lens at any stage (recursive: any position, the study's rule; causal "
    f"models: r2, since their r1 state decodes b by hop-1 recall); (b) path similarity on "
    f"ID queries both models answer right (Pearson r of the causal-tracing grids, r1 "
    f"corrupted); (c) transfer equivalence: natural minus both_full EM on each claim-3 "
    f"category after both are finetuned on the same new facts. Supported if (a) >= {HIGH} on "
    f">= {MIN_CORRECT} queries, (b)'s CI lies at or above {SIMILAR}, and every (c) CI lies "
    f"within +-{TRANSFER_EQUIV}. Not supported if (a)'s CI lies below {LOW} (on >= "
    f"{MIN_CORRECT} queries), (b)'s CI lies below {SIMILAR}, or some (c) CI lies entirely "
    f"outside +-{TRANSFER_EQUIV}. (a) counts only where the lens sees the bridge at all: if the "
    f"same model's bridge-found rate on >= {MIN_CORRECT} correctly answered ID queries is below "
    f"{LOW}, a low (a) is 'lens blind' and leaves the claim undecided. "
    f"Otherwise inconclusive, naming what was missing. Across "
    f"families: supported (not supported) only if every eligible family agrees. The phi = max "
    f"control (every ID composition in training) is shown as an extra row, not judged.")


def _claim1_family(r: dict) -> tuple[str, list[str]]:
    """(verdict, what decided or is missing) for one family's claim-1 evidence."""
    if r.get("error"):
        return INCONCLUSIVE, [r["error"]]
    if min(r.get("acc_grokked") or 0, r.get("acc_nongrokked") or 0) < COMPOSES:
        return INCONCLUSIVE, [f"a model does not compose ID queries (test_inferred_iid "
                              f"{_f(r.get('acc_grokked'))} / {_f(r.get('acc_nongrokked'))})"]
    fails, missing = [], []
    a = r.get("bridge_correct_ood") or {}
    lens = r.get("bridge_correct_iid") or {}
    blind = (lens.get("n") or 0) >= MIN_CORRECT and (lens.get("value") or 0) < LOW
    if (a.get("n") or 0) < MIN_CORRECT:
        missing.append(f"(a) only {a.get('n') or 0} correct OOD predictions (< {MIN_CORRECT})")
    elif blind and (a.get("value") or 0) < HIGH:
        missing.append(f"(a) lens blind: the bridge is found on {_f(a['value'])} of the correct "
                       f"OOD predictions, but also on only {_f(lens['value'])} of the "
                       f"{lens['n']} correct ID answers, so a low rate says nothing")
    elif a["ci"][1] is not None and a["ci"][1] < LOW:
        fails.append(f"(a) bridge found on {_f(a['value'])} of correct OOD predictions")
    elif (a.get("value") or 0) < HIGH:
        missing.append(f"(a) bridge found on {_f(a['value'])} < {HIGH} of correct OOD predictions")
    b = r.get("path") or {}
    lo, hi = (b.get("ci") or [None, None])
    if b.get("value") is None or lo is None:
        missing.append("(b) no path comparison")
    elif hi < SIMILAR:
        fails.append(f"(b) path similarity {_f(b['value'])} [{_f(lo)}, {_f(hi)}] < {SIMILAR}")
    elif lo < SIMILAR:
        missing.append(f"(b) path similarity CI [{_f(lo)}, {_f(hi)}] straddles {SIMILAR}")
    diffs = r.get("transfer_diff") or {}
    if not diffs:
        missing.append("(c) no finetuned pair")
    for cat, d in diffs.items():
        lo, hi = d.get("ci") or [None, None]
        if lo is None:
            missing.append(f"(c) {cat}: no queries")
        elif lo > TRANSFER_EQUIV or hi < -TRANSFER_EQUIV:
            fails.append(f"(c) {cat} differs by {_f(d['value'])} [{_f(lo)}, {_f(hi)}]")
        elif lo < -TRANSFER_EQUIV or hi > TRANSFER_EQUIV:
            missing.append(f"(c) {cat} difference CI [{_f(lo)}, {_f(hi)}] (n={d.get('n')}) "
                           f"not within +-{TRANSFER_EQUIV}")
    if fails:
        return NOT_SUPPORTED, fails
    if missing:
        return INCONCLUSIVE, missing
    return SUPPORTED, ["(a), (b) and (c) all met"]


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def judge_claim1(rows: list[dict]) -> Verdict:
    """rows: one per family: {family, acc_grokked, acc_nongrokked, bridge_correct_ood: rate
    CI, path: {value, ci}, transfer_diff: {category: difference CI}} (analysis/claim1-*.json)."""
    per, why = {}, {}
    for r in rows:
        per[r["family"]], why[r["family"]] = _claim1_family(r)
    eligible = [f for f, v in per.items() if not (v == INCONCLUSIVE and why[f]
                and "does not compose" in why[f][0])]
    decided = {per[f] for f in eligible if per[f] != INCONCLUSIVE}
    if eligible and all(per[f] != INCONCLUSIVE for f in eligible) and len(decided) == 1:
        verdict = decided.pop()
    else:
        verdict = INCONCLUSIVE
    reason = "; ".join(f"{f}: {v} ({'; '.join(why[f])})" for f, v in per.items()) \
        or "no comparison ran"
    return Verdict("1 same path", verdict, CLAIM1_RULE, reason,
                   {"per_family": per, "why": why})


# ---------------------------------------------------------------------------- claim 2
# Families whose bridge-found rate indicates a circuit (``GrokModel.circuit_indicator``; the
# study passes them in, this default serves callers without the model layer). In causal models
# (decoder, looped) the r1 position is trained on the atomic fact h r1 -> b, so b is decoded
# there by memorisation alone: the lens rate cannot tell circuit from no circuit, so they are
# shown but not judged.
CIRCUIT_FAMILIES = ("recursive",)

CLAIM2_RULE = (
    f"Judged on the parameter-sharing (recursive) runs only, as in the study: in causal "
    f"models the lens finds the bridge at r1 by memorising atomic facts, so their bridge-found "
    f"rate is no circuit indicator (their rows are shown for information). Measured as the "
    f"study measured it (study.md section 9), by the logit lens with the study's rule (any "
    f"stage, any position) on test_inferred_ood: the answer is 'target found' (t decodable "
    f"somewhere), the circuit is 'bridge found' (b decodable somewhere). Per run: 'accuracy "
    f"without circuit' when target-found >= {HIGH} while bridge-found < {LOW}; 'circuit "
    f"without accuracy' when bridge-found >= {HIGH} while target-found < {LOW}; a dissociation "
    f"counts when it holds at the final evaluation or on {PERSIST} consecutive evaluations. "
    f"The same test with exact-match OOD accuracy in place of target-found is reported beside "
    f"it. 'Accuracy without circuit' also needs the lens to see the bridge at all in that run: "
    f"a bridge-found rate >= {LOW} on the correctly answered ID test queries at some "
    f"evaluation with >= {MIN_CORRECT} of them, above its chance control; otherwise the run is "
    f"'lens blind' and not counted. "
    f"Supported if at least one run shows a dissociation; not supported if none does and every "
    f"regime's run ends with both target-found and bridge-found >= {HIGH}; otherwise "
    f"inconclusive (too few runs reached either threshold to see them come apart).")


def _dissociations(answer: list, bridge: list) -> tuple[bool, bool]:
    acc_wo = [o is not None and b is not None and o >= HIGH and b < LOW
              for o, b in zip(answer, bridge)]
    circ_wo = [o is not None and b is not None and b >= HIGH and o < LOW
               for o, b in zip(answer, bridge)]
    return _persistent(acc_wo, PERSIST), _persistent(circ_wo, PERSIST)


def timeline(steps: list[int], train: list[float | None], ood: list[float | None],
             bridge: list[float | None], bridge_id: list[float | None] | None = None,
             target: list[float | None] | None = None,
             chance_id: list[float | None] | None = None,
             n_correct_id: list[float | None] | None = None) -> dict:
    """Grokking timeline of one run: first steps past thresholds, final values, flags.

    ``ood``: exact-match OOD accuracy; ``target``: the study's 'target found' rate on the OOD
    test (None: EM stands in for it); ``bridge``: bridge-found on the OOD test.
    ``bridge_id`` (and its chance control ``chance_id``): bridge-found on the correctly answered
    ID test queries, which validates the lens (None: not checked); without a rate >= LOW there
    above chance, on at least MIN_CORRECT correctly answered queries (``n_correct_id``; None:
    not known), 'accuracy without circuit' becomes 'lens blind'.
    """
    last = lambda xs: next((x for x in reversed(xs) if x is not None), None)  # noqa: E731
    answer = target if target is not None and any(t is not None for t in target) else ood
    ids = bridge_id or []
    chance = chance_id or [None] * len(ids)
    counts = n_correct_id or [None] * len(ids)
    seen = [b for b, c, k in zip(ids, chance, counts)
            if b is not None and (c is None or b > c) and (k is None or k >= MIN_CORRECT)]
    # the lens-validity numbers count only evaluations with enough correct queries to mean something
    max_id = max((b for b, k in zip(ids, counts) if b is not None and (k is None or k >= MIN_CORRECT)),
                 default=None)
    lens_sees = bridge_id is None or (bool(seen) and max(seen) >= LOW)
    acc_without, circ_without = _dissociations(answer, bridge)
    acc_without_em, circ_without_em = _dissociations(ood, bridge)
    return {
        "answer_measure": "target_found" if answer is target else "em",
        "train_fit_step": first_step(steps, train, FIT),
        "bridge_high_step": first_step(steps, bridge, HIGH),
        "ood_half_step": first_step(steps, ood, 0.5),
        "ood_high_step": first_step(steps, ood, HIGH),
        "target_half_step": first_step(steps, answer, 0.5),
        "target_high_step": first_step(steps, answer, HIGH),
        "final_step": steps[-1] if steps else None,
        "final_train": last(train),
        "final_ood": last(ood),
        "max_ood": max((o for o in ood if o is not None), default=None),
        "final_target": last(answer),
        "max_target": max((o for o in answer if o is not None), default=None),
        "final_bridge": last(bridge),
        "max_bridge": max((b for b in bridge if b is not None), default=None),
        "max_bridge_id": max_id,
        "accuracy_without_circuit": acc_without and lens_sees,
        "lens_blind": acc_without and not lens_sees,
        "circuit_without_accuracy": circ_without,
        "em_accuracy_without_circuit": acc_without_em and lens_sees,
        "em_circuit_without_accuracy": circ_without_em,
    }


def judge_claim2(timelines: dict[str, dict],
                 circuit_families: tuple[str, ...] = CIRCUIT_FAMILIES) -> Verdict:
    """timelines: {"family/regime": timeline(...)}; only ``circuit_families`` are judged."""
    timelines = {k: t for k, t in timelines.items() if k.split("/")[0] in circuit_families}
    if not timelines:
        return Verdict("2 fake grokking", INCONCLUSIVE, CLAIM2_RULE,
                       "no recursive (parameter-sharing) runs in this study", {})
    flagged = [k for k, t in timelines.items()
               if t["accuracy_without_circuit"] or t["circuit_without_accuracy"]]
    answer = lambda t, key: t.get(key.replace("ood", "target"), t[key])  # noqa: E731
    coupled = [k for k, t in timelines.items()
               if (answer(t, "final_ood") or 0) >= HIGH and (t["final_bridge"] or 0) >= HIGH]
    reached = [k for k, t in timelines.items()
               if (answer(t, "max_ood") or 0) >= HIGH or (t["max_bridge"] or 0) >= HIGH]
    if flagged:
        verdict = SUPPORTED
        reason = "dissociation in " + ", ".join(
            f"{k} ({'accuracy without circuit' if timelines[k]['accuracy_without_circuit'] else 'circuit without accuracy'})"
            for k in flagged)
    elif timelines and len(coupled) == len(timelines):
        verdict = NOT_SUPPORTED
        reason = "every run ends with the OOD answer (target found) and bridge found both high"
    else:
        verdict = INCONCLUSIVE
        reason = (f"no dissociation; {len(reached)} of {len(timelines)} runs reached the OOD answer "
                  f"or bridge-found >= {HIGH}")
        blind = [k for k, t in timelines.items() if t.get("lens_blind")]
        if blind:
            reason += "; lens blind in " + ", ".join(
                f"{k} (OOD answer >= {HIGH} with a low OOD bridge rate, but the lens finds the "
                f"bridge on at most {_f(timelines[k]['max_bridge_id'])} of correct ID queries "
                "too, or no more than chance)" for k in blind)
    em = [k for k, t in timelines.items()
          if t.get("em_accuracy_without_circuit") or t.get("em_circuit_without_accuracy")]
    reason += ("; with exact-match OOD accuracy in place of target-found: dissociation in "
               + (", ".join(em) if em else "no run"))
    return Verdict("2 fake grokking", verdict, CLAIM2_RULE, reason,
                   {"flagged": flagged, "coupled": coupled, "reached": reached,
                    "lens_blind": [k for k, t in timelines.items() if t.get("lens_blind")]})


# ---------------------------------------------------------------------------- claim 3
CLAIM3_RULE = (
    f"Finetune each pretrained model on replay + new atomic facts (no compositions with new "
    f"facts). Eligible models: new-fact EM >= {NEW_LEARNED} after finetuning and the pretrained "
    f"model composed ID queries (test_inferred_iid >= {COMPOSES}). Supported if, over eligible "
    f"models, the best old_new and new_new EM are <= {SECOND_HOP_LOW} (new facts almost never "
    f"used as second hop) and the best new_old EM is >= {FIRST_HOP_OK} (usable as first hop). "
    f"Not supported if some eligible model reaches old_new or new_new EM >= {SECOND_HOP_HIGH}, "
    f"or no eligible model reaches new_old EM >= {SECOND_HOP_LOW}. Otherwise, or with no "
    f"eligible model, inconclusive.")


def judge_claim3(rows: list[dict]) -> Verdict:
    """rows: {run, pretrained_iid (None for scratch), atomic_new, new_old, old_new, new_new}."""
    eligible = [r for r in rows if r.get("pretrained_iid") is not None
                and r["pretrained_iid"] >= COMPOSES and r["atomic_new"] >= NEW_LEARNED]
    if not eligible:
        return Verdict("3 limited transfer", INCONCLUSIVE, CLAIM3_RULE,
                       "no finetuned model both composed ID queries before and learned the new facts",
                       {"eligible": []})
    second = max(max(r["old_new"], r["new_new"]) for r in eligible)
    first = max(r["new_old"] for r in eligible)
    names = [r["run"] for r in eligible]
    reason = (f"eligible: {', '.join(names)}; best new_old EM {first:.3f}, "
              f"best old_new/new_new EM {second:.3f}")
    if second <= SECOND_HOP_LOW and first >= FIRST_HOP_OK:
        verdict = SUPPORTED
    elif second >= SECOND_HOP_HIGH or first < SECOND_HOP_LOW:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return Verdict("3 limited transfer", verdict, CLAIM3_RULE, reason,
                   {"eligible": names, "best_first_hop": first, "best_second_hop": second})


# ---------------------------------------------------------------------------- claim 4
def claim4_rule(target: float) -> str:
    return (
        f"Per family, steps to reach OOD accuracy >= {target} for both_full (s_aug) and natural "
        f"(s_nat; if natural never reaches it, its step budget is a lower bound). Supported if "
        f"s_nat / s_aug >= {SPEEDUP_YES} (lower bound counts); not supported if natural reached "
        f"the target and s_nat / s_aug < {SPEEDUP_NO}; otherwise, or if both_full never reaches "
        f"the target, inconclusive. Across families: as claim 1.")


def judge_claim4(rows: list[dict], target: float) -> Verdict:
    """rows: {family, aug_steps|None, nat_steps|None, nat_budget}."""
    per = {}
    for r in rows:
        if r["aug_steps"] is None:
            per[r["family"]] = (INCONCLUSIVE + " (both_full never reached the target)", None)
            continue
        nat = r["nat_steps"] if r["nat_steps"] is not None else r["nat_budget"]
        ratio = nat / max(r["aug_steps"], 1)
        bound = "" if r["nat_steps"] is not None else ">= "
        if ratio >= SPEEDUP_YES:
            per[r["family"]] = (SUPPORTED, f"{bound}{ratio:.1f}x")
        elif r["nat_steps"] is not None and ratio < SPEEDUP_NO:
            per[r["family"]] = (NOT_SUPPORTED, f"{ratio:.1f}x")
        else:
            per[r["family"]] = (INCONCLUSIVE, f"{bound}{ratio:.1f}x")
    decided = {v for v, _ in per.values() if v in (SUPPORTED, NOT_SUPPORTED)}
    all_decided = per and all(v in (SUPPORTED, NOT_SUPPORTED) for v, _ in per.values())
    verdict = decided.pop() if all_decided and len(decided) == 1 else INCONCLUSIVE
    reason = "; ".join(f"{f}: {v}" + (f" (speed-up {x})" if x else "") for f, (v, x) in per.items())
    return Verdict("4 compute", verdict, claim4_rule(target), reason or "no runs",
                   {"per_family": {f: v for f, (v, _) in per.items()}})
