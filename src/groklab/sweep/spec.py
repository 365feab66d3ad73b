"""Sweep files: a YAML grid and/or random search over any run-config field.

A sweep file names a base config (a preset or a YAML path, relative to the sweep file), fixed
overrides, and the swept fields as dotted keys (``data.phi``, ``optim.lr``, ``train.seed``,
``data.seed``, ``data_path``)::

    base: tiny
    set: {train.steps: 3000}
    grid:                          # every combination
      data.phi: [3.6, 7.2, 18.0]
      train.seed: [0, 1]
    random:                        # `samples` draws for each grid point (seeded)
      samples: 4
      seed: 0
      params:
        optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
        optim.weight_decay: {uniform: [0.0, 1.0]}
        data.regime: {choice: [natural, both_full]}
    lens: {splits: [test_inferred_ood], n: 256}   # optional logit-lens scalars per evaluation
    tensorboard: true              # optional TensorBoard scalars in each trial (extra groklab[tensorboard])
    ray: {cpus_per_trial: 1, gpus_per_trial: 0.25, asha: {metric: acc/test_inferred_iid}}

Expansion is deterministic (grid order, then the seeded draws), so re-running a sweep finds
the same trials. Each trial is named after its swept values plus a hash of them, so adding
values to a grid keeps the existing trials' directories.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groklab.errors import GroklabError, bad_value, check_range
from groklab.fsutil import read_yaml
from groklab.train import load_config
from groklab.train.config import SWEEP_DIR

TOP_KEYS = ("name", "description", "base", "set", "grid", "random", "lens", "tensorboard", "ray")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
SECTIONS = ("data", "model", "optim", "train")
MAX_TRIALS = 100_000
RAY_KEYS = ("cpus_per_trial", "gpus_per_trial", "address", "asha")
ASHA_KEYS = ("metric", "mode", "grace_period", "reduction_factor")


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: its swept values and the overrides that build its config."""

    index: int
    name: str                 # directory name: readable values + hash of them
    params: dict              # swept key -> value (grid and random draws)
    overrides: tuple          # "key=value" strings for load_config (set, then params)


@dataclass
class SweepSpec:
    """A parsed, validated sweep file."""

    path: Path | None
    base: str
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)    # key -> (distribution, args)
    samples: int = 1
    random_seed: int = 0
    lens: dict | None = None                      # {"splits": [...], "n": int} or None
    tensorboard: bool = False
    ray: dict = field(default_factory=dict)
    name: str = "sweep"
    description: str = ""

    def trials(self) -> list[Trial]:
        """Every trial, in a fixed order (grid points x random samples)."""
        return expand(self)

    def to_dict(self) -> dict:
        random = {"samples": self.samples, "seed": self.random_seed,
                  "params": {k: {d: a} for k, (d, a) in self.random.items()}} if self.random else None
        out = {"name": self.name, "description": self.description, "base": self.base,
               "set": self.fixed, "grid": self.grid, "random": random, "lens": self.lens,
               "tensorboard": self.tensorboard or None, "ray": self.ray}
        return {k: v for k, v in out.items() if v not in (None, {}, "")}


# ---------------------------------------------------------------------------- parsing

def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file, or a bundled sweep by name (``micro``: the package's
    groklab/configs/sweeps/micro.yaml); every trial's config is built once to check it."""
    path = Path(path)
    bundled = SWEEP_DIR / f"{path}.yaml"
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1 and bundled.is_file():
        path = bundled
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in SWEEP_DIR.glob("*.yaml")))
        raise bad_value("sweep", str(path), f"an existing sweep YAML file or a bundled sweep ({names})")
    raw = read_yaml(path, "sweep")
    spec = parse_sweep(raw, path)
    check_trial_configs(spec)
    return spec


def parse_sweep(raw, path: Path | None = None) -> SweepSpec:
    """A SweepSpec from a parsed YAML mapping (structure checks only; see check_trial_configs)."""
    if not isinstance(raw, dict):
        raise bad_value("sweep", type(raw).__name__, "a YAML mapping with keys " + ", ".join(TOP_KEYS))
    for key in raw:
        if key not in TOP_KEYS:
            raise bad_value(f"sweep.{key}", raw[key], "one of " + ", ".join(TOP_KEYS))
    base = raw.get("base")
    if not isinstance(base, str) or not base.strip():
        raise bad_value("sweep.base", base, "a preset name (e.g. tiny) or a config YAML path")
    base = _resolve_base(base.strip(), path)
    fixed = _mapping("sweep.set", raw.get("set"))
    for key in fixed:
        check_key(f"sweep.set.{key}", key)
    grid = _mapping("sweep.grid", raw.get("grid"))
    for key, values in grid.items():
        check_key(f"sweep.grid.{key}", key)
        if not isinstance(values, list) or not values:
            raise bad_value(f"sweep.grid.{key}", values, "a non-empty list of values")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise bad_value(f"sweep.grid.{key}", values, "a list without repeated values")
    random, samples, seed = _parse_random(raw.get("random"))
    both = sorted(set(grid) & set(random))
    if both:
        raise bad_value(f"sweep.random.params.{both[0]}", "(also in grid)", "a key swept by grid or random, not both")
    tensorboard = raw.get("tensorboard", False)
    if not isinstance(tensorboard, bool):
        raise bad_value("sweep.tensorboard", tensorboard, "true | false")
    spec = SweepSpec(path=path, base=base, fixed=fixed, grid=grid, random=random, samples=samples,
                     random_seed=seed, lens=_parse_lens(raw.get("lens")), tensorboard=tensorboard,
                     ray=_parse_ray(raw.get("ray")),
                     name=str(raw.get("name") or (path.stem if path else "sweep")),
                     description=str(raw.get("description") or ""))
    n = n_trials(spec)
    if n > MAX_TRIALS:
        raise bad_value("sweep size", n, f"[1, {MAX_TRIALS}] trials")
    return spec


