"""Lens and tracing for k-hop queries ``h r1 .. rk -> t`` (bridges b1..b(k-1)); docs/khop.md.

- :func:`khop_queries`: the k-hop queries of a split (one hop count per split, as the per-hop
  probes are) as :class:`~groklab.analysis.queries.Queries` (tokens (N, k+1), positions
  ``h r1 .. rk`` + the layout's extra slots) and their bridges (N, k-1).
- :func:`bridge_order`: the logit lens per bridge: for each b_i the first stage (and the
  position there) where it is the top-1 decode, as a stage x hop map, and how often the
  bridges resolve in order (first(b1) < first(b2) < ...), beside a chance control.
- :func:`khop_counterfactuals`: corrupt any input token (``h`` or ``r_i``) with another
  entity / relation such that the chain still exists in the graph, the answer changes and every
  hop keeps its ID/OOD kind; the result feeds :func:`groklab.analysis.tracing.trace_grid`.
"""

from __future__ import annotations

import numpy as np
import torch

from groklab.analysis.counterfactual import Counterfactuals
from groklab.analysis.lens import _ranks
from groklab.analysis.queries import (EXTRA_LABELS, Queries, eval_mode, layout_of, model_device,
                                     select_rows)
from groklab.data import flags as F
from groklab.errors import GroklabError, bad_value
from groklab.models import make_inputs


def khop_labels(k: int, layout, width: int | None = None) -> list[str]:
    """Position labels of a k-hop query padded to ``width`` tokens: ``h r1 .. rk``, the
    layout's slots (``mask`` / ``ans end``) right after the query, then ``pad`` positions."""
    labels = ["h", *(f"r{i}" for i in range(1, k + 1))] + EXTRA_LABELS[layout_of(layout)]
    extra = (width or k + 1) - (k + 1)
    return labels + [f"pad{i}" for i in range(1, extra + 1)]


def query_hops(queries: Queries) -> int:
    """k of k-hop queries (their ``r_i`` position labels)."""
    return sum(1 for p in queries.positions if p[:1] == "r" and p[1:].isdigit())


def split_hops(dataset, split: str) -> int:
    """The hop count of a split's compositions (GroklabError unless there is exactly one)."""
    data = dataset.split(split)
    ks = sorted(set((np.asarray(data.length)[np.asarray(data.bridge) >= 0] - 1).tolist()))
    if len(ks) != 1:
        raise bad_value("split", split, "a split of compositions of one hop count (e.g. "
                        f"test_inferred_iid_h3); this one has hop counts {ks or 'none'}")
    return ks[0]


def khop_queries(dataset, split: str, layout, n: int | None = None, seed: int = 0,
                 rows: np.ndarray | None = None) -> tuple[Queries, np.ndarray]:
    """(queries, bridges (N, k-1)) of ``split`` for a model of ``layout``; a seeded sample of n,
    or exactly the split ``rows`` given (``n`` is then ignored).
    Inputs keep the dataset's full width (``<pad>`` after the query) as in training: a
    non-causal model sees those positions, so a shorter input would be another computation."""
    if dataset.manifest.get("task", "composition") != "composition":
        raise bad_value("dataset.task", dataset.manifest.get("task"),
                        "composition (k-hop lens and tracing need bridges)")
    k = split_hops(dataset, split)
    layout = layout_of(layout)
    data = dataset.split(split)
    is_query = (np.asarray(data.length) == k + 1) & (np.asarray(data.bridge) >= 0)
    rows = select_rows(is_query, split, f"{k}-hop queries", n, seed, rows)
    tokens = np.asarray(data.tokens[rows], dtype=np.int64)
    input_ids, answer_pos = make_inputs(tokens, np.full(len(rows), k + 1), layout)
    q = Queries(split, rows, tokens, np.asarray(data.flags[rows], dtype=np.int64), input_ids,
                answer_pos, torch.as_tensor(np.asarray(data.target[rows]), dtype=torch.long),
                torch.as_tensor(np.asarray(data.bridge[rows]), dtype=torch.long),
                khop_labels(k, layout, tokens.shape[1]), layout)
    return q, np.asarray(data.bridges[rows, :k - 1], dtype=np.int64)


# ---------------------------------------------------------------- lens: bridge order

