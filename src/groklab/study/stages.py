"""The stages of ``groklab reproduce``; each writes its outputs under the study directory.

Stage functions take the :class:`~groklab.study.pipeline.Study` and return a small dict that
goes into the stage's finished marker. Numbers they save come from run directories only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from groklab.fsutil import atomic_write_json
from groklab.study import engine
from groklab.study.claims import FIT, LOW, grokking, grokking_why, timeline
from groklab.forecast.features import first_hit
from groklab.study.compute import flops_per_step
from groklab.study.layout import (AUGMENTED, GROKKED, INJECTED, MEMORISER, SATURATED, SCRATCH,
                                  STAGE_NAMES)
from groklab.study.report import write_report
from groklab.study.scales import CONTROL, REGIMES

if TYPE_CHECKING:  # the pipeline calls the stages; they only use the Study it passes
    from groklab.study.pipeline import Study

OOD = "test_inferred_ood"
IID = "test_inferred_iid"
TRANSFER = ("atomic_new", "new_old", "old_new", "new_new")


def _series(rows: list[dict], key: str) -> list:
    return [r.get(key) for r in rows]


def final(rows: list[dict], key: str):
    """Value of ``key`` at the last evaluation that logged it."""
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


# ---------------------------------------------------------------------------- data
def stage_data(study: Study) -> dict:
    counts = {}
    for source in REGIMES + (CONTROL,):
        man = engine.make_data(study.data_config(source), study.data_dir(source))
        counts[source] = man["counts"]
        study.log(f"  data/{source}: " + ", ".join(f"{k} {v:,}" for k, v in man["counts"].items()))
    inj = dict(study.scale.inject)
    man = engine.make_injected(study.data_dir(GROKKED), study.data_dir(INJECTED),
                               new_facts=inj["new_facts"], replay=inj["replay"],
                               seed=study.graph_seed)
    counts[INJECTED] = man["counts"]
    study.log(f"  data/{INJECTED}: " + ", ".join(f"{k} {v:,}" for k, v in man["counts"].items()))
    return {"counts": counts}


# ---------------------------------------------------------------------------- pretrain
def stage_pretrain(study: Study) -> dict:
    results = study.train_all(study.stage_specs("pretrain"))
    return {"runs": sorted(results)}


# ---------------------------------------------------------------------------- claim 1
def stage_claim1(study: Study) -> dict:
    """The study's claim-1 comparison per family (claims.CLAIM1_RULE): natural (final) against
    both_full stopped at training saturation, by (a) bridge found on correct OOD predictions,
    (b) path similarity on ID queries, (c) transfer equivalence; plus the phi = max control."""
    sat = study.saturation_steps()
    study.train_all(study.stage_specs("claim1"))
    out = {}
    for fam in study.families:
        result = claim1_family(study, fam, sat[fam])
        atomic_write_json(study.analysis_dir / f"claim1-{fam}.json", result)
        path = result.get("path") or {}
        if result.get("error"):
            study.log(f"  {fam}: {result['error']}")
        else:
            a = result["bridge_correct_ood"]
            study.log(f"  {fam}: both_full@{sat[fam]}: bridge found on {_fmt(a['value'])} of "
                      f"{a['n']} correct OOD predictions; path similarity "
                      f"{_fmt(path.get('value'))} [{_fmt(path['ci'][0])}, {_fmt(path['ci'][1])}]")
        out[fam] = str((study.analysis_dir / f"claim1-{fam}.json").relative_to(study.out))
    return {"outputs": out, "saturation_steps": sat}


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def claim1_family(study: Study, fam: str, sat_step: int | None) -> dict:
    nat = study.run_dir("pretrain", fam, GROKKED)
    aug = study.run_dir("pretrain", fam, AUGMENTED)
    sup = study.run_dir("pretrain", fam, CONTROL)
    scale = study.scale
    aug_rows = engine.metrics(aug)
    result = {"family": fam, "grokked_run": str(nat.relative_to(study.out)),
              "nongrokked_run": str(aug.relative_to(study.out)), "saturation_step": sat_step,
              "acc_grokked": final(engine.metrics(nat), f"acc/{IID}"),
              "grokking": run_grokking(nat, scale.ood_target),
              "train_fit_step": next((int(r["step"]) for r in aug_rows
                                      if (r.get("train_acc") or 0) >= FIT), None)}
    result["negative_control"] = negative_control(study, nat, fam)
    control = engine.compare_paths(nat, sup, split=IID, n=scale.compare_queries,
                                   bootstrap=scale.bootstrap, device=study.device)
    result["phi_max_control"] = {
        "run": str(sup.relative_to(study.out)), "acc": final(engine.metrics(sup), f"acc/{IID}"),
        **{k: control.get(k) for k in ("similarity", "ci_low", "ci_high", "n", "lens_corr",
                                       "lens_ci", "error")}}
    if sat_step is None:
        result["error"] = (f"both_full never reached train accuracy >= {FIT} with a checkpoint "
                           f"after it (budget {aug_rows[-1]['step'] if aug_rows else 0} steps)")
        return result
    acc = engine.accuracy_at(aug, sat_step, (IID, OOD))
    result["acc_nongrokked"], result["ood_nongrokked"] = acc.get(IID), acc.get(OOD)
    result["bridge_correct_ood"] = engine.bridge_on_correct(aug, sat_step, OOD, scale.bootstrap)
    result["bridge_correct_iid"] = engine.bridge_on_correct(aug, sat_step, IID, scale.bootstrap)
    result["bridge_correct_ood_grokked"] = engine.bridge_on_correct(nat, None, OOD, scale.bootstrap)
    paths = engine.compare_paths(nat, aug, split=IID, n=scale.compare_queries,
                                 bootstrap=scale.bootstrap, device=study.device, step_b=sat_step)
    result["path"] = {"value": paths["similarity"], "ci": [paths["ci_low"], paths["ci_high"]],
                      "n": paths["n"], "measure": paths["measure"], "error": paths.get("error"),
                      "lens_corr": paths.get("lens_corr"), "lens_ci": paths.get("lens_ci"),
                      "free_cells": paths.get("free_cells"), "cells": paths.get("cells"),
                      "free": {"value": paths.get("similarity_free"),
                               "ci": paths.get("free_ci") or [None, None], "n": paths["n"]}}
    for key in ("maps", "maps_title", "measure"):
        if key in paths:
            result[key] = paths[key]
    result["transfer_diff"] = engine.transfer_difference(
        study.run_dir("finetune", fam, GROKKED), study.run_dir("finetune", fam, SATURATED),
        TRANSFER, scale.bootstrap)
    return result


def run_grokking(run_dir: Path, ood_target: float) -> dict:
    """The run's grokking-delay numbers and label (claims.GROK_RULE)."""
    rows = engine.metrics(run_dir)
    g = grokking([int(r["step"]) for r in rows], _series(rows, "train_acc"),
                 _series(rows, f"acc/{IID}"), _series(rows, f"acc/{OOD}"), ood_target)
    return {**g, "why": grokking_why(g)}


