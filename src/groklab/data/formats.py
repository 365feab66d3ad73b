"""Interop with the reference (Wang et al.) directory format.

A reference directory holds ``train.json``, ``valid.json``, ``test.json`` and ``vocab.json``.
Each of the first three is a JSON list (JSON lines are accepted too) of items
``{"input_text": "<e_12><r_3><r_7>", "target_text": "<e_12><r_3><r_7><e_5></a>"}``; test items
carry ``"type"`` (the probe name). ``valid.json`` is the OOD test set (a quirk of the
reference), ``vocab.json`` a list of tokens. Export writes that, plus ``atomic.json`` (every
atomic fact of the graph, typed id_atomic / ood_atomic / new_atomic; the reference code
ignores it), which makes the round trip exact. Import recovers atomic facts (``atomic.json``
if present, and every two-token item), bridges (looked up in the atomic facts), OOD facts
(``atomic.json`` types, ``ood_atomic`` items and both hops of ``test_inferred_ood`` /
``valid.json`` items), new facts (``atomic.json``, injected-set probes) and item flags.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from groklab.data import flags as F
from groklab.data.dataset import COLUMNS, Dataset, check_output, load_dataset, write_dataset
from groklab.data.injection import INJECT_PROBES
from groklab.data.splits import PROBES
from groklab.data.rows import ATOMIC_LENGTH, FLAGS, TWO_HOP_LENGTH
from groklab.data.vocab import PAD, composition_vocab, entity_offset, relation_offset
from groklab.errors import GroklabError, bad_value
from groklab.fsutil import atomic_output_dir
from groklab.resources import check_memory, import_bytes

FORMATS = ("reference",)
_INPUT = re.compile(r"<e_(\d+)><r_(\d+)>(?:<r_(\d+)>)?")
_TARGET = re.compile(r"<e_(\d+)></a>")
_TYPE = re.compile(r"[a-z][a-z0-9_]*")


# ---------------------------------------------------------------- export

def _items(ds: Dataset, name: str, typed: bool) -> list[dict]:
    split = ds.split(name)
    vocab = ds.vocab
    items = []
    for tokens, length, target in zip(split.tokens.tolist(), split.length.tolist(),
                                      split.target.tolist()):
        text = "".join(vocab[t] for t in tokens[:length])
        item = {"input_text": text, "target_text": text + vocab[target] + "</a>"}
        if typed:
            item["type"] = name
        items.append(item)
    return items


def _atomic_items(ds: Dataset) -> list[dict]:
    """Every atomic fact of the graph, typed id_atomic / ood_atomic / new_atomic."""
    vocab = ds.vocab
    items = []
    for h, r, t, fl in ds.atomic.tolist():
        text = vocab[h] + vocab[r]
        kind = "new_atomic" if fl & F.HOP1_NEW else "ood_atomic" if fl & F.HOP1_OOD else "id_atomic"
        items.append({"input_text": text, "target_text": text + vocab[t] + "</a>", "type": kind})
    return items


def export_reference(src: str | os.PathLike, out: str | os.PathLike, force: bool = False) -> Path:
    """Write dataset ``src`` in the reference format to ``out``; return ``out``."""
    ds = load_dataset(src, verify=True)
    check_output(out, force)
    test = [item for name in ds.probe_names for item in _items(ds, name, typed=True)]
    valid = _items(ds, "test_inferred_ood", typed=False) if "test_inferred_ood" in ds.probe_names else []
    with atomic_output_dir(out, force=force) as tmp:
        for name, obj in (("train.json", _items(ds, "train", typed=False)), ("valid.json", valid),
                          ("test.json", test), ("vocab.json", ds.vocab),
                          ("atomic.json", _atomic_items(ds))):
            (tmp / name).write_text(json.dumps(obj) + "\n", encoding="utf-8")
    return Path(out)


# ---------------------------------------------------------------- import

def _locate_bad_item(text: str, path: Path) -> GroklabError:
    """Walk a malformed JSON list item by item to name the first bad item."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()
    if not text.startswith("[", pos):
        return GroklabError(f"{path}: not valid JSON (expected a list starting with '[')")
    pos = ws.match(text, pos + 1).end()
    index = 0
    while pos < len(text) and text[pos] != "]":
        try:
            _, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            return GroklabError(f"{path} item {index}: not valid JSON ({exc.msg} at line "
                                f"{exc.lineno} column {exc.colno})")
        pos = ws.match(text, pos).end()
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()
        elif not text.startswith("]", pos):
            return GroklabError(f"{path} item {index}: not valid JSON (expected ',' or ']' after it)")
        index += 1
    return GroklabError(f"{path}: not valid JSON after item {index - 1} (unterminated list or "
                        "trailing text)")


