"""The study's claims as explicit, stated verdict rules over measured numbers.

Each ``judge_*`` function takes numbers read from run directories and returns a
:class:`Verdict`: one of ``supported`` / ``not supported`` / ``inconclusive at this scale``,
the rule that decided it (written into the report word for word) and the reason in numbers.
No rule ever returns a verdict that its inputs do not show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import math

from groklab.study.measure import difference, interval, rate, t975, value

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
    per_family: dict = field(default_factory=dict)   # family -> {"verdict", "why"}
    decide: list = field(default_factory=list)       # what, in numbers, would decide it

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


NOT_ELIGIBLE = "not eligible"   # a family where the claim's premise does not hold: not counted


def overall(per: dict[str, str]) -> str:
    """OVERALL_RULE over per-family verdicts (NOT_ELIGIBLE families are not counted)."""
    counted = {f: v for f, v in per.items() if v != NOT_ELIGIBLE}
    decided = set(counted.values())
    if counted and len(decided) == 1 and INCONCLUSIVE not in decided:
        return decided.pop()
    return INCONCLUSIVE


OVERALL_RULE = ("Overall: supported (not supported) only if every eligible family is, and at "
                "least one family is eligible; families that disagree, or any undecided eligible "
                "family, leave the claim inconclusive. A family is not eligible where the claim's "
                "premise does not hold in it (named in its row); it is reported, not counted.")


# ---------------------------------------------------------------------------- grokking delay
DELAY_FACTOR = 2.0    # grokked: ID generalisation at >= this multiple of the train-fit step
DELAY_EVALS = 2       # ... at least this many evaluations after the fit
GROKKED_LABEL = "grokked"
WHILE_FITTING = "generalised while fitting"
NO_GENERALISATION = "did not generalise"
NO_FIT = "did not fit"

GROK_RULE = (
    f"A run 'grokked' when it first fit its training set (train accuracy >= {FIT}) at step "
    f"s_fit while its ID test accuracy was still below {LOW} (it memorised first), and first "
    f"reached ID test accuracy >= {COMPOSES} at a step s_gen >= {DELAY_FACTOR:g} x s_fit that is "
    f"at least {DELAY_EVALS} evaluations after s_fit. A run that reached ID >= {COMPOSES} "
    f"otherwise '{WHILE_FITTING}'; one that never did '{NO_GENERALISATION}'; one that never "
    f"fit '{NO_FIT}' (if it generalised anyway: '{WHILE_FITTING}').")


def grokking(steps: list[int], train: list, iid: list, ood: list | None = None,
             ood_target: float = 0.5) -> dict:
    """The run's train-fit step, generalisation steps (ID >= COMPOSES, OOD >= ood_target), the
    delays between them and its GROK_RULE label."""
    fit = first_step(steps, train, FIT)
    gen = first_step(steps, iid, COMPOSES)
    ood_step = first_step(steps, ood, ood_target) if ood is not None else None
    at_fit = next((v for s, v in zip(steps, iid) if s == fit), None) if fit is not None else None
    evals_after = sum(1 for s in steps if fit is not None and gen is not None and fit < s <= gen)
    if gen is None:
        label = NO_FIT if fit is None else NO_GENERALISATION
    elif (fit is not None and at_fit is not None and at_fit < LOW and gen >= DELAY_FACTOR * fit
          and evals_after >= DELAY_EVALS):
        label = GROKKED_LABEL
    else:
        label = WHILE_FITTING
    return {"label": label, "fit_step": fit, "id_step": gen, "ood_step": ood_step,
            "iid_at_fit": at_fit, "id_delay": None if None in (fit, gen) else gen - fit,
            "ood_delay": None if None in (fit, ood_step) else ood_step - fit,
            "ratio": None if None in (fit, gen) or not fit else gen / fit,
            "final_step": steps[-1] if steps else None}


def grokking_why(g: dict) -> str:
    """One phrase: the label and the numbers that gave it."""
    fit, gen = g.get("fit_step"), g.get("id_step")
    if g["label"] == GROKKED_LABEL:
        return (f"grokked: fit at {fit:,} (ID {g['iid_at_fit']:.2f}), ID >= {COMPOSES} at "
                f"{gen:,} ({g['ratio']:.1f}x)")
    if g["label"] == WHILE_FITTING:
        if fit is None:
            return f"{WHILE_FITTING}: ID >= {COMPOSES} at {gen:,} without ever fitting"
        at = g.get("iid_at_fit")
        return (f"{WHILE_FITTING}: fit at {fit:,} with ID already {at:.2f}, ID >= {COMPOSES} "
                f"at {gen:,} ({gen / max(fit, 1):.1f}x the fit step; grokking needs ID < {LOW} "
                f"at the fit and >= {DELAY_FACTOR:g}x)")
    if g["label"] == NO_GENERALISATION:
        return f"{NO_GENERALISATION}: fit at {fit:,}, ID < {COMPOSES} to step {g['final_step']:,}"
    return f"{NO_FIT} within {g.get('final_step') or 0:,} steps"


# ---------------------------------------------------------------------------- claim 1
TRANSFER_EQUIV = 0.2  # claim 1 (c): transfer EM differences within +-this count as equivalent
MIN_CORRECT = 10      # claim 1 (a): fewest correct OOD predictions that can decide it
MIN_FREE = 3          # claim 1 (b): fewest free tracing cells a correlation can mean anything on

CLAIM1_RULE = (
    f"Per model family, the study's comparison: the naturally trained model at the end of its "
    f"budget (grokked) against the both_full model stopped at training saturation (the first "
    f"checkpoint with train accuracy >= {FIT}: fully supervised, non-grokked). Eligible only "
    f"if both compose ID queries (test_inferred_iid >= {COMPOSES}). The natural run must have "
    f"grokked by the delay rule (below); otherwise the comparison is not grokked vs non-grokked "
    f"and the family is undecided. Three measures, each with a 95% CI: (a) among both_full's "
    f"correct OOD predictions, the fraction with the bridge found by the lens at any stage "
    f"(recursive: any position, the study's rule; causal models: r2, since their r1 state "
    f"decodes b by hop-1 recall); (b) path similarity on ID queries both models answer right: "
    f"Pearson r of the causal-tracing grids (r1 corrupted) over the grid's free cells only "
    f"(cells with one value on every query of both models are fixed by the architecture and "
    f"would inflate r), needing >= {MIN_FREE} free cells; (c) transfer equivalence: natural "
    f"minus both_full EM on each claim-3 category after both are finetuned on the same new "
    f"facts. Negative control for (b): a model that answers the training compositions without "
    f"composing, against the final natural model, on the training compositions both answer: "
    f"the memoriser, the family's recipe trained on the natural dataset with its training "
    f"compositions' answers permuted (they can only be memorised), at its fit (first "
    f"checkpoint with train_inferred >= {FIT}), each model's tracing judged on the answers it "
    f"was trained on, counted only if its ID accuracy is then below {LOW}; where it gives no "
    f"comparison, the natural run's own checkpoint at training fit if its ID accuracy was then "
    f"below {LOW} (a memorising model at the same train accuracy); it must come out "
    f"dissimilar (CI upper bound below {SIMILAR}), else the path test cannot tell memorisation "
    f"from the circuit. Supported if (a) >= {HIGH} on >= {MIN_CORRECT} queries, (b)'s CI lies "
    f"at or above {SIMILAR}, the negative control is dissimilar, and every (c) CI lies within "
    f"+-{TRANSFER_EQUIV}. Not supported if (a)'s CI lies below {LOW} (on >= {MIN_CORRECT} "
    f"queries), (b)'s CI lies below {SIMILAR}, or some (c) CI lies entirely outside "
    f"+-{TRANSFER_EQUIV}. (a) counts only where the lens sees the bridge at all: if the same "
    f"model's bridge-found rate on >= {MIN_CORRECT} correctly answered ID queries is below "
    f"{LOW} or not above its chance control, a low (a) is 'lens blind' and leaves the claim "
    f"undecided. Otherwise inconclusive, "
    f"naming what was missing. " + OVERALL_RULE + " The phi = max control is an extra row.")


def _claim1_family(r: dict) -> tuple[str, list[str]]:
    """(verdict, what decided or is missing) for one family's claim-1 evidence (a single seed's
    numbers or measures pooled over seeds: read through measure.value / measure.interval)."""
    if r.get("error"):
        return NOT_ELIGIBLE, [r["error"]]
    acc_g, acc_n = value(r.get("acc_grokked")), value(r.get("acc_nongrokked"))
    if min(acc_g or 0, acc_n or 0) < COMPOSES:
        short = [f"{name} answers {_f(acc)} of the ID test" for name, acc in
                 (("the natural model", acc_g), ("both_full at training saturation", acc_n))
                 if (acc or 0) < COMPOSES]
        return NOT_ELIGIBLE, [f"a model does not compose ID queries: {' and '.join(short)} "
                              f"(both need test_inferred_iid >= {COMPOSES}; natural "
                              f"{_f(acc_g)}, both_full {_f(acc_n)})"]
    g = r.get("grokking")
    if g is not None and g.get("label") != GROKKED_LABEL:
        return NOT_ELIGIBLE, [f"the natural run did not grok ({g.get('why') or g.get('label')})"]
    fails, missing = [], []
    a = r.get("bridge_correct_ood") or {}
    lens = r.get("bridge_correct_iid") or {}
    a_val, (a_lo, a_hi) = value(a), interval(a)
    chance = value(lens.get("chance") or {})
    blind = (lens.get("n") or 0) >= MIN_CORRECT and (
        (value(lens) or 0) < LOW or (chance is not None and (value(lens) or 0) <= chance))
    if (a.get("n") or 0) < MIN_CORRECT:
        missing.append(f"(a) only {a.get('n') or 0} correct OOD predictions (< {MIN_CORRECT})")
    elif blind and (a_val or 0) < HIGH:
        missing.append(f"(a) lens blind: the bridge is found on {_f(a_val)} of the correct "
                       f"OOD predictions, but also on only {_f(value(lens))} of the "
                       f"{lens['n']} correct ID answers (chance {_f(chance)}), so a low rate "
                       "says nothing")
    elif a_hi is not None and a_hi < LOW:
        fails.append(f"(a) bridge found on {_f(a_val)} [{_f(a_lo)}, {_f(a_hi)}] of correct OOD "
                     "predictions")
    elif (a_val or 0) < HIGH:
        missing.append(f"(a) bridge found on {_f(a_val)} < {HIGH} of correct OOD predictions")
    _claim1_paths(r, fails, missing)
    diffs = r.get("transfer_diff") or {}
    if not diffs:
        missing.append("(c) no finetuned pair")
    for cat, d in diffs.items():
        lo, hi = interval(d)
        if lo is None:
            missing.append(f"(c) {cat}: no queries")
        elif lo > TRANSFER_EQUIV or hi < -TRANSFER_EQUIV:
            fails.append(f"(c) {cat} differs by {_f(value(d))} [{_f(lo)}, {_f(hi)}]")
        elif lo < -TRANSFER_EQUIV or hi > TRANSFER_EQUIV:
            missing.append(f"(c) {cat} difference CI [{_f(lo)}, {_f(hi)}] (n={d.get('n')}) "
                           f"not within +-{TRANSFER_EQUIV}")
    if fails:
        return NOT_SUPPORTED, fails
    if missing:
        return INCONCLUSIVE, missing
    return SUPPORTED, ["(a), (b) with its negative control, and (c) all met"]


def _claim1_paths(r: dict, fails: list, missing: list) -> None:
    """(b) and its negative control: free-cell correlations where the evidence has them."""
    b = r.get("path") or {}
    free, cells = b.get("free_cells"), b.get("cells")
    if free is not None:
        val, (lo, hi) = value(b.get("free") or {}), interval(b.get("free") or {})
        where = f" over {free} of {cells} free cells"
    else:  # evidence written before free cells were counted: the whole grid
        val, (lo, hi), where = value(b), interval(b), " (whole grid)"
    if free is not None and free < MIN_FREE:
        missing.append(f"(b) only {free} of {cells} tracing cells are free (the others are fixed "
                       f"by the architecture): a deeper or looped model is needed")
    elif val is None or lo is None:
        missing.append("(b) no path comparison" + (f" ({b['error']})" if b.get("error") else ""))
    elif hi < SIMILAR:
        fails.append(f"(b) path similarity {_f(val)} [{_f(lo)}, {_f(hi)}]{where} < {SIMILAR}")
    elif lo < SIMILAR:
        missing.append(f"(b) path similarity CI [{_f(lo)}, {_f(hi)}]{where} straddles {SIMILAR}")
    neg = r.get("negative_control") or {}
    nval, (nlo, nhi) = value(neg), interval(neg)
    if nval is None or nhi is None:
        missing.append("(b) no negative control" + (f" ({neg['error']})" if neg.get("error") else ""))
    elif nhi >= SIMILAR:
        kind = CONTROL_KINDS.get(neg.get("kind"), "a memorising model")
        missing.append(f"(b) the negative control ({kind}) is not dissimilar: "
                       f"r = {_f(nval)} [{_f(nlo)}, {_f(nhi)}], so the path test cannot tell "
                       "memorisation from the circuit here")


CONTROL_KINDS = {"checkpoint": "the natural run's memorising checkpoint",
                 "memoriser": "the memoriser, trained on permuted answers",
                 "mixed": "memorising checkpoints and memorisers over the seeds"}


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def judge_claim1(rows: list[dict]) -> Verdict:
    """rows: one per family (analysis/claim1-*.json, or pooled over seeds): {family,
    acc_grokked, acc_nongrokked, grokking, bridge_correct_ood, bridge_correct_iid, path,
    negative_control, transfer_diff}."""
    per, why = {}, {}
    for r in rows:
        per[r["family"]], why[r["family"]] = _claim1_family(r)
    verdict = overall(per) if per else INCONCLUSIVE
    reason = "; ".join(f"{f}: {v} ({'; '.join(why[f])})" for f, v in per.items()) \
        or "no comparison ran"
    decide = [f"{f}: {m}" for f, v in per.items() if v in (INCONCLUSIVE, NOT_ELIGIBLE)
              for m in why[f]]
    return Verdict("1 same path", verdict, CLAIM1_RULE, reason,
                   {"per_family": per, "why": why},
                   per_family={f: {"verdict": v, "why": why[f]} for f, v in per.items()},
                   decide=decide)


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
    f"it. A run's lens must see the bridge at all: a bridge-found rate >= {LOW} on the "
    f"correctly answered ID test queries at some evaluation with >= {MIN_CORRECT} of them, "
    f"above its chance control; otherwise the run is 'lens blind' (every run, whatever its "
    f"answer rates): its 'accuracy without circuit' is not counted and its 'no dissociation' "
    f"is not claimed. "
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
    not known), the run is 'lens blind': its bridge rates can neither show a dissociation nor
    rule one out, so 'accuracy without circuit' is not counted (``masked_dissociation`` says
    whether one would have been) and 'no dissociation' is not claimed for it either.
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
        "lens_blind": not lens_sees,
        "masked_dissociation": acc_without and not lens_sees,
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
                f"{k} (" + (f"OOD answer >= {HIGH} with a low OOD bridge rate, but " if
                            timelines[k].get("masked_dissociation") else "")
                + f"the lens finds the bridge on at most {_f(timelines[k]['max_bridge_id'])} of "
                "correct ID queries, or no more than chance)" for k in blind)
            reason += ": in these runs a dissociation can be neither shown nor ruled out"
    em = [k for k, t in timelines.items()
          if t.get("em_accuracy_without_circuit") or t.get("em_circuit_without_accuracy")]
    reason += ("; with exact-match OOD accuracy in place of target-found: dissociation in "
               + (", ".join(em) if em else "no run"))
    blind = [k for k, t in timelines.items() if t.get("lens_blind")]
    decide = []
    if verdict == INCONCLUSIVE:
        best = max(timelines, key=lambda k: answer(timelines[k], "max_ood") or 0)
        decide.append(f"a dissociation (one of OOD answer / bridge found >= {HIGH} while the other "
                      f"< {LOW}, for {PERSIST} evaluations or at the end) would support it; every "
                      f"regime ending with both >= {HIGH} would refute it; the highest OOD answer "
                      f"rate reached is {_f(answer(timelines[best], 'max_ood'))} ({best})")
        if blind:
            decide.append(f"{len(blind)} run(s) lens blind: a lens that finds the bridge on >= "
                          f"{LOW} of the correctly answered ID queries (above chance) in them")
    fams = sorted({k.split("/")[0] for k in timelines})
    return Verdict("2 fake grokking", verdict, CLAIM2_RULE, reason,
                   {"flagged": flagged, "coupled": coupled, "reached": reached,
                    "lens_blind": blind},
                   per_family={f: {"verdict": verdict, "why": [reason]} for f in fams},
                   decide=decide)


def judge_claim2_seeds(per_seed: list[dict[str, dict]],
                       circuit_families: tuple[str, ...] = CIRCUIT_FAMILIES) -> Verdict:
    """Claim 2 over seeds (a list of per-seed timeline dicts): a dissociation counts when the
    same run (family/regime) shows the same kind in more than half of the seeds; not supported
    when every seed is; otherwise inconclusive. One seed: judge_claim2."""
    seeds = [judge_claim2(t, circuit_families) for t in per_seed]
    if len(seeds) == 1:
        return seeds[0]
    kinds: dict[tuple, int] = {}
    for tl in per_seed:
        for k, t in tl.items():
            if k.split("/")[0] not in circuit_families:
                continue
            for kind in ("accuracy_without_circuit", "circuit_without_accuracy"):
                if t.get(kind):
                    kinds[(k, kind)] = kinds.get((k, kind), 0) + 1
    n = len(seeds)
    repl = {key: c for key, c in kinds.items() if c > n / 2}
    if repl:
        verdict = SUPPORTED
    elif all(v.verdict == NOT_SUPPORTED for v in seeds):
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    reason = (f"over {n} seeds: " + "; ".join(f"seed {i}: {v.verdict}" for i, v in enumerate(seeds))
              + ("; replicated dissociations: " + ", ".join(f"{k} ({kind.replace('_', ' ')}, "
                                                           f"{c}/{n} seeds)"
                                                           for (k, kind), c in repl.items())
                 if repl else "; no dissociation in more than half of the seeds"))
    decide = [] if verdict != INCONCLUSIVE else (
        [f"a dissociation in the same run in more than {n // 2} of the {n} seeds"]
        + [d for v in seeds for d in v.decide][:2])
    rule = (CLAIM2_RULE + " Over seeds: a dissociation counts when the same run shows it in more "
            "than half of the seeds; not supported when every seed is.")
    fams = sorted({k.split("/")[0] for t in per_seed for k in t if k.split("/")[0] in circuit_families})
    return Verdict("2 fake grokking", verdict, rule, reason,
                   {"per_seed": [v.verdict for v in seeds], "replicated": [list(k) for k in repl]},
                   per_family={f: {"verdict": verdict, "why": [reason]} for f in fams},
                   decide=decide)


# ---------------------------------------------------------------------------- claim 3
JUDGED_SOURCE = "natural"   # claim 3 is judged per family on its naturally pretrained model

CLAIM3_RULE = (
    f"Finetune each pretrained model on replay + new atomic facts (no compositions with new "
    f"facts). Judged per family on the model pretrained on the {JUDGED_SOURCE} data (the other "
    f"pretrained models are shown with the same numbers, not judged, so no family's verdict is "
    f"a best-of over regimes). Eligible: new-fact EM >= {NEW_LEARNED} after finetuning and the "
    f"pretrained model composed ID queries (test_inferred_iid >= {COMPOSES}). Second-hop EM = "
    f"the larger of old_new and new_new; the study's asymmetry = new_old EM minus second-hop EM, "
    f"with a 95% interval (Wilson per rate, Newcombe for the difference; pooled over seeds by "
    f"the pooling rule). Supported if new_old EM >= {FIRST_HOP_OK}, second-hop EM <= "
    f"{SECOND_HOP_LOW} and the asymmetry's CI lies above 0. Not supported if the asymmetry's CI "
    f"lies below 0 (new facts used more as second hop than as first), second-hop EM's CI lies "
    f"at or above {SECOND_HOP_HIGH}, or new_old EM's CI lies below {SECOND_HOP_LOW} (no "
    f"first-hop transfer). Otherwise, or not eligible, inconclusive. " + OVERALL_RULE)


def _em(r: dict, cat: str) -> dict:
    x = r.get(cat)
    return x if isinstance(x, dict) else rate(x, (r.get("n") or {}).get(cat))


def claim3_evidence(r: dict) -> dict:
    """new_old, second-hop EM and their asymmetry as measures, for one finetuned model."""
    no, on, nn = _em(r, "new_old"), _em(r, "old_new"), _em(r, "new_new")
    second = on if (value(on) or 0) >= (value(nn) or 0) else nn
    if isinstance(r.get("asymmetry"), dict):      # pooled over seeds: pooled per seed first
        asym = r["asymmetry"]
    else:
        asym = difference(no, second)
    return {"new_old": no, "second_hop": second,
            "second_hop_split": "old_new" if second is on else "new_new", "asymmetry": asym}


def _claim3_family(row: dict | None) -> tuple[str, list[str], list[str]]:
    """(verdict, why, what would decide it) for a family's judged model."""
    if row is None:
        return NOT_ELIGIBLE, [f"no finetune of the {JUDGED_SOURCE} model"], []
    iid, new = value(row.get("pretrained_iid")), value(row.get("atomic_new"))
    if iid is None or iid < COMPOSES or new is None or new < NEW_LEARNED:
        why = (f"pretrained ID {_f(iid)} (needs >= {COMPOSES}), new-fact EM "
               f"{_f(new)} (needs >= {NEW_LEARNED})")
        return NOT_ELIGIBLE, [why], [why]
    e = claim3_evidence(row)
    no, sec, asym = e["new_old"], e["second_hop"], e["asymmetry"]
    alo, ahi = interval(asym)
    slo, _ = interval(sec)
    _, nhi = interval(no)
    why = [f"new_old {_fm(no)}, {e['second_hop_split']} {_fm(sec)}, asymmetry {_fm(asym)}"]
    if ahi is not None and ahi < 0:
        return NOT_SUPPORTED, why + ["the asymmetry is reversed (second hop > first hop)"], []
    if slo is not None and slo >= SECOND_HOP_HIGH:
        return NOT_SUPPORTED, why + [f"second-hop EM >= {SECOND_HOP_HIGH}"], []
    if nhi is not None and nhi < SECOND_HOP_LOW:
        return NOT_SUPPORTED, why + [f"new_old EM's CI lies below {SECOND_HOP_LOW}: no first-hop "
                                     "transfer"], []
    if (value(no) or 0) >= FIRST_HOP_OK and (value(sec) or 0) <= SECOND_HOP_LOW and \
            alo is not None and alo > 0:
        return SUPPORTED, why, []
    decide = []
    if (value(no) or 0) < FIRST_HOP_OK:
        decide.append(f"new_old EM {_f(value(no))} needs >= {FIRST_HOP_OK} to support (or a CI "
                      f"below {SECOND_HOP_LOW} to refute)")
    if (value(sec) or 0) > SECOND_HOP_LOW:
        decide.append(f"second-hop EM {_f(value(sec))} needs <= {SECOND_HOP_LOW}")
    if alo is None or alo <= 0:
        decide.append(f"the asymmetry CI [{_f(alo)}, {_f(ahi)}] must exclude 0 (more queries or "
                      "seeds narrow it)")
    return INCONCLUSIVE, why, decide


