"""Forecast, from a run's metrics so far, whether and when it reaches a target (docs/forecast.md).

The core (``features``, ``model``, ``predict``, ``stop``) is numpy only, so ``groklab.train``
can stop runs with it; ``runs``, ``corpus``, ``evaluate`` and ``plots`` read run and sweep
directories (like ``groklab.analysis``) and are imported on first use.
"""

from __future__ import annotations

import importlib

from groklab.forecast.features import FEATURES, Target, parse_target
from groklab.forecast.model import ForecastModel, load_model
from groklab.forecast.predict import forecast
from groklab.forecast.stop import ForecastStopper, parse_stop_spec

_LAZY = {"forecast_run": "runs", "forecast_at_fraction": "runs", "load_corpus": "corpus",
         "fit_corpus": "corpus", "evaluate_corpus": "evaluate"}

__all__ = ["FEATURES", "Target", "parse_target", "ForecastModel", "load_model", "forecast",
           "ForecastStopper", "parse_stop_spec", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"groklab.forecast.{_LAZY[name]}"), name)
    raise AttributeError(name)
