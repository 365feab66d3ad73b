"""Dataset directories (format_version 1): write, load, verify; Split and Dataset views."""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from groklab.data.config import TASKS, DataConfig
from groklab.data.rows import COLUMNS, columns, hops_of_width
from groklab.errors import GroklabError, bad_value
from groklab.fsutil import atomic_output_dir, check_output_dir, sha256_file, sha256_json

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_DIGEST = "manifest_sha256"  # sha256_json of the manifest without this key
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class LegacyManifestWarning(UserWarning):
    """A dataset whose manifest predates ``manifest_sha256``: its files are verified, the
    manifest itself cannot be."""


@dataclass
class Split:
    """One split as int64 arrays: ``tokens`` (N, M+1) (M = the longest query's hops, 2 for the
    two-hop task: (N, 3)), ``length``, ``target``, ``bridge`` (b1), ``flags``; ``bridges``
    (N, M-1): b1..b(M-1), -1 past a query's own bridges (None: ``bridge`` alone)."""

    name: str
    tokens: np.ndarray
    length: np.ndarray
    target: np.ndarray
    bridge: np.ndarray
    flags: np.ndarray
    bridges: np.ndarray | None = None

    def __post_init__(self):
        if self.bridges is None:
            self.bridges = self.bridge[:, None].copy()

    @property
    def max_hops(self) -> int:
        return self.tokens.shape[1] - 1

    @classmethod
    def from_rows(cls, name: str, rows: np.ndarray, n_columns: int = len(COLUMNS)) -> "Split":
        m = hops_of_width(n_columns)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, n_columns)
        bridges = rows[:, m + 3:2 * m + 2]
        return cls(name, rows[:, :m + 1].copy(), rows[:, m + 1].copy(), rows[:, m + 2].copy(),
                   bridges[:, 0].copy(), rows[:, -1].copy(), bridges.copy())

    def rows(self) -> np.ndarray:
        """The (N, 2M+3) int32 array in the on-disk column order ((N, 7) for two hops)."""
        return np.column_stack([self.tokens, self.length, self.target, self.bridges,
                                self.flags]).astype(np.int32)

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx) -> "Split":
        """A new Split of the items at ``idx`` (indices or boolean mask)."""
        return Split(self.name, self.tokens[idx], self.length[idx], self.target[idx],
                     self.bridge[idx], self.flags[idx], self.bridges[idx])


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
    def n_columns(self) -> int:
        """Columns of every split row (7 for two hops; data/rows.py)."""
        return len(self.manifest.get("columns", COLUMNS))

    @property
    def max_hops(self) -> int:
        """Hops of the longest query the row layout holds (2 for the two-hop task)."""
        return hops_of_width(self.n_columns)

    @property
    def query_width(self) -> int:
        """Input tokens of the longest query: max_hops + 1."""
        return self.max_hops + 1

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
            rows = _load_array(self.path / "splits" / f"{name}.npy", self.n_columns,
                               self.manifest["counts"][name])
            self._splits[name] = Split.from_rows(name, rows, self.n_columns)
        return self._splits[name]

    @property
    def atomic(self) -> np.ndarray:
        """(F, 4) int32 token ids h, r, t and flags of every atomic fact of the graph."""
        if self._atomic is None:
            self._atomic = _load_array(self.path / "atomic.npy", 4)
        return self._atomic

    def decode(self, ids) -> str:
        """Token ids -> text, e.g. ``'<e_3><r_1><r_7>'`` (negative ids skipped)."""
        return "".join(self.vocab[int(i)] for i in np.atleast_1d(ids) if int(i) >= 0)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.manifest["counts"].items())
        return f"Dataset({str(self.path)!r}, task={self.task}, {counts})"


def check_output(out: str | os.PathLike, force: bool) -> None:
    """Fail early (before generating anything) if ``out`` would be refused."""
    check_output_dir(out, force)


