"""Forecasts of run directories: ``groklab forecast RUN`` and the study report's panel."""

from __future__ import annotations

from groklab.errors import bad_value
from groklab.forecast import features as fx
from groklab.forecast.model import ForecastModel, load_model
from groklab.forecast.predict import STOP_BELOW, forecast

DEFAULT_TARGET = "test_inferred_ood>=0.9"


def _open(run_dir):
    from groklab.train.runs import load_run

    run = load_run(run_dir)
    if not run.metrics:
        raise bad_value("run", str(run_dir), "a run with at least one metrics.jsonl row (this one has none)")
    return run


def forecast_run(run_dir, target: str = DEFAULT_TARGET, budget: int | None = None,
                 at: int | None = None, model: ForecastModel | str | None = None,
                 stop_below: float = STOP_BELOW) -> dict:
    """Forecast for ``run_dir`` from its rows up to ``at`` (default: all), for ``budget`` steps
    (default: the run's ``train.steps``); see :func:`groklab.forecast.forecast`."""
    run = _open(run_dir)
    tgt = fx.parse_target(target)
    fx.check_target(run.metrics, tgt)
    if at is not None and at < 0:
        raise bad_value("--at", at, "a step >= 0")
    budget = run.config.train.steps if budget is None else int(budget)
    model = model if isinstance(model, ForecastModel) else load_model(model)
    out = forecast(run.metrics, tgt, budget, model, at=at, stop_below=stop_below)
    out["run"] = str(run.path)
    return out


def forecast_at_fraction(run_dir, fraction: float, target: str = DEFAULT_TARGET,
                         model: ForecastModel | str | None = None) -> dict:
    """What the forecast said at ``fraction`` of the run's budget (``train.steps``) against what
    happened: the forecast's keys plus ``fraction``, ``actual_step`` (first step the target held
    within the budget, None if never), ``actual_reached`` and ``run_steps`` (the run's last step).
    For the study report's forecast panel, e.g. ``forecast_at_fraction(run, 0.25, "test_inferred_ood>=0.5")``."""
    if not 0 < fraction <= 1:
        raise bad_value("fraction", fraction, "(0, 1]")
    run = _open(run_dir)
    budget = run.config.train.steps
    out = forecast_run(run_dir, target, budget=budget, at=int(fraction * budget), model=model)
    tgt = fx.parse_target(target)
    hit = fx.first_hit(sorted(run.metrics, key=lambda r: r["step"]), tgt.key, tgt.threshold)
    actual = hit if hit is not None and hit <= budget else None
    out.update(fraction=fraction, actual_step=actual, actual_reached=actual is not None,
               run_steps=max(r["step"] for r in run.metrics))
    return out
