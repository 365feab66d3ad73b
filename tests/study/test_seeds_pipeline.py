"""`groklab reproduce --scale micro --seeds 2`: one study per seed on one shared graph, and a
report whose pooled numbers are the per-seed numbers of metrics.jsonl, pooled by the rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groklab.cli import main
from groklab.study.measure import pool
from groklab.train.metrics import read_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "micro2"
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "2",
                 "--out", str(out), "--jobs", "1"]) == 0
    return out


def _final(rows, key):
    return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)


def test_layout_one_study_per_seed_on_a_shared_graph(study):
    info = json.loads((study / "study.json").read_text())
    assert info["seeds"] == 2 and info["seed_dirs"] == ["seeds/0", "seeds/1"]
    assert (study / "data" / "natural" / "manifest.json").is_file()
    assert not (study / "seeds" / "1" / "data").exists()
    for k in (0, 1):
        seed = study / "seeds" / str(k)
        assert json.loads((seed / "study.json").read_text()).get("seed", 0) == k
        assert (seed / "report.html").is_file()
        cfg = (seed / "runs/pretrain/decoder-natural/config.yaml").read_text()
        assert f"seed: {k}" in cfg and str(study / "data" / "natural") in cfg
    a = read_metrics(study / "seeds/0/runs/pretrain/decoder-natural/metrics.jsonl")
    b = read_metrics(study / "seeds/1/runs/pretrain/decoder-natural/metrics.jsonl")
    assert a[-1]["loss"] != b[-1]["loss"]     # different init and batch order


def test_pooled_numbers_are_the_per_seed_metrics_pooled(study):
    rep = json.loads((study / "report.json").read_text())["pooled"]
    for src in ("natural", "both_full"):
        finals = [_final(read_metrics(study / f"seeds/{k}/runs/pretrain/decoder-{src}/metrics.jsonl"),
                         "acc/test_inferred_iid") for k in (0, 1)]
        got = rep["pretrain"][f"decoder/{src}"]["iid"]
        assert got["per_seed"] == finals
        assert got == pool(finals, (0.0, 1.0))
    assert rep["seeds"] == 2 and len(rep["per_seed_verdicts"]) == 2
    assert {v["claim"] for v in rep["verdicts"]} == {"1 same path", "2 fake grokking",
                                                     "3 limited transfer", "4 compute"}
    md = (study / "report.md").read_text()
    assert "2 seeds" in md and "seeds/1/report.html" in md and "What this study found" in md
    # resuming a finished multi-seed study trains nothing
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "2",
                 "--out", str(study), "--jobs", "1"]) == 0


def test_more_seeds_grow_the_study_and_fewer_are_refused(tmp_path, capsys):
    grown = tmp_path / "grown"     # its own study: run configs name their data by absolute path
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "2",
                 "--out", str(grown), "--jobs", "1"]) == 0
    metrics = {k: grown / f"seeds/{k}/runs/pretrain/decoder-natural/metrics.jsonl" for k in (0, 1)}
    before = {k: p.stat().st_mtime_ns for k, p in metrics.items()}
    old = json.loads((grown / "report.json").read_text())["pooled"]["pretrain"]
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "3",
                 "--out", str(grown), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "growing the study from 2 to 3 seeds" in out
    trained = [line for line in out.splitlines() if "decoder-natural-seed2" in line]
    assert trained and not any(line.startswith("[seed 0]") for line in trained)
    assert {k: p.stat().st_mtime_ns for k, p in metrics.items()} == before   # reused, not retrained
    assert "seed: 2" in (grown / "seeds/2/runs/pretrain/decoder-natural/config.yaml").read_text()
    info = json.loads((grown / "study.json").read_text())
    assert info["seeds"] == 3 and info["seed_dirs"] == ["seeds/0", "seeds/1", "seeds/2"]
    rep = json.loads((grown / "report.json").read_text())["pooled"]
    got = rep["pretrain"]["decoder/natural"]["iid"]["per_seed"]
    assert rep["seeds"] == 3 and len(got) == 3
    assert got[:2] == old["decoder/natural"]["iid"]["per_seed"]
    report = (grown / "report.json").read_bytes()
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "2",
                 "--out", str(grown), "--jobs", "1"]) == 2
    assert "seeds=2 is invalid" in capsys.readouterr().err
    assert (grown / "report.json").read_bytes() == report


def test_a_different_configuration_or_a_single_seed_study_is_refused(study, capsys):
    assert main(["reproduce", "--scale", "micro", "--vary-graph", "--seeds", "2",
                 "--out", str(study)]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert main(["reproduce", "--scale", "micro", "--vary-graph", "--out", str(study)]) == 2
    assert main(["reproduce", "--scale", "micro", "--models", "decoder", "--seeds", "2",
                 "--out", str(study / "seeds" / "0")]) == 2
    assert "a single-seed study" in capsys.readouterr().err
