"""k-hop composition: chains of k facts ``h r1 .. rk -> t`` with bridges b1..b(k-1).

Same graph, OOD split and streams as the two-hop task (splits.py). A k-chain is a tuple of k
fact indices (f1..fk) with ``tail[f_i] == head[f_(i+1)]``; as (N, k) arrays, ordered by
(h, r1, .., rk) (fact indices are sorted by (head, relation)).

Per hop count k: the pool = chains whose k facts are all ID; the OOD test = chains whose facts
are all OOD (rule ``all``, the two-hop rule) or any OOD (rule ``any``); the rest is discarded.
Small pools (<= ENUM_LIMIT chains, always for k = 2) are enumerated and split exactly as the
two-hop task splits its pool (the k = 2 part of a k-hop dataset is today's two-hop data). Larger
ones are sampled: uniform distinct chains drawn with path counts, the ID test capped at the
probe cap (docs/data.md, "k-hop composition").
"""

from __future__ import annotations

import numpy as np

from groklab.data import flags as F
from groklab.data import rng as streams
from groklab.data.config import DataConfig
from groklab.data.graph import Graph, all_chains, make_graph
from groklab.data.regimes import regime_additions
from groklab.data.rows import ATOMIC_LENGTH, width
from groklab.data.splits import PROBES, Built, cap_sample, split_ood, train_count
from groklab.data.vocab import PAD, composition_vocab, entity_offset, relation_offset
from groklab.errors import bad_value

ENUM_LIMIT = 2_000_000  # chains enumerated at most (k * 8 bytes each); above: sampled
SAMPLE_ROUNDS = 200     # rejection rounds before a sample is declared infeasible


def train_probe(k: int) -> str:
    return f"train_inferred_h{k}"


def iid_probe(k: int, heldout: bool = False) -> str:
    return f"heldout_iid_h{k}" if heldout else f"test_inferred_iid_h{k}"


def ood_probe(k: int, heldout: bool = False) -> str:
    return f"heldout_ood_h{k}" if heldout else f"test_inferred_ood_h{k}"


# ---------------------------------------------------------------- chains

def _csr(graph: Graph, mask: np.ndarray):
    """Facts in ``mask`` grouped by head: (facts, start, count) with facts sorted."""
    facts = np.flatnonzero(mask)
    count = np.bincount(graph.head[facts], minlength=graph.entities)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return facts, start, count


def path_counts(graph: Graph, mask: np.ndarray, k: int) -> list[np.ndarray]:
    """``counts[m][e]``: chains of m facts in ``mask`` starting at entity e, m = 0..k (float64:
    exact below 2**53, far above any graph here)."""
    counts = [np.ones(graph.entities)]
    facts = np.flatnonzero(mask)
    for _ in range(k):
        counts.append(np.bincount(graph.head[facts], weights=counts[-1][graph.tail[facts]],
                                  minlength=graph.entities))
    return counts


def n_chains(graph: Graph, mask: np.ndarray, k: int) -> int:
    return int(round(path_counts(graph, mask, k)[k].sum()))


def enumerate_chains(graph: Graph, mask: np.ndarray, k: int) -> np.ndarray:
    """Every chain of k facts in ``mask``, (N, k) int64, ordered by (h, r1, .., rk)."""
    facts, start, count = _csr(graph, mask)
    paths = facts[:, None]
    for _ in range(k - 1):
        n = count[graph.tail[paths[:, -1]]]
        rows = np.repeat(np.arange(len(paths)), n)
        offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        nxt = facts[start[graph.tail[paths[rows, -1]]] + offset]
        paths = np.column_stack([paths[rows], nxt])
    return paths.reshape(-1, k).astype(np.int64)


def sample_chains(graph: Graph, mask: np.ndarray, k: int, n: int, rng: np.random.Generator,
                  counts: list[np.ndarray]) -> np.ndarray:
    """n chains of k facts in ``mask``, uniform (with replacement), (n, k) int64: the head in
    proportion to its chain count, each next fact in proportion to the chains it continues."""
    facts, start, count = _csr(graph, mask)
    out = np.empty((n, k), np.int64)
    p = counts[k] / counts[k].sum()
    entity = rng.choice(graph.entities, size=n, p=p)
    slots = np.arange(max(int(count.max()), 1))
    for i in range(k):
        valid = slots[None, :] < count[entity][:, None]
        idx = np.where(valid, start[entity][:, None] + slots[None, :], 0)
        cand = facts[np.minimum(idx, len(facts) - 1)]
        w = np.where(valid, counts[k - 1 - i][graph.tail[cand]], 0.0)
        cum = np.cumsum(w, axis=1)
        u = rng.random(n) * cum[:, -1]
        pick = np.argmax(cum > u[:, None], axis=1)
        out[:, i] = cand[np.arange(n), pick]
        entity = graph.tail[out[:, i]]
    return out


