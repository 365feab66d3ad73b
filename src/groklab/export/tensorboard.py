"""TensorBoard scalars next to metrics.jsonl: ``RUN/tensorboard/events.out.tfevents.*``.

``TensorBoardCallback(run_dir)`` is a training callback (``callback(step, model, dataset, row)``)
that writes every numeric value of each metrics row as a scalar (tags are the row keys:
``acc/test_inferred_iid``, ``loss``, ``lr``, ``lens/...``). Put it last in the callbacks so
that the values other callbacks add to the row are included. On a resumed run it purges the
events a killed run wrote past its last checkpoint, so curves are not doubled.
``write_tensorboard(run_dir)`` converts an existing metrics.jsonl after the fact.

Needs the ``tensorboard`` package (extra ``groklab[tensorboard]``), imported when used.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from groklab.errors import GroklabError
from groklab.fsutil import atomic_output_dir

TB_DIR = "tensorboard"


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or a GroklabError naming the missing extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise GroklabError("TensorBoard output needs the optional tensorboard package, which is not "
                           "installed here (install it with: pip install 'groklab[tensorboard]', or "
                           f"`make install-extras` in a checkout; {exc})") from None
    return SummaryWriter


def row_scalars(row: dict) -> dict[str, float]:
    """The row's finite numbers except ``step`` (bools and None are skipped)."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class TensorBoardCallback:
    """Training callback writing each evaluation row to ``RUN/tensorboard`` (or ``log_dir``)."""

    def __init__(self, run_dir: str | os.PathLike, log_dir: str | os.PathLike | None = None):
        self._writer_class = summary_writer_class()  # fail before training if not installed
        self.log_dir = Path(log_dir) if log_dir is not None else Path(run_dir) / TB_DIR
        self._writer = None

    def __call__(self, step: int, model, dataset, row: dict) -> None:
        if self._writer is None:
            # purge_step: a resumed run hides events an interrupted run wrote from here on
            self._writer = self._writer_class(log_dir=str(self.log_dir), purge_step=step)
        for tag, value in row_scalars(row).items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()
        return None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __del__(self):  # the writer's background thread must not outlive us
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def write_tensorboard(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                      force: bool = False) -> Path:
    """Write a run's metrics.jsonl as TensorBoard events into ``out`` (default RUN/tensorboard)."""
    from groklab.train import load_run

    writer_class = summary_writer_class()
    run = load_run(run_dir)
    if not run.metrics:
        raise GroklabError(f"run={str(run_dir)!r} is invalid (allowed: a run with at least one "
                           "metrics.jsonl row)")
    out = Path(out) if out is not None else Path(run_dir) / TB_DIR
    with atomic_output_dir(out, force=force) as tmp:
        writer = writer_class(log_dir=str(tmp))
        try:
            for row in run.metrics:
                for tag, value in row_scalars(row).items():
                    writer.add_scalar(tag, value, global_step=row["step"])
        finally:
            writer.close()
    return out
