"""``train_run(cfg, run_dir)``: start, resume or fine-tune a run in a run directory.

Order of work (docs/architecture.md section 3): validate everything that can be validated
(config, device, an existing dataset's checksums), take the run lock, write config.yaml,
generate the dataset into ``RUN/data`` when no ``data_path`` is given, build the
:class:`~groklab.train.trainer.Trainer` (loading ``init_from`` weights for a fine-tuning run),
then let it train. The run directory's layout is :mod:`groklab.train.rundir`'s.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

from groklab.data import Dataset, load_dataset, make_dataset
from groklab.data.dataset import MANIFEST_NAME
from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_json
from groklab.train import rundir
from groklab.train.config import RunConfig
from groklab.train.lock import RunLock
from groklab.train.init_from import load_initial_weights
from groklab.train.preflight import fit_max_len, preflight
from groklab.train.runstart import check_fresh, manifest_data_config, resume_config
from groklab.train.rundir import ENSEMBLE_NAME, resolve_device
from groklab.train.trainer import Trainer, log



def train_run(cfg: RunConfig | None, run_dir, resume: bool = False, callbacks=(),
              quiet: bool = False, init_from: str | os.PathLike | None = None, stoppers=()) -> dict:
    """Train ``cfg`` in ``run_dir`` and return the summary (see :func:`metrics.summarize`).

    ``resume=True`` continues the run from its latest good checkpoint (``cfg`` None = the
    stored config; otherwise it must match it except for :data:`RESUMABLE_FIELDS`).
    ``callbacks``: ``fn(step, model, dataset, row) -> dict | None`` at each evaluation; the
    returned keys are merged into the metrics row (the model is the evaluated one, EMA if on).
    ``init_from="RUN[@STEP]"`` starts a new run (fine-tuning) from that run's weights at that
    checkpoint (default: its latest good one; its EMA weights when it kept an EMA) with a fresh
    optimizer; the model must have the same parameters and the dataset the same vocabulary. It
    is recorded in ``init_from.json``, so a resume before the first checkpoint starts from it too.
    ``stoppers``: ``fn(rows) -> reason | None`` after each evaluation (all metrics rows so far);
    a reason ends the run with ``stopped: reason`` (``train.stop_unless_forecast`` adds one).
    """
    run_dir = Path(run_dir)
    if (cfg is not None and cfg.train.ensemble > 1) or (resume and (run_dir / ENSEMBLE_NAME).is_file()):
        if init_from is not None or stoppers:
            what = "init_from" if init_from is not None else "stoppers"
            raise GroklabError(f"{what} is invalid with train.ensemble > 1 (allowed: a single "
                               "run; not implemented for ensembles yet)")
        from groklab.train.ensemble import train_ensemble  # S stacked runs (train/ensemble.py)
        return train_ensemble(cfg, run_dir, resume=resume, callbacks=callbacks, quiet=quiet)
    cfg = _checked_config(copy.deepcopy(cfg), run_dir, resume, init_from)  # the caller's is kept
    device = resolve_device(cfg.train.device)
    external = load_dataset(cfg.data_path, verify=True) if cfg.data_path else None
    if external is not None and not resume:
        cfg.data_path = str(Path(cfg.data_path).resolve())
        cfg.data = manifest_data_config(external) or cfg.data
    if not resume:
        if fit_max_len(cfg, external) and not quiet:
            log(f"model.max_len raised to {cfg.model.max_len} for the data's longest queries")
        preflight(cfg, device, external)  # nothing is written before this passes

    created = not run_dir.exists()
    with RunLock(run_dir) as lock:
        if lock.took_over and not quiet:
            log(f"took over the stale lock of pid {lock.took_over.get('pid')} (no longer running)")
        summary = rundir.read_summary(run_dir) if resume else None
        if rundir.is_finished(summary, cfg):
            print(f"run {run_dir} already finished at step {summary['steps']} "
                  f"({summary['stopped']}); nothing to do", file=sys.stderr)
            return summary
        try:
            rundir.write_config(run_dir, cfg)
            dataset = external or _run_dataset(cfg, run_dir, quiet)
            trainer = Trainer(cfg, dataset, device, run_dir, callbacks, quiet, stoppers)
            _start_weights(trainer, run_dir, resume, init_from)
        except BaseException:
            # Known only once the data exists (a phi above what the generated graph allows, a
            # stop_at split the dataset lacks): a run directory this call created is removed
            # again (or emptied, if it was an empty directory), so a bad config leaves nothing.
            if not resume:
                lock.release()
                _discard_new_run(run_dir, created)
            raise
        with trainer.threads():
            return trainer.run(resume)


def _checked_config(cfg: RunConfig | None, run_dir: Path, resume: bool, init_from) -> RunConfig:
    """The validated config to run: ``cfg``, or for a resume the stored one (checked against
    ``cfg`` when given); a new run needs a config and a fresh directory."""
    if init_from is not None and resume:
        raise GroklabError("init_from is only for a new run (a resumed run continues from its "
                           f"own checkpoints; its start is recorded in {rundir.INIT_FROM_NAME})")
    if resume:
        return resume_config(cfg, run_dir)
    if cfg is None:
        raise GroklabError("a config is needed to start a run")
    cfg.validate()
    check_fresh(run_dir)
    return cfg


def _start_weights(trainer: Trainer, run_dir: Path, resume: bool, init_from) -> None:
    """Load a fine-tuning run's starting weights: ``init_from`` for a new run (recorded in
    init_from.json), the recorded start for a resume (its checkpoints, if any, come later)."""
    start = rundir.read_init_from(run_dir) if resume else init_from
    if start is None:
        return
    record = load_initial_weights(trainer.model, trainer.ema, trainer.dataset, start)
    if not resume:
        atomic_write_json(run_dir / rundir.INIT_FROM_NAME, record)


def _discard_new_run(run_dir: Path, created: bool) -> None:
    """Remove what a new run's failed set-up wrote (_check_fresh: nothing else was there)."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for p in run_dir.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()


def _run_dataset(cfg: RunConfig, run_dir: Path, quiet: bool) -> Dataset:
    path = run_dir / rundir.DATA_DIR
    if (path / MANIFEST_NAME).is_file():
        return load_dataset(path, verify=True)
    if not quiet:
        log(f"generating the dataset into {path}")
    return make_dataset(cfg.data, path, force=True, field_path="data.")
