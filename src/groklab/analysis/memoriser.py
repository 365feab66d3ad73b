"""Path similarity against a model trained on other answers: claim 1's memoriser control.

A memoriser (groklab.data.memorise) was trained on the same queries as the composing model,
with the training compositions' answers permuted. The two models answer the same input
differently, so "queries both answer right" and "the answer restored by a patch" are taken
per model, each against the answers it was trained on: A against the true graph, B against its
dataset's shuffled answers. The counterfactual inputs are the same for both (r1 corrupted, the
rule of :func:`groklab.analysis.tracing.prepare_counterfactuals`), so the two tracing grids
stand cell for cell on the same inputs, as in :func:`groklab.analysis.compare.compare_models`.
"""

from __future__ import annotations

import torch

from groklab.analysis.compare import answer_columns, check_layouts, compare_traces
from groklab.analysis.counterfactual import Counterfactuals
from groklab.analysis.queries import Queries, batched_answer_logits
from groklab.analysis.tracing import prepare_counterfactuals, subset_counterfactuals
from groklab.data.rows import IN0, IN1, IN2, LENGTH, TARGET, TWO_HOP_LENGTH
from groklab.errors import GroklabError

UNDEFINED = -1    # a corrupted query the memoriser was never taught: only its clean answer counts


def answer_table(dataset) -> dict[tuple[int, int, int], int]:
    """(h, r1, r2) token ids -> the answer ``dataset`` trains on, for its training compositions."""
    rows = dataset.split("train").rows()
    rows = rows[rows[:, LENGTH] == TWO_HOP_LENGTH]
    return {(int(a), int(b), int(c)): int(t)
            for a, b, c, t in rows[:, [IN0, IN1, IN2, TARGET]]}


def _relabel(q: Queries, table: dict) -> Queries:
    target = [table.get(tuple(int(x) for x in tok), UNDEFINED) for tok in q.tokens]
    return Queries(q.split, q.index, q.tokens, q.flags, q.input_ids, q.answer_pos,
                   torch.as_tensor(target, dtype=torch.long), q.bridge, list(q.positions),
                   q.layout)


def compare_with_memoriser(model_a, dataset_a, model_b, dataset_b, split: str = "train_inferred",
                           n: int = 300, seed: int = 0, n_boot: int = 1000) -> dict:
    """Tracing grids (r1 corrupted) of composing model A and memoriser B on ``split``'s
    queries that A answers right (clean and corrupted) and B answers with its own trained
    answers; returns :func:`compare_traces`' dict (restored_corr, restored_corr_free, ...)."""
    check_layouts(model_a, model_b)
    cf = prepare_counterfactuals([model_a], dataset_a, split, "r1", n, seed, require_correct=True)
    table = answer_table(dataset_b)
    cf_b = Counterfactuals(cf.corrupt, _relabel(cf.clean, table), _relabel(cf.corrupted, table),
                           dict(cf.stats))
    clean = batched_answer_logits(model_b, cf_b.clean.input_ids, cf_b.clean.answer_pos).argmax(-1)
    corr = batched_answer_logits(model_b, cf_b.corrupted.input_ids,
                                 cf_b.corrupted.answer_pos).argmax(-1)
    t, t_corr = cf_b.clean.target, cf_b.corrupted.target
    # B right clean and corrupted (where it was taught the corrupted query), and, as for A
    # (whose counterfactual flips the true answer), the corruption changes B's answer, or
    # restoring any state "restores" it for free
    keep = ((t != UNDEFINED) & (clean == t) & ((corr == t_corr) | (t_corr == UNDEFINED))
            & (corr != t)).numpy()
    if not keep.any():
        raise GroklabError(f"split={split!r}: the memoriser answers none of the {len(keep)} "
                           "traceable queries with its trained answers (allowed: a memoriser "
                           "that fit its training compositions)")
    stats = {"both_correct": int(keep.sum())}
    cf, cf_b = subset_counterfactuals(cf, keep, **stats), subset_counterfactuals(cf_b, keep, **stats)
    cols = answer_columns(model_a, 3, cf.clean.input_ids.shape[1])
    return compare_traces(model_a, model_b, cf, n_boot, seed, cols, cf_b=cf_b)
