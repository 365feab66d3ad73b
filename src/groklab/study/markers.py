"""Resumable stage markers: ``STUDY/stages/<name>.json`` exists once a stage has finished.

A marker stores a ``key`` (what the stage depended on, e.g. the model families): a stage is
reused only when the key still matches, so adding a family to a finished study re-enters the
stages that must grow (whose finished runs are reused one by one).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from groklab.fsutil import atomic_write_json
from groklab.study.layout import StudyLayout


def marker_path(study_dir: Path, name: str) -> Path:
    return StudyLayout(study_dir).stages_dir / f"{name.replace('/', '__')}.json"


def read_marker(study_dir: Path, name: str, key=None) -> dict | None:
    """The finished marker of ``name`` if present and made with the same ``key``."""
    path = marker_path(study_dir, name)
    if not path.exists():
        return None
    try:
        marker = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if marker.get("key") != _plain(key):
        return None
    return marker


def write_marker(study_dir: Path, name: str, key=None, wall_s: float = 0.0, **info) -> dict:
    marker = {"stage": name, "key": _plain(key), "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
              "wall_s": round(wall_s, 2), **info}
    atomic_write_json(marker_path(study_dir, name), marker)
    return marker


def _plain(obj):
    """JSON round trip so tuples and lists compare equal."""
    return json.loads(json.dumps(obj))
