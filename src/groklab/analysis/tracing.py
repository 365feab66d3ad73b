"""Causal tracing / activation patching over a (stage x position) grid, batched.

Default direction (restoration, as in ROME-style tracing): run the *corrupted* query and
overwrite the state at one (stage, position) with the *clean* run's state there; later stages
are recomputed from the patched state (the hook replaces the activation inside the forward
pass). ``reverse=True`` is Wang et al.'s direction: run the clean query and patch in the
counterfactual's state (their ``causal_tracing_composition.py``).

Per query and cell we record the top-1 answer and the probabilities of the clean answer ``t``
and of the counterfactual answer ``t'``. "Restored" = top-1 is the clean answer ``t``.
"Changed" (Wang et al.'s metric) = top-1 differs from the top-1 of the unpatched run that
receives the patch; in the reverse direction it equals 1 - restored exactly when every clean
answer is right.

Batching: for each stage, one forward pass over (positions x queries) rows stacked in the
batch dimension; the hook of that stage writes row (p, q)'s source state at position p only.
Grid rows are :func:`trace_stages`: the model's residual stages, preceded by the input
embedding ``hook_embed`` for the recursive model (whose input is re-injected at every
z-update, so its first residual stage is not the input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from groklab.analysis.counterfactual import Counterfactuals, build_counterfactuals
from groklab.analysis.queries import (Queries, batched_answer_logits, eval_mode, model_device,
                                      two_hop_queries)
from groklab.errors import GroklabError


def input_stage(model) -> str:
    """The hook whose full overwrite with the clean state reproduces the clean run."""
    # a model whose input is re-injected at every update (recursive: x at every z-update) has no
    # residual stage that carries the whole input; its input embedding is patched instead
    if not model.causal:
        return "hook_embed"
    return model.residual_stages()[0]


def trace_stages(model) -> list[str]:
    """Grid rows, earliest first: the input stage, then every residual stage."""
    stages = model.residual_stages()
    first = input_stage(model)
    return stages if stages[0] == first else [first] + stages


def patch_run(model, input_ids: torch.Tensor, stage: str, source: torch.Tensor,
              pos_mask: torch.Tensor) -> torch.Tensor:
    """Forward ``input_ids`` with the state at ``stage`` replaced by ``source`` where
    ``pos_mask`` (B, T) is true. Returns logits (B, T, V)."""
    mask = pos_mask[:, :, None]

    def patch(x, hook):
        return torch.where(mask, source.to(x.dtype), x)

    return model.run_with_hooks(input_ids, [(stage, patch)])


@dataclass
class TraceResult:
    """Per-query patching outcomes; arrays are (N, stages, positions)."""

    cf: Counterfactuals
    stages: list[str]
    positions: list[str]
    reverse: bool
    top1: np.ndarray
    prob_clean: np.ndarray      # probability of the clean answer t
    prob_corrupt: np.ndarray    # probability of the counterfactual answer t'
    base_prob_clean: np.ndarray     # unpatched run that receives the patch: p(t)
    source_prob_clean: np.ndarray   # unpatched run that provides the states: p(t)
    base_top1: np.ndarray           # (N,) top-1 answer of the unpatched run receiving the patch

    @property
    def restored(self) -> np.ndarray:
        return self.top1 == self.cf.clean.target.numpy()[:, None, None]

    @property
    def changed(self) -> np.ndarray:
        """Wang et al.'s metric: the patch changed the top-1 answer of the run it went into."""
        return self.top1 != self.base_top1[:, None, None]

    @property
    def flipped(self) -> np.ndarray:
        return self.top1 == self.cf.corrupted.target.numpy()[:, None, None]

    def __len__(self) -> int:
        return self.top1.shape[0]


def _cache(model, queries: Queries, stages: list[str], batch_size: int) -> dict[str, torch.Tensor]:
    device = model_device(model)
    parts: dict[str, list[torch.Tensor]] = {s: [] for s in stages}
    with eval_mode(model):
        for lo in range(0, len(queries), batch_size):
            _, cache = model.run_with_cache(queries.input_ids[lo:lo + batch_size].to(device),
                                            names=stages)
            for s in stages:
                parts[s].append(cache[s])
    return {s: torch.cat(v) for s, v in parts.items()}