MEMORISED = "train_inferred"   # the negative control's queries: compositions both models trained on


def negative_control(study: Study, nat: Path, fam: str) -> dict:
    """Claim 1's negative control (claims.CLAIM1_RULE): a model that answers the training
    compositions without the composition circuit, against the final natural model, by path
    similarity on those compositions. The family's memoriser, trained on the same queries
    with their answers permuted (it cannot compose what it was taught); where it gives no
    comparison, the natural run's own checkpoint at training fit if it did not compose ID
    queries then (a memorising model at the same train accuracy). The other control, when it
    ran, is kept under ``other``."""
    mem = {**_memoriser(study, nat, study.run_dir("pretrain", fam, MEMORISER)),
           "kind": "memoriser"}
    ckpt = {**_memorising_checkpoint(study, nat), "kind": "checkpoint"}
    first, second = (mem, ckpt) if mem.get("value") is not None or ckpt.get("value") is None \
        else (ckpt, mem)
    other = {k: v for k, v in second.items() if k != "grids"}
    if first.get("value") is None:   # neither: both reasons
        return {**first, "other": other, "error": f"{first['kind']}: {first.get('error')}; "
                                                  f"{second['kind']}: {second.get('error')}"}
    return {**first, "other": other}


def _memorising_checkpoint(study: Study, nat: Path) -> dict:
    step = engine.saturation_checkpoint(nat, FIT)
    if step is None:
        return {"error": "the natural run never fit its training set (no memorising checkpoint)"}
    acc = engine.accuracy_at(nat, step, (IID, MEMORISED))
    out = {"step": step, "iid_at_step": acc.get(IID), "train_inferred_at_step": acc.get(MEMORISED),
           "split": MEMORISED}
    if (acc.get(IID) or 0) >= LOW:
        out["error"] = (f"no memorising checkpoint: at step {step:,}, the first checkpoint after "
                        f"the fit, the natural model already answers {acc.get(IID):.2f} of the ID "
                        f"test (>= {LOW})")
        return out
    return {**out, **_paths(study, nat, nat, step)}


