"""One trial of a sweep: the job description, the default trial function, and the record of
its outcome. Shared by the local pool and the Ray engine.

Sweep directory::

    DIR/sweep.yaml             the sweep file as parsed (for the record)
    DIR/trials.json            the expanded plan: name and swept values of every trial
    DIR/trials/NAME/           each trial is an ordinary run directory (groklab train layout)
    DIR/results/NAME.json      outcome record: status, error, wall time, attempt
    DIR/logs/NAME.log          the trial's stdout/stderr and, on failure, its traceback
    DIR/summary.csv            one row per trial (see summary.py)
    DIR/stacks/NAME/           with --stack: the ensemble directory of trials trained together
                               (see stack.py); each member is still an ordinary trial run

A trial function is ``fn(job: TrialJob, callbacks) -> dict`` (the run summary, as
``groklab.train.train_run`` returns it); it may raise. It must be importable by name (a
module-level function) so that worker processes can run it.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

from groklab.analysis.lens import lens_callback
from groklab.export.tensorboard import TensorBoardCallback
from groklab.fsutil import atomic_write_json, atomic_write_text
from groklab.train import load_config, rundir, train_run

TRIALS_DIR, RESULTS_DIR, LOGS_DIR = "trials", "results", "logs"
RUNNING = "running"
DONE, FAILED, STOPPED, INTERRUPTED, PENDING = "done", "failed", "stopped", "interrupted", "pending"
STATUSES = (DONE, FAILED, STOPPED, INTERRUPTED, RUNNING, PENDING)


class SweepFiles:
    """The record and log of a pool job ``name`` in the sweep directory ``sweep_dir``."""

    name: str
    sweep_dir: str

    @property
    def record_path(self) -> Path:
        return Path(self.sweep_dir) / RESULTS_DIR / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return Path(self.sweep_dir) / LOGS_DIR / f"{self.name}.log"


@dataclass(frozen=True)
class TrialJob(SweepFiles):
    """Everything a worker needs to run one trial (plain data: picklable, JSON-able)."""

    name: str
    sweep_dir: str
    base: str
    overrides: tuple
    lens: dict | None = None
    tensorboard: bool = False
    cwd: str = "."            # the directory relative paths in the config are relative to

    def __post_init__(self):
        object.__setattr__(self, "overrides", tuple(self.overrides))  # a list from JSON

    @property
    def run_dir(self) -> Path:
        return Path(self.sweep_dir) / TRIALS_DIR / self.name

    def config(self):
        return load_config(self.base, self.overrides)


def make_jobs(spec, sweep_dir: str | os.PathLike) -> list[TrialJob]:
    """One job per trial of ``spec``, writing under ``sweep_dir`` (made absolute)."""
    root = str(Path(sweep_dir).resolve())
    return [TrialJob(name=t.name, sweep_dir=root, base=spec.base, overrides=t.overrides,
                     lens=spec.lens, tensorboard=spec.tensorboard, cwd=os.getcwd())
            for t in spec.trials()]


# ---------------------------------------------------------------------------- trial function

def train_trial(job: TrialJob, callbacks=()) -> dict:
    """The default trial function: ``train_run`` in the trial's run directory, resuming it when
    an earlier attempt left a config there; optional logit-lens callback (sweep ``lens:``) and
    TensorBoard scalars (sweep ``tensorboard: true``, in RUN/tensorboard)."""
    cfg = job.config()
    callbacks = list(callbacks)
    if job.lens:
        callbacks.insert(0, lens_callback(job.lens["splits"], n=job.lens["n"]))
    if job.tensorboard:  # last: it records what the other callbacks added to the row
        callbacks.append(TensorBoardCallback(job.run_dir))
    resume = rundir.is_started(job.run_dir)
    if resume:
        cfg = _stacked_member_data(cfg, job.run_dir)
    return train_run(cfg, job.run_dir, resume=resume, callbacks=callbacks, quiet=True)


def _stacked_member_data(cfg, run_dir: Path):
    """A trial first trained in a stack (``--stack``) reads the dataset its stack generated
    (its config's data_path); the trial's own config names none. Same data config, same data
    (generation is seeded), so the stored path stands in; a changed data config still fails
    the resume check."""
    stored = rundir.read_config(run_dir)
    if cfg.data_path is None and stored.data_path and stored.data.to_dict() == cfg.data.to_dict():
        cfg.data_path = stored.data_path
    return cfg


def execute_trial(job: TrialJob, trial_fn=train_trial, callbacks=(), engine: str = "local") -> dict:
    """Run ``trial_fn`` and write the trial's record; never raises for a failing trial.

    A raised exception -> status ``failed`` with the one-line error (traceback in the log); a
    run that stopped on a non-finite loss -> ``failed`` ("diverged"); KeyboardInterrupt ->
    ``interrupted`` (re-raised). SystemExit (Ray stopping a trial) leaves ``running``, which the
    engine turns into ``stopped``.
    """
    previous = read_record(job)
    record = {"name": job.name, "status": RUNNING, "error": None, "engine": engine,
              "attempt": (previous or {}).get("attempt", 0) + 1, "started": time.time(),
              "wall_time": None, "pid": os.getpid()}
    write_record(job, record)
    t0 = time.perf_counter()
    try:
        summary = trial_fn(job, callbacks)
    except KeyboardInterrupt:
        record.update(status=INTERRUPTED, error="interrupted (resumes on the next run of the sweep)")
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is recorded, the sweep goes on
        record.update(status=FAILED, error=one_line(exc))
        append_log(job, traceback.format_exc())
    else:
        if (summary or {}).get("stopped") == "nonfinite":
            record.update(status=FAILED, error=f"diverged: non-finite training loss (stopped at step "
                                               f"{summary.get('steps')})")
        else:
            record.update(status=DONE)
    finally:
        if record["status"] != RUNNING:
            record["wall_time"] = round(time.perf_counter() - t0, 3)
            write_record(job, record)
    return record


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of the message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ---------------------------------------------------------------------------- state on disk

def read_record(job: TrialJob) -> dict | None:
    try:
        return json.loads(job.record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_record(job: TrialJob, record: dict) -> None:
    atomic_write_json(job.record_path, record)


def append_log(job: TrialJob, text: str) -> None:
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log_path, "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def run_summary(job: TrialJob) -> dict | None:
    try:
        return rundir.read_summary(job.run_dir)
    except (OSError, ValueError):
        return None


def is_complete(job: TrialJob) -> bool:
    """True when a re-run has nothing to do for this trial: a scheduler stopped it, or resuming
    its run would do nothing (``rundir.is_finished``: all steps, its stop_at targets, early
    stop, divergence). Failed and interrupted trials run again."""
    record = read_record(job) or {}
    if record.get("status") == STOPPED:
        return True
    summary = run_summary(job)
    if not summary or not summary.get("finished"):
        return False
    try:
        cfg = job.config()
    except Exception:  # noqa: BLE001 - an invalid config is reported when the trial runs
        return False
    return rundir.is_finished(summary, cfg)


def write_plan(spec, sweep_dir: str | os.PathLike) -> None:
    """``sweep.yaml`` and ``trials.json`` into the sweep directory."""
    root = Path(sweep_dir)
    atomic_write_text(root / "sweep.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    atomic_write_json(root / "trials.json", [{"index": t.index, "name": t.name, "params": t.params}
                                             for t in spec.trials()])
