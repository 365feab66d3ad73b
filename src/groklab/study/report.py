"""The study report: ``report.md``, self-contained ``report.html`` and ``report.json``.

Built from the study directory alone (study.json, data manifests, run directories'
metrics.jsonl and config.yaml, analysis/*.json): nothing is typed in by hand except the
study's published reference numbers (:mod:`groklab.study.reference`), which are labelled.
"""

from __future__ import annotations

import json
from pathlib import Path

from groklab.data.dataset import MANIFEST_NAME
from groklab.data.vocab import composition_vocab
from groklab.fsutil import atomic_write_json, atomic_write_text
from groklab.study import claims, document as D, engine, figures, reference
from groklab.study.compute import FORMULA
from groklab.study.layout import AUGMENTED, GROKKED, INJECTED, STAGE_NAMES
from groklab.study.markers import marker_path
from groklab.study.scales import CONTROL, REGIMES
from groklab.train.rundir import CONFIG_NAME, read_summary

OOD, IID = "test_inferred_ood", "test_inferred_iid"
TRANSFER = ("atomic_new", "new_old", "old_new", "new_new")
SOURCES = REGIMES + (CONTROL,)
FORECAST_AT = 0.25   # the forecast panel: what `groklab forecast` said at this share of a budget


# ---------------------------------------------------------------------------- formatting
def fa(x) -> str:
    """An accuracy / rate: three decimals, or an em dash when absent."""
    return "—" if x is None else f"{x:.3f}"


def fs(x, budget=None) -> str:
    """A step count; ``never (budget N)`` when not reached."""
    if x is None:
        return "never" if budget is None else f"never (<= {budget:,})"
    return f"{int(x):,}"


def fe(x) -> str:
    """A large number (FLOPs) in scientific notation."""
    return "—" if x is None else f"{x:.2e}"


def _final(rows: list[dict], key: str):
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def _grokking(rows: list[dict], ood_target: float) -> dict:
    g = claims.grokking([int(r["step"]) for r in rows], [r.get("train_acc") for r in rows],
                        [r.get(f"acc/{IID}") for r in rows], [r.get(f"acc/{OOD}") for r in rows],
                        ood_target)
    return {**g, "why": claims.grokking_why(g)}


def _load(path: Path):
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


# ---------------------------------------------------------------------------- evidence
def collect(study_dir: Path) -> dict:
    """Every number the report shows, read from the study directory."""
    study_dir = Path(study_dir)
    info = json.loads((study_dir / "study.json").read_text())
    fams = info["families"]
    runs = study_dir / "runs"
    pre = {}
    for fam in fams:
        for src in SOURCES:
            rows = engine.metrics(runs / "pretrain" / f"{fam}-{src}")
            pre[f"{fam}/{src}"] = {
                "steps": rows[-1]["step"] if rows else None,
                "wall_s": rows[-1].get("time") if rows else None,
                "train_acc": _final(rows, "train_acc"),
                "iid": _final(rows, f"acc/{IID}"),
                "ood": _final(rows, f"acc/{OOD}"),
                "bridge_ood": _final(rows, engine.bridge_key(OOD)),
                "bridge_iid": _final(rows, engine.bridge_key(IID)),
                "bridge_ood_control": _final(rows, engine.bridge_key(OOD) + "_control"),
                "bridge_iid_control": _final(rows, engine.bridge_key(IID) + "_control"),
                "study_bridge_iid_correct": _final(rows, engine.study_key(IID, "bridge_found_correct")),
                "study_chance_iid_correct": _final(rows, engine.study_key(IID, "chance_correct")),
                "study_bridge_ood": _final(rows, engine.study_key(OOD, "bridge_found")),
                "study_target_ood": _final(rows, engine.study_key(OOD, "target_found")),
                "study_chance_ood": _final(rows, engine.study_key(OOD, "chance")),
                "grokking": _grokking(rows, info["scale"].get("ood_target", 0.5)),
                "device": (read_summary(runs / "pretrain" / f"{fam}-{src}") or {}).get("device"),
            }
    c1 = [_load(study_dir / "analysis" / f"claim1-{fam}.json") for fam in fams]
    c1 = [r for r in c1 if r is not None]
    c2 = _load(study_dir / "analysis" / "claim2.json") or {"timelines": {}}
    c3 = _load(study_dir / "analysis" / "claim3.json") or {"rows": {}}
    comp = _load(study_dir / "analysis" / "compute.json") or {"rows": {}, "target": 0.5}
    data = {}
    for d in sorted((study_dir / "data").iterdir()) if (study_dir / "data").is_dir() else []:
        if (d / MANIFEST_NAME).exists():
            man = engine.manifest(d)
            data[d.name] = {"counts": man.get("counts", {}), "stats": man.get("stats", {})}
    stages = {name: _load(marker_path(study_dir, name)) for name in STAGE_NAMES}

    target = f"{OOD}>={comp['target']}"
    forecast = {key: engine.forecast_panel_row(runs / "pretrain" / f"{key.replace('/', '-')}",
                                               FORECAST_AT, target)
                for key in pre if pre[key]["steps"]}
    verdicts = [
        claims.judge_claim1(c1),
        claims.judge_claim2(dict(c2["timelines"]), engine.circuit_families(fams)),
        claims.judge_claim3([{"run": k, **v} for k, v in c3["rows"].items()]),
        claims.judge_claim4(_claim4_rows(comp, fams), comp["target"]),
    ]
    return {"study": info, "pretrain": pre, "forecast": {"at": FORECAST_AT, "target": target,
                                                         "runs": forecast},
            "claim1": c1, "claim2": c2, "claim3": c3,
            "compute": comp, "data": data, "stages": stages,
            "verdicts": [v.to_dict() for v in verdicts]}