def distinct_sample(graph: Graph, mask: np.ndarray, k: int, n: int, rng: np.random.Generator,
                    accept=None, field: str = "hops") -> np.ndarray:
    """n distinct uniform chains (rejection of repeats and of rows ``accept`` refuses), in the
    order first drawn. The caller keeps n well below the number of chains."""
    counts = path_counts(graph, mask, k)
    kept = np.zeros((0, k), np.int64)
    for _ in range(SAMPLE_ROUNDS):
        if len(kept) >= n:
            break
        draw = sample_chains(graph, mask, k, max(1024, 2 * (n - len(kept))), rng, counts)
        if accept is not None:
            draw = draw[accept(draw)]
        both = np.concatenate([kept, draw])
        _, first = np.unique(both, axis=0, return_index=True)
        kept = both[np.sort(first)]
    if len(kept) < n:
        raise bad_value(field, k, f"a hop count whose chains can be sampled ({len(kept):,} of "
                        f"{n:,} distinct chains found)")
    return kept[:n]


def _sorted(chains: np.ndarray) -> np.ndarray:
    return chains[np.lexsort(chains.T[::-1])] if len(chains) else chains


# ---------------------------------------------------------------- rows

def chain_rows(graph: Graph, chains: np.ndarray, max_hops: int, extra_flags: int = 0) -> np.ndarray:
    """Split rows (N, width(max_hops)) of the k-hop queries of ``chains`` (N, k): inputs
    ``h r1 .. rk`` then <pad>, length k + 1, target, bridges b1..b(k-1) then -1, flags."""
    chains = np.asarray(chains, np.int64)
    n, k = chains.shape
    e0, r0 = entity_offset(), relation_offset(graph.entities)
    flags = np.full(n, F.INFERRED | extra_flags, np.int64)
    for i in range(k):
        flags += graph.is_ood[chains[:, i]] * F.hop_ood(i + 1)
    flags += graph.is_new[chains[:, 0]] * F.HOP1_NEW
    if k > 1:
        flags += graph.is_new[chains[:, 1]] * F.HOP2_NEW
    cols = [graph.head[chains[:, 0]] + e0, *(graph.rel[chains[:, i]] + r0 for i in range(k))]
    cols += [np.full(n, PAD)] * (max_hops - k)
    cols += [np.full(n, k + 1), graph.tail[chains[:, -1]] + e0]
    cols += [graph.tail[chains[:, i]] + e0 for i in range(k - 1)]
    cols += [np.full(n, -1)] * (max_hops - k)
    cols.append(flags)
    return np.stack(cols, axis=1).astype(np.int32).reshape(n, width(max_hops))


def atomic_rows(graph: Graph, facts: np.ndarray, max_hops: int) -> np.ndarray:
    """Atomic items ``h r -> t`` in the layout of ``max_hops``."""
    facts = np.asarray(facts, np.int64)
    n = len(facts)
    e0, r0 = entity_offset(), relation_offset(graph.entities)
    cols = [graph.head[facts] + e0, graph.rel[facts] + r0, *[np.full(n, PAD)] * (max_hops - 1),
            np.full(n, ATOMIC_LENGTH), graph.tail[facts] + e0, *[np.full(n, -1)] * (max_hops - 1),
            graph.atomic_flags(facts)]
    return np.stack(cols, axis=1).astype(np.int32).reshape(n, width(max_hops))


# ---------------------------------------------------------------- one hop count

def _sub(k: int) -> tuple[int, ...]:
    """Stream sub-index of hop count k: none for k = 2 (today's two-hop streams)."""
    return () if k == 2 else (k,)


