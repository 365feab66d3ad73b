"""Compare two models' inference paths on the same queries (the study's claim 1).

Both models see the same queries and the same counterfactuals (kept only where *both* answer
clean and corrupted right). Similarity scores:
- ``trace.restored_corr`` / ``trace.prob_corr``: Pearson correlation of the flattened tracing
  grids (fraction restored / mean probability of the clean answer);
- ``lens.bridge_mrr_corr``: Pearson correlation of the bridge MRR (stage x position) grids;
- ``lens.first_found``: per query, the depth at which the bridge first becomes the top-1
  decode (causal models: at r1 or r2, where the first hop is resolved and carried;
  recursive: any position); agreement = mean absolute difference of that depth (and, for equal stage counts,
  the fraction of queries where it is the same stage).
Each score comes with a paired bootstrap CI: queries are resampled with replacement (seeded)
and the statistic is recomputed on the resampled grids.

Shapes: stage axes may differ (e.g. a 4-layer decoder vs a looped 2x2): every grid is then
linearly resampled onto a common normalised depth axis (stage i of S at depth i/(S-1), with
max(S_a, S_b) points). Position axes must match: a causal model (h, r1, r2) and the recursive
model (h, r1, r2, mask) read the answer at different positions, so comparing them position by
position would be meaningless; that is refused with a GroklabError.

Comparison task (:func:`compare_comparison_models`, docs/analysis.md): two comparison runs on
the same attribute values are compared on the same queries and label-flipping counterfactuals
(analysis/comparison.py, ``corrupt`` e1 | e2 | attr); the lens scores are the correlations of
the v1 / v2 value-rank and label-mass grids and the agreement of the depth where v1 / v2 first
are the top value at their entity's position. Runs of different tasks are refused.

k-hop splits (:func:`compare_khop_models`, docs/khop.md): on a split of K-hop queries
``h r1 .. rK`` (K >= 3) both models get the same queries and the same k-hop counterfactuals
(any input token, analysis/khop.py); the lens scores are per bridge b_i (Pearson r of the b_i
MRR grids, agreement of the depth where b_i first is the top-1 decode). The grids cover the
positions a patch or a decode can reach the answer from: for causal models the query's own
tokens (``h`` .. the answer position; the ``<pad>`` positions after it cannot change the
answer, their constant cells would only inflate r), for non-causal models every position.
"""

from __future__ import annotations

import numpy as np
import torch

from groklab.analysis.comparison import CORRUPTIONS as COMPARISON_CORRUPTIONS
from groklab.analysis.comparison import (ValueTable, build_comparison_counterfactuals,
                                         comparison_queries, query_values)
from groklab.analysis.comparison_lens import comparison_lens, summarize_comparison_lens
from groklab.analysis.counterfactual import CORRUPTIONS
from groklab.analysis.khop import (_order_summary, check_khop_rule, corrupt_index, khop_counterfactuals,
                                   khop_queries, split_hops)
from groklab.analysis.lens import (LensResult, _ranks, first_found_stage, lens_ranks,
                                   resolve_positions, summarize_lens)
from groklab.analysis.queries import eval_mode, model_device, position_labels, two_hop_queries
from groklab.analysis.tracing import (TraceResult, keep_answered, prepare_counterfactuals,
                                      summarize_trace, trace_grid)
from groklab.errors import GroklabError, bad_value


def to_depth(grid: np.ndarray, n_points: int) -> np.ndarray:
    """Linearly resample axis -2 (stages) of ``grid`` (..., S, T) onto ``n_points`` depths."""
    s = grid.shape[-2]
    if s == n_points:
        return grid
    if s == 1:
        return np.repeat(grid, n_points, axis=-2)
    src = np.linspace(0.0, 1.0, s)
    dst = np.linspace(0.0, 1.0, n_points)
    hi = np.clip(np.searchsorted(src, dst, side="right"), 1, s - 1)
    lo = hi - 1
    width = np.where(src[hi] > src[lo], src[hi] - src[lo], 1.0)
    w = np.clip((dst - src[lo]) / width, 0.0, 1.0)[:, None]
    return grid[..., lo, :] * (1 - w) + grid[..., hi, :] * w


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (B, F) arrays; NaN where a row is constant."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, (a * b).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) resampling weights (counts / n) of a seeded bootstrap over n items."""
    rng = np.random.default_rng([seed, 11])
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return counts / n