def _fm(m) -> str:
    lo, hi = interval(m)
    n = m.get("n") if isinstance(m, dict) else None
    n = f", n={n}" if isinstance(n, int) else ""
    return f"{_f(value(m))} [{_f(lo)}, {_f(hi)}{n}]" if lo is not None else _f(value(m))


def judge_claim3(rows: list[dict]) -> Verdict:
    """rows: {run: "family/source", pretrained_iid (None for scratch), atomic_new, new_old,
    old_new, new_new} (numbers with "n": {category: queries}, or measures)."""
    fams = list(dict.fromkeys(r["run"].split("/")[0] for r in rows))
    per, why, decide = {}, {}, []
    for fam in fams:
        row = next((r for r in rows if r["run"] == f"{fam}/{JUDGED_SOURCE}"), None)
        per[fam], why[fam], d = _claim3_family(row)
        decide += [f"{fam}: {x}" for x in d]
    verdict = overall(per) if per else INCONCLUSIVE
    reason = "; ".join(f"{f}: {v} ({'; '.join(why[f])})" for f, v in per.items()) or "no finetune"
    return Verdict("3 limited transfer", verdict, CLAIM3_RULE, reason,
                   {"judged": [f"{f}/{JUDGED_SOURCE}" for f in fams]},
                   per_family={f: {"verdict": v, "why": why[f]} for f, v in per.items()},
                   decide=decide)


