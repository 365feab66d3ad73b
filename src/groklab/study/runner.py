"""The study's runs on the sweep's process pool (``--jobs N``, N > 1).

Each run is one job of :func:`groklab.sweep.local.run_local`: a fresh worker process with one
torch thread, its stdout/stderr in ``STUDY/logs/<kind>/<family>-<source>.log`` and its outcome
record beside it (``.json``). A run that crashes, even hard (killed for memory), is recorded
as failed and the other runs go on; Ctrl-C makes every running worker checkpoint and stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from groklab.study import engine

from groklab.study.layout import LOGS_DIR  # noqa: F401 - re-exported for the pool


@dataclass(frozen=True)
class StudyRunJob:
    """One study run as a pool job: ``spec`` is the RunSpec as a dict (plain, JSON-able)."""

    name: str          # "<kind>/<family>-<source>", e.g. "pretrain/decoder-natural"
    spec: dict
    log_dir: str       # STUDY/logs

    @property
    def run_dir(self) -> Path:
        return Path(self.spec["run_dir"])

    @property
    def record_path(self) -> Path:
        return Path(self.log_dir) / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return Path(self.log_dir) / f"{self.name}.log"


def train_job(job: StudyRunJob, callbacks=()) -> dict:
    """The pool's trial function: train, resume or finetune the run (engine.train_spec)."""
    return engine.train_spec(job.spec, quiet=True)
