"""A multi-seed study's evidence pooled over its seeds, the verdicts on it, and its report.

Each seed's numbers come from that seed's own report evidence (:func:`report.collect` of
``STUDY/seeds/<k>``); pooling follows :mod:`groklab.study.measure` (mean over seeds, interval
= hull of the between-seed t-interval and the mean within-seed interval). The verdict rules
are the single-seed rules of :mod:`groklab.study.claims` applied to the pooled measures (claim
2: replicated dissociations, ``judge_claim2_seeds``).
"""

from __future__ import annotations

import json
from pathlib import Path

from groklab.fsutil import atomic_write_json, atomic_write_text
from groklab.study import claims, document as D, engine, figures
from groklab.study.measure import pool, rate
from groklab.study.layout import AUGMENTED, GROKKED, StudyLayout
from groklab.study.report import (IID, OOD, SOURCES, TRANSFER, collect, summary_paragraph,
                                  verdict_blocks)

RATE = (0.0, 1.0)


# ---------------------------------------------------------------------------- pooling
def _pool_rows(rows: list[dict | None], keys, bounds=RATE) -> dict:
    return {k: pool([(r or {}).get(k) for r in rows], bounds) for k in keys}


def pool_claim1(per_seed: list[list[dict]]) -> list[dict]:
    """Claim-1 evidence per family pooled over seeds (rows with an error are left out; a family
    with no seed left keeps the errors)."""
    fams = list(dict.fromkeys(r["family"] for rows in per_seed for r in rows))
    out = []
    for fam in fams:
        rows = [r for rows in per_seed for r in rows if r["family"] == fam]
        ok = [r for r in rows if not r.get("error")]
        if not ok:
            out.append({"family": fam, "error": "; ".join(
                f"seed {k}: {r['error']}" for k, r in enumerate(rows))})
            continue
        labels = [(r.get("grokking") or {}).get("label") for r in ok]
        grok = {"label": labels[0] if len(set(labels)) == 1 else "mixed",
                "why": "; ".join(f"seed {k}: {(r.get('grokking') or {}).get('why')}"
                                 for k, r in enumerate(ok)),
                "per_seed": labels}
        paths = [r.get("path") or {} for r in ok]
        path = {**(pool(paths, (-1.0, 1.0)) or {}),
                "free_cells": min((p.get("free_cells") for p in paths
                                   if p.get("free_cells") is not None), default=None),
                "cells": max((p.get("cells") for p in paths if p.get("cells") is not None),
                             default=None),
                "free": pool([p.get("free") for p in paths], (-1.0, 1.0))}
        negs = [r.get("negative_control") or {} for r in ok]
        neg = pool([n if n.get("value") is not None else None for n in negs], (-1.0, 1.0))
        if neg is None:
            neg = {"error": "; ".join(f"seed {k}: {n.get('error', 'none')}"
                                      for k, n in enumerate(negs))}
        else:
            neg["steps"] = [n.get("step") for n in negs]
            kinds = {n.get("kind", "checkpoint") for n in negs if n.get("value") is not None}
            neg["kind"] = kinds.pop() if len(kinds) == 1 else "mixed"
        diffs = {cat: pool([(r.get("transfer_diff") or {}).get(cat) for r in ok], (-1.0, 1.0))
                 for cat in dict.fromkeys(c for r in ok for c in (r.get("transfer_diff") or {}))}
        out.append({
            "family": fam, "seeds_with_evidence": len(ok), "seeds": len(rows),
            **_pool_rows(ok, ("acc_grokked", "acc_nongrokked", "ood_nongrokked")),
            "grokking": grok, "path": path, "negative_control": neg,
            "saturation_steps": [r.get("saturation_step") for r in ok],
            "bridge_correct_ood": _pool_rate(ok, "bridge_correct_ood"),
            "bridge_correct_iid": _pool_rate(ok, "bridge_correct_iid"),
            "bridge_correct_ood_grokked": _pool_rate(ok, "bridge_correct_ood_grokked"),
            "transfer_diff": {c: d for c, d in diffs.items() if d is not None},
        })
    return out


def _pool_rate(rows: list[dict], key: str) -> dict | None:
    ms = [r.get(key) for r in rows]
    p = pool(ms, RATE)
    if p is not None:
        p["chance"] = pool([(m or {}).get("chance") for m in ms], RATE)
    return p


