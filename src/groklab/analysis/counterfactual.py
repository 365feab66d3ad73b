"""Counterfactual queries for causal tracing: change exactly one input token, change the answer.

For a clean query ``h r1 r2 -> t`` (bridge ``b``) and the corrupted role:
- ``h``:  pick ``h' != h`` with ``(h', r1) -> b'`` and ``(b', r2) -> t'``, ``t' != t``;
- ``r1``: pick ``r1' != r1`` with ``(h, r1') -> b'`` and ``(b', r2) -> t'``, ``t' != t``;
- ``r2``: pick ``r2' != r2`` with ``(b, r2') -> t'``, ``t' != t`` (bridge unchanged).
The true answer ``t'`` is computed through the knowledge graph (``dataset.atomic``). With
``match_kind`` each hop of the counterfactual has the same OOD/new status as the clean
query's hop, so an ID query gets an ID counterfactual. Candidates are drawn uniformly with a
seeded generator; queries without any valid candidate are dropped (and counted).

``rule="wang"`` is Wang et al.'s rule (their ``causal_tracing_composition.py``), offered so the
two tools can be run on the same footing: ``h'`` is any entity with an ID fact whose chain
``(h', r1) -> b' -> (b', r2)`` does not give ``t`` (undefined chains and OOD hops included),
``r1'`` any relation of an ID fact of ``h`` whose chain does not give ``t``, ``r2'`` any
relation of an ID fact of ``b`` with a tail other than ``t``. Where the chain is undefined,
``t' = -1`` (and ``b' = -1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groklab.analysis.queries import Queries
from groklab.data.flags import HOP1_NEW, HOP1_OOD, HOP2_NEW, HOP2_OOD
from groklab.data.vocab import entity_offset, relation_offset
from groklab.errors import bad_value

CORRUPTIONS = ("h", "r1", "r2")
RULES = ("groklab", "wang")
_KIND_BITS = HOP1_OOD | HOP1_NEW


@dataclass
class Counterfactuals:
    """Clean queries and their one-token counterfactuals, row-aligned."""

    corrupt: str
    clean: Queries
    corrupted: Queries   # target = t', bridge = b'
    stats: dict


class KnowledgeGraph:
    """Dense (h, r) -> t lookup of a dataset's atomic facts, with each fact's kind bits."""

    def __init__(self, dataset):
        atomic = np.asarray(dataset.atomic, dtype=np.int64)
        v = dataset.vocab_size
        self.tail = np.full((v, v), -1, dtype=np.int32)
        self.kind = np.zeros((v, v), dtype=np.int8)
        self.tail[atomic[:, 0], atomic[:, 1]] = atomic[:, 2]
        self.kind[atomic[:, 0], atomic[:, 1]] = atomic[:, 3] & _KIND_BITS
        # the composition vocabulary's layout (data.vocab): specials, entities, relations
        n_ent, n_rel = int(dataset.config["entities"]), int(dataset.config["relations"])
        first_rel = relation_offset(n_ent)
        self.entities = np.arange(entity_offset(), first_rel)
        self.relations = np.arange(first_rel, first_rel + n_rel)
        assert len(self.entities) == n_ent
        # (h, r) is an ID fact: defined, neither OOD nor new (Wang's ``h2rt_train``)
        self.id_fact = (self.tail >= 0) & (self.kind == 0)

    def lookup(self, h: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tails (-1 where no fact) and kind bits of (h, r) pairs; h may be -1."""
        ok = h >= 0
        hs = np.where(ok, h, 0)
        return (np.where(ok, self.tail[hs, r], -1).astype(np.int64),
                np.where(ok, self.kind[hs, r], -1).astype(np.int64))


