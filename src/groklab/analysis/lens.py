"""Logit lens: decode every residual state at every position through the final norm
(recomputed on that state, ``model.decode_residual``) and the unembedding.

For each query and each (stage, position) we keep the rank (1 = top-1 decode) of the
bridge ``b``, of the answer ``t`` and of the relation ``r2`` (Wang et al. also track r2 at
its own position). Aggregates per split: mean reciprocal rank and top-1 rate per
(stage, position), and "found" rates: the token is the top-1 decode at some stage and at
one of the *allowed* positions.

Two rules decide "found" (docs/analysis.md, "Lens rules"); every summary says which it used.

``study`` (He et al.'s code, study.md section 9): the stages are ``model.lens_stages()`` (for
the recursive model the initial answer state, every latent update and every answer commit),
and a token is found when it is the top-1 decode at *any* stage and *any* position.
:func:`study_rule_summary` gives it, for the bridge b and for the answer t ("target found"),
over all queries and over the queries the model answers correctly, beside the chance control.

``groklab`` (stricter for causal models, the default of :func:`summarize_lens`): allowed
positions (``positions="auto"``):
- causal models (decoder, looped): bridge and answer at ``r2`` (the answer position). Not
  ``r1``: a causal model's state at r1 of ``h r1 r2`` is exactly its state for the atomic
  query ``h r1``, which it is trained to answer with ``b``, so ``b`` there is hop-1 recall
  (the per-position rates, r1 included, are still reported). Not ``h``: it cannot know ``b``.
- recursive (non-causal, answer slot): every position, for bridge and answer.
``"all"`` or an explicit list of labels (e.g. ``["r1"]``) override this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from groklab.analysis.queries import Queries, eval_mode, model_device, two_hop_queries
from groklab.errors import bad_value

TRACKED = ("bridge", "answer", "r2", "control")


@dataclass
class LensResult:
    """Per-query lens ranks of one model on one set of queries."""

    queries: Queries
    stages: list[str]
    positions: list[str]
    ranks: dict[str, np.ndarray]   # TRACKED name -> (N, S, T) int32, 1 = top-1
    # "control": the bridge of another query, chosen to differ from this query's h, b and t:
    # its "found" rate is the chance level of "found" for this model, vocabulary and grid.
    prediction: np.ndarray         # (N,) the model's own answer (argmax at the answer position)
    causal: bool

    @property
    def correct(self) -> np.ndarray:
        return self.prediction == self.queries.target.numpy()


def control_tokens(bridge: torch.Tensor, *exclude: torch.Tensor) -> torch.Tensor:
    """For each query, the bridge of another query that differs from its own bridge and from
    each ``exclude`` token of that query (its head and answer: the study-format model
    reproduces h at its own position and t is the answer, so neither is a fair control)."""
    control = bridge.clone()
    if len(bridge) == 0:
        return control

    def clash(c):
        bad = c == bridge
        for e in exclude:
            bad |= c == e
        return bad

    for shift in range(1, len(bridge)):
        same = clash(control)
        if not same.any():
            break
        control = torch.where(same, bridge.roll(shift), control)
    return control


def _tracked_tokens(queries: Queries) -> dict[str, torch.Tensor]:
    head = torch.as_tensor(queries.tokens[:, 0], dtype=torch.long)
    return {"bridge": queries.bridge, "answer": queries.target,
            "r2": torch.as_tensor(queries.tokens[:, 2], dtype=torch.long),
            "control": control_tokens(queries.bridge, head, queries.target)}


def _ranks(logits: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Rank of ``token`` (B,) in logits (B, T, V) at every position -> (B, T).

    Ties count against the token (pessimistic): a decode where several tokens share the top
    logit is not a top-1 decode of any of them."""
    tok_logit = logits.gather(-1, token.view(-1, 1, 1).expand(-1, logits.shape[1], 1))
    return (logits >= tok_logit).sum(-1)