def pool_claim3(per_seed: list[dict]) -> dict:
    """Claim-3 rows ({family/source: row}) pooled: every EM as a rate with its n, then pooled;
    the asymmetry pooled from the per-seed asymmetries."""
    keys = list(dict.fromkeys(k for rows in per_seed for k in rows))
    out = {}
    for key in keys:
        rows = [rows.get(key) for rows in per_seed if rows.get(key) is not None]
        row = {"run": key}
        for cat in TRANSFER:
            row[cat] = pool([rate(r.get(cat), (r.get("n") or {}).get(cat)) for r in rows], RATE)
        row["pretrained_iid"] = pool([r.get("pretrained_iid") for r in rows], RATE)
        row["asymmetry"] = pool([claims.claim3_evidence(r)["asymmetry"] for r in rows],
                                (-1.0, 1.0))
        for k in ("replay_inferred", "old_atomic", "old_inferred"):
            row[k] = pool([r.get(k) for r in rows], RATE)
        row["new_learned_step"] = [r.get("new_learned_step") for r in rows]
        out[key] = row
    return out


def claim4_rows(per_seed_compute: list[dict], fams: list[str]) -> list[dict]:
    out = []
    for fam in fams:
        aug = [c["rows"].get(f"{fam}/{AUGMENTED}") for c in per_seed_compute]
        nat = [c["rows"].get(f"{fam}/{GROKKED}") for c in per_seed_compute]
        if any(x is None for x in aug + nat):
            continue
        out.append({"family": fam, "aug_steps": [a["steps_to_target"] for a in aug],
                    "nat_steps": [n["steps_to_target"] for n in nat],
                    "nat_budget": [n["budget_steps"] for n in nat]})
    return out


def pool_evidence(evs: list[dict]) -> dict:
    """Every pooled number of the report, and the verdicts on them."""
    info = evs[0]["study"]
    fams = info["families"]
    c1 = pool_claim1([ev["claim1"] for ev in evs])
    c3 = pool_claim3([ev["claim3"]["rows"] for ev in evs])
    target = evs[0]["compute"]["target"]
    c4 = claim4_rows([ev["compute"] for ev in evs], fams)
    verdicts = [
        claims.judge_claim1(c1),
        claims.judge_claim2_seeds([dict(ev["claim2"]["timelines"]) for ev in evs],
                                  engine.circuit_families(fams)),
        claims.judge_claim3(list(c3.values())),
        claims.judge_claim4(c4, target),
    ]
    pre = {key: _pool_rows([ev["pretrain"].get(key) for ev in evs],
                           [k for k, v in evs[0]["pretrain"][key].items()
                            if isinstance(v, (int, float)) and k not in ("steps", "wall_s")])
           for key in evs[0]["pretrain"]}
    grok = {key: [ev["claim2"]["timelines"].get(key, {}).get("grokking") for ev in evs]
            for key in evs[0]["claim2"]["timelines"]}
    timelines = {key: [ev["claim2"]["timelines"].get(key) or {} for ev in evs]
                 for key in evs[0]["claim2"]["timelines"]}
    return {"families": fams, "seeds": len(evs), "claim1": c1, "claim3": c3, "claim4": c4,
            "target": target, "pretrain": pre, "grokking": grok, "claim2": timelines,
            "per_seed_verdicts": [[v["verdict"] for v in ev["verdicts"]] for ev in evs],
            "verdicts": [v.to_dict() for v in verdicts]}


# ---------------------------------------------------------------------------- report
def fm(x) -> str:
    """A pooled measure: ``.912 [.850, .960] (n=68; seeds .90 / .93 / .91)``."""
    if not isinstance(x, dict) or x.get("value") is None:
        return "—"
    lo, hi = x.get("ci") or [None, None]
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None else ""
    bits = []
    if isinstance(x.get("n"), int):
        bits.append(f"n={x['n']}")
    if x.get("per_seed") is not None:
        bits.append("seeds " + " / ".join(f"{v:.2f}" for v in x["per_seed"]))
    return f"{x['value']:.3f}{ci}" + (f" ({'; '.join(bits)})" if bits else "")


def _steps(xs: list) -> str:
    return " / ".join("never" if x is None else f"{int(x):,}" for x in xs)


