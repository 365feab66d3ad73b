"""The local engine's workers serve many trials each: reuse, per-trial logs, and a fresh worker
after a trial that killed or interrupted its own."""

import os

from sweepkit import act_by_name

from groklab.sweep.local import run_local
from groklab.sweep.trial import TrialJob


def _jobs(tmp_path, names):
    return [TrialJob(name=n, sweep_dir=str(tmp_path), base="tiny", overrides=()) for n in names]


def _pid(job) -> int:
    line = next(x for x in job.log_path.read_text().splitlines() if x.startswith("trial "))
    return int(line.rsplit(" ", 1)[1])


def test_one_worker_serves_every_trial_and_each_log_holds_only_its_trial(tmp_path):
    jobs = _jobs(tmp_path, ["a", "b", "c", "boom-d", "e"])
    done = []
    records = run_local(jobs, trial_fn=act_by_name, n_jobs=1,
                        on_done=lambda job, record: done.append(job.name))
    assert done == ["a", "b", "c", "boom-d", "e"]
    assert {n: r["status"] for n, r in records.items()} == {
        "a": "done", "b": "done", "c": "done", "boom-d": "failed", "e": "done"}
    assert records["boom-d"]["error"] == "RuntimeError: boom in boom-d"
    pids = {_pid(j) for j in jobs}
    assert len(pids) == 1 and os.getpid() not in pids          # one worker, not this process
    assert {r["pid"] for r in records.values()} == pids
    for job in jobs:
        text = job.log_path.read_text()
        assert f"trial {job.name} in pid" in text
        assert all(f"trial {o.name} " not in text for o in jobs if o is not job)
    assert "Traceback" in jobs[3].log_path.read_text()          # a failing trial's traceback


def test_a_trial_that_kills_or_interrupts_its_worker_gets_it_replaced(tmp_path):
    jobs = _jobs(tmp_path, ["a", "kill-b", "c", "stop-d", "e"])
    records = run_local(jobs, trial_fn=act_by_name, n_jobs=1)
    assert {n: r["status"] for n, r in records.items()} == {
        "a": "done", "kill-b": "failed", "c": "done", "stop-d": "interrupted", "e": "done"}
    assert "worker process died (killed by signal 9)" in records["kill-b"]["error"]
    pids = [_pid(j) for j in jobs]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_two_workers_share_the_trials(tmp_path):
    jobs = _jobs(tmp_path, [f"t{k}" for k in range(6)])
    records = run_local(jobs, trial_fn=act_by_name, n_jobs=2)
    assert all(r["status"] == "done" for r in records.values()) and len(records) == 6
    assert len({_pid(j) for j in jobs}) <= 2


def test_trials_per_worker_retires_a_worker_after_that_many(tmp_path):
    jobs = _jobs(tmp_path, ["a", "b", "c", "d", "e"])
    records = run_local(jobs, trial_fn=act_by_name, n_jobs=1, trials_per_worker=2)
    assert all(r["status"] == "done" for r in records.values())
    pids = [_pid(j) for j in jobs]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
