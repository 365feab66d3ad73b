"""Report rendering, FLOPs and cost: pure parts of the study, checked with real numbers."""

import re
import subprocess
import sys

import numpy as np

from groklab.forecast.features import first_hit
from groklab.study import compute, cost, document as D, figures
from groklab.study.scales import get_scale


def test_html_is_self_contained_and_markdown_links_figures(tmp_path):
    png = figures.grid(tmp_path / "figures" / "g.png", "t", ["a", "b"], ["x", "y"],
                       [[0.1, 0.9], [None, 0.5]])
    doc = D.Document("T").add(
        D.Heading(1, "Claim"), D.Para("a **bold** `code` <script>x</script>"),
        D.Table(["k", "v|w"], [["1", "0.500"]], caption="cap"), D.Figure(png, "fig"),
        D.Code("a: 1", "yaml"))
    html = D.to_html(doc)
    assert "data:image/png;base64," in html
    assert not re.search(r"""src\s*=\s*["'](?!data:)""", html)  # links: in-page anchors only
    assert not re.search(r"""href\s*=\s*["'](?!#)""", html)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<strong>bold</strong>" in html
    md = D.to_markdown(doc, tmp_path)
    assert "![fig](figures/g.png)" in md
    assert "| k | v\\|w |" in md and "| 1 | 0.500 |" in md


def test_flops_formula_per_family():
    dec = dict(family="decoder")
    assert compute.flops_per_step(1000, dec, 10) == 6 * 1000 * 10 * 3
    rec = dict(family="recursive", h_cycles=2, l_cycles=6)   # 14 forward, 7 backward
    assert compute.applications(rec) == (14, 7)
    assert compute.flops_per_step(1000, rec, 10) == 10 * 4 * 1000 * (2 * 14 + 4 * 7)
    rows = [{"step": 0, "a": 0.1}, {"step": 5, "a": 0.6}, {"step": 9, "a": 0.4}]
    assert first_hit(rows, "a", 0.5) == 5 and first_hit(rows, "a", 0.7) is None


def test_checkpoint_count_and_paper_cost_anchor():
    assert cost.n_checkpoints([[1000, 100], [None, 1000]], 3000) == 10 + 2 + 1
    assert cost.n_checkpoints(500, 3000) == 7
    scale = get_scale("paper")
    params = {"decoder": 30_000_000, "recursive": 7_000_000}
    rows = cost.estimate(scale, ("decoder", "recursive"), params, anchor_params=7_000_000)
    trm = next(r for r in rows if r.family == "recursive" and r.kind == "pretrain")
    # the study's anchor: a 1.6M-step TRM run of the paper's size is ~50 H100-hours
    assert np.isclose(trm.gpu_hours, cost.ANCHOR_HOURS)
    assert trm.runs == 6 and trm.steps == 1_600_000
    text = cost.format_estimate(scale, rows)
    assert "GPU-hours" in text and "estimate" in text


def test_estimate_counts_each_sources_own_budget():
    # cpu_l6_long trains the TRM's natural run 8,500 steps, the control 2,500, the rest 6,000
    scale = get_scale("cpu_l6_long")
    rows = cost.estimate(scale, ("recursive",), {"recursive": 100_000}, anchor_params=7_000_000)
    pre = {r.steps: r.runs for r in rows if r.kind == "pretrain"}
    assert pre == {2500: 1, 6000: 4, 8500: 1}
    # claim 1's memoriser at its ceiling (the natural budget); finetunes: five regimes, scratch
    # and both_full at saturation
    assert [(r.runs, r.steps) for r in rows if r.kind == "memoriser"] == [(1, 8500)]
    assert [r.runs for r in rows if r.kind == "finetune"] == [7]
    per_seed = 2500 + 4 * 6000 + 8500 + 8500 + 7 * scale.finetune_steps
    assert cost.totals(rows)["steps"] == per_seed
    three = cost.estimate(scale, ("recursive",), {"recursive": 100_000}, 7_000_000, seeds=3)
    assert cost.totals(three)["steps"] == 3 * per_seed
    assert cost.totals(three)["runs"] == 3 * cost.totals(rows)["runs"] == 3 * 14
    text = cost.format_estimate(scale, three, seeds=3)
    assert "3 seeds" in text and "CPU core-hours" in text and "memoriser" in text
    # the wall figure divides the core-hours by the parallel jobs asked for
    core_h = cost.totals(three)["cpu_hours"]
    assert f"~{core_h / 4:,.1f} h wall with --jobs 4" in cost.format_estimate(scale, three, 3, jobs=4)


def test_paper_scale_prints_estimate_and_needs_yes(tmp_path):
    cmd = [sys.executable, "-m", "groklab.cli", "reproduce", "--scale", "paper", "--models", "recursive", "--out",
           str(tmp_path / "s")]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "GPU-hours" in proc.stdout and "--yes" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()


def test_bad_models_and_jobs_exit_2(tmp_path):
    from groklab.cli import main

    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "a"),
                 "--models", "decoder,gpt5"]) == 2
    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "a"), "--jobs", "0"]) == 2
    assert not (tmp_path / "a").exists()


def test_out_that_is_a_file_or_a_foreign_directory_is_refused(tmp_path):
    from groklab.cli import main

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "f")]) == 2
    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "d")]) == 2
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["keep.txt"]


def test_summary_and_verdict_table_come_from_the_verdicts():
    from groklab.study import claims as C
    from groklab.study.report import summary_paragraph, verdict_blocks

    rows = [{"family": "decoder", "aug_steps": 750, "nat_steps": None, "nat_budget": 1500},
            {"family": "recursive", "aug_steps": 500, "nat_steps": None, "nat_budget": 3000}]
    v4 = C.judge_claim4(rows, 0.5).to_dict()
    assert v4["per_family"]["recursive"]["verdict"] == C.SUPPORTED
    assert v4["verdict"] == C.INCONCLUSIVE                     # the decoder's bound is 2x
    text = summary_paragraph([v4], 1)
    assert text.startswith("One seed") and "not decided" in text
    doc = D.Document("T")
    verdict_blocks(doc, [v4])
    table = next(b for b in doc.blocks if isinstance(b, D.Table))
    (row,) = table.rows
    assert "decoder: inconclusive" in row[2] and "recursive: supported" in row[2]
    assert "natural needs a budget >= 3,750 steps" in row[3]
    assert "pooled over 2 seeds" in summary_paragraph([v4], 2).lower()