def build_pooled(pooled: dict, info: dict, figs: dict[str, Path], seed_dirs: list[str]) -> D.Document:
    scale = info["scale"]
    n = pooled["seeds"]
    doc = D.Document(f"groklab study report: 'Is Grokking Worthwhile?' at scale {scale['name']}, "
                     f"{n} seeds")
    doc.add(D.Summary(summary_paragraph(pooled["verdicts"], n)))
    doc.add(D.Para(
        f"Pooled over {n} seeds (train.seed 0-{n - 1}; "
        + ("each seed its own graph" if info.get("vary_graph") else
           f"one graph, data seed {scale['data'].get('seed', 0)}")
        + (f"; pretraining runs stacked as ensembles of up to {info['stack']} seeds (`--stack`: "
           "each equal to its run trained alone within 1e-5 relative)"
           if (info.get("stack") or 1) > 1 else "")
        + "). Every number is the mean over seeds with a 95% interval: the hull of the "
          "between-seed t-interval and the mean within-seed interval (groklab.study.measure); "
          "per-seed values follow it. The verdict rules are the single-seed rules applied to "
          "these pooled numbers. Each seed's full report: "
        + ", ".join(f"`{d}/report.html`" for d in seed_dirs) + "."))
    verdict_blocks(doc, pooled["verdicts"])
    doc.add(D.Table(["claim"] + [f"seed {k}" for k in range(n)],
                    [[v["claim"]] + [pooled["per_seed_verdicts"][k][i] for k in range(n)]
                     for i, v in enumerate(pooled["verdicts"])],
                    caption="The same rules on each seed alone"))
    _grokking_table(doc, pooled)
    _pretrain_table(doc, pooled, figs)
    _claim1_table(doc, pooled)
    _claim2_table(doc, pooled)
    _claim3_table(doc, pooled)
    _claim4_table(doc, pooled)
    doc.add(D.Heading(1, "Rules"))
    for v in pooled["verdicts"]:
        doc.add(D.Para(f"**{v['claim']}**: {v['rule']}"))
    doc.add(D.Para(f"**Grokking delay**: {claims.GROK_RULE}"))
    return doc


def _grokking_table(doc: D.Document, pooled: dict) -> None:
    rows = []
    for key, gs in pooled["grokking"].items():
        gs = [g or {} for g in gs]
        rows.append([key, " / ".join(g.get("label", "—") for g in gs),
                     _steps([g.get("fit_step") for g in gs]), _steps([g.get("id_step") for g in gs]),
                     _steps([g.get("ood_step") for g in gs]),
                     _steps([g.get("id_delay") for g in gs])])
    doc.add(D.Heading(1, "Grokking delay per run"),
            D.Para(claims.GROK_RULE),
            D.Table(["run", "label per seed", "train fit step", "ID >= .9 step",
                     f"OOD >= {pooled['target']} step", "ID delay (steps)"], rows,
                    caption="Per seed (seed 0 / 1 / ...)"))


def _pretrain_table(doc: D.Document, pooled: dict, figs: dict) -> None:
    doc.add(D.Heading(1, "Pretraining (final evaluation)"))
    for fam in pooled["families"]:
        rows = []
        for src in SOURCES:
            p = pooled["pretrain"].get(f"{fam}/{src}") or {}
            rows.append([src, fm(p.get("train_acc")), fm(p.get("iid")), fm(p.get("ood")),
                         fm(p.get("study_bridge_iid_correct")), fm(p.get("study_chance_iid_correct")),
                         fm(p.get("study_bridge_ood")), fm(p.get("study_chance_ood"))])
        doc.add(D.Table(["data", "train acc", "ID test acc", "OOD test acc",
                         "study rule: bridge found, correct ID", "its chance",
                         "study rule: bridge found OOD", "its chance"], rows,
                        caption=f"{fam}, pooled over seeds"))
        if f"curves-{fam}" in figs:
            doc.add(D.Figure(figs[f"curves-{fam}"], f"{fam}: ID and OOD accuracy, every seed"))


def _claim1_table(doc: D.Document, pooled: dict) -> None:
    doc.add(D.Heading(1, "Claim 1 evidence, pooled"))
    rows, trans = [], []
    for c in pooled["claim1"]:
        if c.get("error"):
            rows.append([c["family"]] + ["—"] * 7 + [c["error"]])
            continue
        a = c.get("bridge_correct_ood") or {}
        path = c.get("path") or {}
        neg = c.get("negative_control") or {}
        rows.append([c["family"], c["grokking"]["label"], fm(c.get("acc_grokked")),
                     fm(c.get("acc_nongrokked")), f"{fm(a)}; chance {fm(a.get('chance'))}",
                     f"{fm(path.get('free'))} over {path.get('free_cells')} of "
                     f"{path.get('cells')} free cells; whole grid {fm(path)}",
                     (f"{fm(neg)} ({neg.get('kind')})" if neg.get("value") is not None
                      else neg.get("error", "—")),
                     _steps(c.get("saturation_steps") or []), ""])
        for cat, d in (c.get("transfer_diff") or {}).items():
            trans.append([c["family"], cat, fm(d)])
    doc.add(D.Table(["family", "natural: grokking", "natural ID acc", "both_full@sat ID acc",
                     "(a) bridge found, correct OOD", "(b) path similarity (ID)",
                     "(b) negative control (model)", "both_full saturation steps",
                     "note"], rows, caption="Claim 1, pooled over seeds"))
    if trans:
        doc.add(D.Table(["family", "category", "(c) natural minus both_full EM"], trans,
                        caption="Claim 1 (c), pooled over seeds"))


