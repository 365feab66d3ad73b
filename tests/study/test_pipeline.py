"""`groklab reproduce --scale micro` end to end: every stage's outputs, the report's tables and
numbers against metrics.jsonl, a self-contained HTML, and resuming an interrupted study."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from groklab.cli import main
from groklab.study import engine
from groklab.study.pipeline import STAGES
from groklab.study.scales import CONTROL, REGIMES, get_scale
from groklab.train.metrics import read_metrics

pytestmark = pytest.mark.slow
FAMILIES = ("decoder", "recursive")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "micro"
    assert main(["reproduce", "--scale", "micro", "--out", str(out), "--jobs", "1"]) == 0
    return out


def _final(rows, key):
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def _md_rows(md: str, caption: str) -> dict[str, list[str]]:
    """Rows of the markdown table under ``caption``, keyed by their first cell."""
    block = md.split(caption, 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def test_every_stage_produced_its_outputs(study):
    for name in STAGES:
        assert (study / "stages" / f"{name}.json").is_file(), name
    for src in REGIMES + (CONTROL, "new_knowledge"):
        assert (study / "data" / src / "manifest.json").is_file()
    for fam in FAMILIES:
        for src in REGIMES + (CONTROL,):
            summary = json.loads((study / "runs/pretrain" / f"{fam}-{src}" / "summary.json").read_text())
            assert summary["finished"] and summary["steps"] == 150
            rows = read_metrics(study / "runs/pretrain" / f"{fam}-{src}" / "metrics.jsonl")
            assert engine.bridge_key("test_inferred_ood") in rows[-1]
        for src in REGIMES + ("scratch",):
            run = study / "runs/finetune" / f"{fam}-{src}"
            assert json.loads((run / "summary.json").read_text())["finished"]
            assert "acc/atomic_new" in read_metrics(run / "metrics.jsonl")[-1]
        c1 = json.loads((study / "analysis" / f"claim1-{fam}.json").read_text())
        assert c1.get("error") or c1["path"]["value"] is not None or c1["path"]["error"]
        if not c1.get("error"):  # the non-grokked model: both_full at training saturation
            assert c1["saturation_step"] >= c1["train_fit_step"]
            assert set(c1["transfer_diff"]) == {"atomic_new", "new_old", "old_new", "new_new"}
            assert (study / "runs/finetune" / f"{fam}-both_full_saturated" / "summary.json").is_file()
            a = c1["bridge_correct_ood"]
            assert a["n"] == round(a["accuracy"] * a["queries"]) and "chance" in a
    for name in ("claim2", "claim3", "compute"):
        assert (study / "analysis" / f"{name}.json").is_file()
    for fig in ("curves-decoder", "curves-recursive", "transfer-decoder", "compute"):
        assert (study / "figures" / f"{fig}.png").stat().st_size > 1000


def test_estimate_counts_the_runs_the_study_trained(study):
    """`--estimate-only`'s rows are the runs the pipeline trains, at most their steps each."""
    from groklab.study.cost import estimate
    rows = estimate(get_scale("micro"), FAMILIES, {f: 1 for f in FAMILIES}, anchor_params=1)
    for fam in FAMILIES:
        want = {kind: sum(r.runs for r in rows if r.family == fam and r.kind in kinds)
                for kind, kinds in (("pretrain", ("pretrain", "memoriser")), ("finetune", ("finetune",)))}
        ceiling = max(r.steps for r in rows if r.family == fam)
        for kind in ("pretrain", "finetune"):
            runs = [p for p in (study / "runs" / kind).iterdir() if p.name.startswith(f"{fam}-")]
            # the saturated finetune needs both_full to have fit; every other run always trains
            saturated = (study / "runs/finetune" / f"{fam}-both_full_saturated").is_dir()
            assert len(runs) == want[kind] - (kind == "finetune" and not saturated), (fam, kind)
            for run in runs:
                assert json.loads((run / "summary.json").read_text())["steps"] <= ceiling


def test_report_has_each_claims_table_and_verdict(study):
    md = (study / "report.md").read_text()
    for caption in ("Claim 1 evidence", "Claim 2 evidence, decoder", "Claim 2 evidence, recursive",
                    "Claim 3 evidence, decoder", "Claim 3 evidence, recursive", "Compute evidence",
                    "Forecast panel at 25% of the budget"):
        assert caption in md
    assert md.count("**Verdict: ") == 4 and md.count("Rule: ") == 4
    verdicts = json.loads((study / "report.json").read_text())["verdicts"]
    assert len(verdicts) == 4
    for v in verdicts:
        assert v["verdict"] in ("supported", "not supported", "inconclusive at this scale")
    assert "relations > out_degree" in md
    # the forecast panel: one row per pretraining run, with what happened beside it
    panel = json.loads((study / "report.json").read_text())["forecast"]
    assert len(panel["runs"]) == 2 * 6 and panel["at"] == 0.25
    assert all("actual_reached" in f or "error" in f for f in panel["runs"].values())