def lens_ranks(model, queries: Queries, stages: list[str] | None = None,
               batch_size: int = 512) -> LensResult:
    """Decode every stage of ``model.lens_stages()`` (or ``stages``) for every query."""
    stages = list(stages) if stages is not None else model.lens_stages()
    device = model_device(model)
    tracked = _tracked_tokens(queries)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in tracked}
    preds = []
    with eval_mode(model):
        for lo in range(0, len(queries), batch_size):
            ids = queries.input_ids[lo:lo + batch_size].to(device)
            pos = queries.answer_pos[lo:lo + batch_size].to(device)
            logits, cache = model.run_with_cache(ids, names=stages)
            rows = torch.arange(ids.shape[0], device=device)
            preds.append(logits[rows, pos].argmax(-1).cpu())
            toks = {k: v[lo:lo + batch_size].to(device) for k, v in tracked.items()}
            per_stage = {k: [] for k in tracked}
            for name in stages:
                decoded = model.decode_residual(cache[name]).float()
                for k, tok in toks.items():
                    per_stage[k].append(_ranks(decoded, tok))
            for k in tracked:
                parts[k].append(torch.stack(per_stage[k], dim=1).to(torch.int32).cpu())
    ranks = {k: torch.cat(v).numpy() for k, v in parts.items()}
    return LensResult(queries, stages, list(queries.positions), ranks,
                      torch.cat(preds).numpy(), causal=model.causal)


def resolve_positions(spec, labels: list[str], causal: bool, kind: str) -> list[int]:
    """Indices of the allowed positions for ``kind`` ("bridge" or "answer")."""
    if spec == "auto":
        if not causal:
            return list(range(len(labels)))
        return [labels.index("r2")]
    if spec == "all":
        return list(range(len(labels)))
    names = [spec] if isinstance(spec, str) else list(spec)
    bad = [n for n in names if n not in labels]
    if bad or not names:
        raise bad_value(f"{kind}_positions", spec, "auto, all or labels from " + ", ".join(labels))
    return [labels.index(n) for n in names]


def first_found_stage(ranks: np.ndarray, positions: list[int]) -> np.ndarray:
    """Per query, the first stage where the token is top-1 at an allowed position; -1 if never."""
    hit = (ranks[:, :, positions] == 1).any(-1)           # (N, S)
    first = hit.argmax(1)
    return np.where(hit.any(1), first, -1)


def _token_summary(ranks: np.ndarray, stages: list[str], labels: list[str],
                   allowed: list[int] | None) -> dict:
    rr = 1.0 / ranks
    mrr = rr.mean(0)
    top1 = (ranks == 1).mean(0)
    out = {"mrr": np.round(mrr, 6).tolist(), "top1": np.round(top1, 6).tolist()}
    if "r1" in labels:
        # Wang et al. report the bridge MRR at r1 per layer (never decoding the last one);
        # the maximum over every stage, the last included, is a different number
        j = labels.index("r1")
        out["mrr_r1_by_stage"] = np.round(mrr[:, j], 6).tolist()
        out["mrr_r1_max_over_stages"] = float(mrr[:, j].max())
        out["best_stage_r1"] = stages[int(mrr[:, j].argmax())]
    if allowed is not None:
        first = first_found_stage(ranks, allowed)
        found = first >= 0
        out["positions"] = [labels[i] for i in allowed]
        out["found"] = float(found.mean())
        out["mrr_best"] = float(mrr[:, allowed].max())
        out["found_by_position"] = {label: float((ranks[:, :, i] == 1).any(1).mean())
                                    for i, label in enumerate(labels)}
        out["first_found_stage"] = {s: int((first == k).sum()) for k, s in enumerate(stages)}
        depth = first[found] / max(1, len(stages) - 1)
        out["first_found_depth_median"] = float(np.median(depth)) if found.any() else None
    return out