def _read_items(path: Path) -> list:
    """A JSON list (or JSON lines) of items; GroklabError naming the file and the bad item."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GroklabError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise _locate_bad_item(text, path) from None
        items = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise GroklabError(f"{path} item {len(items)} (line {lineno}): not valid JSON "
                                       f"({exc.msg})") from None
        return items
    except RecursionError:
        raise GroklabError(f"{path}: JSON nested too deeply (allowed: a list of items, each an "
                           "object of strings)") from None


def _numbered(vocab: list, prefix: str, path: Path) -> int:
    ids = sorted(int(m.group(1)) for t in vocab if isinstance(t, str)
                 and (m := re.fullmatch(f"<{prefix}_(\\d+)>", t)))
    if not ids or ids != list(range(len(ids))):
        raise GroklabError(f"{path}: the <{prefix}_N> tokens must be <{prefix}_0> .. "
                           f"<{prefix}_{{n-1}}> without gaps (found {len(ids)})")
    return len(ids)


def _parse(items: list, path: Path, E: int, R: int, typed: bool) -> tuple[np.ndarray, list[str]]:
    """(N, 4) int64 h, r1, r2 (-1 for atomic), t as entity/relation indices, and the types."""
    out = np.empty((len(items), 4), np.int64)
    types = []
    allowed = f"<e_0..{E - 1}> then one or two of <r_0..{R - 1}>"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise GroklabError(f"{path} item {i}: expected an object with input_text and target_text")
        src, tgt = item.get("input_text"), item.get("target_text")
        m = _INPUT.fullmatch(src) if isinstance(src, str) else None
        if m is None:
            raise GroklabError(f"{path} item {i}: input_text={src!r} is invalid (allowed: {allowed})")
        h, r1, r2 = int(m.group(1)), int(m.group(2)), int(m.group(3) or -1)
        if h >= E or r1 >= R or r2 >= R:
            raise GroklabError(f"{path} item {i}: input_text={src!r} is invalid (allowed: {allowed})")
        mt = _TARGET.fullmatch(tgt[len(src):]) if isinstance(tgt, str) and tgt.startswith(src) else None
        if mt is None or int(mt.group(1)) >= E:
            raise GroklabError(f"{path} item {i}: target_text={tgt!r} is invalid (allowed: "
                               f"input_text + <e_0..{E - 1}> + </a>)")
        out[i] = h, r1, r2, int(mt.group(1))
        if typed:
            kind = item.get("type")
            if not isinstance(kind, str) or not _TYPE.fullmatch(kind) or kind == "train":
                raise GroklabError(f"{path} item {i}: type={kind!r} is invalid (allowed: a probe "
                                   "name such as id_atomic, test_inferred_ood)")
            types.append(kind)
    return out, types


def _probe_order(types: list[str]) -> list[str]:
    """Probe names: the standard (or injected-set) probes in their usual order, even when one is
    empty (an empty probe leaves no trace in test.json), then any other type as it appears."""
    seen = list(dict.fromkeys(types))
    injected = any(t in INJECT_PROBES for t in seen)
    known = list(INJECT_PROBES if injected else PROBES)
    return known + [t for t in seen if t not in known]


def import_reference(src: str | os.PathLike, out: str | os.PathLike, force: bool = False) -> Dataset:
    """Convert a reference directory into a groklab dataset at ``out``; return it."""
    src = Path(src)
    for name in ("vocab.json", "train.json", "test.json"):
        if not (src / name).is_file():
            raise bad_value("src", str(src), f"a directory with train.json, valid.json, test.json "
                            f"and vocab.json ({name} is missing)")
    check_output(out, force)
    ref_vocab = _read_items(src / "vocab.json")
    E = _numbered(ref_vocab, "e", src / "vocab.json")
    R = _numbered(ref_vocab, "r", src / "vocab.json")
    check_memory(f"{src / 'vocab.json'}: entities={E}, relations={R}", import_bytes(E, R, 0),
                 "importing it (entities x relations lookup tables)")

    train, _ = _parse(_read_items(src / "train.json"), src / "train.json", E, R, typed=False)
    test, types = _parse(_read_items(src / "test.json"), src / "test.json", E, R, typed=True)
    valid = (_parse(_read_items(src / "valid.json"), src / "valid.json", E, R, typed=False)[0]
             if (src / "valid.json").is_file() else np.zeros((0, 4), np.int64))
    graph_file = src / "atomic.json"  # written by our export: the whole graph, typed
    graph, graph_types = (_parse(_read_items(graph_file), graph_file, E, R, typed=True)
                          if graph_file.is_file() else (np.zeros((0, 4), np.int64), []))
    if np.any(graph[:, 2] >= 0):
        i = int(np.flatnonzero(graph[:, 2] >= 0)[0])
        raise GroklabError(f"{graph_file} item {i}: a two-hop query in the atomic facts file")
    for i, kind in enumerate(graph_types):
        if kind not in ("id_atomic", "ood_atomic", "new_atomic"):
            raise GroklabError(f"{graph_file} item {i}: type={kind!r} is invalid "
                               "(allowed: id_atomic, ood_atomic, new_atomic)")
    types = np.array(types, dtype=object)
    graph_types = np.array(graph_types, dtype=object)
    sources = [("atomic.json", graph), ("train.json", train), ("test.json", test),
               ("valid.json", valid)]

    # Atomic facts: every two-token item; (h, r) -> t must be a function.
    tail = np.full(E * R, -1, np.int64)
    for fname, arr in sources:
        atomic = np.flatnonzero(arr[:, 2] < 0)
        key = arr[atomic, 0] * R + arr[atomic, 1]
        tail[key] = arr[atomic, 3]
    for fname, arr in sources:
        atomic = np.flatnonzero(arr[:, 2] < 0)
        bad = atomic[tail[arr[atomic, 0] * R + arr[atomic, 1]] != arr[atomic, 3]]
        if len(bad):
            i = int(bad[0])
            raise GroklabError(f"{src / fname} item {i}: <e_{arr[i, 0]}><r_{arr[i, 1]}> -> "
                               f"<e_{arr[i, 3]}> contradicts another atomic fact with the same (h, r)")

    # Bridges and hops of two-hop items.
    hops = {}
    for fname, arr in sources:
        two = np.flatnonzero(arr[:, 2] >= 0)
        hop1 = arr[two, 0] * R + arr[two, 1]
        bridge = tail[hop1]
        hop2 = np.where(bridge >= 0, bridge * R + np.maximum(arr[two, 2], 0), 0)
        bad = two[(bridge < 0) | (tail[hop2] != arr[two, 3])]
        if len(bad):
            i = int(bad[0])
            raise GroklabError(f"{src / fname} item {i}: the query <e_{arr[i, 0]}><r_{arr[i, 1]}>"
                               f"<r_{arr[i, 2]}> -> <e_{arr[i, 3]}> does not follow from the atomic "
                               "facts in the directory")
        h1 = np.full(len(arr), -1, np.int64)
        h2 = np.full(len(arr), -1, np.int64)
        h1[two], h2[two] = hop1, hop2
        atomic = arr[:, 2] < 0
        h1[atomic] = arr[atomic, 0] * R + arr[atomic, 1]
        hops[fname] = (h1, h2)

    # OOD and new facts: from atomic.json when present, else from the probe types.
    is_ood = np.zeros(E * R, bool)
    is_new = np.zeros(E * R, bool)
    g1, _ = hops["atomic.json"]
    is_ood[g1[graph_types == "ood_atomic"]] = True
    is_new[g1[graph_types == "new_atomic"]] = True
    t1, t2 = hops["test.json"]
    is_ood[t1[types == "ood_atomic"]] = True
    is_ood[t1[types == "test_inferred_ood"]] = True
    is_ood[t2[types == "test_inferred_ood"]] = True
    v1, v2 = hops["valid.json"]
    is_ood[v1[v2 >= 0]] = True
    is_ood[v2[v2 >= 0]] = True
    for kind, first, second in (("atomic_new", True, False), ("new_old", True, False),
                                ("old_new", False, True), ("new_new", True, True)):
        if first:
            is_new[t1[types == kind]] = True
        if second:
            is_new[t2[types == kind]] = True

    def query_key(arr: np.ndarray) -> np.ndarray:
        return (arr[:, 0] * R + arr[:, 1]) * (R + 1) + arr[:, 2] + 1

    # trained: here, or (an injected set's old_inferred probe) in the source's training data
    trained = np.concatenate([query_key(train), query_key(test[types == "old_inferred"])])

    def rows(arr: np.ndarray, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Split rows; a trained composition with an OOD hop is AUGMENTED (in any split)."""
        two = arr[:, 2] >= 0
        flags = is_ood[h1] * F.HOP1_OOD + is_new[h1] * F.HOP1_NEW
        o2 = two & is_ood[np.maximum(h2, 0)]
        flags = flags + two * F.INFERRED + o2 * F.HOP2_OOD + (two & is_new[np.maximum(h2, 0)]) * F.HOP2_NEW
        augmented = two & (is_ood[h1] | o2) & np.isin(query_key(arr), trained)
        flags = flags + augmented * F.AUGMENTED
        n = len(arr)
        e0, r0 = entity_offset(), relation_offset(E)
        return np.stack([  # arr: the reference format's h, r1, r2 (-1 for a fact), t
            arr[:, 0] + e0, arr[:, 1] + r0,
            np.where(two, arr[:, 2] + r0, PAD), np.where(two, TWO_HOP_LENGTH, ATOMIC_LENGTH),
            arr[:, 3] + e0, np.where(two, tail[np.maximum(h1, 0)] + e0, -1), flags,
        ], axis=1).astype(np.int32).reshape(n, len(COLUMNS))

    splits = {"train": rows(train, *hops["train.json"])}
    test_rows = rows(test, *hops["test.json"])
    for kind in _probe_order(types.tolist()):
        splits[kind] = test_rows[types == kind]
    if not np.any(types == "test_inferred_ood") and len(valid):
        splits["test_inferred_ood"] = rows(valid, *hops["valid.json"])

    facts = np.flatnonzero(tail >= 0)
    head, rel = np.divmod(facts, R)
    atomic = np.stack([head + entity_offset(), rel + relation_offset(E), tail[facts] + entity_offset(),
                       is_ood[facts] * F.HOP1_OOD + is_new[facts] * F.HOP1_NEW], axis=1)
    tr = splits["train"]
    n_inferred = int(np.sum((tr[:, FLAGS] & (F.INFERRED | F.AUGMENTED)) == F.INFERRED))
    n_augmented = int(np.sum((tr[:, FLAGS] & F.AUGMENTED) != 0))
    n_id = int(len(facts) - is_ood[facts].sum())
    config = {
        "task": "composition", "entities": E, "relations": R,
        "out_degree": int(np.bincount(head, minlength=E).max()) if len(facts) else 0,
        "ood_ratio": float(is_ood[facts].sum() / max(len(facts), 1)),
        "phi": n_inferred / max(n_id, 1),
        "regime": "natural" if n_augmented == 0 else "imported",
        "seed": None, "id_test_ratio": None,
        "probe_cap": max([3000] + [len(v) for k, v in splits.items() if k != "train"]),
        "values": None,
    }
    stats = {"atomic_facts": int(len(facts)), "id_atomic_facts": n_id,
             "ood_atomic_facts": int(is_ood[facts].sum()), "new_atomic_facts": int(is_new[facts].sum()),
             "train_inferred": n_inferred, "augmented": n_augmented,
             "phi_reached": n_inferred / max(n_id, 1)}
    return write_dataset(out, task="composition", kind="imported", config=config, seed=None,
                         vocab=composition_vocab(E, R), atomic=atomic, splits=splits, stats=stats,
                         extra={"source": {"format": "reference", "path": str(src.resolve())}},
                         force=force)