# ---------------------------------------------------------------------------- claim 4
def claim4_rule(target: float) -> str:
    return (
        f"Per family, steps to reach OOD accuracy >= {target} for both_full (s_aug) and natural "
        f"(s_nat; if natural never reaches it, its step budget is a lower bound). Speed-up = "
        f"s_nat / s_aug per seed; over seeds, its geometric mean with a 95% t-interval on the log "
        f"ratios (a lower bound when any seed's natural run was censored). Supported if the "
        f"speed-up's lower end is >= {SPEEDUP_YES} (lower bounds count); not supported if natural "
        f"reached the target in every seed and the upper end is < {SPEEDUP_NO}; otherwise, or if "
        f"both_full never reaches the target, inconclusive. " + OVERALL_RULE)


def _seq(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def speedup(aug: list, nat: list, budget: list) -> dict:
    """Per-seed speed-ups (censored where natural never reached the target) and their pool."""
    ratios, censored = [], []
    for a, n, b in zip(aug, nat, budget):
        ratios.append((n if n is not None else b) / max(a, 1))
        censored.append(n is None)
    logs = [math.log(max(r, 1e-9)) for r in ratios]
    mean = sum(logs) / len(logs)
    if len(logs) >= 2:
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
        half = t975(len(logs) - 1) * sd / math.sqrt(len(logs))
    else:
        half = 0.0
    return {"value": math.exp(mean), "ci": [math.exp(mean - half), math.exp(mean + half)],
            "per_seed": ratios, "censored": censored, "lower_bound": any(censored)}


def _at_least(x: float, bound: float) -> bool:
    """x >= bound, where a ratio that is the bound exactly (7,500 / 1,500) counts although
    the geometric mean's exp(log) lands one ulp below it."""
    return x >= bound or math.isclose(x, bound, rel_tol=1e-9)


def _budget_needed(fam: str, aug: list, budget: list, sp: dict) -> str:
    """What would decide a speed-up censored in every seed (``sp`` from ``speedup``): the
    natural budget at which the pooled interval's lower end reaches SPEEDUP_YES. Every seed's
    ratio is its budget over its both_full step, so with one budget for all seeds the interval
    scales with it."""
    need = max(budget) * SPEEDUP_YES / sp["ci"][0]
    if len(aug) == 1:
        return (f"{fam}: natural needs a budget >= {need:,.0f} steps ({SPEEDUP_YES:g}x both_full's "
                f"{aug[0]:,}) for the lower bound to reach {SPEEDUP_YES:g}x; it has {budget[0]:,}")
    every = all(_at_least(r, SPEEDUP_YES) for r in sp["per_seed"])
    spread = (f"every seed's bound already reaches {SPEEDUP_YES:g}x, but the seeds' spread "
              f"(both_full at {', '.join(f'{a:,}' for a in aug)}) widens the pooled interval "
              f"below it; " if every else "")
    return (f"{fam}: {spread}natural needs a budget >= {need:,.0f} steps for the pooled "
            f"interval's lower end to reach {SPEEDUP_YES:g}x (it has {max(budget):,}), or more "
            f"seeds to narrow it")


def judge_claim4(rows: list[dict], target: float) -> Verdict:
    """rows: {family, aug_steps, nat_steps, nat_budget}; each a number (one seed) or a list
    with one entry per seed (None: never reached)."""
    per, why, decide = {}, {}, []
    for r in rows:
        fam = r["family"]
        aug, nat, budget = _seq(r["aug_steps"]), _seq(r["nat_steps"]), _seq(r["nat_budget"])
        if any(a is None for a in aug):
            per[fam] = NOT_ELIGIBLE
            why[fam] = [f"both_full never reached the target in {sum(a is None for a in aug)} "
                        f"of {len(aug)} seed(s)"]
            decide.append(f"{fam}: a both_full budget long enough to reach OOD >= {target}")
            continue
        sp = speedup(aug, nat, budget)
        lo, hi = sp["ci"]
        bound = ">= " if sp["lower_bound"] else ""
        shown = (f"{bound}{sp['value']:.1f}x" + (f" [{lo:.1f}, {hi:.1f}]" if len(aug) > 1 else "")
                 + (f" (seeds: {', '.join(f'{x:.1f}' for x in sp['per_seed'])})" if len(aug) > 1
                    else ""))
        why[fam] = [f"speed-up {shown}", f"s_aug {', '.join(f'{a:,}' for a in aug)}",
                    "s_nat " + ", ".join("never" if n is None else f"{n:,}" for n in nat)]
        if _at_least(lo, SPEEDUP_YES):
            per[fam] = SUPPORTED
        elif not sp["lower_bound"] and not _at_least(hi, SPEEDUP_NO):
            per[fam] = NOT_SUPPORTED
        else:
            per[fam] = INCONCLUSIVE
            if sp["lower_bound"] and all(sp["censored"]):
                decide.append(_budget_needed(fam, aug, budget, sp))
            elif sp["lower_bound"]:
                decide.append(f"{fam}: the speed-up interval [{lo:.1f}, {hi:.1f}] over "
                              f"{len(aug)} seeds reaches below {SPEEDUP_YES:g}; a longer natural "
                              f"budget for the seeds where natural never reached the target, or "
                              f"more seeds, would narrow it")
            else:
                decide.append(f"{fam}: the speed-up interval [{lo:.1f}, {hi:.1f}] must lie above "
                              f"{SPEEDUP_YES:g} or below {SPEEDUP_NO:g} (more seeds narrow it)")
    verdict = overall(per) if per else INCONCLUSIVE
    reason = "; ".join(f"{f}: {v} ({'; '.join(why[f])})" for f, v in per.items()) or "no runs"
    return Verdict("4 compute", verdict, claim4_rule(target), reason,
                   {"per_family": per},
                   per_family={f: {"verdict": v, "why": why[f]} for f, v in per.items()},
                   decide=decide)
