"""The local engine: a pool of worker processes, one trial per process, one torch thread each.

Each trial runs in a fresh interpreter (``python -m groklab.sweep.worker``), so a trial that
crashes hard (segfault, killed for memory) takes down only itself: it is recorded as failed
and the sweep goes on; and the caller needs no ``if __name__ == "__main__"`` guard. The
worker's stdout/stderr go to the trial's log file. Ctrl-C is passed on to the running
trials, which checkpoint and stop; the next run of the sweep resumes them.

The pool runs any job: a frozen dataclass with ``name``, ``record_path`` and ``log_path``,
defined at the top level of a module (the worker rebuilds it from its fields), like
:class:`~groklab.sweep.trial.TrialJob` or the study's runs (``groklab.study.runner``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

from groklab.errors import bad_value, check_range
from groklab.sweep.trial import FAILED, INTERRUPTED, RUNNING, TrialJob, read_record, train_trial, \
    write_record

POLL_S = 0.2


def function_name(fn) -> str:
    """``module:qualname`` of a module-level function (how workers find the trial function)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or fn.__module__ == "__main__":
        raise bad_value("trial_fn", name, "a function defined at the top level of an importable module")
    return name


def run_local(jobs: list[TrialJob], trial_fn=train_trial, n_jobs: int = 1, on_done=None,
              on_wait=None, wait_s: float = 30.0) -> dict[str, dict]:
    """Run ``jobs`` with at most ``n_jobs`` worker processes; return {name: record}.

    ``on_done(job, record)`` is called in this process after each trial ends, and
    ``on_wait(running_jobs)`` every ``wait_s`` seconds while trials run (progress lines).
    """
    check_range("--jobs", n_jobs, 1)
    fn_name = function_name(trial_fn)
    queue = list(jobs)
    running: list[tuple[subprocess.Popen, TrialJob]] = []
    records: dict[str, dict] = {}

    def finish(proc, job):
        record = _final_record(job, proc.returncode)
        records[job.name] = record
        if on_done is not None:
            on_done(job, record)

    waited = time.monotonic()
    try:
        while queue or running:
            while queue and len(running) < n_jobs:
                job = queue.pop(0)
                running.append((_start(job, fn_name), job))
            time.sleep(POLL_S)
            for item in [r for r in running if r[0].poll() is not None]:
                running.remove(item)
                finish(*item)
            if on_wait is not None and running and time.monotonic() - waited >= wait_s:
                waited = time.monotonic()
                on_wait([job for _, job in running])
    except BaseException:  # Ctrl-C, or on_done/on_wait failed: no worker is left running
        for proc, _ in running:  # let each trial checkpoint and stop
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, job in running:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(Exception):  # the first error is the one to report
                finish(proc, job)
        raise
    return records


def _start(job: TrialJob, fn_name: str) -> subprocess.Popen:
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"job": asdict(job), "job_type": function_name(type(job)), "trial_fn": fn_name,
                          "sys_path": sys.path, "parent_pid": os.getpid()})
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(job.log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "groklab.sweep.worker", payload],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)


def _final_record(job: TrialJob, returncode: int | None) -> dict:
    """The record the worker wrote, or a ``failed`` one if it died before finishing it."""
    record = read_record(job) or {"name": job.name, "attempt": 1}
    if record.get("status") in (RUNNING, None):
        how = f"killed by signal {-returncode}" if returncode is not None and returncode < 0 \
            else f"exit code {returncode}"
        status = INTERRUPTED if returncode == -signal.SIGINT else FAILED
        record.update(status=status, error=f"worker process died ({how}); see {job.log_path}")
        write_record(job, record)
    return record
