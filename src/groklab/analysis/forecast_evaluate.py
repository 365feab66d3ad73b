"""Leave-one-sweep-out evaluation of the forecaster against honest baselines.

For each sweep of the corpus, the model is fitted on the other sweeps and asked about this
sweep's runs truncated at 10%, 25% and 50% of their budget (only runs that have not reached
the target by then: the others need no forecast). Scored on the pooled held-out forecasts:

- AUROC of "reaches the target within the budget" (with a seeded bootstrap 95% interval over
  runs), Brier score and expected calibration error; baselines "extrapolate the target curve"
  (linear fit of the target over the recent window, extended to the budget), "always" and
  "never" (constant scores: AUROC 0.5 by construction);
- median relative error |predicted - actual| / actual of the predicted step on the runs that
  do reach the target; baselines "extrapolate" (its crossing step; the budget end when the fit
  never crosses) and "corpus median" (the median hit/step ratio of the training sweeps);
- a forecast-stopped sweep: stop every pending run whose probability is below ``stop_below``;
  the compute saved (steps not trained, share of the sweep's total budget) against the grok
  runs wrongly killed; the same for the baselines' stop rules (extrapolate: stop when the
  extrapolation stays below the threshold; never: stop all; always: stop none).
"""

from __future__ import annotations

import numpy as np

from groklab.forecast import features as fx
from groklab.analysis.forecast_corpus import FIT_FRACTIONS, CorpusRun, examples, fit_corpus
from groklab.forecast.predict import STOP_BELOW

FRACTIONS = (0.1, 0.25, 0.5)
N_BOOT = 1000
N_BINS = 10
REACH = fx.NAMES.index("target_reach")
SLOPE = fx.NAMES.index("target_slope")
GAP = fx.NAMES.index("target_gap")


def auroc(score: np.ndarray, label: np.ndarray) -> float | None:
    """Mann-Whitney AUROC with mid-ranks for ties; None with one class only."""
    label = label.astype(bool)
    npos, nneg = int(label.sum()), int((~label).sum())
    if npos == 0 or nneg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = score[order]
    i = 0
    while i < len(s):  # mid-ranks of tied groups
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[label].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def bootstrap_auroc(score, label, n_boot: int = N_BOOT, seed: int = 0):
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(score), len(score))
        a = auroc(score[idx], label[idx])
        if a is not None:
            vals.append(a)
    return [float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))] if vals else None


