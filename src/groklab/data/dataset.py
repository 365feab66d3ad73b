"""Dataset directories (format_version 1): write, load, verify; Split and Dataset views."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groklab.data.config import DataConfig
from groklab.data.rows import BRIDGE, COLUMNS, FLAGS, IN0, IN2, LENGTH, TARGET
from groklab.errors import GroklabError, bad_value
from groklab.fsutil import atomic_output_dir, sha256_file

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass
class Split:
    """One split as int64 arrays: ``tokens`` (N, 3), ``length``, ``target``, ``bridge``, ``flags``."""

    name: str
    tokens: np.ndarray
    length: np.ndarray
    target: np.ndarray
    bridge: np.ndarray
    flags: np.ndarray

    @classmethod
    def from_rows(cls, name: str, rows: np.ndarray) -> "Split":
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, len(COLUMNS))
        return cls(name, rows[:, IN0:IN2 + 1].copy(), rows[:, LENGTH].copy(),
                   rows[:, TARGET].copy(), rows[:, BRIDGE].copy(), rows[:, FLAGS].copy())

    def rows(self) -> np.ndarray:
        """The (N, 7) int32 array in the on-disk column order."""
        return np.column_stack([self.tokens, self.length, self.target, self.bridge,
                                self.flags]).astype(np.int32)

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx) -> "Split":
        """A new Split of the items at ``idx`` (indices or boolean mask)."""
        return Split(self.name, self.tokens[idx], self.length[idx], self.target[idx],
                     self.bridge[idx], self.flags[idx])


class Dataset:
    """A dataset directory: manifest, vocab, atomic facts and lazily loaded splits."""

    def __init__(self, path: str | os.PathLike, manifest: dict, vocab: list[str]):
        self.path = Path(path)
        self.manifest = manifest
        self.vocab = vocab
        self._splits: dict[str, Split] = {}
        self._atomic: np.ndarray | None = None

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def split_names(self) -> list[str]:
        return list(self.manifest["splits"])

    @property
    def probe_names(self) -> list[str]:
        return [s for s in self.manifest["splits"] if s != "train"]

    def split(self, name: str) -> Split:
        """The split ``name`` (cached)."""
        if name not in self._splits:
            if name not in self.manifest["splits"]:
                raise bad_value("split", name, ", ".join(self.split_names))
            rows = np.load(self.path / "splits" / f"{name}.npy", allow_pickle=False)
            self._splits[name] = Split.from_rows(name, rows)
        return self._splits[name]

    @property
    def atomic(self) -> np.ndarray:
        """(F, 4) int32 token ids h, r, t and flags of every atomic fact of the graph."""
        if self._atomic is None:
            self._atomic = np.load(self.path / "atomic.npy", allow_pickle=False)
        return self._atomic

    def decode(self, ids) -> str:
        """Token ids -> text, e.g. ``'<e_3><r_1><r_7>'`` (negative ids skipped)."""
        return "".join(self.vocab[int(i)] for i in np.atleast_1d(ids) if int(i) >= 0)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.manifest["counts"].items())
        return f"Dataset({str(self.path)!r}, task={self.task}, {counts})"


def check_output(out: str | os.PathLike, force: bool) -> None:
    """Fail early (before generating anything) if ``out`` would be refused."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise bad_value("out", str(out), "a directory path (this is a file)")
    if out.exists() and any(out.iterdir()) and not force:
        raise GroklabError(f"out={str(out)!r} already exists and is not empty (use --force to replace it)")


def write_dataset(out: str | os.PathLike, *, task: str, kind: str, config: dict, seed: int,
                  vocab: list[str], atomic: np.ndarray, splits: dict[str, np.ndarray],
                  stats: dict, extra: dict | None = None, force: bool = False) -> "Dataset":
    """Write a dataset directory atomically and return it loaded."""
    if "train" not in splits or next(iter(splits)) != "train":
        raise ValueError("splits must start with 'train'")
    with atomic_output_dir(out, force=force) as tmp:
        (tmp / "splits").mkdir()
        (tmp / "vocab.json").write_text(json.dumps(vocab) + "\n", encoding="utf-8")
        np.save(tmp / "atomic.npy", np.ascontiguousarray(atomic, dtype=np.int32))
        for name, rows in splits.items():
            rows = np.ascontiguousarray(rows, dtype=np.int32).reshape(-1, len(COLUMNS))
            np.save(tmp / "splits" / f"{name}.npy", rows)
        files = {"vocab.json": sha256_file(tmp / "vocab.json"),
                 "atomic.npy": sha256_file(tmp / "atomic.npy")}
        for name in splits:
            files[f"splits/{name}.npy"] = sha256_file(tmp / "splits" / f"{name}.npy")
        manifest = {
            "format_version": FORMAT_VERSION,
            "task": task,
            "kind": kind,
            "config": config,
            "seed": seed,
            "splits": list(splits),
            "counts": {name: int(len(rows)) for name, rows in splits.items()},
            "vocab_size": len(vocab),
            "stats": _jsonable(stats),
            **(extra or {}),
            "columns": list(COLUMNS),
            "files": files,
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return load_dataset(out, verify=False)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def load_dataset(path: str | os.PathLike, verify: bool = True) -> Dataset:
    """Open a dataset directory; with ``verify`` check every file's sha256 against the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise bad_value("dataset", str(path), "a dataset directory with manifest.json "
                        "(made by `groklab data make`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GroklabError(f"{manifest_path}: not valid JSON ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise bad_value(f"{manifest_path}: format_version", version, str(FORMAT_VERSION))
    if verify:
        for rel, digest in manifest["files"].items():
            file = path / rel
            if not file.is_file():
                raise GroklabError(f"dataset {path}: file {rel} is missing")
            if sha256_file(file) != digest:
                raise GroklabError(f"dataset {path}: file {rel} does not match its sha256 in "
                                   "manifest.json (corrupted or edited)")
    vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    return Dataset(path, manifest, vocab)


def make_dataset(cfg: DataConfig, out: str | os.PathLike, force: bool = False,
                 field_path: str = "") -> Dataset:
    """Generate the dataset of ``cfg`` into ``out`` (atomically) and return it. A bad config
    is an error naming ``field_path + field`` (``"data."`` when it is a run config's)."""
    from groklab.data.comparison import build_comparison
    from groklab.data.splits import build_composition

    cfg.validate(field_path)
    check_output(out, force)
    build = build_composition if cfg.task == "composition" else build_comparison
    built = build(cfg, field_path)
    return write_dataset(out, task=cfg.task, kind="generated", config=cfg.to_dict(), seed=cfg.seed,
                         vocab=built.vocab, atomic=built.atomic, splits=built.splits,
                         stats=built.stats, force=force)
