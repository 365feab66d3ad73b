"""Two-hop queries as model input, shared by the lens, tracing, compare and transfer tools.

A :class:`Queries` batch holds the model input of N two-hop queries ``h r1 r2`` together
with their answer ``t``, bridge ``b`` and the position labels of the input layout
(``h, r1, r2`` for decoder/looped, ``h, r1, r2, mask`` for the recursive model's answer-slot
format, ``h, r1, r2, ans, end`` for the study format; see models/layout.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from groklab.errors import GroklabError, bad_value, check_range
from groklab.models import make_inputs

QUERY_ROLES = ("h", "r1", "r2")
EXTRA_LABELS = {"causal": [], "answer_slot": ["mask"], "study": ["ans", "end"]}


@dataclass
class Queries:
    """N two-hop queries of one split, ready for a model (tensors on CPU)."""

    split: str
    index: np.ndarray          # (N,) row numbers in the split
    tokens: np.ndarray         # (N, 3) h, r1, r2 token ids
    flags: np.ndarray          # (N,) flag bits of the split rows
    input_ids: torch.Tensor    # (N, T) int64
    answer_pos: torch.Tensor   # (N,) int64
    target: torch.Tensor       # (N,) answer token t
    bridge: torch.Tensor       # (N,) bridge token b
    positions: list[str]       # T labels, e.g. ["h", "r1", "r2"] or [..., "mask"]
    layout: str = "causal"     # models/layout.py

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def subset(self, idx) -> "Queries":
        """The queries at ``idx`` (indices or boolean mask over the N queries)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        t = torch.as_tensor(idx, dtype=torch.long)
        return Queries(self.split, self.index[idx], self.tokens[idx], self.flags[idx],
                       self.input_ids[t], self.answer_pos[t], self.target[t], self.bridge[t],
                       list(self.positions), self.layout)

    def with_tokens(self, tokens: np.ndarray, target, bridge) -> "Queries":
        """Same queries with other input tokens/answers (for counterfactuals)."""
        length = np.full(len(tokens), 3)
        input_ids, answer_pos = make_inputs(tokens, length, self.layout)
        return Queries(self.split, self.index.copy(), np.asarray(tokens, dtype=np.int64),
                       self.flags.copy(), input_ids, answer_pos,
                       torch.as_tensor(np.asarray(target), dtype=torch.long),
                       torch.as_tensor(np.asarray(bridge), dtype=torch.long),
                       list(self.positions), self.layout)

    @property
    def answer_slot(self) -> bool:
        return self.layout != "causal"


def layout_of(layout) -> str:
    """A layout name; ``True`` / ``False`` stand for the older answer_slot flag."""
    return {True: "answer_slot", False: "causal"}.get(layout, layout) if isinstance(layout, bool) \
        else layout


def position_labels(n_positions: int, layout) -> list[str]:
    """Labels of the input positions of a two-hop query."""
    labels = list(QUERY_ROLES) + EXTRA_LABELS[layout_of(layout)]
    return labels + [f"pos{i}" for i in range(len(labels), n_positions)]


def select_rows(is_query: np.ndarray, split: str, what: str, n: int | None = None,
                seed: int = 0, rows=None) -> np.ndarray:
    """Row numbers of the queries of ``split`` that ``is_query`` marks: exactly ``rows`` after
    checking that each names one (a one-line error naming the first bad row; ``what`` names the
    queries, e.g. "two-hop queries"), else all of them or a seeded sample of ``n``."""
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        bad = rows[(rows < 0) | (rows >= len(is_query))]
        if len(bad) or not is_query[rows].all():
            wrong = bad[0] if len(bad) else rows[~is_query[rows]][0]
            raise bad_value("queries", int(wrong), f"row numbers of {what} in {split} "
                            f"(0..{len(is_query) - 1})")
        if len(rows) == 0:
            raise bad_value("queries", "[]", f"at least one row number of {split}")
        return rows
    rows = np.nonzero(is_query)[0]
    if n is not None:
        check_range("n", n, 1)
        if n < len(rows):
            rows = np.sort(np.random.default_rng([seed, 4]).choice(rows, size=n, replace=False))
    return rows