def check_key(field_name: str, key) -> str:
    """A dotted config key: ``section.field`` (section data|model|optim|train) or ``data_path``."""
    ok = isinstance(key, str) and (key == "data_path" or (
        key.count(".") == 1 and key.split(".")[0] in SECTIONS and key.split(".")[1]))
    if not ok:
        raise bad_value(field_name, key, "section.field with section one of "
                        + ", ".join(SECTIONS) + " (e.g. data.phi, train.seed), or data_path")
    return key


def n_trials(spec: SweepSpec) -> int:
    points = math.prod(len(v) for v in spec.grid.values()) if spec.grid else 1
    return points * (spec.samples if spec.random else 1)


def check_trial_configs(spec: SweepSpec) -> None:
    """Build each trial's RunConfig once: a bad value raises GroklabError naming the trial."""
    for trial in spec.trials():
        try:
            load_config(spec.base, trial.overrides)
        except GroklabError as exc:
            where = f"trial {trial.index} ({_describe(trial.params)})" if trial.params else "sweep.set"
            raise GroklabError(f"sweep {spec.path or ''}: {where}: {exc}".replace(" : ", ": ")) from None


# ---------------------------------------------------------------------------- expansion

def expand(spec: SweepSpec) -> list[Trial]:
    """Grid points (row-major in file order) x random samples, each with its overrides."""
    keys = list(spec.grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*spec.grid.values())] or [{}]
    rng = np.random.default_rng(spec.random_seed)
    trials = []
    for point in points:
        for _ in range(spec.samples if spec.random else 1):
            params = dict(point)
            for key, (dist, args) in spec.random.items():
                params[key] = draw(rng, dist, args)
            overrides = tuple(f"{k}={format_value(v)}" for k, v in {**spec.fixed, **params}.items())
            trials.append(Trial(index=len(trials), name=trial_name(params), params=params,
                                overrides=overrides))
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        dup = next(t for t in trials if names.count(t.name) > 1)
        raise bad_value("sweep", _describe(dup.params),
                        "distinct trials (a random draw repeated another trial; widen the ranges)")
    return trials


def draw(rng: np.random.Generator, dist: str, args):
    """One value of a distribution: uniform [lo, hi), loguniform [lo, hi), randint [lo, hi]
    (both ends included), choice (one of the listed values)."""
    if dist == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if dist == "loguniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    if dist == "randint":
        return int(rng.integers(args[0], args[1] + 1))
    return args[int(rng.integers(len(args)))]


def format_value(value) -> str:
    """A value as the text of a ``key=value`` override (strings as they are, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def trial_name(params: dict) -> str:
    """``phi=3.6_seed=0-1a2b3c`` : short readable values plus 6 hex of their hash."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:6]
    parts = []
    for key, value in params.items():
        short = key.split(".")[-1]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{short}={text}")
    slug = re.sub(r"[^A-Za-z0-9.=_+-]+", "-", "_".join(parts))[:60].strip("-_")
    return f"{slug}-{digest}" if slug else f"trial-{digest}"


# ---------------------------------------------------------------------------- helpers

def _resolve_base(base: str, path: Path | None) -> str:
    """A base path is taken relative to the sweep file (else the current directory) and made
    absolute, so trials find it from any working directory; a preset name stays as it is."""
    looks_like_path = base.endswith((".yaml", ".yml")) or "/" in base
    if not looks_like_path or Path(base).is_absolute():
        return base
    for candidate in ([path.parent / base] if path is not None else []) + [Path(base)]:
        if candidate.is_file():
            return str(candidate.resolve())
    return base


