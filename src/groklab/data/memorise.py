"""The shuffled-compositions dataset: a model that can fit its compositions only by memorising.

From a two-hop composition dataset SRC: the same atomic facts and the same training queries
(h, r1, r2), but the answers of the training compositions permuted among them (a seeded
permutation of their targets), so that no rule over the atomic facts gives them: a model that
fits them has memorised a lookup of (h, r1, r2). ``train_inferred`` holds the same queries with
their shuffled answers (what the model was trained on); every other split is SRC's, so the ID
and OOD tests still ask for the true answers (a memoriser answers them at chance).

Claim 1's negative control trains on it (docs/study.md): its inference path on the training
compositions should not look like a composing model's; a path-similarity test that calls the
two "similar" cannot tell memorisation from the circuit. Why not simply drop the atomic facts:
trained on the compositions alone, both families still learned to compose at the cpu scale
(docs/study.md), so that does not make a memoriser; random answers do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from groklab.data import rng as streams
from groklab.data.dataset import MANIFEST_NAME, Dataset, check_output, load_dataset, write_dataset
from groklab.data.rows import BRIDGE, IN0, IN1, IN2, LENGTH, TARGET, TWO_HOP_LENGTH
from groklab.errors import bad_value, check_range
from groklab.fsutil import sha256_file

KIND = "shuffled_compositions"
NO_BRIDGE = -1        # a shuffled answer has no bridge entity


def _keys(rows: np.ndarray) -> np.ndarray:
    return rows[:, [IN0, IN1, IN2]].astype(np.int64)


def shuffled_compositions_dataset(src: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
                                  force: bool = False) -> Dataset:
    """Write SRC with its training compositions' answers permuted to ``out``; return it."""
    check_range("seed", seed, 0)
    source = load_dataset(src, verify=True)
    if source.task != "composition" or source.manifest.get("kind") in ("injected", KIND):
        raise bad_value("src", str(src), "a composition dataset made by `groklab data make` or "
                        f"`data import` (this one: task {source.task}, kind "
                        f"{source.manifest.get('kind')})")
    if source.max_hops != 2:
        raise bad_value("src", str(src), "a two-hop dataset (this one holds up to "
                        f"{source.max_hops} hops)")
    check_output(out, force)
    train = source.split("train").rows().copy()
    comp = np.flatnonzero(train[:, LENGTH] == TWO_HOP_LENGTH)
    if len(comp) < 2:
        raise bad_value("src", str(src), "a dataset with >= 2 training compositions "
                        f"(this one has {len(comp)})")
    perm = streams.stream(seed, streams.SHUFFLE).permutation(len(comp))
    train[comp, TARGET] = train[comp[perm], TARGET]
    train[comp, BRIDGE] = NO_BRIDGE
    answer = {tuple(k): int(t) for k, t in zip(_keys(train[comp]), train[comp, TARGET])}

    splits = {"train": train}
    for name in source.split_names:
        if name == "train":
            continue
        rows = source.split(name).rows()
        if name == "train_inferred":   # training queries: what the model was taught
            rows = rows.copy()
            rows[:, TARGET] = [answer[tuple(k)] for k in _keys(rows)]
            rows[:, BRIDGE] = NO_BRIDGE
        splits[name] = rows
    stats = {**source.manifest.get("stats", {}), "shuffled_compositions": int(len(comp)),
             "answers_unchanged": int((train[comp, TARGET]
                                       == source.split("train").rows()[comp, TARGET]).sum())}
    extra = {"shuffle": {"seed": int(seed)},
             "source": {"path": str(Path(src).resolve()),
                        "manifest_sha256": sha256_file(Path(src) / MANIFEST_NAME)}}
    return write_dataset(out, task="composition", kind=KIND, config=source.config,
                         seed=int(seed), vocab=source.vocab, atomic=source.atomic, splits=splits,
                         stats=stats, extra=extra, force=force)