def _ci(values: np.ndarray, point: float | None, level: float = 0.95) -> dict:
    ok = values[np.isfinite(values)]
    lo, hi = ((float(np.percentile(ok, 50 * (1 - level))), float(np.percentile(ok, 50 * (1 + level))))
              if len(ok) else (None, None))
    point = None if point is None or not np.isfinite(point) else float(point)
    return {"value": point, "ci": [lo, hi], "level": level,
            "degenerate_resamples": int(len(values) - len(ok))}


def rate_ci(mask, n_boot: int = 1000, seed: int = 0) -> dict:
    """A rate (mean of a boolean array of n items) with a seeded percentile bootstrap 95% CI."""
    x = np.asarray(mask, dtype=np.float64)
    if not len(x):
        return {**_ci(np.array([]), None), "n": 0}
    w = bootstrap_weights(len(x), n_boot, seed)
    return {**_ci(w @ x, float(x.mean())), "n": int(len(x))}


def difference_ci(a, b, n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired difference of two rates over the same n items, mean(a) - mean(b), with a seeded
    bootstrap 95% CI (items resampled together)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not len(a):
        return {**_ci(np.array([]), None), "n": 0}
    w = bootstrap_weights(len(a), n_boot, seed)
    return {**_ci(w @ (a - b), float((a - b).mean())), "n": int(len(a)),
            "a": float(a.mean()), "b": float(b.mean())}


MIN_FREE_CELLS = 3  # Pearson r over fewer cells is +-1 or undefined whatever the models do


def free_cells(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Mask (S, T) of the grid cells the weights decide: a cell that holds one and the same value
    on every query of both models (e.g. restoring the corrupted token's own embedding restores
    the answer; restoring a token before it changes nothing) is fixed by the architecture and
    says nothing about the path. Per-query arrays (N, S, T); stage axes depth-aligned."""
    k = max(xa.shape[1], xb.shape[1])
    both = np.concatenate([to_depth(xa.astype(np.float64), k), to_depth(xb.astype(np.float64), k)])
    if not len(both):
        return np.zeros(both.shape[1:], bool)
    return np.ptp(both, axis=0) > 1e-9


def grid_correlation(xa: np.ndarray, xb: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     mask: np.ndarray | None = None) -> dict:
    """Pearson r of the query-mean grids of per-query arrays (N, S, T), with bootstrap CI;
    ``mask`` (S, T): only those cells (None when fewer than MIN_FREE_CELLS)."""
    k = max(xa.shape[1], xb.shape[1])
    fa = to_depth(xa.astype(np.float64), k).reshape(len(xa), -1)
    fb = to_depth(xb.astype(np.float64), k).reshape(len(xb), -1)
    if mask is not None:
        keep = np.asarray(mask, bool).reshape(-1)
        if keep.sum() < MIN_FREE_CELLS:
            return _ci(np.array([]), None)
        fa, fb = fa[:, keep], fb[:, keep]
    point = pearson_rows(fa.mean(0)[None], fb.mean(0)[None])[0]
    w = bootstrap_weights(len(fa), n_boot, seed)
    return _ci(pearson_rows(w @ fa, w @ fb), point)


def first_found_agreement(ranks_a: np.ndarray, ranks_b: np.ndarray, pos_a: list[int],
                          pos_b: list[int], n_boot: int = 1000, seed: int = 0) -> dict:
    """Agreement of the (normalised) depth where the bridge first becomes the top-1 decode."""
    fa, fb = first_found_stage(ranks_a, pos_a), first_found_stage(ranks_b, pos_b)
    sa, sb = ranks_a.shape[1], ranks_b.shape[1]
    both = (fa >= 0) & (fb >= 0)
    da = fa[both] / max(1, sa - 1)
    db = fb[both] / max(1, sb - 1)
    diff = np.abs(da - db)
    out = {"found_a": float((fa >= 0).mean()), "found_b": float((fb >= 0).mean()),
           "found_both": int(both.sum()),
           "median_depth_a": float(np.median(da)) if both.any() else None,
           "median_depth_b": float(np.median(db)) if both.any() else None,
           "same_stage_rate": float((fa[both] == fb[both]).mean()) if both.any() and sa == sb else None}
    if both.any():
        w = bootstrap_weights(len(diff), n_boot, seed + 1)
        out["mean_abs_depth_diff"] = _ci(w @ diff, float(diff.mean()))
    else:
        out["mean_abs_depth_diff"] = _ci(np.array([]), None)
    return out


def path_positions(lens) -> list[str] | str:
    """Positions where the first hop can be resolved: r1 and r2 (causal), all (recursive)."""
    return ["r1", "r2"] if lens.causal else "auto"


def check_layouts(model_a, model_b) -> None:
    if model_a.layout != model_b.layout:
        la, lb = (", ".join(position_labels(0, m.layout)) for m in (model_a, model_b))
        raise GroklabError(f"compare: input layouts differ (A: {la}; B: {lb}) (allowed: two "
                           "causal models (decoder/looped) or two recursive models of one format)")


def check_same_graph(dataset_a, dataset_b, queries, bridges: np.ndarray | None = None) -> None:
    """Refuse to compare models whose datasets disagree on the queries' facts: every hop
    (e_i, r_(i+1)) -> e_(i+1) of each query's chain h, b1 .. b(K-1), t must be a fact of B.
    ``bridges`` (N, K-1); None: two-hop queries (their one bridge)."""
    if list(dataset_a.vocab) != list(dataset_b.vocab):
        raise GroklabError(f"compare: vocabularies differ ({dataset_a.path} vs {dataset_b.path}) "
                           "(allowed: runs on the same knowledge graph)")
    atomic = np.asarray(dataset_b.atomic, dtype=np.int64)
    table = {(int(h), int(r)): int(t) for h, r, t in atomic[:, :3]}
    if bridges is None:
        bridges = queries.bridge.numpy()[:, None]
    k = bridges.shape[1] + 1
    chain = np.column_stack([queries.tokens[:, 0], bridges, queries.target.numpy()])
    relations = queries.tokens[:, 1:k + 1]    # a k-hop dataset pads queries after r_k
    ok = all(table.get((int(e), int(r))) == int(nxt)
             for row, rels in zip(chain, relations) for e, r, nxt in zip(row[:-1], rels, row[1:]))
    if not ok:
        raise GroklabError(f"compare: the facts of split {queries.split!r} differ in "
                           f"{dataset_b.path} (allowed: runs on the same knowledge graph)")


def check_same_task(dataset_a, dataset_b) -> str:
    """The task both runs' datasets share (composition | comparison); one-line error otherwise."""
    tasks = [d.manifest.get("task", "composition") for d in (dataset_a, dataset_b)]
    if tasks[0] != tasks[1]:
        raise GroklabError(f"compare: tasks differ (A: {tasks[0]}; B: {tasks[1]}) (allowed: two "
                           "runs of the same task, composition or comparison)")
    return tasks[0]


def answer_columns(model, n_query_tokens: int, n_positions: int) -> list[int]:
    """Input positions from which a patch or a decode can reach the answer: a causal model's
    query tokens (its answer is read at the last of them; the ``<pad>`` positions of a wider
    k-hop dataset come after it), every position of a non-causal model."""
    return list(range(n_query_tokens if model.causal else n_positions))


def trace_columns(res: TraceResult, cols: list[int]) -> TraceResult:
    """``res`` restricted to the input positions ``cols`` (grid columns)."""
    if cols == list(range(len(res.positions))):
        return res
    return TraceResult(res.cf, res.stages, [res.positions[i] for i in cols], res.reverse,
                       res.top1[:, :, cols], res.prob_clean[:, :, cols],
                       res.prob_corrupt[:, :, cols], res.base_prob_clean,
                       res.source_prob_clean, res.base_top1)


def lens_columns(res: LensResult, cols: list[int]) -> LensResult:
    """``res`` restricted to the input positions ``cols``."""
    if cols == list(range(len(res.positions))):
        return res
    return LensResult(res.queries, res.stages, [res.positions[i] for i in cols],
                      {k: v[:, :, cols] for k, v in res.ranks.items()}, res.prediction, res.causal)


def compare_traces(model_a, model_b, cf, n_boot: int, seed: int,
                   cols: list[int] | None = None, cf_b=None) -> dict:
    """Tracing grids of both models on the counterfactuals ``cf`` and their correlations;
    ``cols``: only these input positions (default all); ``cf_b``: the same inputs with model
    B's own answers (a model trained on other labels, :mod:`groklab.analysis.memoriser`)."""
    tr_a, tr_b = trace_grid(model_a, cf), trace_grid(model_b, cf if cf_b is None else cf_b)
    if cols is not None:
        tr_a, tr_b = trace_columns(tr_a, cols), trace_columns(tr_b, cols)
    trace = {
        "n": len(tr_a), "corrupt": cf.corrupt,
        "a": summarize_trace(tr_a), "b": summarize_trace(tr_b),
        "restored_corr": grid_correlation(tr_a.restored, tr_b.restored, n_boot, seed),
        "prob_corr": grid_correlation(tr_a.prob_clean, tr_b.prob_clean, n_boot, seed),
    }
    free = free_cells(tr_a.restored, tr_b.restored)
    trace["cells"], trace["free_cells"] = int(free.size), int(free.sum())
    trace["restored_corr_free"] = grid_correlation(tr_a.restored, tr_b.restored, n_boot, seed,
                                                   mask=free)
    return trace


def _depth_aligned(trace: dict, lens_stages_a: list, lens_stages_b: list) -> bool:
    return (len(trace["a"]["stages"]) != len(trace["b"]["stages"])
            or len(lens_stages_a) != len(lens_stages_b))


def compare_models(model_a, model_b, dataset, split: str = "test_inferred_iid",
                   corrupt: str | None = None, n: int = 300, seed: int = 0, n_boot: int = 1000,
                   dataset_b=None, require_correct: bool = True, rule: str = "groklab") -> dict:
    """Lens and tracing of both models on the same queries, with similarity scores + CIs.
    ``corrupt`` defaults to r1 (composition) / e1 (comparison); two comparison runs are
    compared by :func:`compare_comparison_models`, runs of different tasks are refused.
    ``rule``: the counterfactual rule (groklab | wang, as ``groklab trace --cf-rule``)."""
    if check_same_task(dataset, dataset_b if dataset_b is not None else dataset) == "comparison":
        return compare_comparison_models(model_a, model_b, dataset, split, corrupt or "e1", n,
                                         seed, n_boot, dataset_b, require_correct, rule)
    corrupt = corrupt or "r1"
    hops = _hops_or_none(dataset, split)
    if hops is not None and hops > 2:
        check_khop_rule(rule, hops, split)
        return compare_khop_models(model_a, model_b, dataset, split, corrupt, n, seed, n_boot,
                                   dataset_b, require_correct)
    if corrupt not in CORRUPTIONS:  # before the lens runs: a typo costs nothing
        raise bad_value("corrupt", corrupt, ", ".join(CORRUPTIONS) + " for composition runs")
    check_layouts(model_a, model_b)
    queries = two_hop_queries(dataset, split, model_a.layout, n=n, seed=seed)
    if dataset_b is not None:
        check_same_graph(dataset, dataset_b, queries)
    # a k-hop dataset pads two-hop queries: a causal model's pad columns cannot reach the answer
    cols = answer_columns(model_a, 3, queries.input_ids.shape[1])
    lens_a = lens_columns(lens_ranks(model_a, queries), cols)
    lens_b = lens_columns(lens_ranks(model_b, queries), cols)
    pos_a = resolve_positions(path_positions(lens_a), lens_a.positions, lens_a.causal, "bridge")
    pos_b = resolve_positions(path_positions(lens_b), lens_b.positions, lens_b.causal, "bridge")
    rr_a, rr_b = 1.0 / lens_a.ranks["bridge"], 1.0 / lens_b.ranks["bridge"]
    lens = {
        "n": len(queries),
        "a": summarize_lens(lens_a), "b": summarize_lens(lens_b),
        "bridge_mrr_corr": grid_correlation(rr_a, rr_b, n_boot, seed),
        "first_found": first_found_agreement(lens_a.ranks["bridge"], lens_b.ranks["bridge"],
                                             pos_a, pos_b, n_boot, seed),
    }
    cf = prepare_counterfactuals([model_a, model_b], dataset, split, corrupt, n, seed,
                                 require_correct, rule=rule)
    trace = compare_traces(model_a, model_b, cf, n_boot, seed, cols)
    return {
        "task": "composition", "hops": 2, "split": split, "seed": seed, "n_boot": n_boot,
        "cf_rule": rule,
        "depth_aligned": _depth_aligned(trace, lens_a.stages, lens_b.stages),
        "similarity": {
            "trace_restored_corr": trace["restored_corr"]["value"],
            "trace_prob_corr": trace["prob_corr"]["value"],
            "lens_bridge_mrr_corr": lens["bridge_mrr_corr"]["value"],
            "first_found_mean_abs_depth_diff": lens["first_found"]["mean_abs_depth_diff"]["value"],
        },
        "lens": lens, "trace": trace,
    }


def _hops_or_none(dataset, split: str) -> int | None:
    """The split's one hop count; None for a split of several (or none: the two-hop path then
    gives its own one-line error)."""
    try:
        return split_hops(dataset, split)
    except GroklabError:
        return None


# ---------------------------------------------------------------- k-hop splits

def khop_bridge_ranks(model, queries, bridges: np.ndarray, batch_size: int = 512
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lens ranks (N, S, T, K-1) of every bridge b_i at every stage of ``model.lens_stages()``
    and position (1 = top-1; ties count against the token, as the lens), the model's own
    answers (N,) and the stages."""
    stages = model.lens_stages()
    device = model_device(model)
    tracked = torch.as_tensor(bridges, dtype=torch.long)
    parts, preds = [], []
    with eval_mode(model):
        for lo in range(0, len(queries), batch_size):
            ids = queries.input_ids[lo:lo + batch_size].to(device)
            pos = queries.answer_pos[lo:lo + batch_size].to(device)
            logits, cache = model.run_with_cache(ids, names=stages)
            preds.append(logits[torch.arange(ids.shape[0], device=device), pos].argmax(-1).cpu())
            toks = tracked[lo:lo + batch_size].to(device)
            per_stage = []
            for name in stages:
                decoded = model.decode_residual(cache[name]).float()
                per_stage.append(torch.stack([_ranks(decoded, toks[:, j])
                                              for j in range(toks.shape[1])], dim=-1))
            parts.append(torch.stack(per_stage, dim=1).to(torch.int32).cpu())
    return torch.cat(parts).numpy(), torch.cat(preds).numpy(), list(stages)


def bridge_positions_khop(causal: bool, j: int, cols: list[int]) -> list[int]:
    """Where bridge b_(j+1) can be resolved and carried: a causal model's r_(j+1) .. r_K (its
    state at r_i is its state for the prefix query h r1 .. ri, whose answer is b_i; before
    r_(j+1) it cannot know b_(j+1)); every position of a non-causal model (the two-hop
    ``path_positions`` rule: r1 and r2 for b1)."""
    return cols[j + 1:] if causal else list(cols)


def compare_khop_models(model_a, model_b, dataset, split: str, corrupt: str = "r1",
                        n: int = 300, seed: int = 0, n_boot: int = 1000, dataset_b=None,
                        require_correct: bool = True) -> dict:
    """:func:`compare_models` on a split of K-hop queries (K >= 3): both models on the same
    queries and the same k-hop counterfactuals (``corrupt`` h | r1 .. rK; analysis/khop.py),
    kept where both answer clean and corrupted right. Lens: per bridge b_i the Pearson r of
    the b_i MRR [stage][position] grids and the agreement of the depth where b_i first is
    the top-1 decode (at r_i .. r_K for causal models, anywhere for non-causal ones); each
    model's bridge-order map (as ``groklab lens --bridge-order``) over the same positions."""
    k = split_hops(dataset, split)
    corrupt_index(corrupt, k)  # before the lens runs: a typo costs nothing
    check_layouts(model_a, model_b)
    queries, bridges = khop_queries(dataset, split, model_a.layout, n=n, seed=seed)
    if dataset_b is not None:
        check_same_graph(dataset, dataset_b, queries, bridges)
    cols = answer_columns(model_a, k + 1, queries.input_ids.shape[1])
    labels = [queries.positions[i] for i in cols]
    names = [f"b{j + 1}" for j in range(k - 1)]
    lens = {"n": len(queries), "bridges": names}
    ranks = {}
    for side, model in (("a", model_a), ("b", model_b)):
        r, pred, stages = khop_bridge_ranks(model, queries, bridges)
        r = r[:, :, cols]
        ranks[side] = r
        correct = pred == queries.target.numpy()
        summary = _order_summary(r == 1, stages, labels)
        summary.update({"n": len(queries), "hops": k, "accuracy": float(correct.mean()),
                        "n_correct": int(correct.sum()),
                        "bridge_mrr": {b: np.round((1.0 / r[..., j]).mean(0), 6).tolist()
                                       for j, b in enumerate(names)}})
        lens[side] = summary
    lens["mrr_corr"], lens["first_found"] = {}, {}
    for j, name in enumerate(names):
        ra, rb = ranks["a"][..., j], ranks["b"][..., j]
        lens["mrr_corr"][name] = grid_correlation(1.0 / ra, 1.0 / rb, n_boot, seed)
        where = bridge_positions_khop(model_a.causal, j, list(range(len(cols))))
        ff = first_found_agreement(ra, rb, where, where, n_boot, seed)
        ff["positions"] = [labels[i] for i in where]
        lens["first_found"][name] = ff
    cf = keep_answered([model_a, model_b], khop_counterfactuals(dataset, queries, corrupt, seed),
                       split, require_correct)
    trace = compare_traces(model_a, model_b, cf, n_boot, seed, cols)
    similarity = {"trace_restored_corr": trace["restored_corr"]["value"],
                  "trace_prob_corr": trace["prob_corr"]["value"]}
    for name in names:
        similarity[f"lens_{name}_mrr_corr"] = lens["mrr_corr"][name]["value"]
        similarity[f"{name}_first_found_mean_abs_depth_diff"] = \
            lens["first_found"][name]["mean_abs_depth_diff"]["value"]
    return {
        "task": "composition", "hops": k, "split": split, "seed": seed, "n_boot": n_boot,
        "positions": labels,
        "depth_aligned": _depth_aligned(trace, lens["a"]["stages"], lens["b"]["stages"]),
        "similarity": similarity, "lens": lens, "trace": trace,
    }


# ---------------------------------------------------------------- the comparison task

def check_same_values(dataset_a, dataset_b, queries) -> None:
    """Refuse comparison runs whose datasets disagree on the queries' (entity, attribute)
    values or labels (another value table)."""
    if list(dataset_a.vocab) != list(dataset_b.vocab):
        raise GroklabError(f"compare: vocabularies differ ({dataset_a.path} vs {dataset_b.path}) "
                           "(allowed: runs on the same attribute values)")
    ta, tb = ValueTable(dataset_a), ValueTable(dataset_b)
    va, vb = query_values(ta, queries), query_values(tb, queries)
    same = all(np.array_equal(x, y) for x, y in zip(va, vb))
    if not same or not np.array_equal(tb.label(*vb), queries.target.numpy()):
        raise GroklabError(f"compare: the values of split {queries.split!r} differ in "
                           f"{dataset_b.path} (allowed: runs on the same attribute values)")


def compare_comparison_lens(lens_a, lens_b, n_boot: int, seed: int) -> dict:
    """Similarity of two models' comparison lens: Pearson r of the reciprocal value rank
    (among the value tokens) of v1 and v2 and of the label mass [stage][position] grids, and
    the agreement of the depth where v1 (at e1) and v2 (at e2) first are the top value."""
    positions = lens_a.positions
    out = {"n": len(lens_a.queries), "a": summarize_comparison_lens(lens_a),
           "b": summarize_comparison_lens(lens_b), "first_found": {}}
    for key, where in (("v1", "e1"), ("v2", "e2")):
        ra, rb = lens_a.value_rank[key], lens_b.value_rank[key]
        out[f"{key}_mrr_corr"] = grid_correlation(1.0 / ra, 1.0 / rb, n_boot, seed)
        at = [positions.index(where)]
        out["first_found"][key] = first_found_agreement(ra, rb, at, at, n_boot, seed)
    out["label_mass_corr"] = grid_correlation(lens_a.label_mass, lens_b.label_mass, n_boot, seed)
    return out


def compare_comparison_models(model_a, model_b, dataset, split: str = "test_inferred_iid",
                              corrupt: str = "e1", n: int = 300, seed: int = 0,
                              n_boot: int = 1000, dataset_b=None,
                              require_correct: bool = True, rule: str = "groklab") -> dict:
    """:func:`compare_models` for two comparison runs: the comparison lens and the tracing with
    label-flipping counterfactuals (analysis/comparison.py), the same queries and the same
    counterfactuals for both (kept where both answer clean and corrupted right)."""
    if corrupt not in COMPARISON_CORRUPTIONS:
        raise bad_value("corrupt", corrupt, ", ".join(COMPARISON_CORRUPTIONS)
                        + " for comparison runs")
    check_layouts(model_a, model_b)
    queries = comparison_queries(dataset, split, model_a.layout, n=n, seed=seed)
    if dataset_b is not None:
        check_same_values(dataset, dataset_b, queries)
    lens = compare_comparison_lens(comparison_lens(model_a, dataset, queries),
                                   comparison_lens(model_b, dataset, queries), n_boot, seed)
    cf = keep_answered([model_a, model_b],
                       build_comparison_counterfactuals(dataset, queries, corrupt, seed=seed,
                                                        rule=rule),
                       split, require_correct)
    trace = compare_traces(model_a, model_b, cf, n_boot, seed)
    return {
        "task": "comparison", "split": split, "seed": seed, "n_boot": n_boot, "cf_rule": rule,
        "depth_aligned": _depth_aligned(trace, lens["a"]["stages"], lens["b"]["stages"]),
        "similarity": {
            "trace_restored_corr": trace["restored_corr"]["value"],
            "trace_prob_corr": trace["prob_corr"]["value"],
            "lens_v1_mrr_corr": lens["v1_mrr_corr"]["value"],
            "lens_v2_mrr_corr": lens["v2_mrr_corr"]["value"],
            "lens_label_mass_corr": lens["label_mass_corr"]["value"],
            "v1_first_found_mean_abs_depth_diff":
                lens["first_found"]["v1"]["mean_abs_depth_diff"]["value"],
        },
        "lens": lens, "trace": trace,
    }
