"""Run configuration: typed dataclasses, YAML presets, ``section.field=value`` overrides.

A run config has four sections, ``data`` (:class:`groklab.data.DataConfig`), ``model``
(:class:`groklab.models.ModelConfig`), ``optim`` and ``train``, plus ``data_path`` (an
existing dataset directory to train on instead of generating ``data`` into the run).
Presets live in ``configs/NAME.yaml``; a preset may start from another with ``base: NAME``;
a ``data`` section may start from a data preset with ``preset: tiny|small|paper``.
Everything is validated on load and bad values raise :class:`GroklabError` naming the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import groklab
from groklab.data import DATA_PRESETS, DataConfig
from groklab.errors import GroklabError, bad_value, check_range
from groklab.models import ModelConfig

CONFIG_DIR = Path(groklab.__file__).resolve().parents[2] / "configs"
SCHEDULES = ("constant", "cosine")
GROKFAST = ("none", "ema", "ma")
AMP = ("none", "bf16", "auto")
SECTIONS = ("data", "model", "optim", "train")


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

    def validate(self) -> "OptimConfig":
        check_range("optim.lr", self.lr, 0, None, lo_open=True)
        for i, b in enumerate(self.betas):
            check_range(f"optim.betas[{i}]", b, 0, 1, hi_open=True)
        check_range("optim.eps", self.eps, 0, None, lo_open=True)
        check_range("optim.weight_decay", self.weight_decay, 0)
        check_range("optim.warmup_steps", self.warmup_steps, 0)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        check_range("optim.min_lr_ratio", self.min_lr_ratio, 0, 1)
        check_range("optim.grad_clip", self.grad_clip, 0)
        _choice("optim.grokfast", self.grokfast, GROKFAST)
        check_range("optim.grokfast_alpha", self.grokfast_alpha, 0, 1, hi_open=True)
        check_range("optim.grokfast_lamb", self.grokfast_lamb, 0)
        check_range("optim.grokfast_window", self.grokfast_window, 1)
        check_range("optim.ema_decay", self.ema_decay, 0, 1, hi_open=True)
        return self


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
    checkpoint_every: list = field(default_factory=lambda: [[1000, 100], [10000, 1000], [None, 10000]])
    early_stop_patience: int = 0      # stop once no split improved for this many steps; 0 = off
    early_stop_delta: float = 0.005
    plots: bool = True
    compile: bool = False             # torch.compile the step's forward + loss (pays off on long runs)
    stop_at: list = field(default_factory=list)  # ["test_inferred_iid>=0.9", ...]: stop once all hold
    # "SPLIT>=X[@P]": stop once the forecast (groklab.forecast) gives the target p < P (0.05) of
    # being reached within train.steps; "" = off. forecast_model: its JSON ("" = the shipped one)
    stop_unless_forecast: str = ""
    forecast_model: str = ""

    def validate(self) -> "TrainConfig":
        check_range("train.steps", self.steps, 1)
        check_range("train.batch_size", self.batch_size, 1)
        check_range("train.eval_every", self.eval_every, 1)
        check_range("train.eval_batch_size", self.eval_batch_size, 1)
        check_range("train.seed", self.seed, 0)
        check_device(self.device)
        check_range("train.threads", self.threads, 0)
        _choice("train.amp", self.amp, AMP)
        self.checkpoint_every = checkpoint_schedule(self.checkpoint_every)
        check_range("train.early_stop_patience", self.early_stop_patience, 0)
        check_range("train.early_stop_delta", self.early_stop_delta, 0)
        self.stop_at = [f"{k}>={v:g}" for k, v in stop_targets(self.stop_at)]
        if self.stop_unless_forecast:
            from groklab.forecast.stop import parse_stop_spec  # numpy only: no layer above train
            parse_stop_spec(self.stop_unless_forecast)
        return self


@dataclass
class RunConfig:
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data_path: str | None = None      # train on this dataset directory instead of generating `data`
    preset: str | None = None         # where the config came from (informational)

    def validate(self) -> "RunConfig":
        self.data.validate()
        self.model.validate()
        self.optim.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict:
        return {
            "preset": self.preset,
            "data_path": self.data_path,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "optim": _plain(dataclasses.asdict(self.optim)),
            "train": _plain(dataclasses.asdict(self.train)),
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
    """Typed, coerced and validated RunConfig from a plain dict (a parsed YAML file)."""
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
        model=prefix_errors("model.", lambda: _build(ModelConfig, _section(raw, "model"), "model")),
        optim=_build(OptimConfig, _section(raw, "optim"), "optim"),
        train=_build(TrainConfig, _section(raw, "train"), "train"),
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
    section[parts[1]] = value  # a string: coerced to the field's type when building


def check_device(device: str) -> str:
    ok = device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    if not ok:
        raise bad_value("train.device", device, "auto | cpu | cuda | cuda:N")
    return device


def stop_targets(value) -> list[tuple[str, float]]:
    """Parse ``train.stop_at``: ``"NAME>=X"`` items (NAME a probe split or ``train_acc``,
    0 <= X <= 1), a list of them or one string; returns ``[(NAME, X), ...]``."""
    allowed = 'NAME>=X with NAME a probe split or train_acc and X in [0, 1], e.g. ["test_inferred_iid>=0.9"]'
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise bad_value("train.stop_at", value, allowed)
    out = []
    for item in items:
        name, sep, num = str(item).partition(">=")
        try:
            x = float(num)
        except ValueError:
            x = None
        if not sep or not name.strip().isidentifier() or x is None or not 0 <= x <= 1:
            raise bad_value("train.stop_at", item, allowed)
        out.append((name.strip(), x))
    return out


def checkpoint_schedule(value) -> list[list]:
    """Normalise ``train.checkpoint_every``: an int N (every N steps) or ``[[until, every], ...]``
    with increasing ``until`` and the last ``until`` possibly null (no end)."""
    allowed = "an integer >= 1 or [[until_step, every], ...], e.g. [[1000, 100], [null, 1000]]"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise bad_value("train.checkpoint_every", value, allowed)
        return [[None, value]]
    if not isinstance(value, (list, tuple)) or not value:
        raise bad_value("train.checkpoint_every", value, allowed)
    out, last = [], 0
    for i, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise bad_value("train.checkpoint_every", value, allowed)
        until, every = pair
        ok_every = isinstance(every, int) and not isinstance(every, bool) and every >= 1
        ok_until = (until is None and i == len(value) - 1) or (
            isinstance(until, int) and not isinstance(until, bool) and until > last)
        if not (ok_every and ok_until):
            raise bad_value("train.checkpoint_every", value, allowed)
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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GroklabError(f"config {path}: cannot read it as YAML ({str(exc).splitlines()[0]})") from None
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
    section = dict(section)
    preset = section.pop("preset", None)
    if preset is not None and preset not in DATA_PRESETS:
        raise bad_value("data.preset", preset, ", ".join(DATA_PRESETS))
    base = DATA_PRESETS[preset].to_dict() if preset else {}
    hints = typing.get_type_hints(DataConfig)
    for key, value in section.items():
        if key not in hints:
            raise bad_value(f"data.{key}", value, "one of " + ", ".join(["preset", *hints]))
        base[key] = _coerce(f"data.{key}", value, hints[key])
    return prefix_errors("data.", lambda: DataConfig.from_dict(base))


def _build(cls, section: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in section.items():
        if key not in names:
            raise bad_value(f"{prefix}.{key}", value, "one of " + ", ".join(names))
        kwargs[key] = _coerce(f"{prefix}.{key}", value, hints[key])
    return cls(**kwargs)


def prefix_errors(prefix: str, build):
    """Run ``build``; a GroklabError about a bare field name gets ``prefix`` added."""
    try:
        return build()
    except GroklabError as exc:
        msg = str(exc)
        field_name = msg.split("=", 1)[0]
        if "=" in msg and not msg.startswith(prefix) and field_name.replace("_", "").isalnum():
            raise GroklabError(prefix + msg) from None
        raise


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(name: str, value, hint):
    """Convert ``value`` (from YAML or a ``--set`` string) to the type ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~")):
            if type(None) in args:
                return None
            raise bad_value(name, value, _describe(hint))
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except GroklabError:
                continue
        raise bad_value(name, value, _describe(hint))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad_value(name, value, "true | false")
    if hint is int:
        if isinstance(value, str):
            try:
                value = float(value.strip().replace("_", ""))
            except ValueError:
                raise bad_value(name, value, "an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad_value(name, value, "an integer")
    if hint is float:
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad_value(name, value, "a number") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad_value(name, value, "a number")
    if hint is str:
        if isinstance(value, str):
            return value.strip()
        raise bad_value(name, value, "a string")
    if origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, str):
            value = _yaml_value(name, value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad_value(name, value, f"a list of {len(args)} values")
        return tuple(_coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if hint is list or origin is list:
        value = _yaml_value(name, value) if isinstance(value, str) else value
        return value
    return value


def _yaml_value(name: str, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise bad_value(name, text, "a YAML value, e.g. [0.9, 0.95]") from None


def _describe(hint) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    names = {bool: "true | false", int: "an integer", float: "a number", str: "a string"}
    desc = " or ".join(names.get(a, str(a)) for a in args)
    return desc + (" or null" if type(None) in typing.get_args(hint) else "")


def _choice(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise bad_value(name, value, " | ".join(allowed))


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
