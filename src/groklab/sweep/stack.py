"""``groklab sweep --stack S``: trials that differ only in ``train.seed`` trained up to S at a
time as one stacked ensemble (``train/ensemble.py``), each member in its own trial directory.

Why only some trials: a stacked step is exact only for what the ensemble supports
(``ensemble.check_supported``), its members share one dataset (so their configs must agree
on everything but the seed), and TensorBoard writers are per run. Anything else runs one trial
per process, as without ``--stack``. Only fresh trials are stacked: a trial that an earlier
attempt started resumes alone (a member is an ordinary run), so a re-run of the sweep never
regroups a half-trained stack.

On disk: ``DIR/stacks/NAME/`` is the ensemble directory (its config, ensemble.json and the
dataset the members share); ``DIR/results/NAME.json`` and ``DIR/logs/NAME.log`` are the
stack's own record and log; every member's record (``DIR/results/TRIAL.json``) names its
stack. The trial directories are ordinary runs: summary.csv, plots and every analysis command
read them as if trained alone.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from groklab.analysis.lens import lens_callback
from groklab.errors import GroklabError
from groklab.sweep.trial import (DONE, FAILED, RUNNING, SweepFiles, TrialJob, read_record,
                                 train_trial, write_record)
from groklab.train import rundir
from groklab.train.ensemble import check_supported, train_ensemble

STACKS_DIR = "stacks"


@dataclass(frozen=True)
class StackJob(SweepFiles):
    """Trials trained together as one ensemble (plain data: the local pool's worker rebuilds it)."""

    name: str
    sweep_dir: str
    members: tuple            # TrialJobs (their field dicts when rebuilt from JSON)

    def __post_init__(self):
        object.__setattr__(self, "members", tuple(
            m if isinstance(m, TrialJob) else TrialJob(**m) for m in self.members))

    @property
    def run_dir(self) -> Path:
        return Path(self.sweep_dir) / STACKS_DIR / self.name


def _stack_key(job: TrialJob) -> tuple[str, int] | None:
    """What a trial must share with the others of its stack (its config but the seed) and its
    seed, or None when it cannot be stacked."""
    if job.tensorboard:
        return None
    try:
        cfg = job.config()
        if cfg.train.ensemble != 1:
            return None
        probe = copy.deepcopy(cfg)
        probe.train.ensemble = 2
        check_supported(probe)
    except GroklabError:
        return None  # an invalid config is reported when the trial runs (alone)
    d = cfg.to_dict()
    seed = d["train"].pop("seed")
    return json.dumps({"config": d, "lens": job.lens, "cwd": job.cwd}, sort_keys=True,
                      default=str), seed


def plan_stacks(jobs: list[TrialJob], size: int) -> list:
    """``jobs`` as the units the pool runs: StackJobs of 2..``size`` fresh trials with equal
    configs but distinct seeds (plan order within a stack), and the other trials alone, in the
    order of each unit's first trial."""
    if size <= 1:
        return list(jobs)
    units: list = []
    open_stacks: dict[str, dict] = {}  # key -> {seed: trial} of the stack being filled
    for job in jobs:
        keyed = None if rundir.is_started(job.run_dir) else _stack_key(job)
        if keyed is None:
            units.append(job)
            continue
        key, seed = keyed
        group = open_stacks.get(key)
        if group is None or len(group) >= size or seed in group:
            group = open_stacks[key] = {}
            units.append(group)
        group[seed] = job
    out = []
    for unit in units:
        if isinstance(unit, TrialJob):
            out.append(unit)
        elif len(unit) == 1:
            out.append(*unit.values())
        else:
            members = tuple(unit.values())
            out.append(StackJob(name=f"stack-{members[0].name}", sweep_dir=members[0].sweep_dir,
                                members=members))
    return out


def stack_trial(job: StackJob, callbacks=()) -> dict:
    """Train the stack's trials as one ensemble; write each member trial's record."""
    cfgs = [m.config() for m in job.members]
    cfg = copy.deepcopy(cfgs[0])
    cfg.train.ensemble = len(cfgs)
    callbacks = list(callbacks)
    first = job.members[0]
    if first.lens:
        callbacks.insert(0, lens_callback(first.lens["splits"], n=first.lens["n"]))
    for m in job.members:
        write_record(m, {"name": m.name, "status": RUNNING, "error": None, "engine": "local",
                         "stack": job.name, "attempt": (read_record(m) or {}).get("attempt", 0) + 1})
    if job.run_dir.exists() and not any(rundir.is_started(m.run_dir) for m in job.members):
        shutil.rmtree(job.run_dir)  # an attempt that started no member: nothing to keep
    t0 = time.perf_counter()
    summary = train_ensemble(cfg, job.run_dir, callbacks=callbacks, quiet=True,
                             members=[(c.train.seed, m.run_dir) for c, m in zip(cfgs, job.members)])
    for m in job.members:
        s = summary["members"][m.run_dir.name]
        record = read_record(m)
        if s.get("stopped") == "nonfinite":
            record.update(status=FAILED, error=f"diverged: non-finite training loss (stopped at "
                                                f"step {s.get('steps')})")
        else:
            record.update(status=DONE)
        record["wall_time"] = round(time.perf_counter() - t0, 3)  # the stack's, shared
        write_record(m, record)
    return summary


def run_unit(job, callbacks=()) -> dict:
    """The pool's trial function when stacking: a stack as an ensemble, a trial alone."""
    return stack_trial(job, callbacks) if isinstance(job, StackJob) else train_trial(job, callbacks)


def member_records(job: StackJob, record: dict) -> list[tuple[TrialJob, dict]]:
    """Each member's final record after its stack ended: the stack's outcome where the worker
    did not get to write one (it failed, was interrupted or died)."""
    out = []
    for m in job.members:
        r = read_record(m)
        if r is None or r.get("status") in (RUNNING, None):
            status = record.get("status") if record.get("status") != DONE else FAILED
            r = {**(r or {"name": m.name, "attempt": 1}), "status": status, "stack": job.name,
                 "error": record.get("error") or f"its stack {job.name} ended without a result",
                 "wall_time": record.get("wall_time")}
            write_record(m, r)
        out.append((m, r))
    return out

