"""DataConfig: everything that determines a generated dataset, plus the size presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from groklab.errors import GroklabError, bad_value, check_range

TASKS = ("composition", "comparison")
# regime -> (hop-1 ratio, hop-1 k, hop-2 ratio, hop-2 k); study.md section 2.
REGIMES: dict[str, tuple[float, int, float, int]] = {
    "natural": (0.0, 0, 0.0, 0),
    "both_full": (1.0, 18, 1.0, 18),
    "both_half": (0.5, 9, 0.5, 9),
    "first_hop": (1.0, 18, 0.0, 0),
    "second_hop": (0.0, 0, 1.0, 18),
}
# regime custom: (ratio, k) per hop from the DataConfig fields below, for maps beyond the 5 cells
CUSTOM = "custom"
REGIME_NAMES = (*REGIMES, CUSTOM)
EXPOSURE_FIELDS = ("hop1_ratio", "hop1_k", "hop2_ratio", "hop2_k")
CUSTOM_DEFAULTS = (0.0, 18, 0.0, 18)  # an unset field of regime custom: no exposure, k = 18
MAX_CHAINS = 200_000_000  # entities * out_degree**2; keeps memory bounded
OOD_RULES = ("all", "any")  # k-hop: a query is OOD when all its facts are / when any is
MAX_HOPS = 8                 # = data.rows.MAX_HOPS (the flag bits of the OOD hops)
KHOP_FIELDS = ("hops", "test_hops", "ood_rule")


def parse_hops(path: str, value) -> tuple[int, ...] | None:
    """Hop counts from YAML or the command line: ``3``, ``"2,3,4"``, ``[2, 3]`` or null;
    sorted, duplicates dropped (the short forms are normalised here; validate checks ranges)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~", "")):
        return None
    items = value.strip().strip("[]").split(",") if isinstance(value, str) else value
    if isinstance(items, int) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise bad_value(path, value, "an integer >= 2 or a list of them, e.g. 2,3,4")
    out = set()
    for item in items:
        try:
            k = int(str(item).strip()) if not isinstance(item, bool) else None
        except ValueError:
            k = None
        if k is None or (isinstance(item, float) and not item.is_integer()):
            raise bad_value(path, value, "an integer >= 2 or a list of them, e.g. 2,3,4")
        out.add(k)
    return tuple(sorted(out))