def _claim4_rows(comp: dict, fams: list[str]) -> list[dict]:
    out = []
    for fam in fams:
        aug = comp["rows"].get(f"{fam}/{AUGMENTED}")
        nat = comp["rows"].get(f"{fam}/{GROKKED}")
        if aug is None or nat is None:
            continue
        out.append({"family": fam, "aug_steps": aug["steps_to_target"],
                    "nat_steps": nat["steps_to_target"], "nat_budget": nat["budget_steps"]})
    return out


# ---------------------------------------------------------------------------- figures
def draw(ev: dict, study_dir: Path) -> dict[str, Path]:
    figdir = study_dir / "figures"
    fams = ev["study"]["families"]
    out = {}
    for fam in fams:
        panels = {}
        for src in SOURCES:
            rows = engine.metrics(study_dir / "runs" / "pretrain" / f"{fam}-{src}")
            steps = [r["step"] for r in rows]
            panels[src] = {
                "train acc": (steps, [r.get("train_acc") for r in rows]),
                "ID test acc": (steps, [r.get(f"acc/{IID}") for r in rows]),
                "OOD test acc": (steps, [r.get(f"acc/{OOD}") for r in rows]),
                "bridge found (OOD)": (steps, [r.get(engine.bridge_key(OOD)) for r in rows]),
                "bridge found, chance control (OOD)": (
                    steps, [r.get(engine.bridge_key(OOD) + "_control") for r in rows]),
                "bridge found, correct ID (study rule)": (
                    steps, [r.get(engine.study_key(IID, "bridge_found_correct")) for r in rows]),
                "bridge found, correct ID, chance control": (
                    steps, [r.get(engine.study_key(IID, "chance_correct")) for r in rows]),
            }
        out[f"curves-{fam}"] = figures.curves(
            figdir / f"curves-{fam}.png", f"{fam}: accuracy and bridge-found over pretraining", panels)
        rows = [k.split("/")[1] for k in ev["claim3"]["rows"] if k.startswith(fam + "/")]
        if rows:
            vals = [[ev["claim3"]["rows"][f"{fam}/{r}"].get(c) for c in TRANSFER] for r in rows]
            out[f"transfer-{fam}"] = figures.grid(
                figdir / f"transfer-{fam}.png", f"{fam}: EM after finetuning on new facts",
                [f"from {r}" for r in rows], list(TRANSFER), vals)
    for c1 in ev["claim1"]:
        maps = c1.get("maps") or {}
        if maps:
            out[f"paths-{c1['family']}"] = figures.heatmaps(
                figdir / f"paths-{c1['family']}.png",
                f"{c1['family']}: {c1.get('maps_title', 'inference paths')}",
                {k: (v["values"], v["rows"], v["cols"]) for k, v in maps.items()})
    comp = ev["compute"]["rows"]
    if comp:
        labels, vals, cens = [], [], []
        for key, r in comp.items():
            labels.append(key)
            reached = r["steps_to_target"] is not None
            vals.append(r["steps_to_target"] if reached else r["budget_steps"])
            cens.append(not reached)
        out["compute"] = figures.bars(figdir / "compute.png",
                                      f"steps to OOD accuracy >= {ev['compute']['target']}",
                                      labels, vals, "steps", cens)
    return out


