"""Forecast, from a run's metrics so far, whether and when it reaches a target (docs/forecast.md).

This package is the numpy-only core (``features``, ``model``, ``predict``, ``stop``): it knows
no run directory, so ``groklab.train`` can stop runs with it. What reads run and sweep
directories lives with the other readers of runs, in ``groklab.analysis``: ``forecast_runs``
(``forecast_run``, ``forecast_at_fraction``), ``forecast_corpus``, ``forecast_evaluate`` and
``forecast_report``.
"""

from __future__ import annotations

from groklab.forecast.features import FEATURES, Target, parse_target
from groklab.forecast.model import ForecastModel, load_model
from groklab.forecast.predict import forecast
from groklab.forecast.stop import ForecastStopper, parse_stop_spec

__all__ = ["FEATURES", "Target", "parse_target", "ForecastModel", "load_model", "forecast",
           "ForecastStopper", "parse_stop_spec"]
