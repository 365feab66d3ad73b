"""Run configuration: typed dataclasses, YAML presets, ``section.field=value`` overrides.

A run config has four sections, ``data`` (:class:`groklab.data.DataConfig`), ``model``
(:class:`groklab.models.ModelConfig`), ``optim`` and ``train``, plus ``data_path`` (an
existing dataset directory to train on instead of generating ``data`` into the run).
Presets are package data, ``groklab/configs/NAME.yaml`` (found with importlib.resources, so an
installed wheel has them); a preset may start from another with ``base: NAME``;
a ``data`` section may start from a data preset with ``preset: tiny|small|paper``.
Everything is validated on load and bad values raise :class:`GroklabError` naming the field.
Text (YAML, ``--set``) becomes typed values in :mod:`groklab.train.fields`; each section's
``validate(path)`` then checks them and never changes them (the convention is described there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from groklab.data import DATA_PRESETS, DataConfig
from groklab.errors import bad_value, check_range
from groklab.fsutil import read_yaml
from groklab.models import ModelConfig
from groklab.train.fields import parse_section, yaml_value

# the bundled presets (and sweeps/): a directory on disk for any installed or source checkout
CONFIG_DIR = Path(str(resources.files("groklab") / "configs"))
SWEEP_DIR = CONFIG_DIR / "sweeps"
SCHEDULES = ("constant", "cosine")
GROKFAST = ("none", "ema", "ma")
AMP = ("none", "bf16", "auto")
OPTIMIZERS = ("adamw", "muon")
MUON_ADJUST_LR = ("match_rms_adamw", "original")
SECTIONS = ("data", "model", "optim", "train")


def parse_checkpoint_every(path: str, value) -> list[list]:
    return checkpoint_schedule(yaml_value(path, value) if isinstance(value, str) else value, path)


def parse_stop_at(path: str, value) -> list[str]:
    """``train.stop_at`` in its canonical form, ``["NAME>=X", ...]``."""
    value = yaml_value(path, value) if isinstance(value, str) else value
    return [f"{k}>={v:g}" for k, v in stop_targets(value, path)]


@dataclass
class OptimConfig:
    """AdamW (no decay on norms and biases), LR schedule, clipping, Grokfast, weight EMA."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = 0.1
    warmup_steps: int = 0
    schedule: str = "constant"        # constant | cosine (to lr * min_lr_ratio at train.steps)
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0            # max global grad norm; 0 = off
    grokfast: str = "none"            # none | ema | ma
    grokfast_alpha: float = 0.98      # EMA filter momentum
    grokfast_lamb: float = 2.0        # amplification of the slow gradient
    grokfast_window: int = 100        # MA filter window
    ema_decay: float = 0.0            # EMA of weights used for evaluation; 0 = off
    optimizer: str = "adamw"          # adamw | muon (Muon on hidden matrices, AdamW on the rest)
    muon_momentum: float = 0.95
    muon_adjust_lr: str = "match_rms_adamw"  # match_rms_adamw (reuses optim.lr) | original
    perp_grad: bool = False           # ⊥Grad: drop each gradient's component along its weights

    def validate(self, path: str = "optim.") -> "OptimConfig":
        check_range(f"{path}lr", self.lr, 0, None, lo_open=True)
        for i, b in enumerate(self.betas):
            check_range(f"{path}betas[{i}]", b, 0, 1, hi_open=True)
        check_range(f"{path}eps", self.eps, 0, None, lo_open=True)
        check_range(f"{path}weight_decay", self.weight_decay, 0)
        check_range(f"{path}warmup_steps", self.warmup_steps, 0)
        _choice(f"{path}schedule", self.schedule, SCHEDULES)
        check_range(f"{path}min_lr_ratio", self.min_lr_ratio, 0, 1)
        check_range(f"{path}grad_clip", self.grad_clip, 0)
        _choice(f"{path}grokfast", self.grokfast, GROKFAST)
        check_range(f"{path}grokfast_alpha", self.grokfast_alpha, 0, 1, hi_open=True)
        check_range(f"{path}grokfast_lamb", self.grokfast_lamb, 0)
        check_range(f"{path}grokfast_window", self.grokfast_window, 1)
        check_range(f"{path}ema_decay", self.ema_decay, 0, 1, hi_open=True)
        _choice(f"{path}optimizer", self.optimizer, OPTIMIZERS)
        check_range(f"{path}muon_momentum", self.muon_momentum, 0, 1, hi_open=True)
        _choice(f"{path}muon_adjust_lr", self.muon_adjust_lr, MUON_ADJUST_LR)
        if not isinstance(self.perp_grad, bool):
            raise bad_value(f"{path}perp_grad", self.perp_grad, "true | false")
        return self

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


