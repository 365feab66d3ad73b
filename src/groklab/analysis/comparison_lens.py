"""Logit lens for the comparison task (Wang et al.'s instrument for it).

Every state of ``model.lens_stages()`` is decoded at every position through
``model.decode_residual`` (the final norm recomputed on that state), as in analysis/lens.py.
Per query and (stage, position) we keep:
- the rank of e1's value ``v1`` and of e2's value ``v2`` of the queried attribute among the value
  tokens only (1 = the top value), and over the whole vocabulary; ties count against the token;
- the same ranks for a *control* value per query: the value of another query, chosen to differ
  from this query's v1 and v2 (``lens.control_tokens``). Its rate is the chance level of the
  value rates for this model, vocabulary and grid;
- the lens mass on the labels ``<lt> <eq> <gt>`` and whether the right label is the top one of
  the three.

Values are read at their own entity's position (v1 at e1, v2 at e2); a value is "found" when it
is the top value at some stage there. The label space is read at the answer position (the last
input position of a causal model). The headline numbers are over the queries the model answers
correctly (as the lens's ``*_correct`` numbers); all queries are in the JSON too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from groklab.analysis.comparison import ValueTable, majority_of, query_values
from groklab.analysis.lens import control_tokens
from groklab.analysis.queries import Queries, eval_mode, model_device

VALUE_KEYS = ("v1", "v1_control", "v2", "v2_control")  # the order of the printed table


@dataclass
class ComparisonLens:
    """Per-query lens outcomes of one model on comparison queries; arrays are (N, S, T)."""

    queries: Queries
    stages: list[str]
    positions: list[str]
    value_rank: dict[str, np.ndarray]   # VALUE_KEYS -> rank among the value tokens
    vocab_rank: dict[str, np.ndarray]   # VALUE_KEYS -> rank over the whole vocabulary
    label_mass: np.ndarray              # softmax mass on the three labels
    label_right: np.ndarray             # the right label has the largest logit of the three
    prediction: np.ndarray              # (N,) the model's answer
    n_values: int
    vocab_size: int

    @property
    def correct(self) -> np.ndarray:
        return self.prediction == self.queries.target.numpy()


def _rank(logits: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Rank of ``token`` (B,) in ``logits`` (B, T, K) at every position -> (B, T); ties count
    against it (as lens._ranks)."""
    tok = logits.gather(-1, token.view(-1, 1, 1).expand(-1, logits.shape[1], 1))
    return (logits >= tok).sum(-1)


def comparison_lens(model, dataset, queries: Queries, stages: list[str] | None = None,
                    batch_size: int = 512) -> ComparisonLens:
    """Decode every stage at every position for every comparison query."""
    stages = list(stages) if stages is not None else model.lens_stages()
    table = ValueTable(dataset)
    v1, v2 = (torch.as_tensor(v, dtype=torch.long) for v in query_values(table, queries))
    tokens = {"v1": v1, "v2": v2, "v1_control": control_tokens(v1, v2),
              "v2_control": control_tokens(v2, v1)}
    value_ids = torch.as_tensor(table.values)
    label_ids = torch.as_tensor(table.labels)
    # a value token's index among the value tokens (value ids are contiguous and ordered)
    slot = {k: v - value_ids[0] for k, v in tokens.items()}
    right = queries.target - label_ids[0]
    device = model_device(model)
    parts = {k: [] for k in ("value", "vocab", "mass", "right", "pred")}
    with eval_mode(model):
        for lo in range(0, len(queries), batch_size):
            sl = slice(lo, lo + batch_size)
            ids = queries.input_ids[sl].to(device)
            logits, cache = model.run_with_cache(ids, names=stages)
            rows = torch.arange(ids.shape[0], device=device)
            parts["pred"].append(logits[rows, queries.answer_pos[sl].to(device)].argmax(-1).cpu())
            value_r, vocab_r, mass, ok = {k: [] for k in tokens}, {k: [] for k in tokens}, [], []
            for name in stages:
                decoded = model.decode_residual(cache[name]).float().cpu()
                values = decoded[..., value_ids]
                labels = decoded[..., label_ids]
                for k in tokens:
                    value_r[k].append(_rank(values, slot[k][sl]))
                    vocab_r[k].append(_rank(decoded, tokens[k][sl]))
                mass.append(decoded.softmax(-1)[..., label_ids].sum(-1))
                ok.append(_rank(labels, right[sl]) == 1)
            parts["value"].append({k: torch.stack(v, 1) for k, v in value_r.items()})
            parts["vocab"].append({k: torch.stack(v, 1) for k, v in vocab_r.items()})
            parts["mass"].append(torch.stack(mass, 1))
            parts["right"].append(torch.stack(ok, 1))

    def cat(key):
        return {k: torch.cat([p[k] for p in parts[key]]).to(torch.int32).numpy() for k in tokens}

    return ComparisonLens(queries, stages, list(queries.positions), cat("value"), cat("vocab"),
                          torch.cat(parts["mass"]).numpy(), torch.cat(parts["right"]).numpy(),
                          torch.cat(parts["pred"]).numpy(), len(table.values), dataset.vocab_size)


