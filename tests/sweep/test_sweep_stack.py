"""``groklab sweep --stack``: trials differing only in train.seed trained as one ensemble, each
member an ordinary trial run equal to the same trial trained alone."""

import json
import subprocess
import sys

import pytest
import yaml

from groklab.errors import GroklabError
from groklab.sweep import parse_sweep, read_summary_csv, run_sweep
from groklab.sweep.stack import StackJob, plan_stacks
from groklab.sweep.trial import make_jobs, read_record, train_trial

STEPS = 80
RAW = {
    "name": "stackmicro", "base": "tiny",
    "set": {"data.entities": 30, "data.relations": 6, "data.out_degree": 4, "data.phi": 3.0,
            "model.d_model": 32, "model.n_layers": 1, "model.n_heads": 2,
            "optim.warmup_steps": 10, "train.steps": STEPS, "train.eval_every": 40,
            "train.batch_size": 64, "train.checkpoint_every": 40,
            "train.early_stop_patience": 0, "train.plots": False, "train.device": "cpu"},
    # lr 3e-3: seeds 0, 1, 2 (one stack of 2 + one alone at --stack 2); lr 1e-3: seeds 0, 1
    "grid": {"optim.lr": [3.0e-3, 1.0e-3], "train.seed": [0, 1, 2]},
}


def _spec(raw=RAW):
    spec = parse_sweep(json.loads(json.dumps(raw)))
    return spec


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def test_plan_groups_by_config_but_seed_and_leaves_started_trials_alone(tmp_path):
    jobs = make_jobs(_spec(), tmp_path)
    assert len(jobs) == 6
    units = plan_stacks(jobs, 2)
    stacks = [u for u in units if isinstance(u, StackJob)]
    singles = [u for u in units if not isinstance(u, StackJob)]
    # 3 trials per lr, at most 2 per stack: one stack and one lone trial per lr
    assert len(stacks) == 2 and len(singles) == 2
    for s in stacks:
        lrs = {m.config().optim.lr for m in s.members}
        seeds = [m.config().train.seed for m in s.members]
        assert len(lrs) == 1 and len(set(seeds)) == 2
    assert sorted(m.name for u in units for m in (u.members if isinstance(u, StackJob) else [u])) \
        == sorted(j.name for j in jobs)
    assert plan_stacks(jobs, 1) == jobs
    assert len([u for u in plan_stacks(jobs, 3) if isinstance(u, StackJob)]) == 2
    # a trial an earlier attempt started resumes alone
    started = jobs[0].run_dir
    started.mkdir(parents=True)
    (started / "config.yaml").write_text(jobs[0].config().to_yaml())
    units = plan_stacks(jobs, 3)
    assert jobs[0] in units
    assert all(jobs[0] not in u.members for u in units if isinstance(u, StackJob))


def test_dropout_and_tensorboard_trials_are_not_stacked(tmp_path):
    raw = json.loads(json.dumps(RAW))
    raw["set"]["model.dropout"] = 0.1
    assert all(not isinstance(u, StackJob) for u in plan_stacks(make_jobs(_spec(raw), tmp_path), 4))
    raw = json.loads(json.dumps(RAW))
    raw["tensorboard"] = True
    assert all(not isinstance(u, StackJob) for u in plan_stacks(make_jobs(_spec(raw), tmp_path), 4))


@pytest.mark.slow
def test_stacked_sweep_members_equal_trials_trained_alone_and_resume_alone(tmp_path):
    raw = json.loads(json.dumps(RAW))
    raw["grid"] = {"optim.lr": [3.0e-3], "train.seed": [0, 1, 2]}
    spec = _spec(raw)
    out = tmp_path / "sweep"
    result = run_sweep(spec, out, n_jobs=1, quiet=True, stack=2)
    rows = read_summary_csv(out / "summary.csv")
    assert [r["status"] for r in rows] == ["done"] * 3
    jobs = make_jobs(spec, out)
    stacked = [j for j in jobs if (read_record(j) or {}).get("stack")]
    assert len(stacked) == 2 and (out / "stacks" / f"stack-{stacked[0].name}" / "ensemble.json").is_file()
    assert sorted(result.ran) == sorted(j.name for j in jobs)

    # each stacked member = the same trial trained alone (same seed, data, steps, evaluations)
    alone = tmp_path / "alone"
    for job in stacked:
        ref = make_jobs(spec, alone)[jobs.index(job)]
        train_trial(ref)
        a, b = _metrics(job.run_dir), _metrics(ref.run_dir)
        assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 40, 80]
        keys = [k for k in b[-1] if k.startswith(("acc/", "loss/"))
                or k in ("train_acc", "loss", "weight_norm")]
        assert "acc/test_inferred_iid" in keys and "train_acc" in keys and "loss" in keys
        for ra, rb in zip(a, b):
            for key in keys:
                if rb[key] is None:  # the training loss of step 0
                    assert ra[key] is None
                else:
                    assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), (job.name, key)
    # the members are ordinary runs: a re-run skips them, a longer budget resumes each alone
    again = run_sweep(spec, out, n_jobs=1, quiet=True, stack=2)
    assert sorted(again.skipped) == sorted(j.name for j in jobs) and again.ran == []
    raw["set"]["train.steps"] = STEPS + 40
    longer = _spec(raw)
    before = {j.name: _metrics(j.run_dir) for j in stacked}
    third = run_sweep(longer, out, n_jobs=1, quiet=True, stack=2)
    assert [r["status"] for r in third.rows] == ["done"] * 3
    for j in stacked:
        assert read_record(j).get("stack") is None        # this attempt ran it alone
        rows = _metrics(j.run_dir)
        assert [r["step"] for r in rows] == [0, 40, 80, 120]
        assert rows[:3] == before[j.name]                  # resumed: rows kept, not redone


def test_bad_stack_values_are_one_line_errors(tmp_path):
    spec = _spec()
    with pytest.raises(GroklabError, match="--stack"):
        run_sweep(spec, tmp_path / "a", stack=0, quiet=True)
    with pytest.raises(GroklabError, match="engine ray"):
        run_sweep(spec, tmp_path / "b", engine="ray", stack=2, quiet=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(RAW))
    p = subprocess.run([sys.executable, "-m", "groklab.cli", "sweep", str(path), "--out",
                        str(tmp_path / "c"), "--stack", "0"], capture_output=True, text=True)
    assert p.returncode == 2 and "--stack" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
