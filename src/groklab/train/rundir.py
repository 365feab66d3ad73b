"""The run directory: the one owner of its layout, its small files and "is this run finished".

Layout (docs/architecture.md section 3)::

    RUN/config.yaml       the resolved RunConfig
    RUN/metrics.jsonl     one JSON row per evaluation (train.metrics)
    RUN/summary.json      derived from the rows (train.metrics.summarize)
    RUN/checkpoints/      safetensors + JSON sidecars (train.checkpoints)
    RUN/data/             the dataset, when the run generated it
    RUN/init_from.json    where a fine-tuning run started
    RUN/plots/            curves
    RUN/.lock             the run lock (train.lock)

Study, sweep and report code name these files through the constants here, never as strings.
This module imports no torch and no model code: reading a config (which needs the model
config types) and resolving a device import them when called.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from groklab.errors import GroklabError, bad_value
from groklab.fsutil import atomic_write_text
from groklab.train import metrics as mx

CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"
CKPT_DIR = "checkpoints"
DATA_DIR = "data"
INIT_FROM_NAME = "init_from.json"
PLOTS_DIR = "plots"
LOCK_NAME = ".lock"
ENSEMBLE_NAME = "ensemble.json"  # marks an ensemble directory (train/ensemble.py writes it)

# train fields that may change when a run is resumed (they do not change the trajectory)
RESUMABLE_FIELDS = frozenset({"steps", "device", "threads", "eval_batch_size",
                              "early_stop_patience", "early_stop_delta", "plots",
                              "checkpoint_every", "compile", "stop_at",
                              "stop_unless_forecast", "forecast_model"})

# how a finished run stopped (train.trainer.Trainer._stop_reason)
STOP_REASONS = ("nonfinite", "target", "forecast", "early_stop", "max_steps")


def config_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CONFIG_NAME


def is_started(run_dir: str | os.PathLike) -> bool:
    """True once ``train_run`` has written the run's config.yaml (from then on it resumes)."""
    return config_path(run_dir).is_file()


def read_config(run_dir: str | os.PathLike):
    """The run's resolved :class:`~groklab.train.config.RunConfig`."""
    from groklab.train.config import read_config as read_config_file  # the model config types need torch

    return read_config_file(config_path(run_dir))


def write_config(run_dir: str | os.PathLike, cfg) -> None:
    atomic_write_text(config_path(run_dir), cfg.to_yaml())


def metrics_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / METRICS_NAME


def summary_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / SUMMARY_NAME


def read_summary(run_dir: str | os.PathLike) -> dict | None:
    return mx.read_summary(summary_path(run_dir))


def write_summary(run_dir: str | os.PathLike, summary: dict) -> None:
    mx.write_summary(summary_path(run_dir), summary)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    return mx.read_metrics(metrics_path(run_dir))


def read_init_from(run_dir: str | os.PathLike) -> str | None:
    """``RUN[@STEP]`` a fine-tuning run started from (its init_from.json), or None."""
    path = Path(run_dir) / INIT_FROM_NAME
    if not path.is_file():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    step = info.get("step")
    return info["init_from"] + (f"@{step}" if step is not None else "")


def is_finished(summary: dict | None, cfg) -> bool:
    """True when resuming ``cfg`` (a RunConfig) has nothing left to do for a run whose
    summary.json is ``summary``: it reached ``train.steps``, or it stopped for a reason that
    still holds under ``cfg`` (a non-finite loss; early stop while early stopping is on; its
    ``stop_at`` targets while ``stop_at`` is set). Raising ``train.steps`` reopens a run that
    stopped on max_steps; turning early stop or stop_at off reopens one that stopped on them."""
    if not summary or not summary.get("finished"):
        return False
    stopped = summary.get("stopped")
    if stopped == "nonfinite":
        return True
    if stopped == "early_stop" and cfg.train.early_stop_patience > 0:
        return True
    if stopped == "target" and cfg.train.stop_at:
        return True
    if stopped == "forecast" and cfg.train.stop_unless_forecast:
        return True
    return summary.get("steps", 0) >= cfg.train.steps


def resolve_device(name: str, field: str = "train.device"):
    """``auto`` -> cuda if available else cpu; ``cpu``, ``cuda``, ``cuda:N`` as named.

    A malformed name, a CUDA request without CUDA, or a CUDA index beyond the devices present
    is a GroklabError naming ``field``.
    """
    import torch  # deferred: reading a run directory needs no torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (name in ("cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())):
        raise bad_value(field, name, "auto | cpu | cuda | cuda:N")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GroklabError(f"{field}={name!r} is invalid (allowed: auto | cpu here: "
                               "torch sees no CUDA device)")
        idx = int(name[5:]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise GroklabError(f"{field}={name!r} is invalid (allowed: cuda:0..cuda:"
                               f"{torch.cuda.device_count() - 1})")
    return torch.device(name)
