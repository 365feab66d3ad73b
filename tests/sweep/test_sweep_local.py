"""The local engine on the micro sweep: 4 real trials, one failing, one interrupted and resumed."""

import json
import os
import signal

import pytest
from sweepkit import crash_by_seed

from groklab.sweep import parse_sweep, plot_sweep, read_summary_csv, run_sweep
from groklab.sweep.trial import execute_trial, is_complete, make_jobs, read_record

STEPS = 300


def _by_phi(rows):
    return {r["data.phi"]: r for r in rows}


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


@pytest.mark.slow
def test_micro_sweep_failure_is_isolated_and_rerun_resumes(micro_local, micro_spec):
    out, first = micro_local
    trials = micro_spec.trials()
    rows = read_summary_csv(out / "summary.csv")
    assert [r["trial"] for r in rows] == [t.name for t in trials]          # one row per trial, plan order
    by_phi = _by_phi(rows)
    assert {p: r["status"] for p, r in by_phi.items()} == {
        2.0: "done", 4.0: "interrupted", 5.0: "done", 99.0: "failed"}
    assert "phi=99.0 is invalid" in by_phi[99.0]["error"] and "the pool holds" in by_phi[99.0]["error"]
    for phi in (2.0, 5.0):
        row, run = by_phi[phi], out / "trials" / by_phi[phi]["trial"]
        last = _metrics(run)[-1]
        assert (row["steps"], row["stopped"], row["phi"]) == (STEPS, "max_steps", phi)
        assert row["final/train_acc"] == pytest.approx(last["train_acc"])
        assert row["final/acc/test_inferred_iid"] == pytest.approx(last["acc/test_inferred_iid"])
        assert (row["hop1_ratio"], row["hop2_ratio"]) == (0.0, 0.0)
        assert row["error"] is None
    # phi=2 fits its training probes within 300 steps; the grok step column is the first such eval
    fit = by_phi[2.0]["first_step/train_acc>=0.99"]
    rows_phi2 = _metrics(out / "trials" / by_phi[2.0]["trial"])
    assert fit is not None and fit == min(r["step"] for r in rows_phi2 if r["train_acc"] >= 0.99)

    interrupted = out / "trials" / by_phi[4.0]["trial"]
    before = {r["step"]: r["time"] for r in _metrics(interrupted)}
    assert sorted(before) == [0, 50, 100]                                  # stopped at 150
    done_mtimes = {p: os.stat(out / "trials" / by_phi[p]["trial"] / "metrics.jsonl").st_mtime_ns for p in (2.0, 5.0)}

    second = run_sweep(micro_spec, out, engine="local", n_jobs=2, quiet=True)
    assert sorted(second.skipped) == sorted([by_phi[2.0]["trial"], by_phi[5.0]["trial"]])
    assert sorted(second.ran) == sorted([by_phi[4.0]["trial"], by_phi[99.0]["trial"]])
    rows2 = _by_phi(read_summary_csv(out / "summary.csv"))
    assert {p: r["status"] for p, r in rows2.items()} == {2.0: "done", 4.0: "done", 5.0: "done", 99.0: "failed"}
    after = _metrics(interrupted)
    assert [r["step"] for r in after] == list(range(0, STEPS + 1, 50))     # resumed: no step twice
    assert all(r["time"] == before[r["step"]] for r in after if r["step"] <= 100)  # rows kept, not redone
    assert rows2[4.0]["steps"] == STEPS
    for p in (2.0, 5.0):  # finished trials were not touched
        assert os.stat(out / "trials" / rows2[p]["trial"] / "metrics.jsonl").st_mtime_ns == done_mtimes[p]
    jobs = {j.name: j for j in make_jobs(micro_spec, out)}
    assert read_record(jobs[rows2[4.0]["trial"]])["attempt"] == 2
    assert read_record(jobs[rows2[99.0]["trial"]])["attempt"] == 2

    plots = plot_sweep(out, list(rows2.values()))
    assert [p.name for p in plots] == ["phi_grok.png"]
    assert plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hard_crash_of_a_worker_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = parse_sweep({"base": "tiny", "grid": {"train.seed": [0, 1, 2]}})
    result = run_sweep(spec, tmp_path / "s", n_jobs=2, trial_fn=crash_by_seed, quiet=True)
    status = {r["train.seed"]: (r["status"], r["error"]) for r in result.rows}
    assert status[0][0] == status[1][0] == "failed"
    assert f"killed by signal {signal.SIGKILL}" in status[0][1]
    assert "exit code 3" in status[1][1]
    assert status[2] == ("failed", "RuntimeError: boom in trial seed=2")
    assert "RuntimeError: boom" in (tmp_path / "s" / "logs" / f"{result.rows[2]['trial']}.log").read_text()


def test_diverged_trial_is_failed_and_not_retried(tmp_path, micro_spec):
    raw = micro_spec.to_dict()
    raw["set"] = {**raw["set"], "optim.lr": 1e6, "optim.grad_clip": 0, "optim.warmup_steps": 0,
                  "train.eval_every": 10}
    raw["grid"] = {"data.phi": [2.0]}
    spec = parse_sweep(raw)
    job = make_jobs(spec, tmp_path / "s")[0]
    with pytest.warns(RuntimeWarning, match="training loss is nan"):
        record = execute_trial(job)
    assert record["status"] == "failed"
    assert record["error"].startswith("diverged: non-finite training loss (stopped at step 10)")
    assert is_complete(job)      # a re-run does not train it again


def test_trial_stopped_on_its_target_is_complete(tmp_path, micro_spec):
    """A run that reached its train.stop_at targets is finished for the sweep too (one
    rundir.is_finished decides for train_run, the study and the sweep); it is not re-run."""
    raw = micro_spec.to_dict()
    raw["set"] = {**raw["set"], "train.stop_at": ["train_acc>=0"]}  # holds at the first evaluation
    raw["grid"] = {"data.phi": [2.0]}
    spec = parse_sweep(raw)
    job = make_jobs(spec, tmp_path / "s")[0]
    assert execute_trial(job)["status"] == "done"
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert (summary["stopped"], summary["steps"]) == ("target", 0)      # well short of train.steps
    assert is_complete(job)
    again = run_sweep(spec, tmp_path / "s", n_jobs=1, quiet=True)
    assert (again.skipped, again.ran) == ([job.name], [])
