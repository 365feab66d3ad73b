"""The new-knowledge (transfer) set: new atomic facts on a trained graph, plus replay.

From a composition dataset SRC: ``new_facts`` new atomic facts on existing entities and
relations, each on an (h, r) pair the source graph does not use (so (h, r) -> t stays a
function and the vocabulary is unchanged); a ``chain_fraction`` of them get as tail an entity
that itself heads a new fact, so new+new compositions exist. Replay: atomic facts of SRC's
training data taken in seeded random order, each together with every training composition
that uses it (as hop 1 or hop 2), as many as fit in ``replay`` items. Finetune train = replay
+ new atomic facts, with no composition that uses a new fact. Probes: ``atomic_new``,
``new_old`` (hop 1 new, hop 2 old ID), ``old_new`` (hop 1 old ID, hop 2 new), ``new_new``,
``replay_atomic``, ``replay_inferred``, and ``old_atomic`` / ``old_inferred``: SRC's training
items that are not replayed, i.e. what finetuning may forget (the replay probes cannot show it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from groklab.data import flags as F
from groklab.data import rng as streams
from groklab.data.dataset import MANIFEST_NAME, Dataset, check_output, load_dataset, write_dataset
from groklab.data.graph import Graph, chains_from
from groklab.data.splits import cap_sample
from groklab.data.rows import ATOMIC_LENGTH, BRIDGE, IN0, IN1, IN2, LENGTH, TWO_HOP_LENGTH
from groklab.data.vocab import entity_offset, relation_offset
from groklab.errors import bad_value, check_range
from groklab.fsutil import sha256_file

INJECT_PROBES = ("atomic_new", "new_old", "old_new", "new_new", "replay_atomic", "replay_inferred",
                 "old_atomic", "old_inferred")


def graph_of(ds: Dataset) -> Graph:
    """The composition graph stored in ``ds.atomic`` (facts sorted by (h, r))."""
    E, R = int(ds.config["entities"]), int(ds.config["relations"])
    a = ds.atomic.astype(np.int64)
    e0, r0 = entity_offset(), relation_offset(E)
    head, rel, tail = a[:, 0] - e0, a[:, 1] - r0, a[:, 2] - e0  # atomic.npy: h, r, t, flags
    order = np.argsort(head * R + rel, kind="stable")
    fl = a[order, 3]
    return Graph(E, R, head[order], rel[order], tail[order],
                 (fl & F.HOP1_OOD) != 0, (fl & F.HOP1_NEW) != 0)


def _new_facts(graph: Graph, n_new: int, chain_fraction: float, seed: int) -> Graph:
    """The graph extended by ``n_new`` facts on unused (h, r) pairs."""
    E, R = graph.entities, graph.relations
    used = np.zeros(E * R, bool)
    used[graph.head * R + graph.rel] = True
    unused = np.flatnonzero(~used)
    if len(unused) == 0:
        raise bad_value("new_facts", n_new, "none: the source graph uses every (h, r) pair "
                        f"(out_degree {graph.n_facts // E} of {R} relations); make the source "
                        "with --out-degree < --relations")
    if n_new < 1 or n_new > len(unused):
        raise bad_value("new_facts", n_new, f"[1, {len(unused)}]: the source graph has "
                        f"{len(unused)} unused (h, r) pairs")
    pairs = np.sort(streams.stream(seed, streams.INJECT, 0).choice(unused, n_new, replace=False))
    head, rel = np.divmod(pairs, R)
    rng = streams.stream(seed, streams.INJECT, 1)
    tail = rng.integers(0, E, size=n_new)
    chained = rng.permutation(n_new)[: int(round(chain_fraction * n_new))]
    heads_of_new = np.unique(head)
    tail[chained] = heads_of_new[rng.integers(0, len(heads_of_new), size=len(chained))]

    all_head = np.concatenate([graph.head, head])
    all_rel = np.concatenate([graph.rel, rel])
    order = np.argsort(all_head * R + all_rel, kind="stable")
    return Graph(E, R, all_head[order], all_rel[order],
                 np.concatenate([graph.tail, tail])[order],
                 np.concatenate([graph.is_ood, np.zeros(n_new, bool)])[order],
                 np.concatenate([np.zeros(graph.n_facts, bool), np.ones(n_new, bool)])[order])


def _item_facts(graph: Graph, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fact indices (hop1, hop2) of split rows; hop2 is -1 for atomic items."""
    E = graph.entities
    table = graph.fact_table()
    e0, r0 = entity_offset(), relation_offset(E)
    h = rows[:, IN0].astype(np.int64) - e0
    r1 = rows[:, IN1].astype(np.int64) - r0
    r2 = rows[:, IN2].astype(np.int64) - r0
    b = rows[:, BRIDGE].astype(np.int64) - e0
    hop1 = table[h, r1]
    two = rows[:, LENGTH] == TWO_HOP_LENGTH
    hop2 = np.full(len(rows), -1, np.int64)
    hop2[two] = table[b[two], r2[two]]
    return hop1, hop2


