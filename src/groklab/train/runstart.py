"""What a run checks before it starts or resumes (shared by ``loop.train_run`` and
``ensemble.train_ensemble``): a fresh output directory, a resumed config that may only change
its resumable fields, and a dataset's own data config."""

from __future__ import annotations

from pathlib import Path

from groklab.data import DataConfig, Dataset
from groklab.errors import GroklabError
from groklab.train import rundir
from groklab.train.config import RunConfig
from groklab.train.rundir import RESUMABLE_FIELDS


def check_fresh(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise GroklabError(f"out={str(run_dir)!r} is invalid (allowed: a directory; this is a file)")
    if run_dir.is_dir() and any(p.name != rundir.LOCK_NAME for p in run_dir.iterdir()):
        raise GroklabError(f"out={str(run_dir)!r} already exists and is not empty "
                           "(use --resume to continue that run, or choose another --out)")


def resume_config(cfg: RunConfig | None, run_dir: Path) -> RunConfig:
    if not rundir.is_started(run_dir):
        raise GroklabError(f"out={str(run_dir)!r} has no {rundir.CONFIG_NAME}: nothing to resume "
                           "(start a new run without --resume)")
    stored = rundir.read_config(run_dir)
    if cfg is None:
        return stored
    cfg.validate()
    new, old = cfg.to_dict(), stored.to_dict()
    if old["data_path"] or new["data_path"]:  # an external dataset: its path identifies it
        same = bool(old["data_path"] and new["data_path"]) and \
            Path(new["data_path"]).resolve() == Path(old["data_path"]).resolve()
        if not same:
            raise GroklabError(f"data_path={new['data_path']!r} is invalid when resuming "
                               f"(allowed: the run's {old['data_path']!r})")
    sections = ("model", "optim", "train") if old["data_path"] else ("data", "model", "optim", "train")
    for section in sections:
        for key, value in new[section].items():
            if section == "train" and key in RESUMABLE_FIELDS:
                continue
            if value != old[section].get(key):
                raise GroklabError(
                    f"{section}.{key}={value!r} is invalid when resuming (allowed: the run's "
                    f"{old[section].get(key)!r}; only train.{{{', '.join(sorted(RESUMABLE_FIELDS))}}} "
                    "may change)")
    cfg.data_path, cfg.data, cfg.preset = stored.data_path, stored.data, stored.preset
    return cfg


def manifest_data_config(dataset: Dataset) -> DataConfig | None:
    try:
        return DataConfig.from_dict(dataset.config)
    except (GroklabError, TypeError):
        return None
