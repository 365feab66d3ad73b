"""The composition dataset: OOD split, pool, ID test, train inferred, probes (study.md 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from groklab.data import flags as F
from groklab.data import rng as streams
from groklab.data.config import DataConfig
from groklab.data.graph import Graph, all_chains, make_graph
from groklab.data.regimes import regime_additions
from groklab.data.vocab import composition_vocab
from groklab.errors import bad_value

PROBES = ("id_atomic", "ood_atomic", "train_inferred", "test_inferred_iid", "test_inferred_ood")
TRAINED_PROBES = PROBES[:3]  # samples of the training items themselves (train_acc averages them)


@dataclass
class Built:
    """A dataset in memory, ready to be written: split rows, atomic facts, vocab, statistics."""

    vocab: list[str]
    atomic: np.ndarray                      # (F, 4) int32
    splits: dict[str, np.ndarray]           # name -> (N, 7) int32; "train" first
    stats: dict = field(default_factory=dict)


def cap_sample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a uniform sample of min(n, cap) out of n."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.permutation(n)[:cap])


def split_ood(n_facts: int, ood_ratio: float, seed: int) -> np.ndarray:
    """Boolean mask of the round(ood_ratio * n_facts) OOD facts."""
    n_ood = int(round(ood_ratio * n_facts))
    is_ood = np.zeros(n_facts, bool)
    is_ood[streams.stream(seed, streams.OOD_SPLIT).choice(n_facts, n_ood, replace=False)] = True
    return is_ood


def train_count(phi: float | str, n_id_atomic: int, available: int, field: str = "phi") -> int:
    """round(phi * #ID atomic) train inferred facts; ``max`` takes the whole available pool.
    A phi above what the pool holds is an error naming ``field``."""
    if phi == "max":
        return available
    n = int(round(float(phi) * n_id_atomic))
    if n > available:
        phi_max = available / max(n_id_atomic, 1)
        raise bad_value(field, phi, f"[0, {np.floor(phi_max * 1e4) / 1e4:g}] or 'max': the pool "
                        f"holds {available:,} chains for {n_id_atomic:,} ID atomic facts")
    return n


def build_composition(cfg: DataConfig, field_path: str = "") -> Built:
    """Generate the composition dataset of ``cfg`` (validated) in memory; an infeasible phi is
    an error naming ``field_path + "phi"``."""
    seed = cfg.seed
    graph: Graph = make_graph(cfg.entities, cfg.relations, cfg.out_degree,
                              streams.stream(seed, streams.GRAPH))
    graph.is_ood = split_ood(graph.n_facts, cfg.ood_ratio, seed)
    n_ood = int(graph.is_ood.sum())
    n_id = graph.n_facts - n_ood

    hop1, hop2 = all_chains(graph)
    o1, o2 = graph.is_ood[hop1], graph.is_ood[hop2]
    pool = np.flatnonzero(~o1 & ~o2)
    ood_test = np.flatnonzero(o1 & o2)

    n_test = int(round(cfg.id_test_ratio * len(pool)))
    held = np.zeros(len(pool), bool)
    held[streams.stream(seed, streams.ID_TEST).choice(len(pool), n_test, replace=False)] = True
    id_test, available = pool[held], pool[~held]

    n_train = train_count(cfg.phi, n_id, len(available), f"{field_path}phi")
    order = streams.stream(seed, streams.TRAIN_SAMPLE).permutation(len(available))
    train_inferred = np.sort(available[order[:n_train]])

    add1, add2, regime_stats = regime_additions(hop1, hop2, graph.is_ood, cfg.regime, seed,
                                                cfg.exposure())

    all_facts = np.arange(graph.n_facts)
    train = np.concatenate([
        graph.atomic_rows(all_facts),
        graph.chain_rows(hop1[train_inferred], hop2[train_inferred]),
        graph.chain_rows(hop1[add1], hop2[add1], F.AUGMENTED),
        graph.chain_rows(hop1[add2], hop2[add2], F.AUGMENTED),
    ])
    full = {
        "id_atomic": graph.atomic_rows(np.flatnonzero(~graph.is_ood)),
        "ood_atomic": graph.atomic_rows(np.flatnonzero(graph.is_ood)),
        "train_inferred": graph.chain_rows(hop1[train_inferred], hop2[train_inferred]),
        "test_inferred_iid": graph.chain_rows(hop1[id_test], hop2[id_test]),
        "test_inferred_ood": graph.chain_rows(hop1[ood_test], hop2[ood_test]),
    }
    splits = {"train": train}
    for k, name in enumerate(PROBES):
        rows = full[name]
        splits[name] = rows[cap_sample(len(rows), cfg.probe_cap, streams.stream(seed, streams.PROBES, k))]

    stats = {
        "atomic_facts": graph.n_facts, "id_atomic_facts": n_id, "ood_atomic_facts": n_ood,
        "chains": int(len(hop1)), "pool": int(len(pool)), "id_test": n_test,
        "ood_test": int(len(ood_test)), "discarded_one_ood_hop": int(len(hop1) - len(pool) - len(ood_test)),
        "phi_max": len(available) / max(n_id, 1),
        "phi_reached": n_train / max(n_id, 1),
        "train_inferred": n_train,
        **regime_stats,
    }
    return Built(composition_vocab(cfg.entities, cfg.relations), graph.atomic_array(), splits, stats)