def _mapping(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_value(name, value, "a mapping of dotted config keys, e.g. {data.phi: [3.6, 7.2]}")
    return dict(value)


def _parse_random(raw) -> tuple[dict, int, int]:
    if raw is None:
        return {}, 1, 0
    if not isinstance(raw, dict):
        raise bad_value("sweep.random", raw, "a mapping with samples, seed, params")
    for key in raw:
        if key not in ("samples", "seed", "params"):
            raise bad_value(f"sweep.random.{key}", raw[key], "one of samples, seed, params")
    samples, seed = raw.get("samples", 1), raw.get("seed", 0)
    for name, value, lo in (("samples", samples, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_value(f"sweep.random.{name}", value, f"an integer >= {lo}")
        check_range(f"sweep.random.{name}", value, lo)
    params = _mapping("sweep.random.params", raw.get("params"))
    if not params:
        raise bad_value("sweep.random.params", raw.get("params"), "at least one key: {distribution: args}")
    out = {}
    for key, dist in params.items():
        check_key(f"sweep.random.params.{key}", key)
        out[key] = _parse_distribution(f"sweep.random.params.{key}", dist)
    return out, samples, seed


def _parse_distribution(name: str, raw) -> tuple[str, list]:
    allowed = "{uniform: [lo, hi]} | {loguniform: [lo, hi]} | {randint: [lo, hi]} | {choice: [v1, v2, ...]}"
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in DISTRIBUTIONS:
        raise bad_value(name, raw, allowed)
    dist, args = next(iter(raw.items()))
    if dist == "choice":
        if not isinstance(args, list) or not args:
            raise bad_value(f"{name}.choice", args, "a non-empty list of values")
        return dist, list(args)
    want = int if dist == "randint" else (int, float)
    ok = (isinstance(args, list) and len(args) == 2
          and all(isinstance(a, want) and not isinstance(a, bool) for a in args))
    if not ok or not args[0] < args[1]:
        kind = "integers" if dist == "randint" else "numbers"
        raise bad_value(f"{name}.{dist}", args, f"[lo, hi] with {kind} lo < hi")
    if dist == "loguniform" and args[0] <= 0:
        raise bad_value(f"{name}.loguniform", args, "[lo, hi] with 0 < lo < hi")
    return dist, [args[0], args[1]]


def _parse_lens(raw) -> dict | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_value("sweep.lens", raw, "true or {splits: [...], n: 256}")
    for key in raw:
        if key not in ("splits", "n"):
            raise bad_value(f"sweep.lens.{key}", raw[key], "one of splits, n")
    splits = raw.get("splits", ["test_inferred_iid", "test_inferred_ood"])
    if isinstance(splits, str):
        splits = [splits]
    if not isinstance(splits, list) or not splits or not all(isinstance(s, str) for s in splits):
        raise bad_value("sweep.lens.splits", splits, "a non-empty list of probe split names")
    n = raw.get("n", 256)
    if isinstance(n, bool) or not isinstance(n, int):
        raise bad_value("sweep.lens.n", n, "an integer >= 1")
    check_range("sweep.lens.n", n, 1)
    return {"splits": splits, "n": n}


def _parse_ray(raw) -> dict:
    raw = _mapping("sweep.ray", raw)
    for key in raw:
        if key not in RAY_KEYS:
            raise bad_value(f"sweep.ray.{key}", raw[key], "one of " + ", ".join(RAY_KEYS))
    out = dict(raw)
    for key in ("cpus_per_trial", "gpus_per_trial"):
        if out.get(key) is not None:
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_value(f"sweep.ray.{key}", value, "a number >= 0 (fractions allowed)")
            check_range(f"sweep.ray.{key}", value, 0)
    if out.get("address") is not None and not isinstance(out["address"], str):
        raise bad_value("sweep.ray.address", out["address"], "a Ray address, e.g. ray://host:10001 or auto")
    if out.get("asha") is not None:
        out["asha"] = parse_asha(out["asha"], "sweep.ray.asha")
    return out


def parse_asha(raw, name: str = "asha") -> dict:
    """ASHA options: ``metric`` (a metrics.jsonl key), ``mode`` max|min, ``grace_period`` and
    ``reduction_factor`` (defaults 1/10 of the steps, 3)."""
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict):
        raise bad_value(name, raw, "a metric name or {metric, mode, grace_period, reduction_factor}")
    for key in raw:
        if key not in ASHA_KEYS:
            raise bad_value(f"{name}.{key}", raw[key], "one of " + ", ".join(ASHA_KEYS))
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise bad_value(f"{name}.metric", metric, "a metrics.jsonl key, e.g. acc/test_inferred_iid")
    mode = raw.get("mode", "max")
    if mode not in ("max", "min"):
        raise bad_value(f"{name}.mode", mode, "max | min")
    out = {"metric": metric, "mode": mode}
    grace = raw.get("grace_period")
    if grace is not None:
        if isinstance(grace, bool) or not isinstance(grace, int):
            raise bad_value(f"{name}.grace_period", grace, "an integer >= 1 (training steps)")
        out["grace_period"] = check_range(f"{name}.grace_period", grace, 1)
    factor = raw.get("reduction_factor", 3)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        raise bad_value(f"{name}.reduction_factor", factor, "a number > 1")
    out["reduction_factor"] = check_range(f"{name}.reduction_factor", factor, 1, None, lo_open=True)
    return out


def _describe(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())
