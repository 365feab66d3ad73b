"""The study's runs on the sweep's process pool (``--jobs N``, N > 1).

Each run is one job of :func:`groklab.sweep.local.run_local`, on one of its worker processes
(one torch thread; a worker trains one run after another), its stdout/stderr in
``STUDY/logs/<kind>/<family>-<source>.log`` and its outcome record beside it (``.json``). A run
that crashes, even hard (killed for memory), is recorded as failed and the other runs go on;
Ctrl-C makes every running worker checkpoint and stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from groklab.study import engine

from groklab.study.layout import LOGS_DIR  # noqa: F401 - re-exported for the pool


class LogFiles:
    """The record and log of a pool job ``name`` in the study's ``log_dir``."""

    name: str
    log_dir: str

    @property
    def record_path(self) -> Path:
        return Path(self.log_dir) / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return Path(self.log_dir) / f"{self.name}.log"


@dataclass(frozen=True)
class StudyRunJob(LogFiles):
    """One study run as a pool job: ``spec`` is the RunSpec as a dict (plain, JSON-able)."""

    name: str          # "<kind>/<family>-<source>", e.g. "pretrain/decoder-natural"
    spec: dict
    log_dir: str       # STUDY/logs

    @property
    def run_dir(self) -> Path:
        return Path(self.spec["run_dir"])


def train_job(job: StudyRunJob, callbacks=()) -> dict:
    """The pool's trial function: train, resume or finetune the run (engine.train_spec)."""
    return engine.train_spec(job.spec, quiet=True)


@dataclass(frozen=True)
class StudyStackJob(LogFiles):
    """Runs of several seeds trained together as one ensemble (``--stack``): ``specs`` are the
    members' RunSpecs as dicts, ``stack_dir`` the ensemble directory (study layout)."""

    name: str          # "stack/<kind>/<family>-<source>-seeds<a>-<b>"
    specs: tuple
    log_dir: str
    stack_dir: str

    def __post_init__(self):
        object.__setattr__(self, "specs", tuple(self.specs))  # a list from JSON


def train_unit(job, callbacks=()) -> dict:
    """The pool's trial function with ``--stack``: an ensemble of seeds, or one run."""
    if isinstance(job, StudyStackJob):
        return engine.train_stacked(list(job.specs), job.stack_dir, quiet=True)
    return train_job(job, callbacks)


def stack_key(spec: dict) -> str | None:
    """What the runs of one stack share (everything but the seed and the run directory), or
    None for a run that is not stacked: a finetune (each seed starts from its own pretrained
    weights; ensembles start from scratch) or a run an earlier attempt started (it resumes
    alone, as an ordinary run)."""
    if spec.get("init_from") or engine.started(spec["run_dir"]):
        return None
    if not engine.stackable(spec["config"]):
        return None
    cfg = json.loads(json.dumps(spec["config"]))
    cfg["train"].pop("seed")
    return json.dumps({"kind": spec["kind"], "family": spec["family"], "source": spec["source"],
                       "config": cfg, "lens": [list(spec["lens_splits"]), spec["lens_queries"]]},
                      sort_keys=True)
