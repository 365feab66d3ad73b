"""The forecaster: logistic regression for "reaches the target within the budget" and a ridge
regression of log(hit step / current step) for when, over the named features of
:mod:`groklab.forecast.features`. Numpy only; stored as JSON (never pickle).

A model file holds one entry per target it was fitted on (``"test_inferred_iid>=0.9"``...)
and a ``generic`` entry fitted on all of them pooled (the threshold is a feature), used for a
target the file has no entry for. docs/forecast.md describes the fit and the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groklab.errors import GroklabError
from groklab.forecast import features as fx

FORMAT = "groklab-forecast"
VERSION = 1
DEFAULT_PATH = Path(__file__).with_name("default_model.json")
GENERIC = "generic"
L2_PROB = 1.0        # ridge penalty of the logistic model (on standardised features)
L2_STEP = 3.0        # ridge penalty of the step regression
INTERVAL = (0.1, 0.9)  # quantiles of the step regression's training residuals -> the interval
MAX_LOGIT = 30.0
MIN_STEP_FIT = 5     # hits needed for the step regression (fewer: their mean log ratio)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -MAX_LOGIT, MAX_LOGIT)))


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = L2_PROB, iters: int = 100):
    """Newton (IRLS) on mean log-loss + l2/2n |w|^2 (intercept unpenalised); X standardised."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2 / n)
    reg[-1] = 0.0
    for _ in range(iters):
        p = _sigmoid(A @ w)
        grad = A.T @ (p - y) / n + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A / n + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit_ridge(X: np.ndarray, y: np.ndarray, l2: float = L2_STEP):
    """Least squares with an l2 penalty on the (standardised) coefficients, free intercept."""
    n, d = X.shape
    ym = y.mean()
    coef = np.linalg.solve(X.T @ X + l2 * np.eye(d), X.T @ (y - ym))
    return coef, float(ym)  # X is centred, so the intercept is the mean


@dataclass
class TargetModel:
    """One fitted target: standardisation, logistic weights, step regression, residual quantiles."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    step_coef: np.ndarray | None = None
    step_intercept: float = 0.0
    step_residuals: tuple[float, float] = (0.0, 0.0)
    info: dict = field(default_factory=dict)

    def z(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def probability(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.z(x) @ self.coef + self.intercept)

    def log_ratio(self, x: np.ndarray) -> np.ndarray:
        """Predicted log(hit step / current step), >= 0."""
        if self.step_coef is None:
            return np.full(len(np.atleast_2d(x)), math.nan)
        return np.maximum(self.z(x) @ self.step_coef + self.step_intercept, 0.0)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept,
                "step_coef": None if self.step_coef is None else self.step_coef.tolist(),
                "step_intercept": self.step_intercept, "step_residuals": list(self.step_residuals),
                "info": self.info}

    @classmethod
    def from_json(cls, d: dict, n: int) -> "TargetModel":
        arr = lambda k: np.asarray(d[k], dtype=float)  # noqa: E731
        tm = cls(arr("mean"), arr("std"), arr("coef"), float(d["intercept"]),
                 None if d.get("step_coef") is None else arr("step_coef"),
                 float(d.get("step_intercept", 0.0)), tuple(d.get("step_residuals", (0.0, 0.0))),
                 dict(d.get("info", {})))
        shapes = {len(tm.mean), len(tm.std), len(tm.coef)} | (
            set() if tm.step_coef is None else {len(tm.step_coef)})
        if shapes != {n}:
            raise GroklabError(f"forecast model: coefficient lengths {sorted(shapes)} do not match "
                               f"its {n} features")
        return tm


def fit_target(X: np.ndarray, hit: np.ndarray, log_ratio: np.ndarray, info: dict) -> TargetModel:
    """Fit on examples X (n, d), labels ``hit`` (reached within budget) and, for the hits,
    ``log_ratio`` = log(hit step / current step)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std < 1e-9] = 1.0
    Z = (X - mean) / std
    if hit.min() == hit.max():  # one class only: a constant probability (smoothed)
        coef, b = np.zeros(X.shape[1]), float(np.log((hit.sum() + 0.5) / (len(hit) - hit.sum() + 0.5)))
    else:
        coef, b = fit_logistic(Z, hit.astype(float))
    tm = TargetModel(mean, std, coef, b, info=dict(info, n_examples=int(len(hit)),
                                                   n_hit=int(hit.sum())))
    pos = hit.astype(bool)
    if 0 < pos.sum() < MIN_STEP_FIT:  # too few hits for a regression: their mean ratio
        tm.step_coef, tm.step_intercept = np.zeros(X.shape[1]), float(log_ratio[pos].mean())
        tm.step_residuals = tuple(float(q) for q in np.quantile(log_ratio[pos] - tm.step_intercept, INTERVAL))
    elif pos.sum() >= MIN_STEP_FIT:
        zc = Z[pos] - Z[pos].mean(axis=0)
        sc, si = fit_ridge(zc, log_ratio[pos])
        # the intercept must apply to un-centred z: fold the centring in
        tm.step_coef, tm.step_intercept = sc, float(si - Z[pos].mean(axis=0) @ sc)
        resid = log_ratio[pos] - np.maximum(Z[pos] @ sc + tm.step_intercept, 0.0)
        tm.step_residuals = tuple(float(q) for q in np.quantile(resid, INTERVAL))
    return tm


@dataclass
class ForecastModel:
    """A model file: per-target entries and the pooled ``generic`` one."""

    targets: dict[str, TargetModel]
    meta: dict = field(default_factory=dict)

    def for_target(self, target: fx.Target) -> tuple[str, TargetModel]:
        key = str(target)
        if key in self.targets:
            return key, self.targets[key]
        if GENERIC in self.targets:
            return GENERIC, self.targets[GENERIC]
        raise GroklabError(f"--target={key!r} is invalid (allowed: a target of this forecast model: "
                           + " | ".join(self.targets) + ")")

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "features": list(fx.NAMES),
                "meta": self.meta, "targets": {k: v.to_json() for k, v in self.targets.items()}}

    def save(self, path) -> None:
        from groklab.fsutil import atomic_write_text
        atomic_write_text(Path(path), json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, d: dict, source: str = "model") -> "ForecastModel":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise GroklabError(f"--model={source!r} is invalid (allowed: a {FORMAT} JSON file "
                               "written by `groklab forecast fit`)")
        if d.get("version") != VERSION or list(d.get("features", [])) != list(fx.NAMES):
            raise GroklabError(f"--model={source!r} is invalid (allowed: version {VERSION} with this "
                               "groklab's features; refit it with `groklab forecast fit`)")
        n = len(fx.NAMES)
        return cls({k: TargetModel.from_json(v, n) for k, v in d["targets"].items()}, d.get("meta", {}))


def load_model(path=None, field: str = "--model") -> ForecastModel:
    """A model file (default: the shipped one, fitted on the project's own corpus)."""
    path = Path(path) if path else DEFAULT_PATH
    if not path.is_file():
        raise GroklabError(f"{field}={str(path)!r} is invalid (allowed: an existing forecast model "
                           "JSON file)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GroklabError(f"{field}={str(path)!r} is invalid (allowed: a JSON file)") from None
    return ForecastModel.from_json(raw, str(path))
