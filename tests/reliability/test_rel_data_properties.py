"""Property tests of the data generator's guarantees over random small graphs, phi values and
regimes (hypothesis), beyond the hand-picked configurations of tests/data."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from groklab.data import REGIME_NAMES, DataConfig  # noqa: E402
from groklab.data import flags as F  # noqa: E402
from groklab.data.splits import PROBES, build_composition  # noqa: E402
from groklab.errors import GroklabError  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configs(draw):
    relations = draw(st.integers(2, 8))
    regime = draw(st.sampled_from(REGIME_NAMES))
    custom = {}
    if regime == "custom":
        custom = dict(hop1_ratio=draw(st.sampled_from([0.0, 0.3, 1.0])), hop1_k=draw(st.integers(0, 5)),
                      hop2_ratio=draw(st.sampled_from([0.0, 0.5, 1.0])), hop2_k=draw(st.integers(0, 5)))
    phi = draw(st.one_of(st.just("max"), st.floats(0, 6, allow_nan=False).map(lambda x: round(x, 2))))
    return DataConfig(entities=draw(st.integers(3, 30)), relations=relations,
                      out_degree=draw(st.integers(1, relations)),
                      ood_ratio=draw(st.sampled_from([0.0, 0.05, 0.2, 0.5])), phi=phi,
                      regime=regime, seed=draw(st.integers(0, 2**31)),
                      id_test_ratio=draw(st.sampled_from([0.0, 0.05, 0.3])),
                      probe_cap=draw(st.integers(1, 60)), **custom)


def _check(cfg: DataConfig, built) -> None:
    E, R = cfg.entities, cfg.relations
    h, r, t, fl = built.atomic.T.astype(np.int64)
    tail = {(a, b): c for a, b, c in zip(h, r, t)}
    ood = {(a, b) for a, b, f in zip(h, r, fl) if f & F.HOP1_OOD}
    n_id = len(tail) - len(ood)
    assert len(tail) == len(h) == E * cfg.out_degree  # (h, r) -> t is a function, out_degree each
    assert np.all((h >= 3) & (h < 3 + E) & (t >= 3) & (t < 3 + E) & (r >= 3 + E) & (r < 3 + E + R))
    assert len(ood) == int(round(cfg.ood_ratio * len(tail)))
    assert list(built.splits) == ["train", *PROBES]
    queries = {}
    for name, rows in built.splits.items():
        assert rows.dtype == np.int32 and rows.shape[1] == 7
        if name != "train":
            assert len(rows) <= cfg.probe_cap
        qs = set()
        for in0, in1, in2, length, target, bridge, flags in rows.tolist():
            hop1 = (in0, in1)
            assert ((hop1 in ood) == bool(flags & F.HOP1_OOD))
            if length == 2:
                assert tail[hop1] == target and bridge == -1 and in2 == 0
                assert not flags & (F.INFERRED | F.HOP2_OOD | F.AUGMENTED)
            else:
                assert length == 3 and bridge == tail[hop1]
                hop2 = (bridge, in2)
                assert tail[hop2] == target  # the answer follows from the atomic facts
                assert flags & F.INFERRED and (hop2 in ood) == bool(flags & F.HOP2_OOD)
                if flags & F.AUGMENTED:  # a regime addition: exactly one OOD hop
                    assert (hop1 in ood) != (hop2 in ood)
                else:
                    assert name not in ("train", "train_inferred") or (hop1 not in ood and hop2 not in ood)
            qs.add((in0, in1, in2, length))
        queries[name] = qs
    train = built.splits["train"]
    atomic_train = train[train[:, 3] == 2]
    assert len(atomic_train) == len(tail) == len({tuple(x) for x in atomic_train[:, :2].tolist()})
    inferred = train[(train[:, 3] == 3) & ((train[:, 6] & F.AUGMENTED) == 0)]
    assert len({tuple(x) for x in inferred[:, :3].tolist()}) == len(inferred)  # no repeats
    s = built.stats
    assert s["train_inferred"] == len(inferred)
    if cfg.phi != "max":
        assert len(inferred) == int(round(cfg.phi * n_id))
    else:
        assert len(inferred) == s["pool"] - s["id_test"]
    assert s["added_hop1"] + s["added_hop2"] == int(np.sum((train[:, 6] & F.AUGMENTED) != 0))
    if cfg.regime == "natural":
        assert s["added_hop1"] == s["added_hop2"] == 0
    # the ID test and the OOD test never leak into training
    trained = {q for q in queries["train"]}
    assert not (queries["test_inferred_iid"] & trained)
    assert not (queries["test_inferred_ood"] & trained)
    ood_rows = built.splits["test_inferred_ood"]
    assert np.all(ood_rows[:, 6] & F.HOP1_OOD) and np.all(ood_rows[:, 6] & F.HOP2_OOD)


@SETTINGS
@given(configs())
def test_composition_guarantees_hold(cfg):
    try:
        built = build_composition(cfg.validate())
    except GroklabError as exc:  # only a phi above what this graph's pool allows
        assert str(exc).startswith("phi=")
        assert cfg.phi != "max"
        return
    _check(cfg, built)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(configs())
def test_same_config_and_seed_give_identical_data(cfg):
    try:
        a = build_composition(cfg.validate())
    except GroklabError:
        return
    b = build_composition(cfg)
    assert np.array_equal(a.atomic, b.atomic)
    assert all(np.array_equal(a.splits[k], b.splits[k]) for k in a.splits)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.one_of(st.sampled_from([float("inf"), float("-inf"), float("nan")]),
                 st.floats(allow_nan=True, allow_infinity=True)),
       st.one_of(st.integers(2, 1000), st.integers(-3, 10**9)))
def test_config_validation_is_total(phi, entities):
    """validate() either accepts a config or raises GroklabError: never another exception, and
    never accepts a non-finite phi or a request beyond the chain limit."""
    try:
        cfg = DataConfig(entities=entities, relations=8, out_degree=4, phi=phi).validate()
    except GroklabError:
        return
    assert np.isfinite(cfg.phi) and cfg.phi >= 0 and 2 <= cfg.entities
