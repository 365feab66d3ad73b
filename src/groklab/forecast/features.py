"""Named features of a run's metrics rows up to a step: what the forecaster sees.

Pure numpy over the rows of metrics.jsonl (docs/architecture.md section 3), no torch and no
other groklab layer, so ``groklab.train`` can use it for ``train.stop_unless_forecast``.
Every feature is computed from the rows with ``step <= at`` only (the truncation the tests
check). Step-valued quantities are fractions of the budget; slopes are per budget
(change over ``budget`` steps), fitted by least squares over the recent window: the rows in
the last half of the history, at least the last 2 (docs/forecast.md lists the features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from groklab.errors import GroklabError, bad_value

FIT_KEY = "train_acc"
FIT_THRESHOLD = 0.99
EPS = 1e-6

# name -> what it measures (docs/forecast.md has the same table)
FEATURES = {
    "elapsed": "steps so far / budget",
    "threshold": "the target's threshold X",
    "target_gap": "X - target value at the last row",
    "target_max_gap": "X - best target value so far",
    "target_slope": "slope of the target value (per budget) over the recent window",
    "target_reach": "target value extrapolated linearly to the budget, minus X (clipped to [-1, 1])",
    "target_log_loss": "log of the target split's loss at the last row",
    "target_loss_slope": "slope of that log loss (per budget) over the recent window",
    "gen_gap": "log target loss - log training loss at the last row",
    "train_acc": "train_acc at the last row",
    "fitted": "1 once train_acc >= 0.99 has been reached",
    "fit_step": "first step with train_acc >= 0.99 / budget (elapsed while not fitted)",
    "since_fit": "(last step - fit step) / budget (0 while not fitted)",
    "train_log_loss": "log of the training loss at the last row",
    "train_loss_slope": "slope of the log training loss (per budget) over the recent window",
    "weight_norm_slope": "slope of the log weight norm (per budget) over the recent window",
    "weight_norm_drop": "1 - weight norm now / its maximum so far",
    "lr_ratio": "learning rate now / its maximum so far (1 for a constant schedule)",
    "iid_acc": "test_inferred_iid accuracy at the last row (0 if the run has none)",
    "has_lens": "1 if the rows carry logit-lens columns for the target split",
    "bridge_found": "lens bridge-found rate on the target split minus its chance control (0 without lens)",
    "bridge_slope": "slope of that rate (per budget) over the recent window (0 without lens)",
}
NAMES = tuple(FEATURES)


@dataclass(frozen=True)
class Target:
    """``SPLIT>=X``: the run's ``acc/SPLIT`` (or ``train_acc``) reaches X."""

    split: str
    threshold: float

    @property
    def key(self) -> str:
        return FIT_KEY if self.split == FIT_KEY else f"acc/{self.split}"

    def __str__(self) -> str:
        return f"{self.split}>={self.threshold:g}"


def parse_target(text: str, field: str = "--target") -> Target:
    """``"test_inferred_ood>=0.9"`` -> Target; bad syntax is a one-line GroklabError."""
    allowed = "SPLIT>=X with SPLIT a probe split or train_acc and X in (0, 1], e.g. test_inferred_ood>=0.9"
    name, sep, num = str(text).partition(">=")
    try:
        x = float(num)
    except ValueError:
        x = float("nan")
    if not sep or not name.strip().isidentifier() or not 0 < x <= 1:
        raise bad_value(field, text, allowed)
    return Target(name.strip(), x)


def target_splits(rows: list[dict]) -> list[str]:
    """The targets a run's rows allow: its probe splits (``acc/<split>`` columns) and train_acc."""
    names = sorted({k[4:] for r in rows for k in r if k.startswith("acc/")})
    return names + ([FIT_KEY] if any(FIT_KEY in r for r in rows) else [])


def check_target(rows: list[dict], target: Target) -> None:
    known = target_splits(rows)
    if target.split not in known:
        raise bad_value("--target", str(target), "a split of this run: " + " | ".join(known))


def truncate(rows: list[dict], at: int | None) -> list[dict]:
    """The rows with ``step <= at`` (all rows when ``at`` is None), in step order."""
    ordered = sorted(rows, key=lambda r: r["step"])
    return ordered if at is None else [r for r in ordered if r["step"] <= at]


def first_hit(rows: list[dict], key: str, threshold: float) -> int | None:
    """First step whose ``key`` is >= threshold (rows in step order), else None."""
    for r in rows:
        v = r.get(key)
        if v is not None and v >= threshold:
            return int(r["step"])
    return None


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in rows
           if r.get(key) is not None and math.isfinite(r[key])]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=float)
    return a[:, 0], a[:, 1]