def test_html_is_self_contained(study):
    html = (study / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert not re.search(r"""src\s*=\s*["'](?!data:)""", html)  # links: in-page anchors only
    assert not re.search(r"""href\s*=\s*["'](?!#)""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_report_reads_as_a_document(study):
    """TOC links land on headings, verdicts are coloured boxes, configs are folded, the device
    the runs used is named, and no Markdown is left literal in the HTML text."""
    from test_document import parse  # tests/study is on sys.path (rootdir-style imports)

    html = (study / "report.html").read_text()
    page = parse(html)
    toc = re.search(r'<nav class="toc">(.*?)</nav>', html, re.S).group(1)
    links = re.findall(r'href="#([^"]+)"', toc)
    assert "verdicts" in links and len(links) >= 8 and set(links) <= set(page.ids)
    assert set(page.links) <= set(page.ids)            # the verdicts table links each box too
    verdicts = json.loads((study / "report.json").read_text())["verdicts"]
    cls = {"supported": "supported", "not supported": "not-supported"}
    assert page.verdicts == [cls.get(v["verdict"], "inconclusive") for v in verdicts]
    assert html.count("<details><summary>") >= 2
    text = "".join(page.text)
    assert "**" not in text and "`" not in text
    assert "device: cpu (requested: auto)" in text
    md = (study / "report.md").read_text()
    assert set(re.findall(r"\]\(#([^)]+)\)", md)) <= set(re.findall(r'<a id="([^"]+)"></a>', md))


def test_report_numbers_match_metrics_jsonl(study):
    """Recompute the report's numbers from the run directories, independently."""
    md = (study / "report.md").read_text()
    report = json.loads((study / "report.json").read_text())
    fmt = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
    for fam in FAMILIES:
        table = _md_rows(md, f"Pretraining, {fam}: final evaluation of each run")
        c2 = _md_rows(md, f"Claim 2 evidence, {fam}")
        for src in REGIMES + (CONTROL,):
            rows = read_metrics(study / "runs/pretrain" / f"{fam}-{src}" / "metrics.jsonl")
            last = rows[-1]
            want = [fmt(last["train_acc"]), fmt(last["acc/test_inferred_iid"]),
                    fmt(last["acc/test_inferred_ood"])]
            assert table[src][7:10] == want, (fam, src)
            assert table[src][1] == f"{last['step']:,}"
            assert report["pretrain"][f"{fam}/{src}"]["ood"] == last["acc/test_inferred_ood"]
            if src in REGIMES:
                ood = [r["acc/test_inferred_ood"] for r in rows]
                bridge = [r[engine.study_key("test_inferred_ood", "bridge_found")] for r in rows]
                target = [r[engine.study_key("test_inferred_ood", "target_found")] for r in rows]
                assert c2[src][5] == fmt(target[-1])
                assert c2[src][6] == fmt(ood[-1]) and c2[src][7] == fmt(max(ood))
                assert c2[src][8] == fmt(bridge[-1])
        c3 = _md_rows(md, f"Claim 3 evidence, {fam}")
        for src in REGIMES + ("scratch",):
            rows = read_metrics(study / "runs/finetune" / f"{fam}-{src}" / "metrics.jsonl")
            want = [fmt(_final(rows, f"acc/{k}")) for k in ("atomic_new", "new_old", "old_new", "new_new")]
            assert [c.split()[0] for c in c3[src][2:6]] == want, (fam, src)  # EM [CI] (n)
        c1 = _md_rows(md, "Claim 1 evidence")[fam]
        analysis = json.loads((study / "analysis" / f"claim1-{fam}.json").read_text())
        rows = read_metrics(study / "runs/pretrain" / f"{fam}-natural" / "metrics.jsonl")
        assert c1[1] == analysis["grokking"]["why"]          # the natural run's delay label
        assert c1[2] == fmt(rows[-1]["acc/test_inferred_iid"])
        if not analysis.get("error"):
            assert c1[4] == fmt(analysis["acc_nongrokked"])
            if analysis["path"]["value"] is not None:
                assert c1[10].startswith(fmt(analysis["path"]["value"]))
        comp = _md_rows(md, "Compute evidence")
        for src in REGIMES:
            rows = read_metrics(study / "runs/pretrain" / f"{fam}-{src}" / "metrics.jsonl")
            hit = next((r["step"] for r in rows if r["acc/test_inferred_ood"] >= 0.5), None)
            want = f"never (<= {rows[-1]['step']:,})" if hit is None else f"{hit:,}"
            assert comp[f"{fam}/{src}"][5] == want


def test_rerun_reuses_finished_runs_and_resumes_an_interrupted_one(tmp_path, capsys):
    """Simulate a kill mid-run: cut one pretraining run back to an earlier checkpoint as a
    killed run leaves it (unfinished summary, metrics up to that step); drop the later stage
    markers. A rerun must resume that run to the same metrics and reuse all others."""
    out = tmp_path / "study"
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--jobs", "1",
                 "--out", str(out)]) == 0
    victim = out / "runs/pretrain/decoder-natural"
    full = read_metrics(victim / "metrics.jsonl")
    for p in (victim / "checkpoints").iterdir():
        if int(p.name[5:13]) > 100:
            p.unlink()
    (victim / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in full if r["step"] <= 100))
    summ = json.loads((victim / "summary.json").read_text())
    (victim / "summary.json").write_text(json.dumps({**summ, "finished": False}))
    for name in STAGES[1:]:
        (out / "stages" / f"{name}.json").unlink()
    other = out / "runs/pretrain/decoder-both_full/metrics.jsonl"
    before = other.stat().st_mtime_ns
    capsys.readouterr()

    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--jobs", "2",
                 "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert "1 run(s) to train (1 resumed from a checkpoint)" in log
    assert "pretrain/decoder-both_full: reused" in log
    assert "data: reused" in log
    assert len([line for line in log.splitlines() if "report.html" in line]) == 1  # said once
    resumed = read_metrics(victim / "metrics.jsonl")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
    assert other.stat().st_mtime_ns == before
    assert (out / "report.html").is_file()


