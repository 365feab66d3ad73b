"""Transfer probes of a new-knowledge (injected) dataset: exact match and bridge found.

Categories (docs/architecture.md section 1): ``atomic_new`` (the new facts themselves),
``new_old`` (hop 1 new), ``old_new`` (hop 2 new), ``new_new``; ``replay_atomic`` and
``replay_inferred`` (trained) and ``old_atomic`` / ``old_inferred`` (the source's training items
that are not replayed) watch forgetting. For two-hop categories the logit lens gives
"bridge found" (see :mod:`groklab.analysis.lens`; the study finds old+new and new+new near 0
EM even where the lens decodes b). Used by the study pipeline and as a training callback.
"""

from __future__ import annotations

import numpy as np
import torch

from groklab.analysis.lens import lens_ranks, summarize_lens
from groklab.analysis.queries import batched_answer_logits, two_hop_queries
from groklab.models import make_inputs

TRANSFER_SPLITS = ("atomic_new", "new_old", "old_new", "new_new")
FORGETTING_SPLITS = ("replay_atomic", "replay_inferred", "old_atomic", "old_inferred")


def split_correct(model, dataset, split: str, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Per item of ``split`` (a seeded sample of ``n`` if given): is the answer right? (bool)"""
    data = dataset.split(split)
    rows = np.arange(len(data))
    if n is not None and n < len(rows):
        rows = np.sort(np.random.default_rng([seed, 5]).choice(rows, size=n, replace=False))
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    ids, pos = make_inputs(data.tokens[rows], data.length[rows], model.layout)
    pred = batched_answer_logits(model, ids, pos).argmax(-1)
    return (pred == torch.as_tensor(data.target[rows])).numpy()


def split_em(model, dataset, split: str, n: int | None = None, seed: int = 0) -> tuple[float, int]:
    """(exact-match accuracy, number of items) on ``split`` (a seeded sample of ``n`` if given)."""
    correct = split_correct(model, dataset, split, n, seed)
    return (float(correct.mean()) if len(correct) else float("nan")), len(correct)


def transfer_metrics(model, dataset, splits=TRANSFER_SPLITS + FORGETTING_SPLITS,
                     n: int | None = None, seed: int = 0, bridge_positions="auto") -> dict[str, dict]:
    """{split: {"n", "em"[, "bridge_found", "bridge_found_control", "bridge_mrr"]}} for each
    of ``splits`` present in ``dataset`` (others are skipped); the lens numbers only for splits
    with two-hop queries (atomic splits have no bridge)."""
    out: dict[str, dict] = {}
    for split in splits:
        if split not in dataset.split_names:
            continue
        em, count = split_em(model, dataset, split, n, seed)
        entry: dict = {"n": count, "em": em}
        data = dataset.split(split)
        if count and bool((np.asarray(data.length) == 3).any()):
            summary = summarize_lens(lens_ranks(model, two_hop_queries(
                dataset, split, model.layout, n=n, seed=seed)), bridge_positions)
            entry.update(bridge_found=summary["bridge"]["found"],
                         bridge_found_control=summary["bridge"]["found_control"],
                         bridge_mrr=summary["bridge"]["mrr_best"])
        out[split] = entry
    return out


def transfer_row(model, dataset, n: int | None = 512, seed: int = 0) -> dict[str, float]:
    """Flat ``transfer/<split>/<metric>`` scalars, e.g. for metrics.jsonl."""
    return {f"transfer/{split}/{key}": value
            for split, entry in transfer_metrics(model, dataset, n=n, seed=seed).items()
            for key, value in entry.items() if key != "n"}


def transfer_callback(n: int | None = 512, seed: int = 0):
    """A training callback ``(step, model, dataset, row) -> dict`` adding :func:`transfer_row`."""

    def callback(step, model, dataset, row):
        return transfer_row(model, dataset, n=n, seed=seed)

    return callback