def _answer_probs(logits, answer_pos, t_clean, t_corrupt):
    """(top-1, p(t), p(t')); p(t') is NaN where the counterfactual has no defined answer
    (Wang et al.'s counterfactual rule allows that, t' = -1)."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    probs = logits[rows, answer_pos].float().softmax(-1)
    p_corr = probs[rows, t_corrupt.clamp(min=0)]
    p_corr = torch.where(t_corrupt >= 0, p_corr, torch.full_like(p_corr, float("nan")))
    return (probs.argmax(-1), probs[rows, t_clean], p_corr)


def trace_grid(model, cf: Counterfactuals, stages: list[str] | None = None,
               reverse: bool = False, batch_size: int = 8192) -> TraceResult:
    """Patch every (stage, position) for every query; one forward per stage and row chunk."""
    stages = list(stages) if stages is not None else trace_stages(model)
    target_q, source_q = (cf.clean, cf.corrupted) if reverse else (cf.corrupted, cf.clean)
    n, t_len = target_q.input_ids.shape
    if n == 0:
        raise GroklabError("queries=0 is invalid (allowed: at least one query to trace)")
    device = model_device(model)
    source = _cache(model, source_q, stages, max(1, batch_size // t_len))
    ids_all = target_q.input_ids.to(device)
    pos_all = target_q.answer_pos.to(device)
    t_clean = cf.clean.target.to(device)
    t_corr = cf.corrupted.target.to(device)
    eye = torch.eye(t_len, dtype=torch.bool, device=device)
    out = {k: np.zeros((n, len(stages), t_len), dtype) for k, dtype in
           (("top1", np.int64), ("p_clean", np.float32), ("p_corr", np.float32))}
    chunk = max(1, batch_size // t_len)
    with eval_mode(model):
        for si, stage in enumerate(stages):
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                q = hi - lo
                ids = ids_all[lo:hi].repeat(t_len, 1)                  # rows (p, q), p major
                src = source[stage][lo:hi].repeat(t_len, 1, 1)
                mask = eye[:, None, :].expand(t_len, q, t_len).reshape(t_len * q, t_len)
                logits = patch_run(model, ids, stage, src, mask)
                top1, pc, pr = _answer_probs(logits, pos_all[lo:hi].repeat(t_len),
                                             t_clean[lo:hi].repeat(t_len),
                                             t_corr[lo:hi].repeat(t_len))
                out["top1"][lo:hi, si] = top1.view(t_len, q).T.cpu().numpy()
                out["p_clean"][lo:hi, si] = pc.view(t_len, q).T.cpu().numpy()
                out["p_corr"][lo:hi, si] = pr.view(t_len, q).T.cpu().numpy()
    base, base_top1 = _clean_answer_prob(model, target_q, cf.clean.target)
    src_p, _ = _clean_answer_prob(model, source_q, cf.clean.target)
    return TraceResult(cf, stages, list(target_q.positions), reverse, out["top1"],
                       out["p_clean"], out["p_corr"], base, src_p, base_top1)


def trace_grid_loop(model, cf: Counterfactuals, stages: list[str] | None = None,
                    reverse: bool = False) -> TraceResult:
    """Reference implementation: one query and one cell per forward (for checks/benchmarks)."""
    stages = list(stages) if stages is not None else trace_stages(model)
    target_q, source_q = (cf.clean, cf.corrupted) if reverse else (cf.corrupted, cf.clean)
    n, t_len = target_q.input_ids.shape
    device = model_device(model)
    top1 = np.zeros((n, len(stages), t_len), np.int64)
    p_clean = np.zeros((n, len(stages), t_len), np.float32)
    p_corr = np.zeros_like(p_clean)
    with eval_mode(model):
        for i in range(n):
            src_ids = source_q.input_ids[i:i + 1].to(device)
            _, cache = model.run_with_cache(src_ids, names=stages)
            ids = target_q.input_ids[i:i + 1].to(device)
            pos = target_q.answer_pos[i:i + 1].to(device)
            tc = cf.clean.target[i:i + 1].to(device)
            tr = cf.corrupted.target[i:i + 1].to(device)
            for si, stage in enumerate(stages):
                for p in range(t_len):
                    mask = torch.zeros(1, t_len, dtype=torch.bool, device=device)
                    mask[0, p] = True
                    logits = patch_run(model, ids, stage, cache[stage], mask)
                    a, b, c = _answer_probs(logits, pos, tc, tr)
                    top1[i, si, p], p_clean[i, si, p], p_corr[i, si, p] = a.item(), b.item(), c.item()
    base, base_top1 = _clean_answer_prob(model, target_q, cf.clean.target)
    src_p, _ = _clean_answer_prob(model, source_q, cf.clean.target)
    return TraceResult(cf, stages, list(target_q.positions), reverse, top1, p_clean, p_corr,
                       base, src_p, base_top1)


def _clean_answer_prob(model, queries: Queries, t_clean: torch.Tensor
                       ) -> tuple[np.ndarray, np.ndarray]:
    """p(t) and the top-1 answer of the unpatched run on ``queries``."""
    logits = batched_answer_logits(model, queries.input_ids, queries.answer_pos)
    return (logits.softmax(-1)[torch.arange(len(t_clean)), t_clean].numpy(),
            logits.argmax(-1).numpy())


def correct_mask(model, cf: Counterfactuals) -> np.ndarray:
    """Queries whose clean answer t and counterfactual answer t' the model both gets right
    (a counterfactual without a defined answer, t' = -1, only needs the clean one right)."""
    clean = batched_answer_logits(model, cf.clean.input_ids, cf.clean.answer_pos).argmax(-1)
    corr = batched_answer_logits(model, cf.corrupted.input_ids, cf.corrupted.answer_pos).argmax(-1)
    undefined = cf.corrupted.target < 0
    return ((clean == cf.clean.target) & ((corr == cf.corrupted.target) | undefined)).numpy()


def subset_counterfactuals(cf: Counterfactuals, keep: np.ndarray, **stats) -> Counterfactuals:
    keep = np.nonzero(np.asarray(keep))[0] if np.asarray(keep).dtype == bool else np.asarray(keep)
    return Counterfactuals(cf.corrupt, cf.clean.subset(keep), cf.corrupted.subset(keep),
                           {**cf.stats, **stats})


def prepare_counterfactuals(models, dataset, split: str, corrupt: str, n: int = 300,
                            seed: int = 0, require_correct: bool = True,
                            match_kind: bool = True, rule: str = "groklab",
                            rows=None) -> Counterfactuals:
    """Counterfactuals for ``n`` queries of ``split`` (or exactly the split ``rows`` given); with
    ``require_correct`` only those that every model in ``models`` answers right both clean and
    corrupted. ``rule``: the counterfactual rule (:mod:`groklab.analysis.counterfactual`).
    Counts go to ``stats``.

    Queries are sampled before filtering: ``n`` is an upper bound on the queries traced.
    """
    models = models if isinstance(models, (list, tuple)) else [models]
    layouts = {m.layout for m in models}
    if len(layouts) != 1:
        raise GroklabError("models=mixed input layouts cannot share counterfactual inputs "
                           "(allowed: models of the same layout)")
    queries = two_hop_queries(dataset, split, layouts.pop(), n=n, seed=seed, rows=rows)
    cf = build_counterfactuals(dataset, queries, corrupt, seed=seed, match_kind=match_kind,
                               rule=rule)
    return keep_answered(models, cf, split, require_correct)


def keep_answered(models, cf: Counterfactuals, split: str, require_correct: bool) -> Counterfactuals:
    """With ``require_correct``, the counterfactuals every model answers right clean and
    corrupted (counts in ``stats``); an empty result is a one-line error."""
    keep = np.ones(len(cf.clean), dtype=bool)
    for m in models:
        keep &= correct_mask(m, cf) if len(cf.clean) else np.zeros(0, bool)
    stats = {"both_correct": int(keep.sum()), "require_correct": require_correct}
    if require_correct:
        cf = subset_counterfactuals(cf, keep, **stats)
    else:
        cf.stats.update(stats)
    if len(cf.clean) == 0:
        raise GroklabError(f"split={split!r}: no query left to trace (with counterfactual: "
                           f"{cf.stats['with_counterfactual']}, answered right clean and "
                           f"corrupted: {stats['both_correct']}); allowed: a model that answers "
                           "some queries right, or --include-wrong")
    return cf


def summarize_trace(res: TraceResult) -> dict:
    """JSON-ready grids (mean over queries) and baselines."""
    n = len(res)
    empty = np.zeros(res.top1.shape[1:])
    grids = {
        "restored": res.restored.mean(0) if n else empty,
        "changed": res.changed.mean(0) if n else empty,
        "prob_clean": res.prob_clean.mean(0) if n else empty,
        "flipped": res.flipped.mean(0) if n else empty,
    }
    return {
        "split": res.cf.clean.split,
        "corrupt": res.cf.corrupt,
        "reverse": res.reverse,
        "n": n,
        "stages": list(res.stages),
        "positions": list(res.positions),
        "direction": "wang (counterfactual state into the clean run)" if res.reverse
                     else "restoration (clean state into the corrupted run)",
        "restored": np.round(grids["restored"], 6).tolist(),
        "changed": np.round(grids["changed"], 6).tolist(),
        "prob_clean": np.round(grids["prob_clean"], 6).tolist(),
        "flipped": np.round(grids["flipped"], 6).tolist(),
        "baseline": {
            "patched_run_prob_clean": float(res.base_prob_clean.mean()) if n else None,
            "source_run_prob_clean": float(res.source_prob_clean.mean()) if n else None,
            "patched_run_clean_correct": float((res.base_top1 == res.cf.clean.target.numpy()).mean())
            if n else None,
        },
        "counterfactuals": dict(res.cf.stats),
    }
