"""Comparison-task queries and label-flipping counterfactuals for the lens and tracing.

A comparison query ``<r_a> <e1> <e2> -> <lt>|<eq>|<gt>`` (data/comparison.py) becomes a
:class:`~groklab.analysis.queries.Queries` batch with position labels ``attr, e1, e2`` (plus the
answer-slot / study positions), ``target`` = the label token and ``bridge`` = -1 (the task has
none). :class:`ValueTable` reads each entity's value of each attribute from the dataset's atomic
facts, so labels of counterfactuals are recomputed from the facts, never taken from the model.

Counterfactuals change one input token and, through the atomic facts, the label:
- ``e1``: some ``e1' != e1, e2`` whose value of ``a`` puts it on another side of e2's value;
- ``e2``: the same for e2;
- ``attr``: some ``a' != a`` under which e1 and e2 compare differently.
With ``match_kind`` every (entity, attribute) fact the counterfactual uses has the same OOD
status as the clean query's fact in its place (an ID query gets an ID counterfactual). Choice is
uniform among valid candidates with a seeded generator; queries without one are dropped.

``rule="wang"`` is Wang et al.'s rule for the comparison task (their
``causal_tracing_comparison.py``), so the two tools can be run on the same footing. With
``v1, v2`` the values of e1, e2 under ``a``:
- ``e1``: ``e1' != e1`` (e2 itself allowed) with an ID fact of ``a`` whose value is ``v2``
  when ``v1 != v2`` (the label becomes ``<eq>``) and ``v2 - 1`` or ``v2 + 1`` when
  ``v1 == v2`` (``<lt>`` / ``<gt>``): the nearest value that flips the label;
- ``e2``: the same with the roles swapped (``e2' != e2``, e1 allowed; values ``v1`` or
  ``v1 +- 1``);
- ``attr``: any attribute ``a' != a``, with no condition on the label. Their label tokens are
  per attribute (``<a_0> <a_1> <a_2>``), so there a' always changes the answer token; in
  groklab's shared ``<lt> <eq> <gt>`` the label under a' (computed from the facts) can equal the
  clean one: ``stats["label_unchanged"]`` counts those queries.
OOD status is not matched (Wang draws from the ID facts only, for any query).
"""

from __future__ import annotations

import numpy as np
import torch

from groklab.analysis.counterfactual import Counterfactuals, KnowledgeGraph
from groklab.analysis.queries import (EXTRA_LABELS, Queries, batched_answer_logits, layout_of,
                                     select_rows)
from groklab.analysis.tracing import keep_answered
from groklab.data.vocab import COMPARISON_LABELS
from groklab.errors import GroklabError, bad_value
from groklab.models import make_inputs

ROLES = ("attr", "e1", "e2")
CORRUPTIONS = ROLES
RULES = ("groklab", "wang")
TASK = "comparison"


def is_comparison(dataset) -> bool:
    return dataset.manifest.get("task", "composition") == TASK