def _hop_kinds(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OOD/new bits of each hop, expressed as an atomic fact's own bits."""
    hop1 = flags & _KIND_BITS
    hop2 = ((flags & HOP2_OOD) // HOP2_OOD) * HOP1_OOD + ((flags & HOP2_NEW) // HOP2_NEW) * HOP1_NEW
    return hop1, hop2


def build_counterfactuals(dataset, queries: Queries, corrupt: str, seed: int = 0,
                          match_kind: bool = True, graph: KnowledgeGraph | None = None,
                          rule: str = "groklab") -> Counterfactuals:
    """One counterfactual per query (vectorised over queries x candidates)."""
    if corrupt not in CORRUPTIONS:
        raise bad_value("corrupt", corrupt, ", ".join(CORRUPTIONS))
    if rule not in RULES:
        raise bad_value("counterfactual rule", rule, " | ".join(RULES))
    g = graph or KnowledgeGraph(dataset)
    cand = g.entities if corrupt == "h" else g.relations
    rng = np.random.default_rng([seed, CORRUPTIONS.index(corrupt), 7])
    n = len(queries)
    keep = np.zeros(n, dtype=bool)
    pick = np.zeros(n, dtype=np.int64)
    t2_all = np.zeros(n, dtype=np.int64)
    b2_all = np.zeros(n, dtype=np.int64)
    for lo in range(0, n, 512):  # bounded memory: (512, candidates) arrays
        sl = slice(lo, lo + 512)
        pick_from = _candidates if rule == "groklab" else _wang_candidates
        valid, b2, t2 = pick_from(g, queries, sl, corrupt, cand, match_kind)
        score = np.where(valid, rng.random(valid.shape), -1.0)
        best = score.argmax(1)
        rows = np.arange(len(best))
        keep[sl], pick[sl] = valid.any(1), best
        t2_all[sl], b2_all[sl] = t2[rows, best], b2[rows, best]
    rows = np.nonzero(keep)[0]
    tokens = queries.tokens[rows].copy()
    tokens[:, CORRUPTIONS.index(corrupt)] = cand[pick[rows]]
    clean = queries.subset(rows)
    corrupted = clean.with_tokens(tokens, t2_all[rows], b2_all[rows])
    undefined = int((t2_all[rows] < 0).sum())
    stats = {"queries": len(queries), "with_counterfactual": int(keep.sum()),
             "match_kind": match_kind if rule == "groklab" else False, "rule": rule,
             "undefined_answer": undefined}
    return Counterfactuals(corrupt, clean, corrupted, stats)


def _candidates(g: KnowledgeGraph, queries: Queries, sl: slice, corrupt: str, cand: np.ndarray,
                match_kind: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid, b', t') of every candidate replacement for the queries in ``sl``: (n, C) each."""
    h, r1, r2 = (queries.tokens[sl, i][:, None] for i in range(3))
    t = queries.target.numpy()[sl, None]
    b = queries.bridge.numpy()[sl, None]
    k1, k2 = (k[sl, None] for k in _hop_kinds(queries.flags))
    shape = (len(h), len(cand))
    c = np.broadcast_to(cand[None, :], shape)
    if corrupt == "h":
        b2, kind1 = g.lookup(c, np.broadcast_to(r1, shape))
        t2, kind2 = g.lookup(b2, np.broadcast_to(r2, shape))
        valid = (c != h) & (b2 >= 0) & (t2 >= 0)
    elif corrupt == "r1":
        b2, kind1 = g.lookup(np.broadcast_to(h, shape), c)
        t2, kind2 = g.lookup(b2, np.broadcast_to(r2, shape))
        valid = (c != r1) & (b2 >= 0) & (t2 >= 0)
    else:
        b2 = np.broadcast_to(b, shape)
        kind1 = np.broadcast_to(k1, shape)
        t2, kind2 = g.lookup(b2, c)
        valid = (c != r2) & (t2 >= 0)
    valid &= t2 != t
    if match_kind:
        valid &= (kind1 == k1) & (kind2 == k2)
    return valid, b2, t2


def _wang_candidates(g: KnowledgeGraph, queries: Queries, sl: slice, corrupt: str,
                     cand: np.ndarray, match_kind: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wang et al.'s candidates (module docstring); ``match_kind`` does not apply."""
    h, r1, r2 = (queries.tokens[sl, i][:, None] for i in range(3))
    t = queries.target.numpy()[sl, None]
    b = queries.bridge.numpy()[sl, None]
    shape = (len(h), len(cand))
    c = np.broadcast_to(cand[None, :], shape)
    if corrupt == "h":
        has_id_fact = g.id_fact[cand].any(1)[None, :]
        b2, _ = g.lookup(c, np.broadcast_to(r1, shape))
        t2, _ = g.lookup(b2, np.broadcast_to(r2, shape))
        valid = np.broadcast_to(has_id_fact, shape) & (t2 != t)
    elif corrupt == "r1":
        b2, _ = g.lookup(np.broadcast_to(h, shape), c)
        t2, _ = g.lookup(b2, np.broadcast_to(r2, shape))
        valid = g.id_fact[np.broadcast_to(h, shape), c] & (t2 != t)
    else:
        b2 = np.broadcast_to(b, shape)
        t2, _ = g.lookup(b2, c)
        valid = g.id_fact[b2, c] & (t2 != t)
    b2 = np.where(b2 >= 0, b2, -1)
    t2 = np.where((b2 >= 0) & (t2 >= 0), t2, -1)
    return valid, b2, t2