@dataclass
class TrainConfig:
    """Steps, batches, evaluation, checkpoints, early stop, device."""

    steps: int = 10_000
    batch_size: int = 512
    eval_every: int = 500
    eval_batch_size: int = 4096
    seed: int = 0                     # model init and batch order (the data has its own seed)
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    threads: int = 1                  # torch CPU threads; 0 = leave torch's default
    amp: str = "none"                 # none | bf16 (autocast) | auto (bf16 on CUDA only)
    # [[until_step, every], ...]: dense early, sparser later; an int = one fixed interval.
    checkpoint_every: list = field(default_factory=lambda: [[1000, 100], [10000, 1000], [None, 10000]],
                                   metadata={"parse": parse_checkpoint_every})
    early_stop_patience: int = 0      # stop once no split improved for this many steps; 0 = off
    early_stop_delta: float = 0.005
    plots: bool = True
    compile: bool = False             # torch.compile the step's forward + loss (pays off on long runs)
    # ["test_inferred_iid>=0.9", ...]: stop once all hold
    stop_at: list = field(default_factory=list, metadata={"parse": parse_stop_at})
    ensemble: int = 1                 # S runs (seeds seed..seed+S-1) stacked in one process
    # "SPLIT>=X[@P]": stop once the forecast (groklab.forecast) gives the target p < P (0.05) of
    # being reached within train.steps; "" = off. forecast_model: its JSON ("" = the shipped one)
    stop_unless_forecast: str = ""
    forecast_model: str = ""

    def validate(self, path: str = "train.") -> "TrainConfig":
        check_range(f"{path}steps", self.steps, 1)
        check_range(f"{path}batch_size", self.batch_size, 1)
        check_range(f"{path}eval_every", self.eval_every, 1)
        check_range(f"{path}eval_batch_size", self.eval_batch_size, 1)
        check_range(f"{path}seed", self.seed, 0)
        check_device(self.device, f"{path}device")
        check_range(f"{path}threads", self.threads, 0)
        _choice(f"{path}amp", self.amp, AMP)
        checkpoint_schedule(self.checkpoint_every, f"{path}checkpoint_every")
        check_range(f"{path}early_stop_patience", self.early_stop_patience, 0)
        check_range(f"{path}early_stop_delta", self.early_stop_delta, 0)
        stop_targets(self.stop_at, f"{path}stop_at")
        check_range(f"{path}ensemble", self.ensemble, 1)
        if self.stop_unless_forecast:
            from groklab.forecast.stop import parse_stop_spec  # numpy only: no layer above train
            parse_stop_spec(self.stop_unless_forecast, f"{path}stop_unless_forecast")
        return self

    def to_dict(self) -> dict:
        """Plain values, the schedule and the stop targets in their canonical form."""
        d = _plain(dataclasses.asdict(self))
        d["checkpoint_every"] = checkpoint_schedule(self.checkpoint_every)
        d["stop_at"] = parse_stop_at("train.stop_at", self.stop_at)
        return d


