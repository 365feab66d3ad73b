"""The stages of ``groklab reproduce``; each writes its outputs under the study directory.

Stage functions take the :class:`~groklab.study.pipeline.Study` and return a small dict that
goes into the stage's finished marker. Numbers they save come from run directories only.
"""

from __future__ import annotations

from pathlib import Path

from groklab.fsutil import atomic_write_json
from groklab.study import engine
from groklab.study.claims import timeline
from groklab.study.compute import flops_per_step, to_target
from groklab.study.pipeline import INJECTED, SCRATCH, Study
from groklab.study.scales import CONTROL, REGIMES

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
    man = engine.make_injected(study.data_dir("natural"), study.data_dir(INJECTED),
                               new_facts=inj["new_facts"], replay=inj["replay"],
                               seed=study.scale.data.get("seed", 0))
    counts[INJECTED] = man["counts"]
    study.log(f"  data/{INJECTED}: " + ", ".join(f"{k} {v:,}" for k, v in man["counts"].items()))
    return {"counts": counts}


# ---------------------------------------------------------------------------- pretrain
def stage_pretrain(study: Study) -> dict:
    results = study.train_all(study.pretrain_specs())
    return {"runs": sorted(results)}


# ---------------------------------------------------------------------------- claim 1
def stage_claim1(study: Study) -> dict:
    out = {}
    for fam in study.families:
        a = study.run_dir("pretrain", fam, "natural")
        b = study.run_dir("pretrain", fam, CONTROL)
        result = engine.compare_paths(a, b, split=IID, n=study.scale.compare_queries,
                                      bootstrap=study.scale.bootstrap,
                                      device=study.device)
        result.update({
            "family": fam, "grokked_run": str(a.relative_to(study.out)),
            "control_run": str(b.relative_to(study.out)),
            "acc_grokked": final(engine.metrics(a), f"acc/{IID}"),
            "acc_control": final(engine.metrics(b), f"acc/{IID}"),
        })
        atomic_write_json(study.analysis_dir / f"claim1-{fam}.json", result)
        if result["similarity"] is None:
            study.log(f"  {fam}: no comparison ({result.get('error')})")
        else:
            study.log(f"  {fam}: similarity {result['similarity']:.3f} [{result['ci_low']:.3f}, "
                      f"{result['ci_high']:.3f}] on {result['n']} queries")
        out[fam] = str((study.analysis_dir / f"claim1-{fam}.json").relative_to(study.out))
    return {"outputs": out}


# ---------------------------------------------------------------------------- claim 2
def pretrain_timeline(run_dir: Path) -> dict:
    rows = engine.metrics(run_dir)
    steps = [int(r["step"]) for r in rows]
    return timeline(steps, _series(rows, "train_acc"), _series(rows, f"acc/{OOD}"),
                    _series(rows, engine.bridge_key(OOD)), _series(rows, engine.bridge_key(IID)))


def stage_claim2(study: Study) -> dict:
    tls = {}
    for fam in study.families:
        for regime in REGIMES:
            tls[f"{fam}/{regime}"] = pretrain_timeline(study.run_dir("pretrain", fam, regime))
    atomic_write_json(study.analysis_dir / "claim2.json",
                      {"split": OOD, "bridge_key": engine.bridge_key(OOD), "timelines": tls})
    flagged = [k for k, t in tls.items() if t["accuracy_without_circuit"] or t["circuit_without_accuracy"]]
    blind = [k for k, t in tls.items() if t["lens_blind"]]
    study.log(f"  dissociations: {', '.join(flagged) or 'none'}"
              + (f"; lens blind: {', '.join(blind)}" if blind else ""))
    return {"outputs": ["analysis/claim2.json"]}


# ---------------------------------------------------------------------------- claim 3
def transfer_row(run_dir: Path, pretrained: Path | None) -> dict:
    rows = engine.metrics(run_dir)
    out = {cat: final(rows, f"acc/{cat}") for cat in TRANSFER}
    out.update({f"bridge/{cat}": final(rows, engine.bridge_key(cat)) for cat in TRANSFER[1:]})
    out["new_learned_step"] = to_target(rows, "acc/atomic_new", 0.9)
    out["replay_atomic"] = final(rows, "acc/replay_atomic")
    out["replay_inferred"] = final(rows, "acc/replay_inferred")
    out["old_atomic"] = final(rows, "acc/old_atomic")      # not replayed: forgetting
    out["old_inferred"] = final(rows, "acc/old_inferred")
    out["steps"] = rows[-1]["step"] if rows else None
    out["pretrained_iid"] = (final(engine.metrics(pretrained), f"acc/{IID}")
                             if pretrained is not None else None)
    return out


def stage_claim3(study: Study) -> dict:
    study.train_all(study.finetune_specs())
    table = {}
    for fam in study.families:
        for source in REGIMES + (SCRATCH,):
            pre = None if source == SCRATCH else study.run_dir("pretrain", fam, source)
            table[f"{fam}/{source}"] = transfer_row(study.run_dir("finetune", fam, source), pre)
    atomic_write_json(study.analysis_dir / "claim3.json", {"rows": table})
    return {"outputs": ["analysis/claim3.json"]}


# ---------------------------------------------------------------------------- compute
def stage_compute(study: Study) -> dict:
    target = study.scale.ood_target
    rows = {}
    natural_n = int(engine.manifest(study.data_dir("natural"))["counts"]["train"])
    for fam in study.families:
        model = study.scale.models[fam]
        n = engine.n_params(model, engine.vocab_size(study.data_dir("natural")))
        batch = int(study.scale.train["batch_size"])
        per_step = flops_per_step(n, model, batch)
        for source in REGIMES + (CONTROL,):
            run = study.run_dir("pretrain", fam, source)
            mets = engine.metrics(run)
            man = engine.manifest(study.data_dir(source))
            stats = man.get("stats", {})
            added = int(stats.get("added_hop1", 0)) + int(stats.get("added_hop2", 0))
            train_n = int(man["counts"]["train"])
            step = to_target(mets, f"acc/{OOD}", target)
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
    from groklab.study.report import write_report

    paths = write_report(study.out)
    return {"outputs": [str(Path(p).relative_to(study.out)) for p in paths]}