def _memoriser(study: Study, nat: Path, mem: Path) -> dict:
    """The memoriser at its fit (the first checkpoint once it answers >= FIT of its training
    compositions, with their permuted answers): it counts only if it does not answer ID
    queries there (it cannot compose what it was taught)."""
    rows = engine.metrics(mem) if (mem / "metrics.jsonl").exists() else []
    if not rows:
        return {"error": f"no memoriser run ({mem.name}: a study made before the control "
                         "existed; remove its stages/claim1.json and rerun to train it)"}
    key = f"acc/{MEMORISED}"
    step = engine.saturation_checkpoint(mem, FIT, key=key)
    if step is None:
        best = max((r.get(key) or 0 for r in rows), default=0)
        return {"error": f"the memoriser never fit the training compositions ({MEMORISED} at "
                         f"most {best:.2f} < {FIT} in {int(rows[-1]['step']):,} steps)"}
    acc = engine.accuracy_at(mem, step, (IID, MEMORISED))
    out = {"run": str(mem.relative_to(study.out)), "split": MEMORISED, "step": step,
           "iid_at_step": acc.get(IID), "train_inferred_at_step": acc.get(MEMORISED)}
    if (acc.get(IID) or 0) >= LOW:
        out["error"] = (f"the memoriser composes: at its fit (step {step:,}) it answers "
                        f"{acc.get(IID):.2f} of the ID test (>= {LOW}), so it is no memoriser")
        return out
    p = engine.compare_memoriser(nat, mem, step, MEMORISED, study.scale.compare_queries,
                                 study.scale.bootstrap)
    return {**out, **_path_fields(p)}


def _paths(study: Study, nat: Path, other: Path, step: int | None) -> dict:
    return _path_fields(engine.compare_paths(nat, other, split=MEMORISED,
                                             n=study.scale.compare_queries,
                                             bootstrap=study.scale.bootstrap,
                                             device=study.device, step_b=step))


def _path_fields(p: dict) -> dict:
    out = {"value": p.get("similarity_free"), "ci": p.get("free_ci") or [None, None],
           "n": p["n"], "free_cells": p.get("free_cells"), "cells": p.get("cells"),
           "whole_grid": {"value": p["similarity"], "ci": [p["ci_low"], p["ci_high"]]}}
    if p.get("grids"):
        out["grids"] = p["grids"]
    if p.get("error"):
        out["error"] = p["error"]
    elif out["value"] is None:
        out["error"] = (f"no free-cell correlation: {out['free_cells']} of {out['cells']} "
                        "tracing cells are free (the rest are fixed by the architecture)")
    return out


# ---------------------------------------------------------------------------- claim 2
def pretrain_timeline(run_dir: Path, lens_n: int | None = None) -> dict:
    """Claim-2 timeline of one run, by the study's lens rule (engine.study_key). ``lens_n``:
    the lens callback's sample size, to estimate (ID accuracy x sample) the correctly answered
    queries of rows logged before the callback recorded their number."""
    rows = engine.metrics(run_dir)
    steps = [int(r["step"]) for r in rows]
    key = engine.study_key(IID, "n_correct")
    for r in rows:
        if r.get(key) is None and lens_n and r.get(f"acc/{IID}") is not None:
            r[key] = round(r[f"acc/{IID}"] * lens_n)
    return timeline(steps, _series(rows, "train_acc"), _series(rows, f"acc/{OOD}"),
                    _series(rows, engine.study_key(OOD, "bridge_found")),
                    _series(rows, engine.study_key(IID, "bridge_found_correct")),
                    target=_series(rows, engine.study_key(OOD, "target_found")),
                    chance_id=_series(rows, engine.study_key(IID, "chance_correct")),
                    n_correct_id=_series(rows, engine.study_key(IID, "n_correct")))


def stage_claim2(study: Study) -> dict:
    tls = {}
    for fam in study.families:
        for regime in REGIMES:
            run = study.run_dir("pretrain", fam, regime)
            n_iid = engine.manifest(study.data_dir(regime))["counts"].get(IID, 0)
            tls[f"{fam}/{regime}"] = {**pretrain_timeline(run, min(study.scale.lens_queries, n_iid)),
                                      "grokking": run_grokking(run, study.scale.ood_target)}
    atomic_write_json(study.analysis_dir / "claim2.json",
                      {"split": OOD, "bridge_key": engine.study_key(OOD, "bridge_found"),
                       "target_key": engine.study_key(OOD, "target_found"), "rule": "study",
                       "timelines": tls})
    flagged = [k for k, t in tls.items() if t["accuracy_without_circuit"] or t["circuit_without_accuracy"]]
    blind = [k for k, t in tls.items() if t["lens_blind"]]
    study.log(f"  dissociations: {', '.join(flagged) or 'none'}"
              + (f"; lens blind: {', '.join(blind)}" if blind else ""))
    return {"outputs": ["analysis/claim2.json"]}