def bridge_order(model, queries: Queries, bridges: np.ndarray, batch_size: int = 256,
                 seed: int = 0, positions: list[str] | None = None) -> dict:
    """Stage x hop map of where each bridge is first decoded (JSON-ready).

    ``first_stage[s][i]``: fraction of queries whose b_(i+1) is first the top-1 decode (at any
    position) at stage s; ``top1[s][i]``: fraction with b_(i+1) top-1 somewhere at stage s;
    ``first_position[p][i]``: where (position) it is at that first stage; ``found[i]``;
    ``in_order``: among queries where every bridge is found, the fraction with strictly
    increasing first stages (``in_order_or_tied``: non-decreasing); ``control``: the same
    found rate for a random entity that is none of the query's h, bridges and t (chance).
    Also over the queries answered correctly (``*_correct``). ``positions``: count decodes at
    these position labels only (e.g. ``["r3"]``, the answer position of a causal model: a causal
    model's state at r_i is its state for the prefix query h r1 .. ri); None = every position."""
    stages = model.lens_stages()
    device = model_device(model)
    n, k1 = bridges.shape
    if n == 0:
        raise GroklabError("queries=0 is invalid (allowed: a split with k-hop queries)")
    control = _control(queries, bridges, seed)
    tracked = torch.as_tensor(np.column_stack([bridges, control]), dtype=torch.long)
    hits, preds = [], []
    with eval_mode(model):
        for lo in range(0, n, batch_size):
            ids = queries.input_ids[lo:lo + batch_size].to(device)
            pos = queries.answer_pos[lo:lo + batch_size].to(device)
            logits, cache = model.run_with_cache(ids, names=stages)
            preds.append(logits[torch.arange(ids.shape[0], device=device), pos].argmax(-1).cpu())
            toks = tracked[lo:lo + batch_size].to(device)
            per_stage = []
            for name in stages:
                decoded = model.decode_residual(cache[name]).float()
                per_stage.append(torch.stack([_ranks(decoded, toks[:, j]) == 1
                                              for j in range(toks.shape[1])], dim=-1))
            hits.append(torch.stack(per_stage, dim=1).cpu())     # (B, S, T, k-1 + 1)
    hit = torch.cat(hits).numpy()
    labels = list(queries.positions)
    if positions is not None:
        bad = [p for p in positions if p not in labels]
        if bad or not positions:
            raise bad_value("positions", ",".join(positions), "labels from " + ", ".join(labels))
        idx = [labels.index(p) for p in positions]
        hit, labels = hit[:, :, idx], [labels[i] for i in idx]
    correct = torch.cat(preds).numpy() == queries.target.numpy()
    out = _order_summary(hit[..., :k1], stages, labels)
    ctrl = hit[..., k1].any(axis=(1, 2))
    out.update({"n": int(n), "hops": k1 + 1, "accuracy": float(correct.mean()),
                "n_correct": int(correct.sum()), "control": float(ctrl.mean())})
    if correct.any():
        sub = _order_summary(hit[correct][..., :k1], stages, labels)
        out.update({f"{key}_correct": sub[key] for key in ("found", "in_order", "in_order_or_tied",
                                                            "first_stage", "mean_first_stage")})
    out["split"] = queries.split
    return out


def _control(queries: Queries, bridges: np.ndarray, seed: int) -> np.ndarray:
    """Per query an entity token that is not its head, a bridge or its answer."""
    rng = np.random.default_rng([seed, 17])
    pool = np.unique(np.concatenate([bridges.ravel(), queries.target.numpy()]))
    out = np.empty(len(bridges), np.int64)
    for i in range(len(bridges)):
        bad = set(bridges[i].tolist()) | {int(queries.tokens[i, 0]), int(queries.target[i])}
        choices = [t for t in pool.tolist() if t not in bad] or pool.tolist()
        out[i] = choices[rng.integers(len(choices))]
    return out


def _order_summary(hit: np.ndarray, stages: list[str], positions: list[str]) -> dict:
    """hit (N, S, T, B) bool -> the bridge-order map and rates."""
    n, s, t, b = hit.shape
    any_pos = hit.any(axis=2)                                  # (N, S, B)
    found = any_pos.any(axis=1)                                # (N, B)
    first = np.where(found, any_pos.argmax(axis=1), -1)        # (N, B)
    first_stage = np.zeros((s, b))
    first_position = np.zeros((t, b))
    for j in range(b):
        for q in np.nonzero(found[:, j])[0]:
            first_stage[first[q, j], j] += 1
            first_position[int(hit[q, first[q, j], :, j].argmax()), j] += 1
    every = found.all(axis=1)
    steps = np.diff(first[every], axis=1) if b > 1 else np.zeros((int(every.sum()), 0))
    mean_first = [float(first[found[:, j], j].mean()) if found[:, j].any() else None for j in range(b)]
    return {
        "stages": list(stages), "positions": list(positions),
        "bridges": [f"b{j + 1}" for j in range(b)],
        "found": np.round(found.mean(0), 6).tolist(),
        "top1": np.round(any_pos.mean(0), 6).tolist(),
        "first_stage": np.round(first_stage / max(n, 1), 6).tolist(),
        "first_position": np.round(first_position / max(n, 1), 6).tolist(),
        "mean_first_stage": mean_first,
        "all_found": float(every.mean()),
        "in_order": float((steps > 0).all(axis=1).mean()) if every.any() else None,
        "in_order_or_tied": float((steps >= 0).all(axis=1).mean()) if every.any() else None,
    }