def two_hop_queries(dataset, split: str, layout, n: int | None = None,
                    seed: int = 0, rows: np.ndarray | None = None) -> Queries:
    """The two-hop queries (length 3) of ``split`` for a model of ``layout`` (its
    ``model.layout``); a seeded sample of ``n`` if given, or exactly the split ``rows`` given.

    Raises GroklabError if the split has no two-hop query or the dataset is not a
    composition dataset.
    """
    task = dataset.manifest.get("task", "composition")
    if task != "composition":
        raise bad_value("dataset.task", task, "composition (this instrument needs bridges; lens "
                        "and trace also take comparison runs)")
    layout = layout_of(layout)
    data = dataset.split(split)
    two_hop = (np.asarray(data.length) == 3) & (np.asarray(data.bridge) >= 0)
    if not two_hop.any():
        raise GroklabError(f"split={split!r} has no two-hop query (allowed: a split with "
                           "h r1 r2 queries, e.g. test_inferred_iid)")
    rows = select_rows(two_hop, split, "two-hop queries", n, seed, rows)
    tokens = np.asarray(data.tokens[rows], dtype=np.int64)
    input_ids, answer_pos = make_inputs(tokens, np.full(len(rows), 3), layout)
    return Queries(split, rows, tokens, np.asarray(data.flags[rows], dtype=np.int64),
                   input_ids, answer_pos,
                   torch.as_tensor(np.asarray(data.target[rows]), dtype=torch.long),
                   torch.as_tensor(np.asarray(data.bridge[rows]), dtype=torch.long),
                   position_labels(input_ids.shape[1], layout), layout)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def eval_mode(model):
    """Run ``model`` in eval mode without gradients; restore its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def batched_answer_logits(model, input_ids: torch.Tensor, answer_pos: torch.Tensor,
                          batch_size: int = 4096) -> torch.Tensor:
    """Answer-position logits (N, V) as float32 on CPU, computed in batches."""
    device = model_device(model)
    out = []
    with eval_mode(model):
        for lo in range(0, input_ids.shape[0], batch_size):
            ids = input_ids[lo:lo + batch_size].to(device)
            pos = answer_pos[lo:lo + batch_size].to(device)
            logits = model(ids)
            out.append(logits[torch.arange(ids.shape[0], device=device), pos].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.vocab_size)


def read_query_rows(path, dataset, split: str) -> np.ndarray:
    """Row numbers of ``split`` named by a query file, so two tools trace the same queries.

    The file is JSON (a list of row numbers, or of token-string lists such as ``[h, r1, r2]``)
    or text, one query per line: a row number, or a query's tokens such as ``<e_3> <r_1> <r_7>``
    (a k-hop query: ``h r1 .. rk``; a comparison query: ``attr e1 e2``). Token items are matched
    to the split's queries; one that is not there is a GroklabError. Row numbers are returned
    as given: the instrument that reads them checks them against its own kind of query.
    """
    items = _query_items(path)
    index = _query_index(dataset.split(split))
    token_id = {tok: i for i, tok in enumerate(dataset.vocab)}
    rows = []
    for item in items:
        if isinstance(item, (int, str)) and str(item).lstrip("-").isdigit():
            rows.append(int(item))
            continue
        if not (isinstance(item, (list, tuple)) and len(item) >= 3):
            raise bad_value("queries item", item, "a row number or the tokens of one query "
                            "(h r1 .. rk; comparison: attr e1 e2)")
        ids = tuple(token_id.get(str(tok), -1) for tok in item)
        if ids not in index:
            raise bad_value("queries item", " ".join(map(str, item)), f"a query of split {split}")
        rows.append(index[ids])
    return np.asarray(rows, dtype=np.int64)


def _query_items(path) -> list:
    """The items of a query file (JSON list, or one row number / token list per line)."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GroklabError(f"queries={str(path)!r} is invalid (allowed: a readable UTF-8 file; "
                           f"{err.__class__.__name__})") from None
    try:
        items = json.loads(text)
    except ValueError:
        items = [line.split() if len(line.split()) > 1 else line.strip()
                 for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not isinstance(items, list) or not items:
        raise bad_value("queries", str(path), "a non-empty list of row numbers or query tokens")
    return items


def _query_index(data) -> dict[tuple, int]:
    """Token tuple -> first row number of every query (3 or more tokens) of a split; a row of a
    k-hop dataset is keyed by its own tokens, without the padding after them."""
    tokens, length = np.asarray(data.tokens), np.asarray(data.length)
    index: dict[tuple, int] = {}
    for i in np.nonzero(length >= 3)[0].tolist():
        index.setdefault(tuple(int(x) for x in tokens[i, :length[i]]), i)
    return index