def _found_anywhere(ranks: np.ndarray) -> np.ndarray:
    """(N,) the token is the top-1 decode at some stage and some position."""
    return (ranks == 1).any(axis=(1, 2))


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def study_rule_summary(res: LensResult) -> dict:
    """The study's lens rule (any stage of ``res.stages``, any position) as one JSON object.

    ``bridge_found`` / ``target_found``: fraction of queries whose bridge b / answer t is the
    top-1 decode somewhere; ``*_correct``: the same over the queries the model answers
    correctly (``n_correct`` of them); ``chance``: the control token's found rate under the same
    rule (``chance_correct`` over the correct queries); ``bridge_found_by_stage``: per stage, the
    fraction of correctly answered queries with b top-1 at some position of that stage.
    """
    bridge = res.ranks["bridge"] == 1                       # (N, S, T)
    correct = res.correct
    found_b = bridge.any(axis=(1, 2))
    found_t = _found_anywhere(res.ranks["answer"])
    found_c = _found_anywhere(res.ranks["control"])
    by_stage = bridge[correct].any(-1).mean(0) if correct.any() else np.zeros(len(res.stages))
    ctrl_stage = ((res.ranks["control"][correct] == 1).any(-1).mean(0) if correct.any()
                  else np.zeros(len(res.stages)))
    return {
        "rule": "study",
        "split": res.queries.split,
        "n": len(res.queries),
        "n_correct": int(correct.sum()),
        "accuracy": _rate(correct),
        "stages": list(res.stages),
        "positions": list(res.positions),
        "bridge_found": _rate(found_b),
        "bridge_found_correct": _rate(found_b[correct]),
        "target_found": _rate(found_t),
        "chance": _rate(found_c),
        "chance_correct": _rate(found_c[correct]),
        "bridge_found_by_stage": dict(zip(res.stages, np.round(by_stage, 6).tolist())),
        "chance_by_stage": dict(zip(res.stages, np.round(ctrl_stage, 6).tolist())),
    }


def summarize_lens(res: LensResult, bridge_positions="auto", answer_positions="auto") -> dict:
    """JSON-ready aggregate of a :class:`LensResult` (grids are [stage][position] lists) under
    groklab's rule (allowed positions below), with the study rule's numbers under ``study``."""
    labels = res.positions
    b_pos = resolve_positions(bridge_positions, labels, res.causal, "bridge")
    a_pos = resolve_positions(answer_positions, labels, res.causal, "answer")
    n = len(res.queries)
    bridge = _token_summary(res.ranks["bridge"], res.stages, labels, b_pos)
    control = _token_summary(res.ranks["control"], res.stages, labels, b_pos)
    bridge["found_control"] = control["found"]
    bridge["mrr_best_control"] = control["mrr_best"]
    return {
        "split": res.queries.split,
        "n": n,
        "accuracy": float(res.correct.mean()) if n else None,
        "stages": list(res.stages),
        "positions": list(labels),
        "bridge": bridge,
        "answer": _token_summary(res.ranks["answer"], res.stages, labels, a_pos),
        "r2": _token_summary(res.ranks["r2"], res.stages, labels, None),
        "rule": "groklab",
        "study": study_rule_summary(res),
    }


def lens_metrics(model, dataset, split: str | list[str] = "test_inferred_iid", n: int = 256,
                 seed: int = 0, bridge_positions="auto") -> dict[str, float]:
    """Cheap lens scalars for training callbacks: one batched forward with cache per split.

    Returns, under groklab's rule, ``lens/<split>/bridge_found``, ``lens/<split>/bridge_mrr``
    (best MRR over stages at the allowed bridge positions), ``lens/<split>/bridge_found_control``
    (chance level: another query's bridge, see :func:`control_tokens`),
    ``lens/<split>/answer_found``; and under the study's rule (:func:`study_rule_summary`)
    ``lens/<split>/study_bridge_found``, ``study_bridge_found_correct``, ``study_target_found``,
    ``study_chance`` and ``study_chance_correct``.
    """
    splits = [split] if isinstance(split, str) else list(split)
    out: dict[str, float] = {}
    for name in splits:
        if name not in dataset.split_names:
            continue
        queries = two_hop_queries(dataset, name, model.layout, n=n, seed=seed)
        summary = summarize_lens(lens_ranks(model, queries), bridge_positions)
        out[f"lens/{name}/bridge_found"] = summary["bridge"]["found"]
        out[f"lens/{name}/bridge_mrr"] = summary["bridge"]["mrr_best"]
        out[f"lens/{name}/bridge_found_control"] = summary["bridge"]["found_control"]
        out[f"lens/{name}/answer_found"] = summary["answer"]["found"]
        study = summary["study"]
        for key in ("bridge_found", "bridge_found_correct", "target_found", "chance",
                    "chance_correct", "n_correct"):
            out[f"lens/{name}/study_{key}"] = study[key]
    return out


def lens_callback(splits=("test_inferred_iid", "test_inferred_ood"), n: int = 256, seed: int = 0,
                  bridge_positions="auto"):
    """A training callback ``(step, model, dataset, row) -> dict`` adding :func:`lens_metrics`."""

    def callback(step, model, dataset, row):
        return lens_metrics(model, dataset, list(splits), n=n, seed=seed,
                            bridge_positions=bridge_positions)

    return callback
