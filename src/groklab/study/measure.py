"""Measures with intervals, and pooling them over seeds (the study's ``--seeds N``).

A *measure* is a dict ``{"value", "ci": [lo, hi], "n"}`` (``n``: the queries behind it; the
``ci`` a 95% interval). The verdict rules read measures through :func:`value` and
:func:`interval`, so one rule serves a single seed and the pooled seeds alike.

Pooling rule (:func:`pool`), stated once: over k seeds, the value is the mean of the per-seed
values; the interval is the hull of (i) the t-interval of the per-seed values (between-seed
spread, t with k - 1 degrees of freedom) and (ii) the mean of the per-seed intervals
(within-seed sampling), so neither source of error is dropped: three seeds that all score 0 on
30 queries still get the width of one seed's sampling interval. One seed: its own measure.
"""

from __future__ import annotations

import math

# two-sided 95% quantiles of Student's t, df = 1..30 (beyond: z + (z^3 + z) / (4 df))
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
Z975 = 1.959964


def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"df={df} is invalid (allowed: >= 1)")
    if df <= len(_T975):
        return _T975[df - 1]
    return Z975 + (Z975 ** 3 + Z975) / (4 * df)


def value(x):
    """The point value of a measure, or ``x`` itself when it is a plain number (or None)."""
    return x.get("value") if isinstance(x, dict) else x


def interval(x) -> tuple:
    """The 95% interval of a measure; (None, None) when it has none."""
    if isinstance(x, dict):
        lo, hi = (x.get("ci") or [None, None])[:2]
        return lo, hi
    return None, None


def wilson(successes: float, n: int) -> dict:
    """A proportion with its Wilson score 95% interval (a sound interval at 0 and 1)."""
    if not n:
        return {"value": None, "ci": [None, None], "n": 0}
    p = successes / n
    z2 = Z975 * Z975
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return {"value": p, "ci": [max(0.0, centre - half), min(1.0, centre + half)], "n": n}


def rate(p: float | None, n: int | None) -> dict:
    """A rate read from metrics (EM on ``n`` queries) as a measure with its Wilson interval."""
    if p is None or not n:
        return {"value": p, "ci": [None, None], "n": n or 0}
    return wilson(round(p * n), int(n))


def difference(a: dict, b: dict) -> dict:
    """a - b of two independent proportions, Newcombe's hybrid score interval (from the two
    Wilson intervals)."""
    pa, pb = value(a), value(b)
    (la, ua), (lb, ub) = interval(a), interval(b)
    if None in (pa, pb, la, ua, lb, ub):
        return {"value": None, "ci": [None, None], "n": None}
    d = pa - pb
    lo = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return {"value": d, "ci": [lo, hi], "n": [a.get("n"), b.get("n")]}


def pool(measures: list, bounds: tuple[float, float] | None = None) -> dict | None:
    """Pool one measure over seeds (module docstring); plain numbers count as measures without
    an interval. None entries (a seed without the measure) are dropped; all None -> None.
    ``bounds``: clip the interval (e.g. (0, 1) for rates)."""
    ms = [m if isinstance(m, dict) else {"value": m} for m in measures]
    ms = [m for m in ms if m.get("value") is not None]
    if not ms:
        return None
    if len(ms) == 1 and len(measures) == 1:
        return dict(measures[0]) if isinstance(measures[0], dict) else {"value": ms[0]["value"],
                                                                        "ci": [None, None]}
    vals = [float(m["value"]) for m in ms]
    k = len(vals)
    mean = sum(vals) / k
    los, his = [], []
    if k >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (k - 1))
        half = t975(k - 1) * sd / math.sqrt(k)
        los.append(mean - half)
        his.append(mean + half)
    within = [interval(m) for m in ms]
    if within and all(lo is not None and hi is not None for lo, hi in within):
        los.append(sum(lo for lo, _ in within) / k)
        his.append(sum(hi for _, hi in within) / k)
    ns = [m.get("n") for m in ms]
    ci = [min(los), max(his)] if los else [None, None]
    if bounds is not None and los:
        ci = [max(bounds[0], ci[0]), min(bounds[1], ci[1])]
    out = {"value": mean, "ci": ci,
           "per_seed": vals, "seeds": k, "of": len(measures)}
    if all(isinstance(n, int) for n in ns):
        out["n"] = sum(ns)
        out["n_per_seed"] = ns
    return out
