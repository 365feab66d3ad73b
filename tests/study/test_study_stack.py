"""`groklab reproduce --seeds N --stack S`: the seeds' fresh pretraining runs of one family and
regime trained as one ensemble; every seed's run equals the same run trained alone."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from groklab.cli import main
from groklab.study import engine
from groklab.study.runner import StudyStackJob
from groklab.study.scales import get_scale
from groklab.study.seeds import SeededStudy
from groklab.train.metrics import read_metrics

REGIMES = ("natural", "both_full")


def _seeded(out, stack):
    micro = get_scale("micro")
    scale = replace(micro, pretrain_steps={f: 60 for f in micro.pretrain_steps},
                    eval_every={f: 30 for f in micro.eval_every})
    ss = SeededStudy(out, scale, ("decoder",), 2, jobs=1, stack=stack, log=lambda m: None)
    ss.open()
    for s in ss.studies:
        s._run_stages(("data",), {})
    specs = [sp for s in ss.studies for sp in s.stage_specs("pretrain") if sp.source in REGIMES]
    return ss, specs


def test_plan_stacks_seeds_of_one_run_and_leaves_finetunes_and_started_runs_alone(tmp_path):
    ss, specs = _seeded(tmp_path / "s", stack=2)
    jobs = ss.studies[0]._pool_jobs(specs)
    assert [type(j) for j in jobs] == [StudyStackJob, StudyStackJob]
    for j in jobs:
        assert sorted(d["seed"] for d in j.specs) == [0, 1]
        assert len({d["source"] for d in j.specs}) == 1
        assert str(tmp_path / "s" / "stacks" / "pretrain") in j.stack_dir
    # stack 1 = one job per run; a finetune (its own pretrained weights) is never stacked
    ss.studies[0].stack = 1
    assert len(ss.studies[0]._pool_jobs(specs)) == 4
    ss.studies[0].stack = 2
    fine = [sp for s in ss.studies for sp in s.stage_specs("claim3")][:2]
    assert all(not isinstance(j, StudyStackJob) for j in ss.studies[0]._pool_jobs(fine))


@pytest.mark.slow
def test_stacked_seeds_equal_runs_trained_alone(tmp_path):
    ss, specs = _seeded(tmp_path / "stacked", stack=2)
    results = ss.studies[0].train_all(specs)
    assert sorted(results) == sorted(s.name for s in specs)
    stacks = sorted((tmp_path / "stacked" / "stacks" / "pretrain").iterdir())
    assert [p.name for p in stacks] == ["decoder-both_full-seeds0-1", "decoder-natural-seeds0-1"]
    for spec in specs:
        alone = asdict(spec)
        alone["run_dir"] = str(tmp_path / "alone" / spec.name.replace("/", "_"))
        engine.train_spec(alone)
        a, b = read_metrics(f"{spec.run_dir}/metrics.jsonl"), read_metrics(f"{alone['run_dir']}/metrics.jsonl")
        assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 30, 60]
        keys = [k for k in b[-1] if k.startswith(("acc/", "lens/")) or k == "train_acc"]
        assert "acc/test_inferred_iid" in keys and any(k.startswith("lens/") for k in keys)
        for ra, rb in zip(a, b):
            for k in keys:
                if rb.get(k) is None:
                    assert ra.get(k) is None, (spec.name, k)
                else:
                    assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (spec.name, k)
    # the members are ordinary finished runs: the study reuses them
    assert all(engine.finished_summary(s.run_dir, s.config) is not None for s in specs)


def test_stack_needs_seeds(tmp_path, capsys):
    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "x"), "--stack", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stack=2 is invalid" in err[0]
    assert not (tmp_path / "x").exists()
    assert main(["reproduce", "--scale", "micro", "--out", str(tmp_path / "y"), "--seeds", "2",
                 "--stack", "0"]) == 2
    assert "stack" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
