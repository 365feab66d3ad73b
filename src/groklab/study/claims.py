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
CLAIM1_RULE = (
    f"Per model family, compare the grokked model (natural regime) with the fully supervised "
    f"control (all ID compositions in training) on ID test queries. Eligible only if both "
    f"reach test_inferred_iid >= {COMPOSES}. Supported if the bootstrap 95% CI of the path "
    f"similarity lies entirely at or above {SIMILAR}; not supported if it lies entirely below "
    f"{SIMILAR}; otherwise inconclusive. Across families: supported (not supported) only if "
    f"every eligible family agrees; no eligible family -> inconclusive.")


def judge_claim1(rows: list[dict]) -> Verdict:
    """rows: {family, similarity, ci_low, ci_high, acc_grokked, acc_control}."""
    per = {}
    for r in rows:
        if r.get("similarity") is None or r.get("ci_low") is None or r.get("ci_high") is None:
            per[r["family"]] = INCONCLUSIVE + " (no path comparison: " + r.get("error", "no CI") + ")"
        elif min(r["acc_grokked"] or 0, r["acc_control"] or 0) < COMPOSES:
            per[r["family"]] = INCONCLUSIVE + " (a model does not compose ID queries)"
        elif r["ci_low"] >= SIMILAR:
            per[r["family"]] = SUPPORTED
        elif r["ci_high"] < SIMILAR:
            per[r["family"]] = NOT_SUPPORTED
        else:
            per[r["family"]] = INCONCLUSIVE + " (CI straddles the threshold)"
    decided = [v for v in per.values() if v in (SUPPORTED, NOT_SUPPORTED)]
    eligible = [r for r in rows if min(r["acc_grokked"] or 0, r["acc_control"] or 0) >= COMPOSES]
    if eligible and decided and len(decided) == len(eligible) and len(set(decided)) == 1:
        verdict = decided[0]
    else:
        verdict = INCONCLUSIVE
    reason = "; ".join(f"{f}: {v}" for f, v in per.items()) or "no comparison ran"
    return Verdict("1 same path", verdict, CLAIM1_RULE, reason, {"per_family": per})


# ---------------------------------------------------------------------------- claim 2
# Families whose bridge-found rate indicates a circuit. In causal models (decoder, looped) the
# r1 position is trained on the atomic fact h r1 -> b, so b is decoded there by memorisation
# alone, and composing decoders do not decode b at r2 either (measured: ~0 at r2 while ID
# accuracy is high): the lens rate cannot tell circuit from no circuit, so they are shown but
# not judged.
CIRCUIT_FAMILIES = ("recursive",)

CLAIM2_RULE = (
    f"Judged on the parameter-sharing (recursive) runs only, as in the study: in causal "
    f"models the lens finds the bridge at r1 by memorising atomic facts, so their bridge-found "
    f"rate is no circuit indicator (their rows are shown for information). Per run, on "
    f"test_inferred_ood: 'accuracy without circuit' when OOD accuracy >= {HIGH} "
    f"while the bridge-found rate < {LOW}; 'circuit without accuracy' when bridge-found >= "
    f"{HIGH} while OOD accuracy < {LOW}; a dissociation counts when it holds at the final "
    f"evaluation or on {PERSIST} consecutive evaluations. 'Accuracy without circuit' also needs "
    f"the lens to see the bridge at all in that run: a bridge-found rate >= {LOW} on the ID test "
    f"(queries the model composes) at some evaluation; otherwise the run is 'lens blind' and "
    f"not counted (a low OOD rate then says nothing about the circuit). Supported if at least one run shows a "
    f"dissociation; not supported if none does and every regime's run ends with both OOD "
    f"accuracy and bridge-found >= {HIGH} (accuracy and circuit always together); otherwise "
    f"inconclusive (too few runs reached either threshold to see them come apart).")


def timeline(steps: list[int], train: list[float | None], ood: list[float | None],
             bridge: list[float | None], bridge_id: list[float | None] | None = None) -> dict:
    """Grokking timeline of one run: first steps past thresholds, final values, flags.

    ``bridge_id``: the bridge-found rate on the ID test, which validates the lens (None: not
    checked); without a rate >= LOW there, 'accuracy without circuit' becomes 'lens blind'.
    """
    acc_wo = [o is not None and b is not None and o >= HIGH and b < LOW for o, b in zip(ood, bridge)]
    circ_wo = [o is not None and b is not None and b >= HIGH and o < LOW for o, b in zip(ood, bridge)]
    last = lambda xs: next((x for x in reversed(xs) if x is not None), None)  # noqa: E731
    max_id = max((b for b in bridge_id or [] if b is not None), default=None)
    lens_sees = bridge_id is None or (max_id is not None and max_id >= LOW)
    acc_without = _persistent(acc_wo, PERSIST)
    return {
        "train_fit_step": first_step(steps, train, FIT),
        "bridge_high_step": first_step(steps, bridge, HIGH),
        "ood_half_step": first_step(steps, ood, 0.5),
        "ood_high_step": first_step(steps, ood, HIGH),
        "final_step": steps[-1] if steps else None,
        "final_train": last(train),
        "final_ood": last(ood),
        "max_ood": max((o for o in ood if o is not None), default=None),
        "final_bridge": last(bridge),
        "max_bridge": max((b for b in bridge if b is not None), default=None),
        "max_bridge_id": max_id,
        "accuracy_without_circuit": acc_without and lens_sees,
        "lens_blind": acc_without and not lens_sees,
        "circuit_without_accuracy": _persistent(circ_wo, PERSIST),
    }


def judge_claim2(timelines: dict[str, dict]) -> Verdict:
    """timelines: {"family/regime": timeline(...)}; only CIRCUIT_FAMILIES are judged."""
    timelines = {k: t for k, t in timelines.items() if k.split("/")[0] in CIRCUIT_FAMILIES}
    if not timelines:
        return Verdict("2 fake grokking", INCONCLUSIVE, CLAIM2_RULE,
                       "no recursive (parameter-sharing) runs in this study", {})
    flagged = [k for k, t in timelines.items()
               if t["accuracy_without_circuit"] or t["circuit_without_accuracy"]]
    coupled = [k for k, t in timelines.items()
               if (t["final_ood"] or 0) >= HIGH and (t["final_bridge"] or 0) >= HIGH]
    reached = [k for k, t in timelines.items()
               if (t["max_ood"] or 0) >= HIGH or (t["max_bridge"] or 0) >= HIGH]
    if flagged:
        verdict = SUPPORTED
        reason = "dissociation in " + ", ".join(
            f"{k} ({'accuracy without circuit' if timelines[k]['accuracy_without_circuit'] else 'circuit without accuracy'})"
            for k in flagged)
    elif timelines and len(coupled) == len(timelines):
        verdict = NOT_SUPPORTED
        reason = "every run ends with OOD accuracy and bridge-found both high"
    else:
        verdict = INCONCLUSIVE
        reason = (f"no dissociation; {len(reached)} of {len(timelines)} runs reached OOD accuracy "
                  f"or bridge-found >= {HIGH}")
        blind = [k for k, t in timelines.items() if t.get("lens_blind")]
        if blind:
            reason += "; lens blind in " + ", ".join(
                f"{k} (OOD accuracy >= {HIGH} with a low OOD bridge rate, but the lens finds the "
                f"bridge on at most {timelines[k]['max_bridge_id']:.2f} of ID queries too)"
                for k in blind)
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