def _ood_set(graph: Graph, k: int, rule: str, cap: int, rng: np.random.Generator):
    """(chains, total): the OOD test chains of hop count k (at most ``cap`` when sampled;
    enumerated ones are capped by the probe sampling) and how many exist."""
    if rule == "all":
        total = n_chains(graph, graph.is_ood, k)
        if total <= ENUM_LIMIT:
            return enumerate_chains(graph, graph.is_ood, k), total
        return _sorted(distinct_sample(graph, graph.is_ood, k, min(cap, total), rng)), total
    every = np.ones(graph.n_facts, bool)
    total = n_chains(graph, every, k) - n_chains(graph, ~graph.is_ood, k)
    if n_chains(graph, every, k) <= ENUM_LIMIT:
        chains = enumerate_chains(graph, every, k)
        return chains[graph.is_ood[chains].any(axis=1)], total
    def any_ood(c):
        return graph.is_ood[c].any(axis=1)
    return _sorted(distinct_sample(graph, every, k, min(cap, total), rng, any_ood)), total


def trained_hop(graph: Graph, cfg: DataConfig, k: int, n_id: int, field_path: str):
    """(train chains, ID test chains, OOD chains, stats) of a trained hop count k."""
    seed, sub, pool_mask = cfg.seed, _sub(k), ~graph.is_ood
    P = n_chains(graph, pool_mask, k)
    rule = cfg.ood_rule or "all"
    ood, n_ood = _ood_set(graph, k, rule, cfg.probe_cap, streams.stream(seed, streams.PROBES, 50, k))
    if k == 2 or P <= ENUM_LIMIT:
        mode = "enumerated"
        pool = enumerate_chains(graph, pool_mask, k)
        n_test = int(round(cfg.id_test_ratio * P))
        held = np.zeros(P, bool)
        held[streams.stream(seed, streams.ID_TEST, *sub).choice(P, n_test, replace=False)] = True
        id_test, available = pool[held], pool[~held]
        n_train = train_count(cfg.phi, n_id, len(available), f"{field_path}phi")
        order = streams.stream(seed, streams.TRAIN_SAMPLE, *sub).permutation(len(available))
        train = available[np.sort(order[:n_train])]
        phi_max = len(available) / max(n_id, 1)
    else:  # sampled: the ID test is a probe anyway, so it is capped at the probe cap
        mode = "sampled"
        n_test = min(int(round(cfg.id_test_ratio * P)), cfg.probe_cap)
        room = P // 2 - n_test  # rejection sampling stays cheap below half the pool
        n_train = train_count(cfg.phi, n_id, room, f"{field_path}phi")
        draw = distinct_sample(graph, pool_mask, k, n_test + n_train,
                               streams.stream(seed, streams.TRAIN_SAMPLE, *sub), field=f"{field_path}hops")
        id_test, train = _sorted(draw[:n_test]), _sorted(draw[n_test:])
        phi_max = room / max(n_id, 1)
    total = n_chains(graph, np.ones(graph.n_facts, bool), k)
    stats = {"mode": mode, "chains": total, "pool": P, "id_test": n_test, "ood_test": n_ood,
             "discarded": total - P - n_ood, "train_inferred": int(len(train)),
             "phi_reached": len(train) / max(n_id, 1), "phi_max": phi_max}
    return train, id_test, ood, stats


def heldout_hop(graph: Graph, cfg: DataConfig, k: int):
    """(ID chains, OOD chains, stats) of a held-out hop count: probes only, never trained."""
    seed, pool_mask = cfg.seed, ~graph.is_ood
    P = n_chains(graph, pool_mask, k)
    rng = streams.stream(seed, streams.PROBES, 60, k)
    if P <= ENUM_LIMIT:
        iid = enumerate_chains(graph, pool_mask, k)
        iid = iid[cap_sample(len(iid), cfg.probe_cap, rng)]
    else:
        iid = _sorted(distinct_sample(graph, pool_mask, k, min(cfg.probe_cap, P), rng))
    ood, n_ood = _ood_set(graph, k, cfg.ood_rule or "all", cfg.probe_cap,
                          streams.stream(seed, streams.PROBES, 50, k))
    return iid, ood, {"heldout": True, "pool": P, "ood_test": n_ood}


# ---------------------------------------------------------------- the dataset

