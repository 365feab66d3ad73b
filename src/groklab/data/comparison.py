"""The comparison task (Wang et al.): entities x attributes with ordinal values.

Atomic fact ``<e> <attr> -> <v_k>`` (the entity's value of the attribute); inferred query
``<attr> <e1> <e2> -> <lt>|<eq>|<gt>`` comparing e1's value with e2's. Attributes reuse the
relation tokens ``<r_j>``. Per attribute, round(ood_ratio * E) entities are OOD: their atomic
facts are trained but never appear in a training comparison. Ordered pairs e1 != e2 with both
entities ID form the pool (a held-out id_test_ratio of it is the ID test); both OOD: OOD test;
mixed pairs are discarded. phi = #train comparisons / #ID atomic facts. ``bridge`` is -1.
Pairs are addressed by index, so the pool is never materialised (paper scale: 722M pairs).
"""

from __future__ import annotations

import numpy as np

from groklab.data import flags as F
from groklab.data import rng as streams
from groklab.data.config import DataConfig
from groklab.data.splits import PROBES, Built, cap_sample, train_count
from groklab.data.rows import ATOMIC_LENGTH, N_COLUMNS, TWO_HOP_LENGTH
from groklab.data.vocab import (PAD, comparison_vocab, entity_offset, label_offset, relation_offset,
                                value_offset)
from groklab.errors import bad_value

MAX_TRAIN_ITEMS = 50_000_000


def _pairs(index: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode pair indices into (attribute, e1, e2); ``members`` (A, n) entity lists."""
    n = members.shape[1]
    per_attr = n * (n - 1)
    a, rem = np.divmod(index, per_attr)
    i, j = np.divmod(rem, n - 1)
    j = j + (j >= i)
    return a, members[a, i], members[a, j]


def build_comparison(cfg: DataConfig, field_path: str = "") -> Built:
    """Generate the comparison dataset of ``cfg`` (validated) in memory."""
    E, A, V, seed = cfg.entities, cfg.relations, cfg.values, cfg.seed
    value = streams.stream(seed, streams.GRAPH).integers(0, V, size=(E, A))
    n_ood = int(round(cfg.ood_ratio * E))
    n_id = E - n_ood
    order = np.argsort(streams.stream(seed, streams.OOD_SPLIT).random((A, E)), axis=1, kind="stable")
    ood_members = np.sort(order[:, :n_ood], axis=1)
    id_members = np.sort(order[:, n_ood:], axis=1)
    is_ood = np.zeros((E, A), bool)
    is_ood[ood_members, np.arange(A)[:, None]] = True

    e0, a0, v0 = entity_offset(), relation_offset(E), value_offset(E, A)
    lt = label_offset(E, A, V)

    def atomic_rows(e: np.ndarray, a: np.ndarray) -> np.ndarray:
        n = len(e)
        return np.stack([e + e0, a + a0, np.full(n, PAD), np.full(n, ATOMIC_LENGTH),
                         value[e, a] + v0, np.full(n, -1), is_ood[e, a] * F.HOP1_OOD],
                        axis=1).astype(np.int32).reshape(n, N_COLUMNS)

    def pair_rows(a: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
        n = len(a)
        label = np.sign(value[e1, a] - value[e2, a]) + 1  # 0 <lt>, 1 <eq>, 2 <gt>
        flags = F.INFERRED + is_ood[e1, a] * F.HOP1_OOD + is_ood[e2, a] * F.HOP2_OOD
        return np.stack([a + a0, e1 + e0, e2 + e0, np.full(n, TWO_HOP_LENGTH),
                         label + lt, np.full(n, -1), flags], axis=1).astype(np.int32).reshape(n, N_COLUMNS)

    pool = A * n_id * (n_id - 1)
    ood_pairs = A * n_ood * max(n_ood - 1, 0)
    n_test = int(round(cfg.id_test_ratio * pool))
    id_test = np.sort(streams.stream(seed, streams.ID_TEST).choice(pool, n_test, replace=False))
    n_id_atomic = A * n_id
    n_train = train_count(cfg.phi, n_id_atomic, pool - n_test, f"{field_path}phi")
    if n_train > MAX_TRAIN_ITEMS:
        raise bad_value(f"{field_path}phi", cfg.phi, f"at most {MAX_TRAIN_ITEMS // max(n_id_atomic, 1)} for this "
                        f"size (limit {MAX_TRAIN_ITEMS:,} training comparisons)")
    draw = streams.stream(seed, streams.TRAIN_SAMPLE).choice(pool, min(pool, n_train + n_test),
                                                             replace=False)
    train_pairs = np.sort(draw[~np.isin(draw, id_test)][:n_train])

    ent, att = np.divmod(np.arange(E * A), A)  # atomic facts ordered by (entity, attribute)
    atomic_all = atomic_rows(ent, att)
    train = np.concatenate([atomic_all, pair_rows(*_pairs(train_pairs, id_members))])
    id_fact = np.flatnonzero(~is_ood[ent, att])
    ood_fact = np.flatnonzero(is_ood[ent, att])

    cap = cfg.probe_cap
    rng = [streams.stream(seed, streams.PROBES, k) for k in range(len(PROBES))]
    ood_index = (np.sort(rng[4].choice(ood_pairs, min(ood_pairs, cap), replace=False))
                 if ood_pairs else np.zeros(0, np.int64))
    probes = {
        "id_atomic": atomic_all[id_fact[cap_sample(len(id_fact), cap, rng[0])]],
        "ood_atomic": atomic_all[ood_fact[cap_sample(len(ood_fact), cap, rng[1])]],
        "train_inferred": pair_rows(*_pairs(train_pairs[cap_sample(n_train, cap, rng[2])], id_members)),
        "test_inferred_iid": pair_rows(*_pairs(id_test[cap_sample(n_test, cap, rng[3])], id_members)),
        "test_inferred_ood": pair_rows(*_pairs(ood_index, ood_members)) if n_ood > 1
        else np.zeros((0, 7), np.int32),
    }
    atomic = atomic_all[:, [0, 1, 4, 6]]
    stats = {
        "atomic_facts": E * A, "id_atomic_facts": n_id_atomic, "ood_atomic_facts": A * n_ood,
        "pool": pool, "id_test": n_test, "ood_test": ood_pairs,
        "phi_max": (pool - n_test) / max(n_id_atomic, 1),
        "phi_reached": n_train / max(n_id_atomic, 1), "train_inferred": n_train,
        "label_counts_train": {lab: int(c) for lab, c in zip(
            ("<lt>", "<eq>", "<gt>"),
            np.bincount(train[len(atomic_all):, 4] - lt, minlength=3))},
    }
    return Built(comparison_vocab(E, A, V), atomic, {"train": train, **probes}, stats)