def test_other_scale_in_same_dir_is_refused(study, capsys):
    assert main(["reproduce", "--scale", "tiny", "--out", str(study)]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_parallel_runs_are_isolated_on_the_sweep_pool(tmp_path):
    """--jobs 2 trains on the sweep's process pool: every run logs to STUDY/logs, and a run
    that fails (here its config.yaml cannot be read) is reported with its log while the other
    runs finish."""
    from groklab.errors import GroklabError
    from groklab.study.pipeline import Study
    from groklab.study.scales import get_scale

    out = tmp_path / "study"
    study = Study(out, get_scale("micro"), ("decoder",), device="cpu", jobs=2, log=lambda msg: None)
    study.open()
    victim = out / "runs/pretrain/decoder-natural"
    victim.mkdir(parents=True)
    (victim / "config.yaml").write_text("{ not: yaml")
    with pytest.raises(GroklabError, match=r"training failed: pretrain/decoder-natural \(GroklabError: "
                                           r"config .*cannot read it as YAML"):
        study.run(stages=("data", "pretrain"))
    logs = out / "logs" / "pretrain"
    assert "Traceback" in (logs / "decoder-natural.log").read_text()
    assert json.loads((logs / "decoder-natural.json").read_text())["status"] == "failed"
    for src in (*REGIMES[1:], CONTROL):
        assert json.loads((logs / f"decoder-{src}.json").read_text())["status"] == "done"
        assert json.loads((out / "runs/pretrain" / f"decoder-{src}" / "summary.json").read_text())["finished"]


def test_longest_runs_start_first(tmp_path):
    """The pool gets its runs longest budget first (stable among equal budgets), so a long
    natural run does not start last and leave the other workers idle at the end of a stage."""
    from dataclasses import replace

    from groklab.study.pipeline import Study
    from groklab.study.scales import get_scale

    micro = get_scale("micro")
    scale = replace(micro, pretrain_steps={**micro.pretrain_steps, "decoder": 20},
                    source_steps={"decoder": {"second_hop": 40}}, eval_every={"decoder": 20},
                    train=dict(micro.train, checkpoint_every=[[None, 20]]))
    lines = []
    study = Study(tmp_path / "study", scale, ("decoder",), device="cpu", jobs=1, log=lines.append)
    study.open()
    study.run(stages=("data", "pretrain"))
    started = [m.group(1) for m in map(re.compile(r"\[\d+/\d+\] pretrain/decoder-(\w+) \.\.\.").search,
                                       lines) if m]
    assert started == ["second_hop", *[s for s in (*REGIMES, CONTROL) if s != "second_hop"]]
    summary = json.loads((tmp_path / "study/runs/pretrain/decoder-second_hop/summary.json").read_text())
    assert summary["steps"] == 40
