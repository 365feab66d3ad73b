"""run_sweep: expand a sweep, skip the trials already complete, run the rest on an engine,
and keep ``summary.csv`` (and optionally the plots) up to date."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groklab.errors import bad_value, check_range
from groklab.export.tensorboard import summary_writer_class
from groklab.sweep.local import run_local
from groklab.sweep.plots import plot_sweep
from groklab.sweep.spec import SweepSpec
from groklab.sweep.stack import StackJob, member_records, plan_stacks, run_unit
from groklab.sweep.summary import SUMMARY_NAME, summary_rows, write_summary_csv
from groklab.sweep.trial import is_complete, make_jobs, train_trial, write_plan
from groklab.train.lock import RunLock

ENGINES = ("local", "ray")


@dataclass
class SweepResult:
    out: Path
    rows: list[dict]                     # summary.csv rows, plan order
    ran: list[str]                       # trials run this time
    skipped: list[str]                   # trials already complete
    plots: list[Path] = field(default_factory=list)

    @property
    def summary_path(self) -> Path:
        return self.out / SUMMARY_NAME

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def default_jobs() -> int:
    """Worker processes for the local engine: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_sweep(spec: SweepSpec, out: str | os.PathLike, engine: str = "local", n_jobs: int | None = None,
              trial_fn=train_trial, plot: bool = False, quiet: bool = False, address: str | None = None,
              asha: dict | None = None, cpus_per_trial: float | None = None,
              gpus_per_trial: float | None = None, stack: int = 1) -> SweepResult:
    """Run every trial of ``spec`` not yet complete in ``out``; return the summary.

    Engine ``local``: ``n_jobs`` worker processes (None = one per CPU). Engine ``ray``: Ray
    Tune, with ``n_jobs`` the most concurrent trials (None = as resources allow) and
    ``address``/``asha``/``cpus_per_trial``/``gpus_per_trial`` overriding the sweep's ``ray:``.
    ``stack`` > 1 (local engine, default trial function): fresh trials that differ only in
    ``train.seed`` train up to ``stack`` at a time as one stacked ensemble (sweep/stack.py).
    """
    # every check before anything is written
    if engine not in ENGINES:
        raise bad_value("--engine", engine, " | ".join(ENGINES))
    if n_jobs is not None:
        check_range("--jobs", n_jobs, 1)
    check_range("--stack", stack, 1)
    if stack > 1 and engine != "local":
        raise bad_value("--stack", stack, "1 with engine ray (stacked ensembles run on the "
                        "local engine)")
    if stack > 1 and trial_fn is not train_trial:
        raise bad_value("--stack", stack, "1 with a custom trial function (stacking trains "
                        "the default one)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise bad_value("--out", str(out), "a directory (this is a file)")
    for marker, what in (("manifest.json", "a dataset"), ("config.yaml", "a run")):
        if (out / marker).exists():
            raise bad_value("--out", str(out), f"a new or sweep directory (this one holds {what}: "
                            f"{marker}; a sweep would write into it)")
    ray_options = None
    if engine == "ray":
        from groklab.sweep.ray_engine import import_ray
        import_ray()  # the extra is installed
        ray_options = _ray_options(spec, address, asha, cpus_per_trial, gpus_per_trial)
    if spec.tensorboard:
        summary_writer_class()
    out.mkdir(parents=True, exist_ok=True)
    trials = spec.trials()
    with RunLock(out):
        write_plan(spec, out)
        jobs = make_jobs(spec, out)
        params = [t.params for t in trials]
        todo = [j for j in jobs if not is_complete(j)]
        skipped = [j.name for j in jobs if j not in todo]
        say = (lambda msg: None) if quiet else (lambda msg: print(f"groklab sweep: {msg}", file=sys.stderr, flush=True))
        say(f"{spec.name}: {len(jobs)} trials, {len(skipped)} already complete, running {len(todo)} "
            f"on engine {engine}" + (f" ({n_jobs or default_jobs()} workers)" if engine == "local" else ""))
        write_summary_csv(out / SUMMARY_NAME, summary_rows(jobs, params))
        finished = []

        units = plan_stacks(todo, stack)
        stacks = [u for u in units if isinstance(u, StackJob)]
        if stacks:
            say(f"stacking {sum(len(u.members) for u in stacks)} trials into {len(stacks)} "
                f"ensemble(s) of up to {stack} (the other {len(units) - len(stacks)} alone)")

        def on_done(job, record):
            for member, rec in (member_records(job, record) if isinstance(job, StackJob)
                                else [(job, record)]):
                finished.append(member.name)
                write_summary_csv(out / SUMMARY_NAME, summary_rows(jobs, params))
                err = f": {rec.get('error')}" if rec.get("error") else ""
                via = f" (in {job.name})" if isinstance(job, StackJob) else ""
                say(f"[{len(finished)}/{len(todo)}] {member.name} {rec.get('status')}{via}{err}")

        try:
            if engine == "local":
                run_local(units, trial_fn=run_unit if stacks else trial_fn,
                          n_jobs=n_jobs or default_jobs(), on_done=on_done)
            else:
                from groklab.sweep.ray_engine import run_ray
                max_steps = max((j.config().train.steps for j in todo), default=1)
                run_ray(todo, trial_fn=trial_fn, n_jobs=n_jobs, max_steps=max_steps, on_done=on_done,
                        verbose=0 if quiet else 1, **ray_options)
        finally:
            rows = summary_rows(jobs, params)
            write_summary_csv(out / SUMMARY_NAME, rows)
    result = SweepResult(out=out, rows=rows, ran=[j.name for j in todo], skipped=skipped)
    if plot:
        result.plots = plot_sweep(out, rows)
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("done", "failed", "stopped", "interrupted", "pending")
                       if result.count(s))
    say(f"{counts}; wrote {result.summary_path}" + "".join(f", {p}" for p in result.plots))
    return result


def _ray_options(spec, address, asha, cpus, gpus) -> dict:
    """Ray options: command-line values over the sweep file's ``ray:`` section, checked."""
    opts = dict(spec.ray)
    cpus = cpus if cpus is not None else opts.get("cpus_per_trial", 1)
    gpus = gpus if gpus is not None else opts.get("gpus_per_trial")
    check_range("--cpus-per-trial", cpus, 0, None, lo_open=True)
    if gpus is not None:
        check_range("--gpus-per-trial", gpus, 0)
    return {"address": address or opts.get("address"), "asha": asha or opts.get("asha"),
            "cpus_per_trial": cpus, "gpus_per_trial": gpus}
