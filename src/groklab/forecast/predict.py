"""One forecast from metrics rows: probability, predicted step with an interval, the signals
that drive it, a recommendation. Numpy only (``groklab.train`` uses it to stop runs early)."""

from __future__ import annotations

import math

import numpy as np

from groklab.forecast import features as fx
from groklab.forecast.model import ForecastModel

KEEP_FROM = 0.5        # probability from which the target is "expected" (predicted_step given)
STOP_BELOW = 0.05      # default probability under which the recommendation is to stop
N_SIGNALS = 5


def forecast(rows: list[dict], target: fx.Target, budget: int, model: ForecastModel,
             at: int | None = None, stop_below: float = STOP_BELOW) -> dict:
    """The forecast at the last row with ``step <= at`` (all rows when None) for ``budget`` steps.

    Keys: ``target``, ``step`` (the last step used), ``budget``, ``probability``,
    ``predicted_step`` (None when not expected, i.e. probability < 0.5), ``interval``
    ([lo, hi] steps, or None), ``recommendation``, ``signals`` (the features with the largest
    contributions to the log-odds), ``features``, ``model_entry``, ``reached_at``.
    """
    used = fx.truncate(rows, at)
    feats = fx.compute(used, target, budget, at=None)
    step = int(used[-1]["step"])
    reached = fx.first_hit(used, target.key, target.threshold)
    out = {"target": str(target), "step": step, "budget": int(budget), "reached_at": reached}
    if reached is not None:
        out.update(probability=1.0, predicted_step=reached, interval=[reached, reached],
                   recommendation=f"already there: {target} at step {reached}", signals=[],
                   features=feats, model_entry=None)
        return out
    entry, tm = model.for_target(target)
    x = fx.vector(feats)
    z = tm.z(x)
    p = float(tm.probability(x[None])[0])
    contrib = z * tm.coef
    order = np.argsort(-np.abs(contrib))[:N_SIGNALS]
    signals = [{"feature": fx.NAMES[i], "value": round(float(x[i]), 4),
                "log_odds": round(float(contrib[i]), 3), "means": fx.FEATURES[fx.NAMES[i]]}
               for i in order if contrib[i] != 0]
    predicted, interval = None, None
    lr = float(tm.log_ratio(x[None])[0])
    if p >= KEEP_FROM and math.isfinite(lr):
        base = max(step, 1)
        predicted = int(round(base * math.exp(lr)))
        lo, hi = tm.step_residuals
        interval = [max(step, int(round(base * math.exp(max(lr + lo, 0.0))))),
                    int(round(base * math.exp(max(lr + hi, 0.0))))]
    if p < stop_below:
        rec = f"stop: {target} not expected within {budget} steps (p={p:.3f})"
    elif predicted is not None:
        where = "within" if predicted <= budget else "but the step estimate is past"
        rec = f"keep training: {target} expected ({where} the budget) around step {predicted}"
    else:
        rec = f"keep training, uncertain: p={p:.2f} that {target} is reached within {budget} steps"
    out.update(probability=p, predicted_step=predicted, interval=interval, recommendation=rec,
               signals=signals, features=feats, model_entry=entry)
    return out
