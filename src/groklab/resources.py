"""Memory a request needs, estimated from its sizes alone and checked before anything is
allocated: a dataset to generate or import, a model to train, a batch.

The estimates are upper bounds calibrated on the generators' traced peaks (docs/guarantees.md
gives the measurements; tests/reliability/test_rel_limits.py keeps them bounds). What the
machine has is the smallest of /proc/meminfo's MemAvailable, the cgroup's free limit and the
``GROKLAB_MEMORY_LIMIT`` environment variable (e.g. ``8G``: a cap the user sets). No torch here:
the caller passes the device's free memory for a GPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from groklab.errors import GroklabError

LIMIT_ENV = "GROKLAB_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

# data generation, bytes (measured with tracemalloc, docs/guarantees.md; about 1.2x margin)
COMPOSITION_PER_CHAIN = 64          # hop arrays, OOD masks, pool and test index arrays
COMPOSITION_PER_TRAIN_ITEM = 192    # the train rows, their concatenation and the probes' copies
COMPARISON_PER_CELL = 64            # per (entity, attribute): values, OOD order, atomic rows
COMPARISON_PER_TRAIN_ITEM = 560     # sampled pair indices, decoded pairs, rows
PERMUTATION_PER_ITEM = 8            # numpy's choice without replacement of a large share of the
                                    # pool permutes all of it (freed before the rows are built)
IMPORT_PER_SLOT = 24                # data import: tail, OOD and new masks per (entity, relation)
IMPORT_PER_ITEM = 400               # parsed JSON items and their arrays
# training, bytes per parameter: weights, gradient, two AdamW moments (float32)
TRAIN_PER_PARAM = 16
FLOAT = 4


def parse_bytes(text: str) -> int:
    """``"123"``, ``"512M"``, ``"1.5G"``, ``"2GiB"`` -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise GroklabError(f"{LIMIT_ENV}={text!r} is invalid (allowed: a size such as 8G, 512M)")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def available_memory() -> int:
    """Bytes this process may still allocate on the host (see the module docstring)."""
    candidates = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    candidates += _cgroup_free()
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    if os.environ.get(LIMIT_ENV):
        candidates.append(parse_bytes(os.environ[LIMIT_ENV]))
    return min(candidates) if candidates else 1 << 62


def _cgroup_free() -> list[int]:
    root = Path("/sys/fs/cgroup")
    for limit_name, usage_name in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = (root / limit_name).read_text().strip()
            if limit == "max" or int(limit) > 1 << 60:
                return []
            return [max(0, int(limit) - int((root / usage_name).read_text().strip()))]
        except (OSError, ValueError):
            continue
    return []


def check_memory(subject: str, need: int, what: str, available: int | None = None) -> None:
    """Raise the one-line refusal unless ``need`` bytes fit in what is available.

    ``subject``: the field and value, e.g. ``"train.batch_size=1000000000"``."""
    avail = available_memory() if available is None else available
    if need > avail:
        raise GroklabError(f"{subject} is invalid (allowed: a request that fits in memory: {what} "
                           f"needs about {format_bytes(need)}, {format_bytes(avail)} available)")


# ---------------------------------------------------------------- estimates

def data_bytes(cfg) -> int:
    """Peak bytes of generating the dataset of a validated DataConfig (an upper bound)."""
    E, R = cfg.entities, cfg.relations
    if cfg.task == "comparison":
        n_id = E - int(round(cfg.ood_ratio * E))
        pool = R * n_id * max(n_id - 1, 0)
        n_test = int(round(cfg.id_test_ratio * pool))
        n_train = _train_items(cfg.phi, R * n_id, pool - n_test)
        drawn = n_train + n_test
        perm = PERMUTATION_PER_ITEM * pool if drawn * 50 > pool else 0
        return COMPARISON_PER_CELL * E * R + max(COMPARISON_PER_TRAIN_ITEM * n_train, perm)
    facts = E * cfg.out_degree
    chains = facts * cfg.out_degree
    n_id = facts - int(round(cfg.ood_ratio * facts))
    n_train = _train_items(cfg.phi, n_id, chains)
    r1, k1, r2, k2 = cfg.exposure()
    n_ood = facts - n_id
    added = min(chains, int((r1 * k1 + r2 * k2) * n_ood) + 1)
    items = facts + n_train + added
    return COMPOSITION_PER_CHAIN * chains + COMPOSITION_PER_TRAIN_ITEM * items


def _train_items(phi, n_id_atomic: int, available: int) -> int:
    if phi == "max":
        return max(available, 0)
    return max(0, min(int(round(float(phi) * n_id_atomic)), available))


def import_bytes(entities: int, relations: int, items: int) -> int:
    """Peak bytes of importing a reference directory (E x R lookup tables + the items)."""
    return IMPORT_PER_SLOT * entities * relations + IMPORT_PER_ITEM * items


def params_lower_bound(model_cfg, vocab_size: int) -> int:
    """At least this many parameters, whatever the family: the token embedding and, in each of
    ``n_layers`` distinct blocks, an MLP with (at least) two d_model x mlp_width matrices.
    Cheap, so an absurd size is refused before the model is even built on the meta device."""
    d = model_cfg.d_model
    return vocab_size * d + model_cfg.n_layers * 2 * d * model_cfg.mlp_width


def model_state_bytes(n_params: int, optim_cfg) -> int:
    """Weights, gradients and AdamW moments, plus the EMA copy and the Grokfast filter state."""
    per = TRAIN_PER_PARAM
    if optim_cfg.ema_decay > 0:
        per += FLOAT
    if optim_cfg.grokfast == "ema":
        per += FLOAT
    elif optim_cfg.grokfast == "ma":
        per += FLOAT * optim_cfg.grokfast_window
    return per * n_params


def batch_bytes(batch: int, seq_len: int, d_model: int, mlp_width: int, stages: int,
                vocab_size: int, train: bool = True) -> int:
    """Activations of one batch: per residual stage and position the residual stream, the
    attention/MLP inputs and the MLP hidden layer (kept for the backward pass when training),
    plus the answer logits and their gradient."""
    per_position = 3 * d_model + mlp_width
    kept = stages if train else 2
    return batch * FLOAT * (seq_len * kept * per_position * (2 if train else 1)
                            + vocab_size * (3 if train else 2))
