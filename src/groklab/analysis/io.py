"""Run specs (``RUN[@STEP]``), loading a model at a checkpoint, and writing analysis outputs.

Outputs go to ``RUN/analysis/`` (of the first run for ``compare``) under names that encode
what was analysed (split, corruption, step, other run), so analyses never overwrite another
run's files or each other; ``--out FILE.json`` puts them elsewhere (the PNG beside it).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import torch

import groklab
from groklab.errors import GroklabError, bad_value
from groklab.fsutil import atomic_write_json
from groklab.train import load_model, load_run, rundir
from groklab.train.runs import parse_run_spec  # noqa: F401  (RUN[@STEP], re-exported here)

ANALYSIS_DIR = "analysis"


def resolve_device(name: str) -> torch.device:
    """``--device``: ``auto`` -> cuda when available, else cpu (``train.rundir.resolve_device``)."""
    return rundir.resolve_device(name, field="device")


def load_at(run_dir: str | Path, step: int | None = None, device="cpu", ema: bool = True):
    """(model, dataset, step) at ``step``; None = the newest checkpoint that loads cleanly."""
    run = load_run(run_dir)
    if not run.checkpoint_steps:
        raise GroklabError(f"run {run_dir} has no checkpoint (allowed: a run with checkpoints)")
    if step is not None:
        model, dataset = load_model(run_dir, step, ema=ema, device=device)
        return model, dataset, step
    last_error = None
    for candidate in reversed(run.checkpoint_steps):
        try:
            model, dataset = load_model(run_dir, candidate, ema=ema, device=device)
            return model, dataset, candidate
        except GroklabError as exc:  # corrupted checkpoint: try the previous one
            last_error = exc
    raise GroklabError(f"run {run_dir} has no usable checkpoint ({last_error})")


def output_paths(run_dir: str | Path, name: str, out: str | None = None) -> tuple[Path, Path]:
    """(json path, png path) for an analysis called ``name``."""
    if out:
        json_path = Path(out)
        if json_path.suffix != ".json":
            raise bad_value("--out", out, "a file path ending in .json")
    else:
        json_path = Path(run_dir) / ANALYSIS_DIR / f"{name}.json"
    return json_path, json_path.with_suffix(".png")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "run"


def write_json(path: Path, payload: dict, started: float, **meta) -> None:
    """Write ``payload`` with a ``meta`` block (version, wall time, inputs) atomically."""
    doc = {"meta": {"groklab": groklab.__version__, "wall_s": round(time.time() - started, 3),
                    **meta}, **payload}
    atomic_write_json(path, doc)
