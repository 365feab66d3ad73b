"""A corpus of finished runs for fitting and evaluating the forecaster: sweep directories
(``groklab sweep`` output, docs/sweeps.md) read into (sweep, run, rows, budget, outcome), and
the fit of a :class:`ForecastModel` on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groklab.errors import GroklabError, bad_value
from groklab.forecast import features as fx
from groklab.forecast.model import GENERIC, ForecastModel, fit_target

FIT_FRACTIONS = tuple(round(f, 2) for f in np.arange(0.05, 0.651, 0.05))  # truncations fitted on
# stopped reasons after which the rest of the run is known not to exist, but the outcome is known
KNOWN_OUTCOME = ("max_steps", "target")


@dataclass
class CorpusRun:
    sweep: str
    name: str
    rows: list[dict]
    budget: int          # train.steps of the run
    stopped: str | None

    def hit(self, target: fx.Target) -> int | None:
        """First step the target holds within the budget (None: not within the budget)."""
        step = fx.first_hit(self.rows, target.key, target.threshold)
        return step if step is not None and step <= self.budget else None

    def usable(self, target: fx.Target) -> bool:
        """Whether the outcome within the budget is known: the run went the full budget or
        reached the target before it stopped."""
        return self.stopped in KNOWN_OUTCOME or self.hit(target) is not None

    def step_at(self, fraction: float) -> int | None:
        """The last evaluated step <= fraction * budget (None if no row is that early)."""
        limit = fraction * self.budget
        steps = [r["step"] for r in self.rows if r["step"] <= limit]
        return max(steps) if steps else None


def load_corpus(sweep_dirs) -> list[CorpusRun]:
    """Every finished trial (summary.json ``finished``) of the sweep directories, in name order."""
    from groklab.train.runs import load_run

    runs = []
    for d in sweep_dirs:
        d = Path(d)
        trials = d / "trials"
        if not trials.is_dir():
            raise bad_value("SWEEP_DIR", str(d), "a sweep directory (made by `groklab sweep`) with trials/")
        for t in sorted(p for p in trials.iterdir() if p.is_dir()):
            if not (t / "config.yaml").is_file() or not (t / "summary.json").is_file():
                continue
            run = load_run(t)
            if not run.summary or not run.summary.get("finished") or not run.metrics:
                continue
            runs.append(CorpusRun(d.name, t.name, sorted(run.metrics, key=lambda r: r["step"]),
                                  run.config.train.steps, run.summary.get("stopped")))
    if not runs:
        raise GroklabError("forecast: no finished runs in " + ", ".join(map(str, sweep_dirs))
                           + " (allowed: sweep directories with finished trials)")
    return runs


def examples(runs: list[CorpusRun], target: fx.Target, fractions) -> dict:
    """Feature rows of the runs truncated at each fraction where the target is not reached yet.

    Returns arrays ``X`` (n, d), ``hit`` (reached within the budget), ``log_ratio``
    (log(hit step / step), nan when not hit), ``step``, ``hit_step`` (nan), ``budget``,
    ``fraction``, ``run`` (index into ``runs``).
    """
    cols = {k: [] for k in ("X", "hit", "log_ratio", "step", "hit_step", "budget", "fraction", "run")}
    for i, r in enumerate(runs):
        if target.key not in r.rows[-1] or not r.usable(target):
            continue
        hit = r.hit(target)
        for f in fractions:
            s = r.step_at(f)
            if s is None or s <= 0 or (hit is not None and hit <= s):
                continue
            cols["X"].append(fx.vector(fx.compute(r.rows, target, r.budget, at=s)))
            cols["hit"].append(hit is not None)
            cols["log_ratio"].append(np.log(hit / s) if hit is not None else np.nan)
            cols["step"].append(s)
            cols["hit_step"].append(hit if hit is not None else np.nan)
            cols["budget"].append(r.budget)
            cols["fraction"].append(f)
            cols["run"].append(i)
    out = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    out["X"] = out["X"].reshape(-1, len(fx.NAMES))
    out["hit"] = out["hit"].astype(bool)
    out["run"] = out["run"].astype(int)
    return out


def fit_corpus(runs: list[CorpusRun], targets, fractions=FIT_FRACTIONS, generic: bool = True) -> ForecastModel:
    """One entry per target, plus ``generic`` fitted on every target's examples pooled."""
    entries, pooled = {}, []
    for t in targets:
        ex = examples(runs, t, fractions)
        if len(ex["hit"]) == 0:
            raise GroklabError(f"forecast fit: no usable examples for --target {t} "
                               "(allowed: a target split the corpus' runs have, not yet reached early on)")
        entries[str(t)] = fit_target(ex["X"], ex["hit"], ex["log_ratio"], _info(runs, ex, t))
        pooled.append(ex)
    if generic and len(pooled) > 1:
        cat = {k: np.concatenate([e[k] for e in pooled]) for k in ("X", "hit", "log_ratio")}
        entries[GENERIC] = fit_target(cat["X"], cat["hit"], cat["log_ratio"],
                                      {"targets": [str(t) for t in targets]})
    sweeps = sorted({r.sweep for r in runs})
    meta = {"sweeps": sweeps, "n_runs": len(runs), "fractions": list(fractions),
            "budgets": sorted({r.budget for r in runs})}
    return ForecastModel(entries, meta)


def _info(runs, ex, target) -> dict:
    used = sorted(set(ex["run"].tolist()))
    return {"target": str(target), "n_runs": len(used),
            "n_runs_hit": sum(runs[i].hit(target) is not None for i in used)}