# ---------------------------------------------------------------------------- document
def build(ev: dict, figs: dict[str, Path]) -> D.Document:
    info = ev["study"]
    scale = info["scale"]
    fams = info["families"]
    doc = D.Document(f"groklab study report: 'Is Grokking Worthwhile?' at scale {scale['name']}")
    verdict = {v["claim"]: v for v in ev["verdicts"]}
    doc.add(D.Para(
        "This report is generated by `groklab reproduce` from the run directories of this study "
        "(metrics.jsonl, analysis/*.json); every number in our columns is computed from them. "
        "Reference columns quote the study's published numbers (" + reference.SOURCE + "). "
        f"Scale `{scale['name']}` is far smaller than the study's: verdicts say what *these* runs "
        "show, by the rules stated under each claim, and 'inconclusive at this scale' means the "
        "runs could not decide."))
    doc.add(D.Summary(summary_paragraph(ev["verdicts"], 1)))
    verdict_blocks(doc, ev["verdicts"])

    _setup(doc, ev)
    _pretraining(doc, ev, figs)

    _claim1(doc, ev, figs, verdict["1 same path"])
    _claim2(doc, ev, verdict["2 fake grokking"])
    _claim3(doc, ev, figs, verdict["3 limited transfer"])
    _claim4(doc, ev, figs, verdict["4 compute"])
    _forecast(doc, ev)
    _paper_cost(doc, fams)
    _configs(doc, ev)
    return doc


CLAIM_WORDS = {"1 same path": "grokked and non-grokked models use the same inference path",
               "2 fake grokking": "OOD accuracy and the circuit can come apart (fake grokking)",
               "3 limited transfer": "new facts transfer as first hop, almost never as second",
               "4 compute": "natural data needs >= 5x the compute of augmented data"}


def summary_paragraph(verdicts: list[dict], seeds: int) -> str:
    """'What this study found', generated from the verdicts (one paragraph)."""
    bits = []
    for v in verdicts:
        fam = v.get("per_family") or {}
        per = ", ".join(f"{f} {x['verdict']}" for f, x in fam.items())
        bits.append(f"claim {v['claim'].split()[0]} ({CLAIM_WORDS.get(v['claim'], v['claim'])}): "
                    f"**{v['verdict']}**" + (f" ({per})" if per and len(fam) > 1 else ""))
    c4 = next((v for v in verdicts if v["claim"] == "4 compute"), None)
    if c4 is None or c4["verdict"] == claims.INCONCLUSIVE:
        worth = ("whether waiting for grokking is worth its compute is not decided by these runs "
                 "(see claim 4's 'what would decide it')")
    elif c4["verdict"] == claims.SUPPORTED:
        worth = ("here, reaching OOD generalisation from natural data took >= 5x the steps that "
                 "augmented data took: waiting for grokking was the costly route")
    else:
        worth = ("here, natural data reached OOD generalisation within 2x the steps of augmented "
                 "data: waiting was not much costlier")
    seed_txt = (f"pooled over {seeds} seeds" if seeds > 1 else
                "one seed (seed 0: intervals are within-seed sampling only)")
    return (f"{seed_txt[0].upper()}{seed_txt[1:]}: " + "; ".join(bits) + f". In short, {worth}.")


def verdict_blocks(doc: D.Document, verdicts: list[dict]) -> None:
    """The verdicts table: overall, per family, and what would decide each undecided one."""
    rows = []
    for v in verdicts:
        fam = v.get("per_family") or {}
        per = "; ".join(f"{f}: {x['verdict']}" for f, x in fam.items()) or "—"
        rows.append([v["claim"], D.Badge(v["verdict"], "#" + D.verdict_anchor(v["claim"])), per,
                     "; ".join(v.get("decide") or []) or "—", v["reason"]])
    doc.add(D.Heading(1, "Verdicts"),
            D.Table(["claim", "verdict", "per family", "what would decide it", "evidence"], rows,
                    caption="Overall verdict by the rule under each claim: " + claims.OVERALL_RULE))


