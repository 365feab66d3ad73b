"""The local engine: a pool of worker processes, one trial at a time each, one torch thread each.

A worker (``python -m groklab.sweep.worker``) serves trials one after another: the pool sends
it a job per line on its stdin, it redirects its stdout/stderr to that trial's log file, runs
the trial, writes the trial's record and reports the job's name on a pipe of its own. Reusing
a worker saves each later trial the interpreter's start and imports (measured in
docs/performance.md, "Workers that serve many trials"); results do not depend on it, as with
``--jobs 1``, which trains every run in one process. A trial that crashes hard (segfault,
killed for memory, ``os._exit``) takes down only its worker: it is recorded as failed, a fresh
worker takes the next trial and the sweep goes on; the caller needs no ``if __name__ ==
"__main__"`` guard. Ctrl-C is passed on to every worker: running trials checkpoint and stop,
idle workers exit; the next run of the sweep resumes the trials. A worker whose trial was
interrupted exits too.

The pool runs any job: a frozen dataclass with ``name``, ``record_path`` and ``log_path``,
defined at the top level of a module (the worker rebuilds it from its fields), like
:class:`~groklab.sweep.trial.TrialJob` or the study's runs (``groklab.study.runner``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict

from groklab.errors import bad_value, check_range
from groklab.sweep.trial import FAILED, INTERRUPTED, RUNNING, TrialJob, read_record, train_trial, \
    write_record

POLL_S = 0.2
STOP_WAIT_S = 120.0  # how long a worker gets to checkpoint its trial after a Ctrl-C


def function_name(fn) -> str:
    """``module:qualname`` of a module-level function (how workers find the trial function)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or fn.__module__ == "__main__":
        raise bad_value("trial_fn", name, "a function defined at the top level of an importable module")
    return name


class Worker:
    """One worker process of the pool and the trial it is running (``job``, None when idle)."""

    def __init__(self, fn_name: str, first_log):
        first_log.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        payload = json.dumps({"trial_fn": fn_name, "sys_path": sys.path,
                              "parent_pid": os.getpid(), "result_fd": write_fd})
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            # until its first trial redirects them, the worker's output goes to that trial's log
            with open(first_log, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "groklab.sweep.worker", payload],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env,
                    pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        self.results = os.fdopen(read_fd, "rb", buffering=0)
        self.job = None
        self.served = 0  # trials assigned so far

    @property
    def pid(self) -> int:
        return self.proc.pid

    def assign(self, job) -> None:
        """Send ``job`` to the worker; a worker that died meanwhile shows as :meth:`died`."""
        self.job = job
        self.served += 1
        line = json.dumps({"job": asdict(job), "job_type": function_name(type(job))}) + "\n"
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()

    def reported(self) -> bool:
        """Whether the worker reported its trial finished (consumes the report)."""
        ready, _, _ = select.select([self.results], [], [], 0)
        return bool(ready) and bool(self.results.readline())

    def died(self) -> bool:
        return self.proc.poll() is not None

    def close(self) -> None:
        """No more trials: the worker exits at the end of its input."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.results.close()


def start_worker(job, fn_name: str) -> Worker:
    """A fresh worker running ``job``."""
    worker = Worker(fn_name, job.log_path)
    worker.assign(job)
    return worker


def run_local(jobs: list[TrialJob], trial_fn=train_trial, n_jobs: int = 1, on_done=None,
              on_wait=None, wait_s: float = 30.0,
              trials_per_worker: int | None = None) -> dict[str, dict]:
    """Run ``jobs`` with at most ``n_jobs`` worker processes; return {name: record}.

    ``on_done(job, record)`` is called in this process after each trial ends, and
    ``on_wait(running_jobs)`` every ``wait_s`` seconds while trials run (progress lines).
    ``trials_per_worker``: a worker exits after this many trials and a fresh one takes the
    next (None: no limit; 1: a fresh interpreter per trial, the engine before 2026-12-04).
    """
    check_range("--jobs", n_jobs, 1)
    if trials_per_worker is not None:
        check_range("trials_per_worker", trials_per_worker, 1)
    fn_name = function_name(trial_fn)
    queue = list(jobs)
    busy: list[Worker] = []
    idle: list[Worker] = []
    retired: list[Worker] = []  # closed after their last trial, not yet waited for
    records: dict[str, dict] = {}

    def finish(worker: Worker, returncode: int | None):
        job, worker.job = worker.job, None
        record = _final_record(job, returncode)
        records[job.name] = record
        if on_done is not None:
            on_done(job, record)

    waited = time.monotonic()
    try:
        while queue or busy:
            while queue and len(busy) < n_jobs:
                job = queue.pop(0)
                if idle:
                    worker = idle.pop()
                    worker.assign(job)
                else:
                    worker = start_worker(job, fn_name)
                busy.append(worker)
            select.select([w.results for w in busy], [], [], POLL_S)
            for worker in list(busy):
                if worker.reported():
                    busy.remove(worker)
                    finish(worker, None)
                    if worker.died():
                        worker.wait(0)
                    elif trials_per_worker is not None and worker.served >= trials_per_worker:
                        worker.close()
                        retired.append(worker)
                    else:
                        idle.append(worker)
                elif worker.died():
                    busy.remove(worker)
                    worker.wait(0)
                    finish(worker, worker.proc.returncode)
            for worker in [w for w in retired if w.died()]:
                retired.remove(worker)
                worker.wait(0)
            if on_wait is not None and busy and time.monotonic() - waited >= wait_s:
                waited = time.monotonic()
                on_wait([w.job for w in busy])
    except BaseException:  # Ctrl-C, or on_done/on_wait failed: no worker is left running
        for worker in busy + idle + retired:  # let each trial checkpoint and stop
            worker.interrupt()
        for worker in busy + idle + retired:
            worker.wait(STOP_WAIT_S)
        for worker in busy:
            with contextlib.suppress(Exception):  # the first error is the one to report
                finish(worker, worker.proc.returncode)
        raise
    for worker in idle:
        worker.close()
    for worker in idle + retired:
        worker.wait(STOP_WAIT_S)
    return records


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
