"""Config values from YAML or ``--set`` text: each field parsed to its type, errors naming the
field's full path (``optim.lr``, ``data.phi``, ``model.d_mlp``).

The convention of the config dataclasses (DataConfig, OptimConfig, TrainConfig, RunConfig):

- ``parse_section(cls, raw, path)`` turns a section of a YAML file (strings from ``--set``
  included) into constructor arguments: a field declares its own parser in its metadata
  (``field(metadata={"parse": fn})`` with ``fn(path, value) -> value``, e.g. a schedule that
  normalises its short form) or gets the one of its type (int, float, bool, str, ``X | None``,
  tuples, lists);
- ``validate(path)`` checks the typed values, raises ``bad_value(path + field, ...)`` on the
  first bad one, returns the config and never changes it;
- ``to_dict()`` gives plain values that ``parse_section`` reads back to an equal config.
"""

from __future__ import annotations

import dataclasses
import types
import typing

import yaml

from groklab.errors import GroklabError, bad_value

NULLS = ("null", "none", "~")
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


def parse_section(cls, raw: dict, path: str, also: tuple = ()) -> dict:
    """Constructor arguments of dataclass ``cls`` from the mapping ``raw``; unknown keys and
    values of the wrong type are a GroklabError naming ``path + key`` (``also``: keys the caller
    handles, listed among the allowed ones)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in raw.items():
        if key not in fields:
            raise bad_value(f"{path}{key}", value, "one of " + ", ".join([*also, *fields]))
        parse = fields[key].metadata.get("parse")
        out[key] = parse(f"{path}{key}", value) if parse else parse_value(f"{path}{key}", value, hints[key])
    return out


def parse_value(path: str, value, hint):
    """``value`` (a YAML value or a ``--set`` string) as type ``hint``, or a GroklabError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if _is_null(value):
            if type(None) in args:
                return None
            raise bad_value(path, value, describe(hint))
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(path, value, arg)
            except GroklabError:
                continue
        raise bad_value(path, value, describe(hint))
    if origin is tuple:
        value = yaml_value(path, value) if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad_value(path, value, f"a list of {len(args)} values")
        return tuple(parse_value(f"{path}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if hint is list or origin is list:
        return yaml_value(path, value) if isinstance(value, str) else value
    scalar = SCALARS.get(hint)
    return scalar(path, value) if scalar else value


def yaml_value(path: str, text: str):
    """A ``--set`` string read as YAML (``[0.9, 0.95]``, ``[[100, 10], [null, 50]]``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise bad_value(path, text, "a YAML value, e.g. [0.9, 0.95]") from None


def describe(hint) -> str:
    """What a value of type ``hint`` must be, for messages: ``an integer or null``."""
    args = typing.get_args(hint) or (hint,)
    desc = " or ".join(KINDS.get(a, str(a)) for a in args if a is not type(None))
    return desc + (" or null" if type(None) in args else "")


def _is_null(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NULLS)


def _flag(path: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise bad_value(path, value, KINDS[bool])


def _integer(path: str, value) -> int:
    if isinstance(value, str):
        try:
            value = float(value.strip().replace("_", ""))
        except ValueError:
            raise bad_value(path, value, KINDS[int]) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise bad_value(path, value, KINDS[int])


def _number(path: str, value) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise bad_value(path, value, KINDS[float]) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise bad_value(path, value, KINDS[float])


def _text(path: str, value) -> str:
    if isinstance(value, str):
        return value.strip()
    raise bad_value(path, value, KINDS[str])


KINDS = {bool: "true | false", int: "an integer", float: "a number", str: "a string"}
SCALARS = {bool: _flag, int: _integer, float: _number, str: _text}
