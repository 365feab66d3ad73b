"""``train.stop_unless_forecast``: a stop hook for the trainer (numpy only, no torch).

The trainer calls a stopper with its metrics rows after each evaluation; it answers
``"forecast"`` (recorded as ``stopped: forecast`` in summary.json) when the target is not
reached yet, at least ``MIN_ELAPSED`` of the budget has been spent, and the forecast gives it a
probability below the spec's threshold of being reached within the budget.
"""

from __future__ import annotations

from groklab.errors import bad_value
from groklab.forecast import features as fx
from groklab.forecast.model import load_model
from groklab.forecast.predict import STOP_BELOW, forecast

FIELD = "train.stop_unless_forecast"
STOP_REASON = "forecast"
MIN_ELAPSED = 0.1  # no decision before 10% of the budget: the model was fitted from there on


def parse_stop_spec(text: str, field: str = FIELD) -> tuple[fx.Target, float]:
    """``"SPLIT>=X"`` or ``"SPLIT>=X@P"`` -> (target, P: stop when the probability is below it)."""
    allowed = "'' (off) or SPLIT>=X[@P], e.g. test_inferred_iid>=0.9@0.05 (P in (0, 0.5], default 0.05)"
    head, sep, p_text = str(text).partition("@")
    try:
        target = fx.parse_target(head, field)
        p = float(p_text) if sep else STOP_BELOW
    except (ValueError, TypeError):
        raise bad_value(field, text, allowed) from None
    if not 0 < p <= 0.5:
        raise bad_value(field, text, allowed)
    return target, p


class ForecastStopper:
    """``stopper(rows) -> "forecast" | None`` for a run of ``budget`` steps."""

    def __init__(self, spec: str, budget: int, model_path: str | None = None):
        self.target, self.stop_below = parse_stop_spec(spec)
        self.budget = int(budget)
        self.model = load_model(model_path or None, field="train.forecast_model")
        self.last: dict | None = None   # the latest forecast (for logs and tests)

    def __call__(self, rows: list[dict]) -> str | None:
        step = rows[-1]["step"]
        if step < MIN_ELAPSED * self.budget or step >= self.budget:
            return None
        self.last = forecast(rows, self.target, self.budget, self.model, stop_below=self.stop_below)
        if self.last["reached_at"] is None and self.last["probability"] < self.stop_below:
            return STOP_REASON
        return None