def _claim3(doc: D.Document, ev: dict, figs: dict, v: dict) -> None:
    fams = ev["study"]["families"]
    doc.add(D.Heading(1, "Claim 3: new facts transfer as first hop, almost never as second"))
    inj = ev["data"].get(INJECTED, {})
    doc.add(D.Para(
        "New-knowledge set (from the natural dataset): "
        + ", ".join(f"{k} {n:,}" for k, n in inj.get("counts", {}).items())
        + ". Finetune train = replay + new atomic facts; no composition with a new fact is "
          "trained. Every pretrained model and a from-scratch control are finetuned on it."))
    for fam in fams:
        rows = []
        for key, r in ev["claim3"]["rows"].items():
            if not key.startswith(fam + "/"):
                continue
            src = key.split("/", 1)[1]
            e = claims.claim3_evidence(r)
            rows.append([src, fa(r.get("pretrained_iid")), fa(r["atomic_new"]), fci(e["new_old"]),
                         fci(claims._em(r, "old_new")), fci(claims._em(r, "new_new")),
                         fci(e["asymmetry"]), fa(r.get("bridge/new_old")),
                         fa(r.get("bridge/old_new")), fa(r.get("bridge/new_new")),
                         fs(r.get("new_learned_step"), r.get("steps")), fa(r.get("replay_inferred")),
                         fa(r.get("old_atomic")), fa(r.get("old_inferred"))])
        doc.add(D.Table(
            ["finetuned from", "ID acc before", "new facts EM", "new_old EM [Wilson CI] (n)",
             "old_new EM", "new_new EM", "asymmetry: new_old - second hop [Newcombe CI]",
             "bridge new_old", "bridge old_new", "bridge new_new",
             "new facts >= .9 at", "replay inferred EM", "old atomic EM (not replayed)",
             "old inferred EM (not replayed)"],
            rows, caption=f"Claim 3 evidence, {fam} (final evaluation of each finetune run; "
                          f"judged: the {claims.JUDGED_SOURCE} row)"))
        if f"transfer-{fam}" in figs:
            doc.add(D.Figure(figs[f"transfer-{fam}"], f"{fam}: transfer grid"))
    doc.add(D.Table(["category", "reference"], [[k, t] for k, t in reference.TRANSFER.items()],
                    caption="Reference (study)"))
    _verdict(doc, v)


def _claim4(doc: D.Document, ev: dict, figs: dict, v: dict) -> None:
    comp = ev["compute"]
    doc.add(D.Heading(1, "Compute vs data: steps and FLOPs to reach OOD accuracy"),
            D.Para(f"Target: OOD accuracy >= {comp['target']}. {FORMULA}"))
    rows = []
    for key, r in comp["rows"].items():
        extra = r.get("extra_vs_natural")
        rows.append([key, f"{r['params']:,}", f"{r['train_items']:,}", f"{r['added_items']:,}",
                     "—" if extra is None else f"{100 * extra:+.1f}%",
                     fs(r["steps_to_target"], r["budget_steps"]),
                     "—" if r["examples_to_target"] is None else f"{r['examples_to_target']:,}",
                     fe(r["flops_to_target"]), fe(r["flops_per_step"]), fe(r["budget_flops"])])
    doc.add(D.Table(["run", "parameters", "train items", "regime additions",
                     "train items vs natural",
                     "steps to target", "examples to target", "FLOPs to target", "FLOPs/step",
                     "FLOPs spent (budget)"], rows, caption="Compute evidence"),
            D.Para("Reference: " + reference.COMPUTE + "."))
    if "compute" in figs:
        doc.add(D.Figure(figs["compute"], "steps to the OOD target per run"))
    _verdict(doc, v)


def _forecast(doc: D.Document, ev: dict) -> None:
    """What the forecast said at 25% of each pretraining run's budget against what happened."""
    fc = ev.get("forecast") or {}
    rows = []
    for key, f in (fc.get("runs") or {}).items():
        if f.get("error"):
            rows.append([key, "—", "—", "—", "—", f["error"]])
            continue
        lo, hi = (f.get("interval") or [None, None])[:2] if f.get("interval") else (None, None)
        pred = "—" if f.get("predicted_step") is None else (
            f"{int(f['predicted_step']):,}" + (f" [{int(lo):,}, {int(hi):,}]" if lo is not None else ""))
        actual = "not within budget" if not f.get("actual_reached") else f"{int(f['actual_step']):,}"
        rows.append([key, fa(f.get("probability")), pred, f.get("recommendation", "—"), actual, ""])
    if not rows:
        return
    doc.add(D.Heading(1, "Forecast: was waiting worth it?"),
            D.Para(f"`groklab forecast` (the shipped model, fitted on micro-scale runs: at this "
                   f"scale it extrapolates) on each pretraining run's metrics up to "
                   f"{int(100 * fc['at'])}% of its budget, for the target {fc['target']}, next to "
                   "what the run then did. docs/forecast.md has the model and its held-out "
                   "accuracy."),
            D.Table(["run", "P(reach within budget)", "predicted step [interval]",
                     "recommendation", "actually reached at", "note"], rows,
                    caption=f"Forecast panel at {int(100 * fc['at'])}% of the budget"))


