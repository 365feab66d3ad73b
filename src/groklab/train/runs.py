"""Read a run directory: config, metrics, checkpoints, dataset, and models at any checkpoint."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from groklab.data import Dataset, load_dataset
from groklab.errors import GroklabError, bad_value
from groklab.models import GrokModel, build_model
from groklab.train import checkpoints as ck
from groklab.train import rundir
from groklab.train.config import RunConfig
from groklab.train.rundir import CONFIG_NAME, DATA_DIR

_SPEC = re.compile(r"^(?P<path>.+?)@(?P<step>\d+)$")


@dataclass
class Run:
    """A run directory. ``dataset`` is opened (and verified) on first use."""

    path: Path
    config: RunConfig
    metrics: list[dict]
    summary: dict | None
    checkpoint_steps: list[int]
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def dataset_path(self) -> Path:
        return Path(self.config.data_path) if self.config.data_path else self.path / DATA_DIR

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.dataset_path, verify=True)
        return self._dataset


def parse_run_spec(spec: str | os.PathLike) -> tuple[Path, int | None]:
    """``"runs/a@2000"`` -> (Path("runs/a"), 2000); ``"runs/a"`` -> (Path("runs/a"), None)."""
    m = _SPEC.match(str(spec))
    if m and not Path(spec).exists():
        return Path(m["path"]), int(m["step"])
    return Path(spec), None


def load_run(run_dir: str | os.PathLike) -> Run:
    """Open a run directory written by :func:`groklab.train.train_run`."""
    path = Path(run_dir)
    if not rundir.is_started(path):
        raise bad_value("run", str(path), f"a run directory with {CONFIG_NAME} (made by `groklab train`)")
    return Run(path=path, config=rundir.read_config(path), metrics=rundir.read_metrics(path),
               summary=rundir.read_summary(path),
               checkpoint_steps=ck.checkpoint_steps(path))


def checkpoint_weights(run: Run, step: int | None = None, ema: bool = True) -> tuple[int, dict]:
    """(step, model state dict) of ``run`` at checkpoint ``step`` (None = the latest good one);
    the EMA weights when ``ema`` and the run kept an EMA, otherwise the trained weights."""
    if step is None:
        found = ck.load_latest_good(run.path)
        if found is None:
            raise GroklabError(f"run {run.path} has no usable checkpoint")
        step, tensors, _ = found
    else:
        if step not in run.checkpoint_steps:
            shown = ", ".join(map(str, run.checkpoint_steps[:8])) + (", ..." if len(run.checkpoint_steps) > 8 else "")
            raise bad_value("step", step, f"a checkpointed step of {run.path}: {shown or 'none'}")
        tensors, _ = ck.load_checkpoint(run.path, step)
    prefix = "ema." if ema and any(k.startswith("ema.") for k in tensors) else "model."
    return step, ck.unprefixed(prefix, tensors)


def load_model(run_dir: str | os.PathLike, step: int | None = None, ema: bool = True,
               device: torch.device | str = "cpu") -> tuple[GrokModel, Dataset]:
    """(model in eval mode, dataset) at checkpoint ``step`` (None = the latest good one).

    ``ema=True`` gives the EMA weights when the run kept an EMA (``optim.ema_decay > 0``),
    otherwise the trained weights.
    """
    run = load_run(run_dir)
    _, state = checkpoint_weights(run, step, ema)
    dataset = run.dataset
    model = build_model(run.config.model, dataset.vocab_size)
    model.load_state_dict(state)
    return model.to(device).eval(), dataset