class ValueTable:
    """Value token of (entity token, attribute token), the OOD bits of that fact, and the
    token ids of the values and of the labels ``<lt> <eq> <gt>``."""

    def __init__(self, dataset):
        if not is_comparison(dataset):
            raise bad_value("dataset.task", dataset.manifest.get("task"), TASK)
        # the comparison vocabulary keeps the composition layout for entities and attributes
        # (attributes are relation tokens), so the dense (h, r) -> t table reads it unchanged
        self.graph = KnowledgeGraph(dataset)
        vocab = list(dataset.vocab)
        self.labels = np.array([vocab.index(x) for x in COMPARISON_LABELS], dtype=np.int64)
        self.values = np.array([i for i, x in enumerate(vocab) if x.startswith("<v_")], dtype=np.int64)
        self.entities, self.attributes = self.graph.entities, self.graph.relations

    def value(self, e: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(value token, OOD bits) of each (e, a) pair."""
        return self.graph.lookup(np.asarray(e, np.int64), np.asarray(a, np.int64))

    def label(self, v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
        """Label token of comparing values v1 with v2 (value ids are in value order)."""
        return self.labels[np.sign(np.asarray(v1) - np.asarray(v2)) + 1]


def comparison_positions(n_positions: int, layout) -> list[str]:
    labels = list(ROLES) + EXTRA_LABELS[layout_of(layout)]
    return labels + [f"pos{i}" for i in range(len(labels), n_positions)]


def comparison_queries(dataset, split: str, layout, n: int | None = None, seed: int = 0,
                       rows: np.ndarray | None = None) -> Queries:
    """The comparison queries of ``split`` (a seeded sample of ``n``, or exactly ``rows``)."""
    if not is_comparison(dataset):
        raise bad_value("dataset.task", dataset.manifest.get("task"), TASK)
    layout = layout_of(layout)
    data = dataset.split(split)
    is_query = np.asarray(data.length) == 3
    if not is_query.any():
        raise GroklabError(f"split={split!r} has no comparison query (allowed: a split with "
                           "<r_a> <e1> <e2> queries, e.g. test_inferred_iid)")
    rows = select_rows(is_query, split, "comparison queries", n, seed, rows)
    tokens = np.asarray(data.tokens[rows], dtype=np.int64)
    input_ids, answer_pos = make_inputs(tokens, np.full(len(rows), 3), layout)
    return Queries(split, rows, tokens, np.asarray(data.flags[rows], dtype=np.int64), input_ids,
                   answer_pos, torch.as_tensor(np.asarray(data.target[rows]), dtype=torch.long),
                   torch.full((len(rows),), -1, dtype=torch.long),
                   comparison_positions(input_ids.shape[1], layout), layout)


def query_values(table: ValueTable, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
    """(v1, v2): e1's and e2's value tokens of the queried attribute."""
    a, e1, e2 = (queries.tokens[:, i] for i in range(3))
    return table.value(e1, a)[0], table.value(e2, a)[0]


def _candidates(table: ValueTable, tokens: np.ndarray, label: np.ndarray, corrupt: str,
                match_kind: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate tokens (C,), valid (n, C), label' (n, C)) for the queries ``tokens`` (n, 3)."""
    a, e1, e2 = (tokens[:, i][:, None] for i in range(3))
    (v1, k1), (v2, k2) = table.value(e1, a), table.value(e2, a)
    if corrupt == "attr":
        cand = table.attributes
        (c1, j1), (c2, j2) = table.value(e1, cand[None, :]), table.value(e2, cand[None, :])
        valid = (cand[None, :] != a) & (c1 >= 0) & (c2 >= 0)
        same_kind = (j1 == k1) & (j2 == k2)
    else:
        cand = table.entities
        c = cand[None, :]
        cv, ck = table.value(np.broadcast_to(c, (len(a), len(cand))), np.broadcast_to(a, (len(a), len(cand))))
        # e1 == e2 is no query of the task (ordered pairs of distinct entities)
        valid = (c != e1) & (c != e2) & (cv >= 0)
        if corrupt == "e1":
            c1, c2, same_kind = cv, np.broadcast_to(v2, cv.shape), ck == k1
        else:
            c1, c2, same_kind = np.broadcast_to(v1, cv.shape), cv, ck == k2
    new_label = table.label(c1, c2)
    valid &= new_label != label[:, None]
    if match_kind:
        valid &= same_kind
    return cand, valid, new_label


def _wang_candidates(table: ValueTable, tokens: np.ndarray, label: np.ndarray, corrupt: str,
                     match_kind: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wang et al.'s candidates (module docstring), as :func:`_candidates`; ``match_kind``
    does not apply."""
    a, e1, e2 = (tokens[:, i][:, None] for i in range(3))
    v1, v2 = table.value(e1, a)[0], table.value(e2, a)[0]
    if corrupt == "attr":
        cand = table.attributes
        c1, c2 = table.value(e1, cand[None, :])[0], table.value(e2, cand[None, :])[0]
        valid = (cand[None, :] != a) & table.graph.id_fact[:, cand].any(0)[None, :]
        valid = np.broadcast_to(valid, c1.shape)
        defined = (c1 >= 0) & (c2 >= 0)
        new_label = np.where(defined, table.label(np.where(defined, c1, 0),
                                                  np.where(defined, c2, 0)), -1)
        return cand, valid, new_label
    cand = table.entities
    shape = (len(a), len(cand))
    c = np.broadcast_to(cand[None, :], shape)
    cv = table.value(c, np.broadcast_to(a, shape))[0]
    own, other, old = (v1, v2, e1) if corrupt == "e1" else (v2, v1, e2)
    # value ranks (value tokens are in value order): "v +- 1" is the neighbouring value
    rank = lambda v: np.searchsorted(table.values, v)  # noqa: E731
    want_equal = own != other
    near = np.where(want_equal, cv == other, np.abs(rank(cv) - rank(other)) == 1)
    valid = (c != old) & table.graph.id_fact[c, np.broadcast_to(a, shape)] & near
    c1, c2 = (cv, np.broadcast_to(v2, shape)) if corrupt == "e1" else (np.broadcast_to(v1, shape), cv)
    return cand, valid, table.label(c1, c2)


def build_comparison_counterfactuals(dataset, queries: Queries, corrupt: str, seed: int = 0,
                                     match_kind: bool = True,
                                     table: ValueTable | None = None,
                                     rule: str = "groklab") -> Counterfactuals:
    """One label-flipping counterfactual per query (module docstring; ``rule="wang"``:
    Wang et al.'s candidates); counts in ``stats``."""
    if corrupt not in CORRUPTIONS:
        raise bad_value("corrupt", corrupt, ", ".join(CORRUPTIONS) + " for the comparison task")
    if rule not in RULES:
        raise bad_value("cf_rule", rule, " | ".join(RULES))
    pick_from = _candidates if rule == "groklab" else _wang_candidates
    table = table or ValueTable(dataset)
    rng = np.random.default_rng([seed, CORRUPTIONS.index(corrupt), 11])
    n = len(queries)
    keep = np.zeros(n, dtype=bool)
    pick = np.zeros(n, dtype=np.int64)
    label2 = np.zeros(n, dtype=np.int64)
    target = queries.target.numpy()
    for lo in range(0, n, 512):  # bounded memory: (512, candidates) arrays
        sl = slice(lo, lo + 512)
        cand, valid, new_label = pick_from(table, queries.tokens[sl], target[sl], corrupt,
                                           match_kind)
        best = np.where(valid, rng.random(valid.shape), -1.0).argmax(1)
        rows = np.arange(len(best))
        keep[sl], pick[sl], label2[sl] = valid.any(1), cand[best], new_label[rows, best]
    rows = np.nonzero(keep)[0]
    tokens = queries.tokens[rows].copy()
    tokens[:, ROLES.index(corrupt)] = pick[rows]
    clean = queries.subset(rows)
    corrupted = clean.with_tokens(tokens, label2[rows], np.full(len(rows), -1))
    stats = {"queries": n, "with_counterfactual": int(keep.sum()),
             "match_kind": match_kind if rule == "groklab" else False, "rule": rule,
             "undefined_answer": int((label2[rows] < 0).sum()),
             "label_unchanged": int((label2[rows] == target[rows]).sum())}
    return Counterfactuals(corrupt, clean, corrupted, stats)


def majority_of(target) -> float | None:
    """Accuracy of always answering the most common label of ``target``."""
    target = np.asarray(target)
    return float(np.bincount(target).max() / len(target)) if len(target) else None


def prepare_comparison_counterfactuals(model, dataset, split: str, corrupt: str, n: int = 300,
                                       seed: int = 0, require_correct: bool = True,
                                       rows=None, rule: str = "groklab") -> Counterfactuals:
    """Counterfactuals for ``n`` sampled queries of ``split`` (or ``rows``) under ``rule``;
    with ``require_correct`` only those the model answers right clean and corrupted. ``stats``
    also holds the clean accuracy on the sample and its majority-class rate."""
    queries = comparison_queries(dataset, split, model.layout, n=n, seed=seed, rows=rows)
    pred = batched_answer_logits(model, queries.input_ids, queries.answer_pos).argmax(-1)
    cf = build_comparison_counterfactuals(dataset, queries, corrupt, seed=seed, rule=rule)
    cf.stats.update({"clean_accuracy": float((pred == queries.target).float().mean()),
                     "majority": majority_of(queries.target)})
    return keep_answered([model], cf, split, require_correct)