def fci(block: dict | None) -> str:
    """A value with its 95% CI and n: ``.912 [.850, .960] (n=68)``."""
    if not block or block.get("value") is None:
        return "—"
    lo, hi = block.get("ci") or [None, None]
    n = f" (n={block['n']})" if block.get("n") is not None else ""
    return f"{block['value']:.3f} [{fa(lo)}, {fa(hi)}]{n}"


def _negative_cell(neg: dict) -> str:
    """Claim 1's negative control: its free-cell r, which model it was and that model's ID
    accuracy (a memoriser must not compose)."""
    if neg.get("value") is None:
        return neg.get("error", "—")
    who = (f"memoriser@{neg.get('step'):,}" if neg.get("kind") == "memoriser"
           else f"natural@{neg.get('step'):,}")
    cells = (f" over {neg['free_cells']} of {neg['cells']}" if neg.get("free_cells") is not None
             else "")
    return f"{fci(neg)}{cells} ({who}, ID {fa(neg.get('iid_at_step'))})"


def _claim1(doc: D.Document, ev: dict, figs: dict, v: dict) -> None:
    doc.add(D.Heading(1, "Claim 1: grokked and non-grokked models use the same inference path"),
            D.Para("Study: " + reference.SAME_PATH + ". Here, as in the study: the grokked model "
                   "is the natural run at the end of its budget; the non-grokked model is the "
                   "both_full run stopped at training saturation (its first checkpoint with "
                   f"train accuracy >= {claims.FIT}). Every rate below comes with a bootstrap "
                   "95% CI and its n; chance = the same lens rule applied to an unrelated entity."))
    rows, trans, ctrl = [], [], []
    for c in ev["claim1"]:
        a = c.get("bridge_correct_ood") or {}
        g = c.get("bridge_correct_ood_grokked") or {}
        path = c.get("path") or {}
        neg = c.get("negative_control") or {}
        free = path.get("free") or {}
        rows.append([c["family"], (c.get("grokking") or {}).get("why", "—"),
                     fa(c.get("acc_grokked")),
                     "never fit" if c.get("saturation_step") is None else
                     f"{c['saturation_step']:,} (fit at {fs(c.get('train_fit_step'))})",
                     fa(c.get("acc_nongrokked")), fa(c.get("ood_nongrokked")),
                     fci(a), fci(a.get("chance")), fci(g), fci(g.get("chance")),
                     fci({**path, "n": path.get("n")}),
                     (f"{fci(free)} over {path['free_cells']} of {path['cells']}"
                      if path.get("free_cells") is not None else "—"),
                     _negative_cell(neg),
                     fci({"value": path.get("lens_corr"), "ci": path.get("lens_ci")}),
                     c.get("error", "")])
        for cat, d in (c.get("transfer_diff") or {}).items():
            trans.append([c["family"], cat, fa(d.get("a")), fa(d.get("b")), fci(d)])
        k = c.get("phi_max_control") or {}
        ctrl.append([c["family"], fa(k.get("acc")),
                     fci({"value": k.get("similarity"), "ci": [k.get("ci_low"), k.get("ci_high")],
                          "n": k.get("n")}),
                     fci({"value": k.get("lens_corr"), "ci": k.get("lens_ci")}),
                     k.get("error") or ""])
    doc.add(D.Table(
        ["family", "natural run (delay rule)", "natural ID acc", "both_full stopped at step",
         "its ID acc", "its OOD acc", "(a) bridge found, correct OOD", "chance",
         "same, natural model", "chance", "(b) path similarity (ID), whole grid",
         "(b) over the free cells", "(b) negative control: free cells (model)",
         "lens bridge-MRR corr", "note"], rows,
        caption="Claim 1 evidence: (a) the lens on the OOD test, over the queries each model "
                "answers correctly, at any stage and the family's bridge positions (recursive: "
                "any, the study's rule; causal: r2); (b) Pearson r of the causal-tracing grids"))
    if trans:
        doc.add(D.Table(["family", "category", "natural, finetuned EM",
                         "both_full@saturation, finetuned EM", "(c) difference [95% CI] (n)"],
                        trans, caption="Claim 1 (c): transfer equivalence (paired bootstrap over "
                                       f"the same queries; equivalent within +-{claims.TRANSFER_EQUIV})"))
    if ctrl:
        doc.add(D.Table(["family", "phi = max control ID acc", "path similarity to natural",
                         "lens bridge-MRR corr", "note"], ctrl,
                        caption="Extra row, not judged: the phi = max control (every ID "
                                "composition of the pool in training)"))
    cells = [len(m["values"]) * len(m["values"][0]) for c in ev["claim1"]
             for m in (c.get("maps") or {}).values() if m["values"]]
    if cells:
        doc.add(D.Para(
            "Path similarity: " + (ev["claim1"][0].get("measure") or "") + f". The grids have "
            f"{min(cells) if cells else 0}-{max(cells) if cells else 0} cells, but cells that hold "
            "one value on every query of both models are fixed by the architecture (restoring "
            "the corrupted token's own embedding restores the answer; restoring a token before "
            "it changes nothing), so the rule correlates the free cells only, and requires the "
            f"negative control to come out dissimilar (r's CI below {claims.SIMILAR}): a model "
            "that answers the training compositions without composing them: the memoriser (the "
            "family's recipe trained on the natural dataset with its compositions' answers "
            f"permuted, at its fit, valid only if it then answers < {claims.LOW} of the ID test), "
            "or where it gives no comparison the natural run's memorising checkpoint. A high "
            "correlation alone is necessary for the claim, not sufficient."))
    for fam in ev["study"]["families"]:
        if f"paths-{fam}" in figs:
            doc.add(D.Figure(figs[f"paths-{fam}"], f"{fam}: the two models' inference paths"))
    _verdict(doc, v)