def build_khop(cfg: DataConfig, field_path: str = "") -> Built:
    """The k-hop composition dataset of ``cfg`` (validated, ``cfg.is_khop``) in memory."""
    seed, M = cfg.seed, cfg.max_hops
    graph = make_graph(cfg.entities, cfg.relations, cfg.out_degree, streams.stream(seed, streams.GRAPH))
    graph.is_ood = split_ood(graph.n_facts, cfg.ood_ratio, seed)
    n_ood = int(graph.is_ood.sum())
    n_id = graph.n_facts - n_ood
    all_facts = np.arange(graph.n_facts)

    per_hop, parts = {}, {}
    for k in cfg.train_hops:
        train, id_test, ood, per_hop[str(k)] = trained_hop(graph, cfg, k, n_id, field_path)
        parts[k] = (chain_rows(graph, train, M), chain_rows(graph, id_test, M),
                    chain_rows(graph, ood, M))
    train_rows = [atomic_rows(graph, all_facts, M)] + [parts[k][0] for k in cfg.train_hops]
    regime_stats = {}
    if cfg.regime != "natural":  # two-hop training only (validated): today's additions
        hop1, hop2 = all_chains(graph)
        add1, add2, regime_stats = regime_additions(hop1, hop2, graph.is_ood, cfg.regime, seed,
                                                    cfg.exposure())
        for add in (add1, add2):
            train_rows.append(chain_rows(graph, np.column_stack([hop1[add], hop2[add]]), M,
                                         F.AUGMENTED))
    full = {
        "id_atomic": atomic_rows(graph, np.flatnonzero(~graph.is_ood), M),
        "ood_atomic": atomic_rows(graph, np.flatnonzero(graph.is_ood), M),
        "train_inferred": np.concatenate([parts[k][0] for k in cfg.train_hops]),
        "test_inferred_iid": np.concatenate([parts[k][1] for k in cfg.train_hops]),
        "test_inferred_ood": np.concatenate([parts[k][2] for k in cfg.train_hops]),
    }
    splits = {"train": np.concatenate(train_rows)}
    for j, name in enumerate(PROBES):  # the two-hop probes and streams (a union over hop counts)
        rows = full[name]
        splits[name] = rows[cap_sample(len(rows), cfg.probe_cap, streams.stream(seed, streams.PROBES, j))]
    for k in cfg.train_hops:
        for j, (name, rows) in enumerate(zip((train_probe(k), iid_probe(k), ood_probe(k)), parts[k])):
            splits[name] = rows[cap_sample(len(rows), cfg.probe_cap,
                                           streams.stream(seed, streams.PROBES, 10 + k, j))]
    for k in cfg.heldout_hops:
        iid, ood, per_hop[str(k)] = heldout_hop(graph, cfg, k)
        splits[iid_probe(k, True)] = chain_rows(graph, iid, M)
        ood_rows = chain_rows(graph, ood, M)
        splits[ood_probe(k, True)] = ood_rows[cap_sample(len(ood_rows), cfg.probe_cap,
                                                         streams.stream(seed, streams.PROBES, 10 + k, 2))]
    n_train = sum(per_hop[str(k)]["train_inferred"] for k in cfg.train_hops)
    stats = {
        "atomic_facts": graph.n_facts, "id_atomic_facts": n_id, "ood_atomic_facts": n_ood,
        "hops": list(cfg.train_hops), "test_hops": list(cfg.heldout_hops),
        "ood_rule": cfg.ood_rule or "all", "max_hops": M,
        "train_inferred": n_train, "per_hop": per_hop, **regime_stats,
    }
    return Built(composition_vocab(cfg.entities, cfg.relations), graph.atomic_array(), splits, stats)


def hop_probes(manifest: dict) -> dict[int, dict[str, str]]:
    """{k: {"iid": probe, "ood": probe, "heldout": bool}} of a dataset's manifest; a two-hop
    dataset made before k-hop data gives {2: test_inferred_iid / test_inferred_ood}."""
    stats = manifest.get("stats", {})
    names = set(manifest.get("splits", ()))
    if "per_hop" not in stats:
        if manifest.get("task") != "composition" or "test_inferred_iid" not in names:
            return {}
        return {2: {"iid": "test_inferred_iid", "ood": "test_inferred_ood", "heldout": False}}
    out = {}
    for key, st in sorted(stats["per_hop"].items(), key=lambda kv: int(kv[0])):
        k, held = int(key), bool(st.get("heldout"))
        out[k] = {"iid": iid_probe(k, held), "ood": ood_probe(k, held), "heldout": held}
    return out