# ---------------------------------------------------------------- tracing: any input token

def check_khop_rule(rule: str, hops: int, split: str) -> None:
    """Wang et al.'s counterfactual rules stop at two hops: on a K-hop split only groklab's."""
    if rule != "groklab":
        raise bad_value("cf_rule", rule, f"groklab on the {hops}-hop split {split} (Wang et "
                        "al.'s counterfactual rules are defined for two-hop composition and "
                        "comparison only)")


def corrupt_index(corrupt: str, k: int) -> int:
    """Input position of ``corrupt`` (``h``, ``r1`` .. ``rk``)."""
    names = khop_labels(k, "causal")
    if corrupt not in names:
        raise bad_value("corrupt", corrupt, ", ".join(names) + f" (the tokens of a {k}-hop query)")
    return names.index(corrupt)


def khop_counterfactuals(dataset, queries: Queries, corrupt: str, seed: int = 0,
                         match_kind: bool = True) -> Counterfactuals:
    """Each query with the token at ``corrupt`` replaced (seeded order over candidates) so that
    the chain exists, the answer changes and (``match_kind``) every hop keeps its OOD kind."""
    k = query_hops(queries)
    j = corrupt_index(corrupt, k)
    cfg = dataset.config
    E, R = int(cfg["entities"]), int(cfg["relations"])
    tail = {(int(h), int(r)): int(t) for h, r, t, _ in dataset.atomic.tolist()}
    ood = {(int(h), int(r)) for h, r, _, fl in dataset.atomic.tolist() if fl & F.HOP1_OOD}
    candidates = np.arange(3, 3 + E) if j == 0 else np.arange(3 + E, 3 + E + R)
    rng = np.random.default_rng([seed, 23, j])

    def walk(tokens):
        e, kinds = int(tokens[0]), []
        for r in tokens[1:k + 1]:
            if (e, int(r)) not in tail:
                return None, None
            kinds.append((e, int(r)) in ood)
            e = tail[(e, int(r))]
        return e, kinds

    keep, new_tokens, new_target, new_bridge = [], [], [], []
    for i, tok in enumerate(queries.tokens):
        t0, kind0 = walk(tok)
        for c in rng.permutation(candidates):
            if c == tok[j]:
                continue
            alt = tok.copy()
            alt[j] = c
            t1, kind1 = walk(alt)
            if t1 is None or t1 == t0 or (match_kind and kind1 != kind0):
                continue
            keep.append(i)
            new_tokens.append(alt)
            new_target.append(t1)
            e = int(alt[0])
            new_bridge.append(tail[(e, int(alt[1]))])
            break
    keep = np.asarray(keep, dtype=np.int64)
    clean = queries.subset(keep)
    tokens = np.asarray(new_tokens, dtype=np.int64).reshape(len(keep), queries.tokens.shape[1])
    ids, pos = make_inputs(tokens, np.full(len(keep), k + 1), queries.layout)
    corrupted = Queries(queries.split, clean.index.copy(), tokens, clean.flags.copy(), ids, pos,
                        torch.as_tensor(np.asarray(new_target, dtype=np.int64)),
                        torch.as_tensor(np.asarray(new_bridge, dtype=np.int64)),
                        list(queries.positions), queries.layout)
    stats = {"queries": len(queries), "with_counterfactual": int(len(keep)), "rule": "khop",
             "undefined_answer": 0, "hops": k}
    return Counterfactuals(corrupt, clean, corrupted, stats)


def prepare_khop_counterfactuals(model, dataset, split: str, corrupt: str, n: int = 300,
                                 seed: int = 0, require_correct: bool = True,
                                 rows=None) -> Counterfactuals:
    """k-hop counterfactuals for ``n`` queries of ``split`` (or exactly the split ``rows``
    given); with ``require_correct`` only those the model answers right clean and corrupted
    (as ``tracing.prepare_counterfactuals``)."""
    from groklab.analysis.tracing import keep_answered

    queries, _ = khop_queries(dataset, split, model.layout, n, seed, rows=rows)
    return keep_answered([model], khop_counterfactuals(dataset, queries, corrupt, seed), split,
                         require_correct)