@dataclass
class RunConfig:
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data_path: str | None = None      # train on this dataset directory instead of generating `data`
    preset: str | None = None         # where the config came from (informational)

    def validate(self) -> "RunConfig":
        """Check every section (errors name ``section.field``); never changes the config."""
        self.data.validate("data.")
        self.model.validate()  # ModelConfig's messages always say model.FIELD
        self.optim.validate("optim.")
        self.train.validate("train.")
        return self

    def to_dict(self) -> dict:
        return {
            "preset": self.preset,
            "data_path": self.data_path,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "optim": self.optim.to_dict(),
            "train": self.train.to_dict(),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------------------- loading

def available_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []


def load_config(preset_or_path: str | Path, overrides=()) -> RunConfig:
    """A validated RunConfig from a preset name or a YAML file, then ``overrides``
    (``"optim.lr=1e-3"``, ``"train.steps=500"``, ``"data_path=DIR"``...)."""
    raw = _load_raw(preset_or_path, seen=())
    name = str(preset_or_path)
    if "preset" not in raw or raw.get("preset") is None:
        raw["preset"] = Path(name).stem if _looks_like_path(name) else name
    for item in overrides:
        apply_override(raw, item)
    return config_from_dict(raw)


def config_from_dict(raw: dict) -> RunConfig:
    """Typed, parsed and validated RunConfig from a plain dict (a parsed YAML file)."""
    raw = dict(raw)
    raw.pop("base", None)
    allowed = set(SECTIONS) | {"data_path", "preset"}
    for key in raw:
        if key not in allowed:
            raise bad_value(str(key), raw[key], "one of " + ", ".join(sorted(allowed)))
    data_path = raw.get("data_path")
    if data_path is not None and not isinstance(data_path, str):
        raise bad_value("data_path", data_path, "a dataset directory path")
    cfg = RunConfig(
        data=_data_config(_section(raw, "data")),
        model=ModelConfig(**parse_section(ModelConfig, _section(raw, "model"), "model.")),
        optim=OptimConfig(**parse_section(OptimConfig, _section(raw, "optim"), "optim.")),
        train=TrainConfig(**parse_section(TrainConfig, _section(raw, "train"), "train.")),
        data_path=data_path,
        preset=raw.get("preset"),
    )
    return cfg.validate()


def read_config(path: str | Path) -> RunConfig:
    """The resolved config.yaml of a run directory (or any config file)."""
    return config_from_dict(_read_yaml(Path(path)))


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``key=value`` (``section.field=value`` or ``data_path=...``) to a raw dict."""
    if "=" not in item:
        raise bad_value("--set", item, "key=value, e.g. optim.lr=1e-3")
    key, value = item.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if len(parts) == 1 and key in ("data_path", "preset"):
        raw[key] = None if value.strip().lower() in ("", "null", "none") else value
        return
    if len(parts) != 2 or parts[0] not in SECTIONS or not parts[1]:
        raise bad_value("--set " + key, value, "section.field with section one of " + ", ".join(SECTIONS)
                        + " (or data_path)")
    section = raw.setdefault(parts[0], {}) or {}
    raw[parts[0]] = section
    section[parts[1]] = value  # a string: parsed to the field's type when building


def check_device(device: str, path: str = "train.device") -> str:
    ok = isinstance(device, str) and (device in ("auto", "cpu", "cuda")
                                      or (device.startswith("cuda:") and device[5:].isdigit()))
    if not ok:
        raise bad_value(path, device, "auto | cpu | cuda | cuda:N")
    return device


def stop_targets(value, path: str = "train.stop_at") -> list[tuple[str, float]]:
    """Parse ``train.stop_at``: ``"NAME>=X"`` items (NAME a probe split or ``train_acc``,
    0 <= X <= 1), a list of them or one string; returns ``[(NAME, X), ...]``."""
    allowed = 'NAME>=X with NAME a probe split or train_acc and X in [0, 1], e.g. ["test_inferred_iid>=0.9"]'
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise bad_value(path, value, allowed)
    out = []
    for item in items:
        name, sep, num = str(item).partition(">=")
        try:
            x = float(num)
        except ValueError:
            x = None
        if not sep or not name.strip().isidentifier() or x is None or not 0 <= x <= 1:
            raise bad_value(path, item, allowed)
        out.append((name.strip(), x))
    return out


def checkpoint_schedule(value, path: str = "train.checkpoint_every") -> list[list]:
    """Normalise ``train.checkpoint_every``: an int N (every N steps) or ``[[until, every], ...]``
    with increasing ``until`` and the last ``until`` possibly null (no end)."""
    allowed = "an integer >= 1 or [[until_step, every], ...], e.g. [[1000, 100], [null, 1000]]"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise bad_value(path, value, allowed)
        return [[None, value]]
    if not isinstance(value, (list, tuple)) or not value:
        raise bad_value(path, value, allowed)
    out, last = [], 0
    for i, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise bad_value(path, value, allowed)
        until, every = pair
        ok_every = isinstance(every, int) and not isinstance(every, bool) and every >= 1
        ok_until = (until is None and i == len(value) - 1) or (
            isinstance(until, int) and not isinstance(until, bool) and until > last)
        if not (ok_every and ok_until):
            raise bad_value(path, value, allowed)
        out.append([until, every])
        last = until if until is not None else last
    return out


# ---------------------------------------------------------------------------- helpers

def _looks_like_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name or Path(name).is_file()


def _load_raw(preset_or_path, seen: tuple) -> dict:
    name = str(preset_or_path)
    if _looks_like_path(name):
        path = Path(name)
        if not path.is_file():
            raise bad_value("config", name, "an existing YAML file")
    else:
        path = CONFIG_DIR / f"{name}.yaml"
        if not path.is_file():
            raise bad_value("preset", name, ", ".join(available_presets()) or "(no presets found)")
    if path.resolve() in seen:
        raise bad_value("base", name, "a preset that does not (indirectly) include itself")
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    return _deep_merge(_load_raw(base, seen + (path.resolve(),)), raw)


def _read_yaml(path: Path) -> dict:
    raw = read_yaml(path, "config")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_value("config", str(path), "a YAML mapping with sections data, model, optim, train")
    return raw


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _section(raw: dict, name: str) -> dict:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise bad_value(name, value, "a mapping of field: value")
    return value


def _data_config(section: dict) -> DataConfig:
    """The data section: a data preset (``preset: tiny``) with fields set over it."""
    section = dict(section)
    preset = section.pop("preset", None)
    if preset is not None and preset not in DATA_PRESETS:
        raise bad_value("data.preset", preset, ", ".join(DATA_PRESETS))
    base = DATA_PRESETS[preset].to_dict() if preset else {}
    base.update(parse_section(DataConfig, section, "data.", also=("preset",)))
    return DataConfig.from_dict(base, "data.")


def _choice(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise bad_value(name, value, " | ".join(allowed))


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