# ---------------------------------------------------------------------------- claim 3
def transfer_row(run_dir: Path, pretrained: Path | None, counts: dict | None = None) -> dict:
    """A finetuned model's final claim-3 numbers; ``counts``: the injected dataset's split
    sizes, so every EM carries its n (``n``: {category: queries})."""
    rows = engine.metrics(run_dir)
    out = {cat: final(rows, f"acc/{cat}") for cat in TRANSFER}
    out.update({f"bridge/{cat}": final(rows, engine.bridge_key(cat)) for cat in TRANSFER[1:]})
    out["new_learned_step"] = first_hit(rows, "acc/atomic_new", 0.9)
    out["replay_atomic"] = final(rows, "acc/replay_atomic")
    out["replay_inferred"] = final(rows, "acc/replay_inferred")
    out["old_atomic"] = final(rows, "acc/old_atomic")      # not replayed: forgetting
    out["old_inferred"] = final(rows, "acc/old_inferred")
    out["steps"] = rows[-1]["step"] if rows else None
    out["pretrained_iid"] = (final(engine.metrics(pretrained), f"acc/{IID}")
                             if pretrained is not None else None)
    out["n"] = {cat: (counts or {}).get(cat) for cat in TRANSFER}
    return out


def stage_claim3(study: Study) -> dict:
    study.train_all(study.stage_specs("claim3"))
    table = {}
    counts = engine.manifest(study.data_dir(INJECTED))["counts"]
    for fam in study.families:
        for source in REGIMES + (SCRATCH,):
            pre = None if source == SCRATCH else study.run_dir("pretrain", fam, source)
            table[f"{fam}/{source}"] = transfer_row(study.run_dir("finetune", fam, source), pre,
                                                    counts)
    atomic_write_json(study.analysis_dir / "claim3.json", {"rows": table})
    return {"outputs": ["analysis/claim3.json"]}


# ---------------------------------------------------------------------------- compute
def stage_compute(study: Study) -> dict:
    target = study.scale.ood_target
    rows = {}
    natural_n = int(engine.manifest(study.data_dir(GROKKED))["counts"]["train"])
    for fam in study.families:
        model = study.scale.models[fam]
        n = engine.n_params(model, engine.vocab_size(study.data_dir(GROKKED)))
        batch = int(study.scale.train["batch_size"])
        per_step = flops_per_step(n, model, batch)
        for source in REGIMES + (CONTROL,):
            run = study.run_dir("pretrain", fam, source)
            mets = engine.metrics(run)
            man = engine.manifest(study.data_dir(source))
            stats = man.get("stats", {})
            added = int(stats.get("added_hop1", 0)) + int(stats.get("added_hop2", 0))
            train_n = int(man["counts"]["train"])
            step = first_hit(mets, f"acc/{OOD}", target)
            rows[f"{fam}/{source}"] = {
                "family": fam, "source": source, "params": n, "flops_per_step": per_step,
                "batch_size": batch, "train_items": train_n, "added_items": added,
                "added_share": added / max(train_n - added, 1),
                "extra_vs_natural": (train_n - natural_n) / max(natural_n, 1),
                "target": target, "steps_to_target": step,
                "examples_to_target": None if step is None else step * batch,
                "flops_to_target": None if step is None else step * per_step,
                "budget_steps": mets[-1]["step"] if mets else 0,
                "budget_flops": (mets[-1]["step"] if mets else 0) * per_step,
            }
    atomic_write_json(study.analysis_dir / "compute.json", {"target": target, "rows": rows})
    return {"outputs": ["analysis/compute.json"]}


# ---------------------------------------------------------------------------- report
def stage_report(study: Study) -> dict:
    paths = write_report(study.out)
    return {"outputs": [str(Path(p).relative_to(study.out)) for p in paths]}


# The stage registry: name -> function, in layout.STAGE_NAMES order (the pipeline runs it).
STAGE_TABLE = {"data": stage_data, "pretrain": stage_pretrain, "claim2": stage_claim2,
               "claim3": stage_claim3, "claim1": stage_claim1, "compute": stage_compute,
               "report": stage_report}
assert tuple(STAGE_TABLE) == STAGE_NAMES