def calibration(p: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Reliability bins (mean predicted, observed rate, n) and the expected calibration error."""
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()),
                         "mean_p": float(p[m].mean()), "rate": float(y[m].mean())})
            ece += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return {"bins": bins, "ece": float(ece), "brier": float(np.mean((p - y) ** 2))}


def extrapolate(ex: dict, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Baseline "extrapolate the target curve": (score = extrapolated value at the budget minus
    the threshold, predicted crossing step; the budget end when the line never crosses)."""
    X, s, B = ex["X"], ex["step"], ex["budget"]
    slope_per_step = X[:, SLOPE] / B
    gap = X[:, GAP]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(slope_per_step > 0, s + gap / slope_per_step, np.inf)
    return X[:, REACH], np.where(np.isfinite(cross), np.maximum(cross, s), B)


def _rel_err(pred, actual):
    return np.abs(pred - actual) / actual


def _stop_stats(stop: np.ndarray, ex: dict, n_runs: int, total_budget: float, n_grok: int) -> dict:
    saved = float(((ex["budget"] - ex["step"]) * stop).sum())
    killed = int((stop & ex["hit"]).sum())
    return {"stopped": int(stop.sum()), "saved_steps": int(saved),
            "saved_share": saved / total_budget if total_budget else 0.0,
            "grok_killed": killed, "grok_runs": n_grok,
            "grok_killed_share": killed / n_grok if n_grok else None}


def _median(x):
    x = x[np.isfinite(x)]  # a fold without hits to fit has no step model
    return float(np.median(x)) if len(x) else None


def evaluate_target(runs: list[CorpusRun], target: fx.Target, fractions=FRACTIONS,
                    stop_below: float = STOP_BELOW, fit_fractions=FIT_FRACTIONS) -> dict:
    """Leave-one-sweep-out results for one target (see the module docstring)."""
    sweeps = sorted({r.sweep for r in runs})
    held: dict[float, list[dict]] = {f: [] for f in fractions}
    for sweep in sweeps:
        train = [r for r in runs if r.sweep != sweep]
        test = [r for r in runs if r.sweep == sweep]
        model = fit_corpus(train, [target], fit_fractions, generic=False)
        tm = model.targets[str(target)]
        tr_ex = examples(train, target, fit_fractions)
        hits = tr_ex["hit"]
        median_ratio = float(np.median(np.exp(tr_ex["log_ratio"][hits]))) if hits.any() else 1.0
        for f in fractions:
            ex = examples(test, target, [f])
            if not len(ex["hit"]):
                continue
            ex["sweep"] = np.array([sweep] * len(ex["hit"]))
            ex["p"] = tm.probability(ex["X"])
            ex["pred_step"] = ex["step"] * np.exp(tm.log_ratio(ex["X"]))
            ex["median_step"] = np.minimum(ex["step"] * median_ratio, ex["budget"])
            held[f].append(ex)

    usable = [r for r in runs if target.key in r.rows[-1] and r.usable(target)]
    total_budget = float(sum(r.budget for r in usable))
    n_grok = sum(r.hit(target) is not None for r in usable)
    out = {"target": str(target), "sweeps": sweeps, "n_runs": len(usable), "n_reach": n_grok,
           "stop_below": stop_below, "fractions": {}}
    for f in fractions:
        if not held[f]:
            out["fractions"][str(f)] = {"n_pending": 0}
            continue
        ex = {k: np.concatenate([e[k] for e in held[f]]) for k in held[f][0]}
        y = ex["hit"]
        ex_score, ex_step = extrapolate(ex, target.threshold)
        pos = y
        a = auroc(ex["p"], y)
        res = {
            "n_pending": int(len(y)), "n_reach": int(y.sum()),
            "already_reached": sum(1 for r in usable if (h := r.hit(target)) is not None
                                   and (s := r.step_at(f)) is not None and h <= s),
            "auroc": {"model": a, "model_ci95": bootstrap_auroc(ex["p"], y) if a is not None else None,
                      "extrapolate": auroc(ex_score, y), "always": auroc(np.ones(len(y)), y),
                      "never": auroc(np.zeros(len(y)), y)},
            "auroc_by_sweep": {s: auroc(ex["p"][ex["sweep"] == s], y[ex["sweep"] == s]) for s in sweeps},
            "step_error": {"n": int(pos.sum()),
                           "model": _median(_rel_err(ex["pred_step"][pos], ex["hit_step"][pos])),
                           "n_model": int(np.isfinite(ex["pred_step"][pos]).sum()),
                           "extrapolate": _median(_rel_err(ex_step[pos], ex["hit_step"][pos])),
                           "corpus_median": _median(_rel_err(ex["median_step"][pos], ex["hit_step"][pos]))},
            "calibration": calibration(ex["p"], y.astype(float)),
            "stop": {"model": _stop_stats(ex["p"] < stop_below, ex, len(usable), total_budget, n_grok),
                     "extrapolate": _stop_stats(ex_score < 0, ex, len(usable), total_budget, n_grok),
                     "never": _stop_stats(np.ones(len(y), bool), ex, len(usable), total_budget, n_grok),
                     "always": _stop_stats(np.zeros(len(y), bool), ex, len(usable), total_budget, n_grok)},
            "tradeoff": [dict(threshold=float(t), **_stop_stats(ex["p"] < t, ex, len(usable), total_budget, n_grok))
                         for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)],
            "_p": ex["p"].tolist(), "_y": y.astype(int).tolist(),
        }
        out["fractions"][str(f)] = res
    return out


def evaluate_corpus(runs: list[CorpusRun], targets, fractions=FRACTIONS, stop_below: float = STOP_BELOW) -> dict:
    return {"targets": [evaluate_target(runs, t, fractions, stop_below) for t in targets],
            "n_runs": len(runs), "sweeps": {s: sum(r.sweep == s for r in runs)
                                            for s in sorted({r.sweep for r in runs})}}