def write_dataset(out: str | os.PathLike, *, task: str, kind: str, config: dict, seed: int,
                  vocab: list[str], atomic: np.ndarray, splits: dict[str, np.ndarray],
                  stats: dict, extra: dict | None = None, force: bool = False) -> "Dataset":
    """Write a dataset directory atomically and return it loaded."""
    if "train" not in splits or next(iter(splits)) != "train":
        raise ValueError("splits must start with 'train'")
    train = np.asarray(splits["train"])
    cols = columns(hops_of_width(train.shape[1] if train.ndim == 2 else len(COLUMNS)))
    with atomic_output_dir(out, force=force) as tmp:
        (tmp / "splits").mkdir()
        (tmp / "vocab.json").write_text(json.dumps(vocab) + "\n", encoding="utf-8")
        np.save(tmp / "atomic.npy", np.ascontiguousarray(atomic, dtype=np.int32))
        for name, rows in splits.items():
            rows = np.ascontiguousarray(rows, dtype=np.int32).reshape(-1, len(cols))
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
            "columns": list(cols),
            "files": files,
        }
        manifest[MANIFEST_DIGEST] = sha256_json(manifest)
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
    """Open a dataset directory; its manifest's shape is always checked. With ``verify`` the
    manifest's own digest and every file's sha256 are checked too (docs/guarantees.md)."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise bad_value("dataset", str(path), "a dataset directory with manifest.json "
                        "(made by `groklab data make`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise GroklabError(f"{manifest_path}: not valid JSON ({exc})") from None
    _check_manifest(manifest, manifest_path)
    if verify:
        digest = manifest.get(MANIFEST_DIGEST)
        if digest is None:  # written before manifests carried their digest: still readable
            warnings.warn(f"dataset {path}: manifest.json has no manifest_sha256 (made before "
                          "manifests were checksummed), so its counts, config and split list are "
                          "not verified; make the dataset again to seal it", LegacyManifestWarning,
                          stacklevel=2)
        elif digest != sha256_json({k: v for k, v in manifest.items() if k != MANIFEST_DIGEST}):
            raise GroklabError(f"dataset {path}: manifest.json does not match its manifest_sha256 "
                               "(edited or corrupted)")
        for rel, digest in manifest["files"].items():
            file = path / rel
            if file.is_symlink() or not file.is_file():
                raise GroklabError(f"dataset {path}: file {rel} is missing (or not a regular file)")
            if sha256_file(file) != digest:
                raise GroklabError(f"dataset {path}: file {rel} does not match its sha256 in "
                                   "manifest.json (corrupted or edited)")
        _load_array(path / "atomic.npy", 4, mmap=True)  # headers only: dtype and shape
        for name in manifest["splits"]:
            _load_array(path / "splits" / f"{name}.npy", len(manifest.get("columns", COLUMNS)),
                        manifest["counts"][name], mmap=True)
    try:
        vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise GroklabError(f"dataset {path}: vocab.json is unreadable ({exc})") from None
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise GroklabError(f"dataset {path}: vocab.json is not a list of token strings")
    return Dataset(path, manifest, vocab)


def _check_manifest(manifest, where: Path) -> None:
    """The manifest's shape: the keys and types readers rely on; file paths inside the
    dataset; split names that are plain names. GroklabError naming what is wrong."""
    if not isinstance(manifest, dict):
        raise GroklabError(f"{where}: not a dataset manifest (allowed: a JSON object with "
                           f"format_version, splits, counts, files; got a {type(manifest).__name__})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise bad_value(f"{where}: format_version", version, str(FORMAT_VERSION))
    for key, kind in (("task", str), ("splits", list), ("counts", dict), ("files", dict),
                      ("config", dict)):
        if not isinstance(manifest.get(key), kind):
            raise GroklabError(f"{where}: {key} is missing or not a JSON {kind.__name__}")
    if manifest["task"] not in TASKS:
        raise bad_value(f"{where}: task", manifest["task"], ", ".join(TASKS))
    files = manifest["files"]
    for rel, digest in files.items():
        parts = PurePosixPath(rel).parts
        if (rel.startswith("/") or "\\" in rel or ".." in parts or not parts
                or rel != str(PurePosixPath(rel))):
            raise GroklabError(f"{where}: files entry {rel!r} is invalid (allowed: a relative path "
                               "inside the dataset, without '..')")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise GroklabError(f"{where}: files[{rel!r}] is not a sha256 hex digest")
    cols = manifest.get("columns", list(COLUMNS))
    try:
        ok = isinstance(cols, list) and list(cols) == list(columns(hops_of_width(len(cols))))
    except ValueError:
        ok = False
    if not ok:
        raise GroklabError(f"{where}: columns={cols!r} is invalid (allowed: the split layout of "
                           "docs/architecture.md section 1, e.g. " + ", ".join(COLUMNS) + ")")
    splits = manifest["splits"]
    if not splits or splits[0] != "train" or len(set(map(str, splits))) != len(splits):
        raise GroklabError(f"{where}: splits must list distinct names starting with 'train'")
    for name in splits:
        if not isinstance(name, str) or not _SPLIT_NAME.fullmatch(name):
            raise GroklabError(f"{where}: split name {name!r} is invalid (allowed: lowercase "
                               "letters, digits and _)")
        count = manifest["counts"].get(name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise GroklabError(f"{where}: counts[{name!r}]={count!r} is invalid (allowed: an "
                               "integer >= 0)")
    for rel in ("vocab.json", "atomic.npy", *(f"splits/{n}.npy" for n in splits)):
        if rel not in files:
            raise GroklabError(f"{where}: files has no entry for {rel} (every split needs its "
                               "array and checksum)")


def _load_array(path: Path, width: int, count: int | None = None, mmap: bool = False) -> np.ndarray:
    """An (N, width) int32 array from ``path``; GroklabError if unreadable or of another shape.
    ``mmap``: map it instead of reading it (checks the header only)."""
    try:
        rows = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as exc:
        raise GroklabError(f"{path}: not a readable .npy array ({exc})") from None
    if rows.dtype != np.int32 or rows.ndim != 2 or rows.shape[1] != width or (
            count is not None and len(rows) != count):
        expect = f"({count if count is not None else 'N'}, {width}) int32"
        raise GroklabError(f"{path}: array of shape {rows.shape} {rows.dtype} is invalid "
                           f"(allowed: {expect})")
    return rows


def check_generation_memory(cfg: DataConfig) -> None:
    """Refuse (one line, before allocating) a dataset whose generation would not fit in memory."""
    from groklab.resources import check_memory, data_bytes

    check_memory(f"data size entities={cfg.entities}, relations={cfg.relations}, out_degree="
                 f"{cfg.out_degree}, phi={cfg.phi}", data_bytes(cfg),
                 f"generating this {cfg.task} dataset")


def make_dataset(cfg: DataConfig, out: str | os.PathLike, force: bool = False,
                 field_path: str = "") -> Dataset:
    """Generate the dataset of ``cfg`` into ``out`` (atomically) and return it. A bad config
    is an error naming ``field_path + field`` (``"data."`` when it is a run config's)."""
    from groklab.data.comparison import build_comparison
    from groklab.data.khop import build_khop
    from groklab.data.splits import build_composition

    cfg.validate(field_path)
    check_output(out, force)
    check_generation_memory(cfg)
    build = (build_comparison if cfg.task != "composition"
             else build_khop if cfg.is_khop else build_composition)
    built = build(cfg, field_path)
    return write_dataset(out, task=cfg.task, kind="generated", config=cfg.to_dict(), seed=cfg.seed,
                         vocab=built.vocab, atomic=built.atomic, splits=built.splits,
                         stats=built.stats, force=force)