def _claim2(doc: D.Document, ev: dict, v: dict) -> None:
    doc.add(D.Heading(1, "Claim 2: accuracy on unseen queries and the circuit can come apart"),
            D.Para("Measured as the study measured it: 'target found' and 'bridge found' are the "
                   "logit lens with the study's rule (the token is the top-1 decode at any stage "
                   "and any position) on the OOD test, at every evaluation; exact-match OOD "
                   "accuracy is shown beside them."))
    for fam in ev["study"]["families"]:
        rows = []
        for regime in REGIMES:
            t = ev["claim2"]["timelines"].get(f"{fam}/{regime}")
            if t is None:
                continue
            flag = ("accuracy without circuit" if t["accuracy_without_circuit"] else
                    "circuit without accuracy" if t["circuit_without_accuracy"] else
                    f"lens blind (ID bridge max {fa(t['max_bridge_id'])})" if t.get("lens_blind")
                    else "no")
            em_flag = ("accuracy without circuit" if t.get("em_accuracy_without_circuit") else
                       "circuit without accuracy" if t.get("em_circuit_without_accuracy") else "no")
            if fam not in engine.circuit_families([fam]):
                flag = f"not judged ({flag})"
            ref = reference.PRETRAIN[regime]
            budget = t["final_step"]
            rows.append([regime, fs(t["train_fit_step"], budget), fs(t["bridge_high_step"], budget),
                         fs(t.get("target_high_step"), budget), fs(t["ood_high_step"], budget),
                         fa(t.get("final_target")), fa(t["final_ood"]), fa(t["max_ood"]),
                         fa(t["final_bridge"]), fa(t["max_bridge_id"]), flag, em_flag,
                         f"{ref[0]} / {ref[1]} / {ref[2]} / {ref[3]}",
                         reference.FAKE_GROKKING[regime]])
        n_ood = ev["data"].get(GROKKED, {}).get("counts", {}).get(OOD)
        doc.add(D.Table(
            ["regime", "train >= .99", "bridge >= .9", "target found >= .9", "OOD EM >= .9",
             "final target found", "final OOD EM", "max OOD EM", "final bridge found",
             "max bridge found, correct ID", "dissociation (study measures)",
             "dissociation (EM)", "reference: train / bridge / OOD answer / end",
             "reference reading"],
            rows, caption=f"Claim 2 evidence, {fam} (steps; lens rates on "
                          f"{min(ev['study']['scale'].get('lens_queries') or 0, n_ood or 0)} of "
                          f"the {n_ood} OOD test queries, study rule)"))
    _verdict(doc, v)


