"""metrics.jsonl (one row per evaluation) and summary.json: their formats (file names: train.rundir).

Rows are appended and flushed one line at a time, so a killed run leaves every finished row
intact (at worst a torn last line, which the reader skips). ``summarize`` derives the summary
from the rows alone, so a resumed run gets the same summary as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from groklab.data.splits import TRAINED_PROBES
from groklab.errors import GroklabError, GroklabFailure
from groklab.fsutil import atomic_write_text

TRAIN_PROBES = TRAINED_PROBES
TRAIN_THRESHOLD = 0.99
SPLIT_THRESHOLD = 0.9


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of a metrics.jsonl; a torn (unterminated, unparsable) last line is ignored. Any
    other line that is not a JSON object with an integer ``step`` is a GroklabError naming it."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise GroklabError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if i == len(lines) - 1:  # torn write at the very end
                break
            raise GroklabError(f"{path} line {i + 1}: not valid JSON (a torn or edited line; "
                               "allowed: one JSON object per line)") from None
        if not isinstance(row, dict) or isinstance(row.get("step"), bool) or not isinstance(
                row.get("step"), int):
            raise GroklabError(f"{path} line {i + 1}: not a metrics row (allowed: a JSON object "
                               "with an integer step)")
        rows.append(row)
    return rows


def resumable_step(rows: list[dict], eval_every: int) -> int:
    """The newest checkpoint step a resume may start from given these rows: the rows must hold
    every evaluation 0, eval_every, 2*eval_every, ... up to that checkpoint, else the resumed
    run would summarise a history with holes (a metrics.jsonl deleted or cut under the run).
    -1 (start over) when even the step-0 row is missing."""
    steps = {r["step"] for r in rows}
    if 0 not in steps:
        return -1
    covered = 0
    while covered + eval_every in steps:
        covered += eval_every
    return covered + eval_every - 1


def write_metrics(path: str | os.PathLike, rows: list[dict]) -> None:
    """Replace the file atomically with ``rows`` (used to cut it back when resuming)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


class MetricsWriter:
    """Append rows to metrics.jsonl, one flushed line each. A file deleted or replaced under the
    writer stops the run (GroklabFailure) instead of writing rows nobody will read."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        mine = os.fstat(self._f.fileno())
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev):
            raise GroklabFailure(f"{self.path} was deleted or replaced while the run was writing "
                                 f"it (at step {row.get('step')}); the run stopped. --resume "
                                 "continues from the last checkpoint the metrics still cover")
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def train_acc(row: dict) -> float | None:
    """Mean exact match over the training probes present in ``row`` (None if none)."""
    vals = [row[f"acc/{p}"] for p in TRAIN_PROBES if f"acc/{p}" in row]
    return sum(vals) / len(vals) if vals else None


def summarize(rows: list[dict], *, stopped: str | None = None, finished: bool = False,
              device: str | None = None) -> dict:
    """First step (and wall time) each threshold was reached, final and best accuracies;
    ``device``: the torch device the run resolved ``train.device`` to (``auto`` -> ``cpu``).

    Thresholds: ``train_acc >= 0.99`` and ``acc/<split> >= 0.9`` for every probe split.
    """
    splits = sorted({k[4:] for r in rows for k in r if k.startswith("acc/")})
    targets = {"train_acc>=0.99": ("train_acc", TRAIN_THRESHOLD)}
    targets.update({f"{s}>=0.9": (f"acc/{s}", SPLIT_THRESHOLD) for s in splits})
    first_step: dict[str, int | None] = {k: None for k in targets}
    first_time: dict[str, float | None] = {k: None for k in targets}
    for row in rows:
        for name, (key, thr) in targets.items():
            if first_step[name] is None and row.get(key) is not None and row[key] >= thr:
                first_step[name] = row["step"]
                first_time[name] = row.get("time")
    acc_keys = ["train_acc"] + [f"acc/{s}" for s in splits]
    last = rows[-1] if rows else {}
    best = {k: max((r[k] for r in rows if _finite(r.get(k))), default=None) for k in acc_keys}
    return {
        "steps": last.get("step", 0),
        "wall_time": last.get("time"),
        "finished": finished,
        "stopped": stopped,
        "first_step": first_step,
        "first_time": first_time,
        "final": {k: last.get(k) for k in acc_keys + ["loss"]},
        "best": best,
        **({"device": device} if device is not None else {}),
    }


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")


def read_summary(path: str | os.PathLike) -> dict | None:
    """The summary, or None when missing or unreadable (it is derived from the rows)."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (ValueError, RecursionError):
        return None
    return summary if isinstance(summary, dict) else None


def plateaued(rows: list[dict], patience: int, delta: float) -> bool:
    """True when no ``acc/*`` column improved its best by more than ``delta`` in the last
    ``patience`` steps and the model fits its training probes (train_acc >= 0.99).

    A pure function of the rows, so early stopping is identical after a resume.
    """
    if patience <= 0 or not rows or (train_acc(rows[-1]) or 0.0) < TRAIN_THRESHOLD:
        return False
    last_step = rows[-1]["step"]
    if last_step - rows[0]["step"] < patience:
        return False
    old = [r for r in rows if r["step"] <= last_step - patience]
    recent = [r for r in rows if r["step"] > last_step - patience]
    if not old or not recent:
        return False
    for key in (k for k in rows[-1] if k.startswith("acc/")):
        best_old = max(r.get(key, 0.0) for r in old)
        best_recent = max(r.get(key, 0.0) for r in recent)
        if best_recent > best_old + delta:
            return False
    return True


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
