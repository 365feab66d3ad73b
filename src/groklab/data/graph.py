"""The knowledge graph of the composition task, its two-hop chains, and their token rows.

Facts are kept as index arrays (entity / relation indices, not token ids), sorted by
(head, relation); ``fact_of[h, r]`` is the fact index or -1. A chain is a pair of fact indices
(i, j) with ``tail[i] == head[j]``: query ``h r1 r2 -> t`` with bridge ``b = tail[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groklab.data import flags as F
from groklab.data.rows import ATOMIC_LENGTH, N_COLUMNS, TWO_HOP_LENGTH
from groklab.data.vocab import PAD, entity_offset, relation_offset



@dataclass
class Graph:
    entities: int
    relations: int
    head: np.ndarray  # (F,) int64
    rel: np.ndarray   # (F,) int64
    tail: np.ndarray  # (F,) int64
    is_ood: np.ndarray  # (F,) bool
    is_new: np.ndarray  # (F,) bool

    @property
    def n_facts(self) -> int:
        return len(self.head)

    def fact_table(self) -> np.ndarray:
        """(E, R) int64: fact index of (h, r), -1 where the pair is unused."""
        table = np.full((self.entities, self.relations), -1, dtype=np.int64)
        table[self.head, self.rel] = np.arange(self.n_facts)
        return table

    def atomic_array(self) -> np.ndarray:
        """(F, 4) int32 token ids h, r, t and flags: the file ``atomic.npy``."""
        e0, r0 = entity_offset(), relation_offset(self.entities)
        return np.stack([self.head + e0, self.rel + r0,
                         self.tail + e0, self.atomic_flags(np.arange(self.n_facts))],
                        axis=1).astype(np.int32)

    def atomic_flags(self, facts: np.ndarray) -> np.ndarray:
        return self.is_ood[facts] * F.HOP1_OOD + self.is_new[facts] * F.HOP1_NEW

    def atomic_rows(self, facts: np.ndarray) -> np.ndarray:
        """Split rows (N, 7) of the atomic items ``h r -> t`` for the given fact indices."""
        facts = np.asarray(facts, dtype=np.int64)
        n = len(facts)
        e0, r0 = entity_offset(), relation_offset(self.entities)
        return np.stack([
            self.head[facts] + e0,
            self.rel[facts] + r0,
            np.full(n, PAD),
            np.full(n, ATOMIC_LENGTH),
            self.tail[facts] + e0,
            np.full(n, -1),
            self.atomic_flags(facts),
        ], axis=1).astype(np.int32).reshape(n, N_COLUMNS)

    def chain_rows(self, hop1: np.ndarray, hop2: np.ndarray, extra_flags: int = 0) -> np.ndarray:
        """Split rows (N, 7) of the two-hop queries of chains (hop1[k], hop2[k])."""
        hop1 = np.asarray(hop1, dtype=np.int64)
        hop2 = np.asarray(hop2, dtype=np.int64)
        n = len(hop1)
        flags = ((F.INFERRED | extra_flags)
                 + self.is_ood[hop1] * F.HOP1_OOD + self.is_ood[hop2] * F.HOP2_OOD
                 + self.is_new[hop1] * F.HOP1_NEW + self.is_new[hop2] * F.HOP2_NEW)
        e0, r0 = entity_offset(), relation_offset(self.entities)
        return np.stack([
            self.head[hop1] + e0,
            self.rel[hop1] + r0,
            self.rel[hop2] + r0,
            np.full(n, TWO_HOP_LENGTH),
            self.tail[hop2] + e0,
            self.tail[hop1] + e0,
            np.broadcast_to(flags, (n,)),
        ], axis=1).astype(np.int32).reshape(n, N_COLUMNS)


def make_graph(entities: int, relations: int, out_degree: int, rng: np.random.Generator) -> Graph:
    """Each entity gets ``out_degree`` distinct random relations, each to a uniform random tail."""
    # The first out_degree columns of a row-wise random permutation = a uniform subset per row.
    order = np.argsort(rng.random((entities, relations)), axis=1, kind="stable")
    rel = np.sort(order[:, :out_degree], axis=1).reshape(-1)
    head = np.repeat(np.arange(entities), out_degree)
    tail = rng.integers(0, entities, size=entities * out_degree)
    n = len(head)
    return Graph(entities, relations, head.astype(np.int64), rel.astype(np.int64),
                 tail.astype(np.int64), np.zeros(n, bool), np.zeros(n, bool))


def facts_by_head(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """CSR index over heads: facts of entity e are ``start[e] : start[e] + count[e]``.

    Requires facts sorted by head (always true for graphs built here).
    """
    count = np.bincount(graph.head, minlength=graph.entities)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return start, count


def chains_from(graph: Graph, hop1: np.ndarray, hop2_mask: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """All chains whose first fact is in ``hop1`` (optionally second fact in ``hop2_mask``).

    Returns (hop1, hop2) fact-index arrays, ordered by hop1 position then hop2 fact index.
    """
    hop1 = np.asarray(hop1, dtype=np.int64)
    start, count = facts_by_head(graph)
    n = count[graph.tail[hop1]]
    first = np.repeat(hop1, n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    second = start[graph.tail[first]] + offset
    if hop2_mask is not None:
        keep = hop2_mask[second]
        first, second = first[keep], second[keep]
    return first, second


def all_chains(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Every chain of the graph as (hop1, hop2), ordered by (h, r1, r2)."""
    return chains_from(graph, np.arange(graph.n_facts))