@dataclass(frozen=True)
class DataConfig:
    """A dataset recipe. ``phi`` is a float or ``"max"`` (every pool chain goes to training).

    Composition: ``entities`` x ``relations`` graph, ``out_degree`` relations per entity.
    Comparison: ``relations`` are the attributes, each taking one of ``values`` ordinal values;
    ``ood_ratio`` is then the fraction of OOD entities per attribute (``out_degree`` unused).
    ``regime``: a name of ``REGIMES`` or ``custom``, whose (ratio, k) per hop are ``hop1_ratio``,
    ``hop1_k``, ``hop2_ratio``, ``hop2_k`` (see :meth:`exposure`).
    """

    task: str = "composition"
    entities: int = 2000
    relations: int = 200
    out_degree: int = 20
    ood_ratio: float = 0.05
    phi: float | str = 18.0
    regime: str = "natural"
    seed: int = 0
    id_test_ratio: float = 0.005
    probe_cap: int = 3000
    values: int = 20  # comparison task only
    # regime custom only (None = unset; custom then uses CUSTOM_DEFAULTS): fraction of U1 / U2
    # exposed, in [0, 1], and chains added per exposed fact, an integer >= 0
    hop1_ratio: float | None = None
    hop1_k: int | None = None
    hop2_ratio: float | None = None
    hop2_k: int | None = None
    # k-hop composition (docs/data.md): hop counts trained, hop counts held out (probes only),
    # OOD rule; None = the two-hop task exactly as before these fields existed
    hops: tuple[int, ...] | None = field(default=None, metadata={"parse": parse_hops})
    test_hops: tuple[int, ...] | None = field(default=None, metadata={"parse": parse_hops})
    ood_rule: str | None = None

    @property
    def train_hops(self) -> tuple[int, ...]:
        """Hop counts of the training queries (2 unless ``hops`` says otherwise)."""
        return tuple(self.hops) if self.hops is not None else (2,)

    @property
    def heldout_hops(self) -> tuple[int, ...]:
        return tuple(self.test_hops) if self.test_hops is not None else ()

    @property
    def max_hops(self) -> int:
        """Hops of the longest query of any split (the row layout, data/rows.py)."""
        return max(self.train_hops + self.heldout_hops)

    @property
    def is_khop(self) -> bool:
        """True when the k-hop builder makes this dataset: hop counts other than two, held-out
        hop counts or rule ``any``. (``hops: [2]`` / rule ``all`` alone is the two-hop task.)"""
        return (self.hops not in (None, (2,)) or self.test_hops is not None
                or self.ood_rule == "any")

    def validate(self, path: str = "") -> "DataConfig":
        """Raise GroklabError naming ``path + field``, its value and the allowed range, on the
        first invalid field; return self (never changed). ``path``: ``"data."`` in a run config."""
        if self.task not in TASKS:
            raise bad_value(f"{path}task", self.task, ", ".join(TASKS))
        for name, lo in (("entities", 2), ("relations", 1), ("out_degree", 1),
                         ("probe_cap", 1), ("values", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad_value(path + name, value, f"an integer >= {lo}")
            check_range(path + name, value, lo)
        if self.task == "composition":
            check_range(f"{path}out_degree", self.out_degree, 1, self.relations)
            chains = self.entities * self.out_degree ** 2
            if chains > MAX_CHAINS:
                raise bad_value(f"{path}entities", self.entities,
                                f"entities * out_degree**2 <= {MAX_CHAINS:,} (got {chains:,})")
        for name in ("ood_ratio", "id_test_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_value(path + name, value, "a number in [0, 1)")
            check_range(path + name, float(value), 0.0, 1.0, hi_open=True)
        if self.phi != "max":
            if isinstance(self.phi, bool) or not isinstance(self.phi, (int, float)):
                raise bad_value(f"{path}phi", self.phi, "a number >= 0 or 'max'")
            check_range(f"{path}phi", float(self.phi), 0.0)
        if self.regime not in REGIME_NAMES:
            raise bad_value(f"{path}regime", self.regime, ", ".join(REGIME_NAMES))
        if self.task == "comparison" and self.regime != "natural":
            raise bad_value(f"{path}regime", self.regime, "natural (the only regime of task comparison)")
        self._check_exposure(path)
        self._check_khop(path)
        return self

    def _check_khop(self, path: str) -> None:
        """hops / test_hops: integers in [2, MAX_HOPS], sorted, distinct; test_hops above every
        trained hop count; ood_rule all | any; composition only; regimes: two-hop only."""
        if all(getattr(self, n) is None for n in KHOP_FIELDS):
            return
        if self.task != "composition":
            name = next(n for n in KHOP_FIELDS if getattr(self, n) is not None)
            raise bad_value(path + name, getattr(self, name), "unset (null) with task "
                            f"{self.task}: k-hop queries are a composition-task option")
        for name in ("hops", "test_hops"):
            value = getattr(self, name)
            if value is None:
                continue
            if (not isinstance(value, tuple) or not value or list(value) != sorted(set(value))
                    or any(isinstance(k, bool) or not isinstance(k, int) for k in value)):
                raise bad_value(path + name, value, "a sorted list of distinct integers")
            for k in value:
                check_range(path + name, k, 2, MAX_HOPS)
        if self.test_hops is not None and min(self.test_hops) <= max(self.train_hops):
            raise bad_value(f"{path}test_hops", ",".join(map(str, self.test_hops)),
                            f"hop counts above the trained ones (> {max(self.train_hops)})")
        if self.ood_rule is not None and self.ood_rule not in OOD_RULES:
            raise bad_value(f"{path}ood_rule", self.ood_rule, " | ".join(OOD_RULES))
        if self.regime != "natural" and (self.train_hops != (2,) or self.ood_rule == "any"):
            raise bad_value(f"{path}regime", self.regime, "natural with k-hop queries (regimes "
                            "expose one-OOD-hop two-hop chains: not yet defined for k hops)")

    def _check_exposure(self, path: str) -> None:
        """Exposure fields: unset with a named regime; ratios in [0, 1], k >= 0 with custom."""
        if self.regime != CUSTOM:
            for name in EXPOSURE_FIELDS:
                if getattr(self, name) is not None:
                    raise bad_value(path + name, getattr(self, name), f"unset (null) with regime "
                                    f"{self.regime}; set regime custom to use it")
            return
        for name in ("hop1_ratio", "hop2_ratio"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise bad_value(path + name, value, "a number in [0, 1]")
                check_range(path + name, float(value), 0.0, 1.0)
        for name in ("hop1_k", "hop2_k"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise bad_value(path + name, value, "an integer >= 0")
                check_range(path + name, value, 0)

    def exposure(self) -> tuple[float, int, float, int]:
        """(hop-1 ratio, hop-1 k, hop-2 ratio, hop-2 k): the named regime's, or custom's fields."""
        if self.regime != CUSTOM:
            return REGIMES[self.regime]
        values = [getattr(self, n) for n in EXPOSURE_FIELDS]
        r1, k1, r2, k2 = (d if v is None else v for v, d in zip(values, CUSTOM_DEFAULTS))
        return float(r1), int(k1), float(r2), int(k2)

    def to_dict(self) -> dict:
        """Fields as a dict. Exposure fields: resolved for custom, left out when unset (named
        regimes), so a named regime's manifest and run config read as before they existed."""
        d = dataclasses.asdict(self)
        if self.regime == CUSTOM:
            d.update(zip(EXPOSURE_FIELDS, self.exposure()))
        for name in EXPOSURE_FIELDS + KHOP_FIELDS:
            if d[name] is None:
                del d[name]
            elif name in ("hops", "test_hops"):
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str = "data.") -> "DataConfig":
        """Build from a plain dict of typed values (a run config's or a manifest's data
        section) and validate it; unknown keys are an error. Errors name ``path + field``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise bad_value(path + unknown[0], d[unknown[0]], "one of " + ", ".join(sorted(known)))
        d = {k: tuple(v) if k in ("hops", "test_hops") and isinstance(v, list) else v
             for k, v in d.items()}
        return cls(**d).validate(path)


DATA_PRESETS: dict[str, DataConfig] = {
    "tiny": DataConfig(entities=100, relations=20),
    "small": DataConfig(entities=500, relations=50),
    "paper": DataConfig(entities=2000, relations=200),
}


def data_config(preset: str = "tiny", **overrides) -> DataConfig:
    """A preset with some fields replaced (``None`` values are ignored); validated."""
    if preset not in DATA_PRESETS:
        raise bad_value("preset", preset, ", ".join(DATA_PRESETS))
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        cfg = dataclasses.replace(DATA_PRESETS[preset], **changes)
    except TypeError as exc:
        raise GroklabError(f"bad data config override: {exc}") from None
    return cfg.validate()


def parse_phi(text: str) -> float | str:
    """Command-line phi: a number >= 0 or ``max``."""
    if text == "max":
        return "max"
    try:
        return float(text)
    except ValueError:
        raise bad_value("phi", text, "a number >= 0 or 'max'") from None
