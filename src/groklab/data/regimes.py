"""Augmentation regimes: fact-level controlled exposure of OOD facts (study.md section 2).

U1 = OOD facts used as hop 1 by some OOD test query, U2 = those used as hop 2. Exposing a fact
of U1 adds up to k training queries whose hop 1 is that fact and whose hop 2 is ID; exposing a
fact of U2 adds up to k queries with an ID hop 1. These chains have exactly one OOD hop, so they
were never in a test set. A regime exposes round(ratio * |U|) facts of each set; (ratio, k) per
hop come from ``REGIMES`` or, for regime ``custom``, from ``DataConfig.exposure()``.

Streams: the exposed facts are a prefix of one seeded permutation of U, and the k chains of a
fact are those with the smallest seeded random keys, so additions nest in both ratio and k:
both_half's are a subset of both_full's, first_hop's equal both_full's hop-1 part, and a custom
(ratio, k) with the named regime's values gives exactly its additions.
"""

from __future__ import annotations

import numpy as np

from groklab.data import rng as streams
from groklab.data.config import REGIMES


def _lowest_k_per_group(group: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the (at most) k items with the smallest keys within each group."""
    order = np.lexsort((keys, group))
    g = group[order]
    new_group = np.concatenate([[True], g[1:] != g[:-1]]) if len(g) else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(g)), 0))
    rank = np.arange(len(g)) - group_start
    return np.sort(order[rank < k])


def _expose(ood_hop: np.ndarray, candidates: np.ndarray, used: np.ndarray, ratio: float, k: int,
            n_facts: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Chain positions added by exposing round(ratio*|used|) facts of ``used``, k chains each.

    ``ood_hop[c]`` is the OOD fact of candidate chain c (candidates: chains with exactly that
    hop OOD). Random numbers are drawn the same way whatever ratio and k are.
    """
    perm = rng.permutation(len(used))
    keys = rng.random(len(candidates))
    n_exposed = int(round(ratio * len(used)))
    if n_exposed == 0 or k == 0:
        return np.zeros(0, np.int64), n_exposed
    exposed = np.zeros(n_facts, bool)
    exposed[used[perm[:n_exposed]]] = True
    sel = np.flatnonzero(exposed[ood_hop[candidates]])
    keep = _lowest_k_per_group(ood_hop[candidates[sel]], keys[sel], k)
    return candidates[sel[keep]], n_exposed


def regime_additions(hop1: np.ndarray, hop2: np.ndarray, is_ood: np.ndarray, regime: str,
                     seed: int, exposure: tuple | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Chain positions (into hop1/hop2) added to training by ``regime``, plus statistics.

    ``exposure`` = (hop-1 ratio, hop-1 k, hop-2 ratio, hop-2 k); default ``REGIMES[regime]``.
    Returns (hop-1 additions, hop-2 additions, stats) with sorted chain positions.
    """
    ratio1, k1, ratio2, k2 = REGIMES[regime] if exposure is None else exposure
    o1, o2 = is_ood[hop1], is_ood[hop2]
    ood_test = o1 & o2
    u1 = np.unique(hop1[ood_test])
    u2 = np.unique(hop2[ood_test])
    add1, n1 = _expose(hop1, np.flatnonzero(o1 & ~o2), u1, ratio1, k1, len(is_ood),
                       streams.stream(seed, streams.HOP1_EXPOSURE))
    add2, n2 = _expose(hop2, np.flatnonzero(~o1 & o2), u2, ratio2, k2, len(is_ood),
                       streams.stream(seed, streams.HOP2_EXPOSURE))
    stats = {
        "regime": regime,
        "hop1_ratio": ratio1, "hop1_k": k1, "hop2_ratio": ratio2, "hop2_k": k2,
        "u1_facts": int(len(u1)), "u2_facts": int(len(u2)),
        "hop1_exposed_facts": n1, "hop2_exposed_facts": n2,
        "added_hop1": int(len(add1)), "added_hop2": int(len(add2)),
    }
    return add1, add2, stats