def _paper_cost(doc: D.Document, fams: list[str]) -> None:
    """The estimate `--scale paper` prints before it starts, for this study's families."""
    from groklab.study.cost import ANCHOR_HOURS, ANCHOR_STEPS, estimate, totals
    from groklab.study.scales import get_scale

    paper = get_scale("paper")
    vocab = len(composition_vocab(paper.data["entities"], paper.data["relations"]))
    wanted = list(dict.fromkeys(list(fams) + ["recursive"]))
    params = {f: engine.n_params(paper.models[f], vocab) for f in wanted}
    rows = estimate(paper, tuple(fams), params, params["recursive"])
    t = totals(rows)
    doc.add(D.Heading(1, "Cost of the paper scale (estimate)"),
            D.Table(["kind", "family", "runs", "steps/run", "parameters", "PFLOP/run",
                     "GPU-hours/run", "disk/run (GB)"],
                    [[r.kind, r.family, str(r.runs), f"{r.steps:,}", f"{params[r.family]:,}",
                      f"{r.flops / 1e15:.1f}", f"{r.gpu_hours:.1f}", f"{r.disk_bytes / 1e9:.2f}"]
                     for r in rows],
                    caption="What `groklab reproduce --scale paper` would run (a GPU job)"),
            D.Para(f"Total: {t['runs']} runs, {t['steps']:,} steps, {t['flops'] / 1e18:.1f} EFLOP, "
                   f"~{t['gpu_hours']:,.0f} GPU-hours, ~{t['disk_gb']:.0f} GB of checkpoints. "
                   f"GPU-hours use the effective throughput implied by the study's anchor "
                   f"({ANCHOR_HOURS:.0f} H100-hours per {ANCHOR_STEPS:,}-step TRM run); an "
                   f"estimate, not a measurement."))


def _positions(spec) -> str:
    return "any position" if spec in ("auto", "all") else "position " + ", ".join(spec)


def _verdict(doc: D.Document, v: dict) -> None:
    text = f"{v['reason']}."
    if v.get("decide"):
        text += " What would decide it: " + "; ".join(v["decide"]) + "."
    doc.add(D.Verdict(v["claim"], v["verdict"], text, v["rule"]))


def _setup(doc: D.Document, ev: dict) -> None:
    info = ev["study"]
    scale = info["scale"]
    data = scale["data"]
    doc.add(D.Heading(1, "Set-up"),
            D.Bullets([
                f"graph: {data['entities']} entities, {data['relations']} relations, out_degree "
                f"{data['out_degree']}, OOD ratio {data['ood_ratio']}, phi {data['phi']}, graph "
                f"seed {data.get('seed', 0) if not info.get('vary_graph') else info.get('seed', 0)}",
                f"seed: train.seed {info.get('seed', 0)} (model init and batch order) for every "
                f"run; a single seed: intervals are within-seed sampling only "
                f"(`groklab reproduce --seeds N` pools N seeds)",
                f"relations > out_degree so that new facts can be injected on unused (h, r) pairs "
                f"({data['relations'] - data['out_degree']} unused relations per entity)",
                f"new-knowledge set: {scale['inject']['new_facts']} new facts, replay budget "
                f"{scale['inject']['replay']} items",
                "model families: " + ", ".join(info["families"]),
                "pretraining steps: " + ", ".join(
                    f"{f} {scale['pretrain_steps'][f]:,}" + "".join(
                        f" ({src} {n:,})" for src, n in
                        (scale.get("source_steps") or {}).get(f, {}).items())
                    for f in info["families"])
                + f"; finetuning steps: {scale['finetune_steps']:,}",
                f"device: {_devices_used(ev)} (requested: {info.get('device')}); groklab {info.get('groklab')}, torch "
                f"{info.get('torch')}, python {info.get('python')}; started {info.get('created')}",
            ]))
    rows = []
    for name, d in ev["data"].items():
        st = d["stats"]
        rows.append([name, f"{d['counts'].get('train', 0):,}",
                     f"{int(st.get('added_hop1', 0)):,}", f"{int(st.get('added_hop2', 0)):,}",
                     f"{d['counts'].get(IID, 0):,}", f"{d['counts'].get(OOD, 0):,}"])
    doc.add(D.Table(["dataset", "train items", "added hop-1", "added hop-2", "ID test", "OOD test"],
                    rows, caption="Datasets (from their manifests)"))
    stage_rows = [[k, f"{m.get('wall_s', 0):.1f}", m.get("finished_at", "")]
                  for k, m in ev["stages"].items() if m]
    doc.add(D.Table(["stage", "wall time (s)", "finished"], stage_rows,
                    caption="Stage wall times (a resumed stage shows its last run)"))


