"""``DIR/summary.csv``: one row per trial of the sweep, in plan order.

Columns: ``trial``, ``status`` (done | failed | stopped | interrupted | running | pending), the
swept config values (one column per dotted key), ``steps``, ``stopped``, ``wall_time``, the
trial dataset's ``phi`` and exposure (``hop1_ratio``, ``hop2_ratio``, ``hop1_k``, ``hop2_k``,
from its manifest), the grok steps ``first_step/<target>`` (first evaluation with
``train_acc >= 0.99`` or ``<split> >= 0.9``; empty = never), the final values ``final/<key>``
of every accuracy, the loss and any ``lens/*`` scalar, and ``error``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from groklab.data.dataset import MANIFEST_NAME
from groklab.fsutil import atomic_write_text
from groklab.train import rundir
from groklab.sweep.trial import PENDING, TrialJob, read_record, run_summary

SUMMARY_NAME = "summary.csv"
GROK_SPLIT = "test_inferred_iid"
EXPOSURE_KEYS = ("hop1_ratio", "hop2_ratio", "hop1_k", "hop2_k")  # from the dataset's manifest


def trial_row(job: TrialJob, params: dict) -> dict:
    """The summary row of one trial, read from its record, summary.json, metrics and data."""
    record = read_record(job) or {}
    summary = run_summary(job) or {}
    row = {"trial": job.name, "status": record.get("status", PENDING)}
    row.update(params)
    row["steps"] = summary.get("steps")
    row["stopped"] = summary.get("stopped")
    row["wall_time"] = summary.get("wall_time")
    row.update(_exposure(job))
    for key, step in (summary.get("first_step") or {}).items():
        row[f"first_step/{key}"] = step
    last = _last_metrics_row(rundir.metrics_path(job.run_dir))
    final = dict(summary.get("final") or {})
    final.update({k: v for k, v in last.items() if k.startswith("lens/")})
    for key, value in final.items():
        row[f"final/{key}"] = value
    row["error"] = record.get("error")
    return row


def summary_rows(jobs: list[TrialJob], params: list[dict]) -> list[dict]:
    return [trial_row(job, p) for job, p in zip(jobs, params)]


def write_summary_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write the rows (columns: union in first-seen order, ``error`` last) atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "error"]
    columns.append("error")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def read_summary_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a summary.csv with numbers parsed (empty cells -> None)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return value


def _parse(text: str):
    if text == "":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _exposure(job: TrialJob) -> dict:
    """phi and EXPOSURE_KEYS of the trial's dataset (empty until it is generated)."""
    manifest = job.run_dir / rundir.DATA_DIR / MANIFEST_NAME
    if not manifest.is_file():  # a trial on an existing dataset (data_path)
        try:
            data_path = job.config().data_path
        except Exception:  # noqa: BLE001 - an invalid config has no dataset
            data_path = None
        manifest = Path(data_path) / MANIFEST_NAME if data_path else manifest
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    stats = data.get("stats", {})
    return {"phi": (data.get("config") or {}).get("phi"), **{k: stats.get(k) for k in EXPOSURE_KEYS}}


def _last_metrics_row(path: Path) -> dict:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue  # a torn last line
    return {}
