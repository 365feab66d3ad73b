"""The Ray engine: the same trials and trial function, scheduled by Ray Tune.

Needs the extra ``groklab[ray]`` (imported lazily). Without an address ``ray.init()`` starts a
local Ray instance (or joins the one ``RAY_ADDRESS`` or ``ray start`` on this machine set up);
``auto`` or ``ray://host:10001`` joins a cluster, whose nodes must see the sweep directory. Each trial asks for
``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs; a fraction (e.g. 0.25) lets several small
runs share one GPU. With ``asha`` an ASHA scheduler stops trials whose ``metric`` (a
metrics.jsonl key, reported at each evaluation with ``step`` as the time axis) lags; they are
recorded as ``stopped``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from groklab.errors import GroklabError
from groklab.sweep.trial import FAILED, RUNNING, STOPPED, TrialJob, execute_trial, read_record, \
    train_trial, write_record

DEFAULT_GPU_FRACTION = 0.25


def import_ray():
    """``(ray, ray.tune)``, or a GroklabError saying how to install the extra."""
    try:
        import ray
        from ray import tune
    except ImportError as exc:
        raise GroklabError(f"--engine=ray is invalid here (allowed: local; Ray is not installed: "
                           f"pip install 'groklab[ray]'; {exc})") from None
    return ray, tune


def run_ray(jobs: list[TrialJob], trial_fn=train_trial, n_jobs: int | None = None,
            cpus_per_trial: float = 1, gpus_per_trial: float | None = None,
            address: str | None = None, asha: dict | None = None, max_steps: int | None = None,
            on_done=None, verbose: int = 1) -> dict[str, dict]:
    """Run ``jobs`` as one Ray Tune experiment (``DIR/ray/``); return {name: record}.

    ``gpus_per_trial`` None = 0.25 when the Ray cluster has GPUs, else 0. ``asha``: parsed
    options (see ``spec.parse_asha``); ``max_steps`` is its ``max_t`` (the trials' train.steps).
    """
    ray, tune = import_ray()
    if not jobs:
        return {}
    started_ray = False
    if not ray.is_initialized():
        # no address: ray.init()'s own default (RAY_ADDRESS, else a cluster started with
        # `ray start` on this machine, else a new local instance, without the dashboard)
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, log_to_driver=verbose > 1)
        started_ray = True
    try:
        if gpus_per_trial is None:
            gpus_per_trial = DEFAULT_GPU_FRACTION if ray.cluster_resources().get("GPU", 0) > 0 else 0
        t_start = time.time()
        by_name = {job.name: job for job in jobs}
        metric = asha["metric"] if asha else None
        trainable = tune.with_parameters(_ray_trial, jobs=by_name, trial_fn=trial_fn,
                                         threads=max(1, int(cpus_per_trial)))
        trainable = tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(list(by_name))},
            tune_config=tune.TuneConfig(scheduler=_asha(asha, max_steps), max_concurrent_trials=n_jobs,
                                        reuse_actors=False, trial_dirname_creator=lambda t: t.config["trial"]),
            run_config=tune.RunConfig(name="ray", storage_path=str(Path(jobs[0].sweep_dir)),
                                      verbose=verbose, failure_config=tune.FailureConfig(max_failures=0)),
        )
        grid = tuner.fit()
        errors = {r.config["trial"]: r.error for r in grid if r.config}
        records = {}
        for job in jobs:
            record = _final_record(job, errors.get(job.name), t_start, metric)
            records[job.name] = record
            if on_done is not None:
                on_done(job, record)
        return records
    finally:
        if started_ray:
            ray.shutdown()


def _asha(options: dict | None, max_steps: int | None):
    if not options:
        return None
    from ray.tune.schedulers import ASHAScheduler

    steps = max(1, int(max_steps or 1))
    grace = options.get("grace_period") or max(1, steps // 10)
    # max_t one past the last step: ASHA stops a trial that reaches max_t, and our trials must
    # end on their own (writing their final row and summary) rather than be cut at their end.
    return ASHAScheduler(time_attr="step", metric=options["metric"], mode=options["mode"],
                         max_t=steps + 1, grace_period=min(grace, steps),
                         reduction_factor=options["reduction_factor"])


def _ray_trial(config: dict, jobs: dict, trial_fn, threads: int) -> None:
    """The Tune trainable: one trial, reporting each metrics row to Tune."""
    import torch
    from ray import tune

    job = jobs[config["trial"]]
    try:
        os.chdir(job.cwd)  # relative paths in configs mean what they meant to the driver
    except OSError:
        pass
    torch.set_num_threads(threads)

    def report(step, model, dataset, row):
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)}
        tune.report({**scalars, "step": step})

    execute_trial(job, trial_fn, callbacks=[report], engine="ray")


def _final_record(job: TrialJob, error, t_start: float, metric: str | None) -> dict:
    """A trial Ray stopped before it ended leaves a ``running`` record: ``stopped`` (by the
    scheduler) or ``failed`` (with Ray's error)."""
    record = read_record(job)
    if record is None or record.get("started", 0) < t_start - 1:
        record = {"name": job.name, "status": RUNNING, "attempt": (record or {}).get("attempt", 0)}
        if error is None:  # never started: Ray gave no result
            error = "Ray did not run this trial"
    if record.get("status") == RUNNING:
        if error is not None:
            record.update(status=FAILED, error=f"ray: {str(error).strip().splitlines()[0]}")
        else:
            record.update(status=STOPPED, error=f"stopped early by ASHA on {metric}" if metric else None)
        write_record(job, record)
    return record