def _devices_used(ev: dict) -> str:
    """The devices the pretraining runs resolved to (their summary.json), e.g. ``cpu``."""
    used = sorted({p["device"] for p in ev["pretrain"].values() if p.get("device")})
    return ", ".join(used) or "not recorded"


def _pretraining(doc: D.Document, ev: dict, figs: dict) -> None:
    doc.add(D.Heading(1, "Pretraining"),
            D.Para("Grokking delay rule: " + claims.GROK_RULE + " Lens rates are shown with "
                   "their chance control in brackets: the same rule applied to an unrelated "
                   "entity."))
    for fam in ev["study"]["families"]:
        rows = []
        for src in SOURCES:
            p = ev["pretrain"].get(f"{fam}/{src}")
            if p is None:
                continue
            g = p.get("grokking") or {}
            rows.append([src, fs(p["steps"]), "—" if p["wall_s"] is None else f"{p['wall_s']:.0f}",
                         g.get("label", "—"), fs(g.get("fit_step"), p["steps"]),
                         fs(g.get("id_step"), p["steps"]), fs(g.get("ood_step"), p["steps"]),
                         fa(p["train_acc"]), fa(p["iid"]), fa(p["ood"]),
                         f"{fa(p['bridge_iid'])} ({fa(p.get('bridge_iid_control'))})",
                         f"{fa(p['bridge_ood'])} ({fa(p.get('bridge_ood_control'))})",
                         f"{fa(p.get('study_bridge_iid_correct'))} ({fa(p.get('study_chance_iid_correct'))})",
                         f"{fa(p.get('study_bridge_ood'))} ({fa(p.get('study_chance_ood'))})",
                         fa(p.get("study_target_ood"))])
        pos = _positions(engine.bridge_positions(fam))
        doc.add(D.Table(["data", "steps", "wall s", "grokking (delay rule)", "train fit step",
                         "ID >= .9 step", "OOD >= target step", "train acc", "ID test acc",
                         "OOD test acc",
                         "bridge found ID (chance)", "bridge found OOD (chance)",
                         "study rule: bridge found, correct ID (chance)",
                         "study rule: bridge found OOD (chance)", "study rule: target found OOD"],
                        rows,
                        caption=f"Pretraining, {fam}: final evaluation of each run. groklab rule: "
                                f"bridge top-1 at {pos}; study rule: at any stage and position. "
                                f"n: {_test_sizes(ev)}; lens rates on at most "
                                f"{ev['study']['scale'].get('lens_queries')} queries per split"))
        if f"curves-{fam}" in figs:
            doc.add(D.Figure(figs[f"curves-{fam}"], f"{fam}: curves per regime"))


def _test_sizes(ev: dict) -> str:
    counts = ev["data"].get(GROKKED, {}).get("counts", {})
    return f"ID test {counts.get(IID, '?')}, OOD test {counts.get(OOD, '?')} queries (natural data)"


def _configs(doc: D.Document, ev: dict) -> None:
    import yaml

    info = ev["study"]
    doc.add(D.Heading(1, "Exact configuration"),
            D.Para("The study scale as resolved (`study.json`); each run's full config is its "
                   "`config.yaml`. Pretraining runs of one family differ only in `data_path`."),
            D.Details("study scale (YAML)",
                      [D.Code(yaml.safe_dump(info["scale"], sort_keys=False), "yaml")]))


# ---------------------------------------------------------------------------- entry point
def write_report(study_dir: str | Path) -> list[Path]:
    """Collect, draw and write report.json, report.md and report.html; return their paths."""
    study_dir = Path(study_dir)
    ev = collect(study_dir)
    figs = draw(ev, study_dir)
    doc = build(ev, figs)
    _append_run_configs(doc, study_dir, ev)
    md = study_dir / "report.md"
    html = study_dir / "report.html"
    js = study_dir / "report.json"
    atomic_write_json(js, ev)
    atomic_write_text(md, D.to_markdown(doc, study_dir))
    atomic_write_text(html, D.to_html(doc))
    return [js, md, html]


def _append_run_configs(doc: D.Document, study_dir: Path, ev: dict) -> None:
    for fam in ev["study"]["families"]:
        for kind, src in (("pretrain", GROKKED), ("finetune", GROKKED)):
            path = study_dir / "runs" / kind / f"{fam}-{src}" / CONFIG_NAME
            if path.exists():
                doc.add(D.Details(f"`{path.relative_to(study_dir)}`",
                                  [D.Code(path.read_text(), "yaml")]))