def _window(steps: np.ndarray) -> np.ndarray:
    """Mask of the recent window: steps in the last half of the history, at least the last 2."""
    if len(steps) == 0:
        return np.zeros(0, dtype=bool)
    mask = steps >= steps[-1] / 2
    if mask.sum() < 2:
        mask[-min(2, len(steps)):] = True
    return mask


def slope(steps: np.ndarray, values: np.ndarray, budget: float) -> float:
    """Least-squares slope of values against steps / budget over the recent window (0 if < 2 points)."""
    m = _window(steps)
    x, y = steps[m] / budget, values[m]
    if len(x) < 2 or np.ptp(x) == 0:
        return 0.0
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def _log(v: float) -> float:
    return math.log(max(v, EPS))


def compute(rows: list[dict], target: Target, budget: int, at: int | None = None) -> dict:
    """The features of :data:`FEATURES` from the rows with ``step <= at``.

    Raises GroklabError when no row is left, the target's column is missing, or the budget is
    below the last step used.
    """
    rows = truncate(rows, at)
    if not rows:
        raise GroklabError("metrics: no evaluation rows" + (f" at or before step {at}" if at is not None else "")
                           + " (allowed: a run with at least one metrics.jsonl row)")
    check_target(rows, target)
    last = rows[-1]
    s = int(last["step"])
    if budget < s or budget <= 0:
        raise bad_value("--budget", budget, f"a number of steps >= the run's current step {s}")
    B = float(budget)
    f: dict[str, float] = {"elapsed": s / B, "threshold": target.threshold}

    steps, acc = _series(rows, target.key)
    now = float(acc[-1]) if len(acc) else 0.0
    f["target_gap"] = target.threshold - now
    f["target_max_gap"] = target.threshold - (float(acc.max()) if len(acc) else 0.0)
    f["target_slope"] = slope(steps, acc, B)
    f["target_reach"] = float(np.clip(now + f["target_slope"] * (B - s) / B - target.threshold, -1, 1))

    loss_key = "loss" if target.split == FIT_KEY else f"loss/{target.split}"
    lsteps, lval = _series(rows, loss_key)
    f["target_log_loss"] = _log(lval[-1]) if len(lval) else 0.0
    f["target_loss_slope"] = slope(lsteps, np.log(np.maximum(lval, EPS)), B)

    tsteps, tloss = _series(rows, "loss")
    f["train_log_loss"] = _log(tloss[-1]) if len(tloss) else 0.0
    f["train_loss_slope"] = slope(tsteps, np.log(np.maximum(tloss, EPS)), B)
    f["gen_gap"] = f["target_log_loss"] - f["train_log_loss"] if len(tloss) and len(lval) else 0.0

    _, fit = _series(rows, FIT_KEY)
    f["train_acc"] = float(fit[-1]) if len(fit) else 0.0
    fit_at = first_hit(rows, FIT_KEY, FIT_THRESHOLD)
    f["fitted"] = float(fit_at is not None)
    f["fit_step"] = (fit_at if fit_at is not None else s) / B
    f["since_fit"] = (s - fit_at) / B if fit_at is not None else 0.0

    wsteps, wn = _series(rows, "weight_norm")
    f["weight_norm_slope"] = slope(wsteps, np.log(np.maximum(wn, EPS)), B)
    f["weight_norm_drop"] = 1.0 - float(wn[-1] / wn.max()) if len(wn) and wn.max() > 0 else 0.0

    _, lr = _series(rows, "lr")
    f["lr_ratio"] = float(lr[-1] / lr.max()) if len(lr) and lr.max() > 0 else 1.0

    _, iid = _series(rows, "acc/test_inferred_iid")
    f["iid_acc"] = float(iid[-1]) if len(iid) else 0.0

    bsteps, found = _series(rows, f"lens/{target.split}/bridge_found")
    _, control = _series(rows, f"lens/{target.split}/bridge_found_control")
    if len(found) and len(control) == len(found):
        above = found - control
        f["has_lens"], f["bridge_found"], f["bridge_slope"] = 1.0, float(above[-1]), slope(bsteps, above, B)
    else:
        f["has_lens"], f["bridge_found"], f["bridge_slope"] = 0.0, 0.0, 0.0
    return {name: float(f[name]) for name in NAMES}


def vector(features: dict) -> np.ndarray:
    return np.array([features[n] for n in NAMES], dtype=float)