def _value_block(res: ComparisonLens, keep: np.ndarray, key: str, pos: int) -> dict:
    """Top-value rates of ``key`` at position ``pos``: per stage, found (some stage), and the
    whole-vocabulary top-1 rates beside them."""
    top = res.value_rank[key][keep][:, :, pos] == 1          # (n, S)
    top_vocab = res.vocab_rank[key][keep][:, :, pos] == 1
    rate = lambda m: float(m.mean()) if m.size else None  # noqa: E731
    return {"by_stage": [rate(top[:, s]) for s in range(top.shape[1])],
            "found": rate(top.any(1)),
            "vocab_by_stage": [rate(top_vocab[:, s]) for s in range(top.shape[1])],
            "vocab_found": rate(top_vocab.any(1)),
            "grid": np.round((res.value_rank[key][keep] == 1).mean(0), 6).tolist()
            if keep.any() else None}


def _subset_summary(res: ComparisonLens, keep: np.ndarray) -> dict:
    e1, e2 = res.positions.index("e1"), res.positions.index("e2")
    answer = int(res.queries.answer_pos[0]) if len(res.queries) else e2
    out = {"n": int(keep.sum())}
    for key, pos in (("v1", e1), ("v1_control", e1), ("v2", e2), ("v2_control", e2)):
        out[key] = _value_block(res, keep, key, pos)
    mass = res.label_mass[keep]
    right = res.label_right[keep]
    out["label"] = {
        "position": res.positions[answer],
        "mass_by_stage": np.round(mass[:, :, answer].mean(0), 6).tolist() if keep.any() else None,
        "right_by_stage": np.round(right[:, :, answer].mean(0), 6).tolist() if keep.any() else None,
        "mass_grid": np.round(mass.mean(0), 6).tolist() if keep.any() else None,
        "right_grid": np.round(right.mean(0), 6).tolist() if keep.any() else None,
    }
    return out


def summarize_comparison_lens(res: ComparisonLens) -> dict:
    """JSON-ready aggregate: over all queries and over the correctly answered ones, with the
    chance levels: the control value's rates, 1/V for one cell's top value, 3/|vocab| for the
    label mass of a uniform decode, and the majority-class rate of the sample for the label."""
    correct = res.correct
    n = len(res.queries)
    target = res.queries.target.numpy()
    return {
        "task": "comparison",
        "split": res.queries.split,
        "n": n,
        "n_correct": int(correct.sum()),
        "accuracy": float(correct.mean()) if n else None,
        "majority": majority_of(target),
        "majority_correct": majority_of(target[correct]),
        "stages": list(res.stages),
        "positions": list(res.positions),
        "chance": {"value_top1_one_cell": 1.0 / res.n_values,
                   "label_mass_uniform": 3.0 / res.vocab_size},
        "all": _subset_summary(res, np.ones(n, dtype=bool)),
        "correct": _subset_summary(res, correct),
    }


def format_comparison_lens(s: dict, subset: str = "correct") -> str:
    """The per-stage table of a :func:`summarize_comparison_lens` summary (earliest stage first),
    rows named by hook point."""
    b = s[subset]
    fmt = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
    width = max(len(x) for x in s["stages"] + ["stage"])
    head = (f"{'stage':<{width}}  v1@e1   ctrl  v2@e2   ctrl   label mass  right label"
            f"   (n={b['n']}; chance: ctrl columns, label mass {s['chance']['label_mass_uniform']:.3f}, "
            f"right label {fmt(s['majority_correct' if subset == 'correct' else 'majority']).strip()})")
    lines = [head]
    lab = b["label"]
    for i, stage in enumerate(s["stages"]):
        mass = lab["mass_by_stage"][i] if lab["mass_by_stage"] else None
        right = lab["right_by_stage"][i] if lab["right_by_stage"] else None
        lines.append(f"{stage:<{width}}  " + " ".join(fmt(b[k]["by_stage"][i]) for k in VALUE_KEYS)
                     + f"       {fmt(mass)}       {fmt(right)}")
    lines.append(f"{'found (some stage)':<{width}}  "
                 + " ".join(fmt(b[k]["found"]) for k in VALUE_KEYS))
    return "\n".join(lines)