def _flag(t: dict) -> str:
    if t.get("accuracy_without_circuit"):
        return "accuracy without circuit"
    if t.get("circuit_without_accuracy"):
        return "circuit without accuracy"
    return "lens blind" if t.get("lens_blind") else "no"


def _claim2_table(doc: D.Document, pooled: dict) -> None:
    rows = []
    for key, ts in pooled["claim2"].items():
        rows.append([key, " / ".join(_flag(t) for t in ts),
                     fm(pool([t.get("max_target") for t in ts], RATE)),
                     fm(pool([t.get("max_bridge") for t in ts], RATE)),
                     fm(pool([t.get("max_bridge_id") for t in ts], RATE))])
    doc.add(D.Heading(1, "Claim 2 evidence, per seed"),
            D.Table(["run", "dissociation per seed (study measures)", "max target found (OOD)",
                     "max bridge found (OOD)", "max bridge found, correct ID (lens validity)"],
                    rows, caption="judged on the recursive runs; causal families shown only"))


def _claim3_table(doc: D.Document, pooled: dict) -> None:
    rows = []
    for key, r in pooled["claim3"].items():
        rows.append([key, fm(r.get("pretrained_iid")), fm(r.get("atomic_new")),
                     fm(r.get("new_old")), fm(r.get("old_new")), fm(r.get("new_new")),
                     fm(r.get("asymmetry")), fm(r.get("old_atomic"))])
    doc.add(D.Heading(1, "Claim 3 evidence, pooled"),
            D.Table(["finetuned from", "ID acc before", "new facts EM", "new_old EM",
                     "old_new EM", "new_new EM", "asymmetry (new_old - second hop)",
                     "old atomic EM (not replayed)"], rows,
                    caption=f"judged per family: the {claims.JUDGED_SOURCE} rows"))


def _claim4_table(doc: D.Document, pooled: dict) -> None:
    rows = []
    for r in pooled["claim4"]:
        aug = r["aug_steps"]
        sp = (claims.speedup(aug, r["nat_steps"], r["nat_budget"])
              if all(a is not None for a in aug) else None)
        rows.append([r["family"], _steps(aug), _steps(r["nat_steps"]), _steps(r["nat_budget"]),
                     "—" if sp is None else
                     f"{'>= ' if sp['lower_bound'] else ''}{sp['value']:.1f}x "
                     f"[{sp['ci'][0]:.1f}, {sp['ci'][1]:.1f}]"])
    doc.add(D.Heading(1, "Claim 4 evidence"),
            D.Table(["family", "both_full steps to target", "natural steps to target",
                     "natural budget", "speed-up (geometric mean, 95% CI)"], rows,
                    caption=f"steps to OOD accuracy >= {pooled['target']}, per seed"))


def draw_pooled(study_dir: Path, seed_dirs: list[Path], fams: list[str]) -> dict[str, Path]:
    out = {}
    for fam in fams:
        panels = {}
        for src in SOURCES:
            series = {}
            for k, d in enumerate(seed_dirs):
                rows = engine.metrics(StudyLayout(d).run_dir("pretrain", fam, src))
                steps = [r["step"] for r in rows]
                series[f"ID seed {k}"] = (steps, [r.get(f"acc/{IID}") for r in rows])
                series[f"OOD seed {k}"] = (steps, [r.get(f"acc/{OOD}") for r in rows])
            panels[src] = series
        out[f"curves-{fam}"] = figures.curves(study_dir / "figures" / f"curves-{fam}.png",
                                              f"{fam}: test accuracy per seed", panels)
    return out


def write_pooled_report(study_dir: str | Path) -> list[Path]:
    """Pool the seeds' evidence and write report.json, report.md and report.html."""
    study_dir = Path(study_dir)
    info = json.loads((study_dir / "study.json").read_text())
    seed_dirs = [study_dir / d for d in info["seed_dirs"]]
    evs = [collect(d) for d in seed_dirs]
    pooled = pool_evidence(evs)
    figs = draw_pooled(study_dir, seed_dirs, info["families"])
    doc = build_pooled(pooled, info, figs, info["seed_dirs"])
    js, md, html = (study_dir / f"report.{s}" for s in ("json", "md", "html"))
    atomic_write_json(js, {"study": info, "pooled": pooled})
    atomic_write_text(md, D.to_markdown(doc, study_dir))
    atomic_write_text(html, D.to_html(doc))
    return [js, md, html]