def select_replay(graph: Graph, train_rows: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """Sorted positions of the replay items in ``train_rows``.

    Atomic items are taken in seeded random order; each brings every training composition that
    uses its fact. The longest prefix whose total size is <= budget is kept.
    """
    hop1, hop2 = _item_facts(graph, train_rows)
    atomic_pos = np.flatnonzero(hop2 < 0)
    comp_pos = np.flatnonzero(hop2 >= 0)
    perm = streams.stream(seed, streams.INJECT, 2).permutation(len(atomic_pos))
    n_seeds = len(atomic_pos)
    rank = np.full(graph.n_facts, n_seeds, np.int64)  # facts without an atomic item: never seeds
    rank[hop1[atomic_pos[perm]]] = np.arange(n_seeds)
    first_seed = np.minimum(rank[hop1[comp_pos]], rank[hop2[comp_pos]])
    brought = np.bincount(first_seed, minlength=n_seeds + 1)[:n_seeds]
    size = np.arange(n_seeds + 1) + np.concatenate([[0], np.cumsum(brought)])
    p = int(np.flatnonzero(size <= budget).max())
    keep = np.concatenate([atomic_pos[perm[:p]], comp_pos[first_seed < p]])
    return np.sort(keep)


def inject_dataset(src: str | os.PathLike, out: str | os.PathLike, new_facts: int = 2000,
                   replay: int = 8000, seed: int = 0, chain_fraction: float = 0.5,
                   force: bool = False) -> Dataset:
    """Write the new-knowledge finetune set of dataset ``src`` to ``out``; return it."""
    for name, value in (("new_facts", new_facts), ("replay", replay), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise bad_value(name, value, "an integer")
    check_range("seed", seed, 0)
    check_range("chain_fraction", chain_fraction, 0.0, 1.0)
    source = load_dataset(src, verify=True)
    if source.task != "composition" or source.manifest.get("kind") == "injected":
        raise bad_value("src", str(src), "a composition dataset made by `groklab data make` or "
                        f"`data import` (this one: task {source.task}, kind {source.manifest.get('kind')})")
    if source.max_hops != 2:
        raise bad_value("src", str(src), "a two-hop dataset (injection into k-hop datasets is "
                        f"not yet supported; this one holds up to {source.max_hops} hops)")
    check_output(out, force)
    train_rows = source.split("train").rows()
    check_range("replay", replay, 0, len(train_rows))

    graph = _new_facts(graph_of(source), new_facts, chain_fraction, seed)
    replay_pos = select_replay(graph, train_rows, replay, seed)
    replay_rows = train_rows[replay_pos]
    not_replayed = np.ones(len(train_rows), bool)
    not_replayed[replay_pos] = False
    new_idx = np.flatnonzero(graph.is_new)
    old_id = np.flatnonzero(~graph.is_new & ~graph.is_ood)
    is_old_id = ~graph.is_new & ~graph.is_ood

    full = {
        "atomic_new": graph.atomic_rows(new_idx),
        "new_old": graph.chain_rows(*chains_from(graph, new_idx, is_old_id)),
        "old_new": graph.chain_rows(*chains_from(graph, old_id, graph.is_new)),
        "new_new": graph.chain_rows(*chains_from(graph, new_idx, graph.is_new)),
        "replay_atomic": replay_rows[replay_rows[:, LENGTH] == ATOMIC_LENGTH],
        "replay_inferred": replay_rows[replay_rows[:, LENGTH] == TWO_HOP_LENGTH],
        "old_atomic": train_rows[not_replayed & (train_rows[:, LENGTH] == ATOMIC_LENGTH)],
        "old_inferred": train_rows[not_replayed & (train_rows[:, LENGTH] == TWO_HOP_LENGTH)],
    }
    cap = int(source.config.get("probe_cap", 3000))
    splits = {"train": np.concatenate([replay_rows, full["atomic_new"]])}
    for k, name in enumerate(INJECT_PROBES):
        rows = full[name]
        splits[name] = rows[cap_sample(len(rows), cap, streams.stream(seed, streams.INJECT, 3, k))]

    stats = {
        "new_facts": int(len(new_idx)),
        "new_facts_chained": int(round(chain_fraction * len(new_idx))),
        "unused_pairs_before": int(graph.entities * graph.relations - (graph.n_facts - len(new_idx))),
        "replay_budget": int(replay),
        "replay_items": int(len(replay_rows)),
        "replay_atomic": int(len(full["replay_atomic"])),
        "replay_inferred": int(len(full["replay_inferred"])),
        **{f"{name}_total": int(len(full[name]))
           for name in ("new_old", "old_new", "new_new", "old_atomic", "old_inferred")},
    }
    extra = {
        "inject": {"new_facts": int(new_facts), "replay": int(replay), "seed": int(seed),
                   "chain_fraction": float(chain_fraction)},
        "source": {"path": str(Path(src).resolve()),
                   "manifest_sha256": sha256_file(Path(src) / MANIFEST_NAME)},
    }
    return write_dataset(out, task="composition", kind="injected", config=source.config,
                         seed=int(seed), vocab=source.vocab, atomic=graph.atomic_array(),
                         splits=splits, stats=stats, extra=extra, force=force)
