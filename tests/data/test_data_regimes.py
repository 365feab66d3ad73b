"""Augmentation regimes: exposure rules, counts vs ratio and k, shared random streams, and the
custom regime (any (ratio, k) per hop) against the named ones."""

from collections import Counter

import numpy as np
import pytest
from graph_oracle import Oracle

from groklab.data import PROBES, REGIMES, DataConfig, flags as F
from groklab.errors import GroklabError


def _ood_test_usage(o: Oracle):
    u1, u2 = set(), set()
    for q, t, b, h1, h2 in o.chains():
        if h1 in o.ood and h2 in o.ood:
            u1.add(h1)
            u2.add(h2)
    return u1, u2


@pytest.mark.parametrize("regime", list(REGIMES))
def test_additions_expose_one_ood_hop_and_never_an_ood_test_query(regime_sets, regime):
    check_additions(regime_sets[regime], *REGIMES[regime])


def check_additions(ds, ratio1, k1, ratio2, k2):
    """Oracle check of a dataset's additions against its (ratio, k) per hop."""
    o = Oracle(ds)
    ood_test = {q for q, t, b, h1, h2 in o.chains() if h1 in o.ood and h2 in o.ood}
    train = o.queries("train")
    assert not ood_test & train
    assert o.queries("test_inferred_ood") == ood_test
    assert not o.queries("test_inferred_iid") & train
    u1, u2 = _ood_test_usage(o)
    per_fact1, per_fact2 = Counter(), Counter()
    for q, t, b, fl, hop1, hop2 in o.items("train"):
        if hop2 is None:
            continue
        n_ood = (hop1 in o.ood) + (hop2 in o.ood)
        if fl & F.AUGMENTED:
            assert n_ood == 1
            assert bool(fl & F.HOP1_OOD) == (hop1 in o.ood) and bool(fl & F.HOP2_OOD) == (hop2 in o.ood)
            assert fl == F.INFERRED | F.AUGMENTED | (F.HOP1_OOD if hop1 in o.ood else F.HOP2_OOD)
            if hop1 in o.ood:
                assert hop1 in u1
                per_fact1[hop1] += 1
            else:
                assert hop2 in u2
                per_fact2[hop2] += 1
        else:
            assert n_ood == 0 and fl == F.INFERRED
    # counts follow ratio and k: round(ratio*|U|) exposed facts, each min(k, #ID partners) queries
    exposed1, exposed2 = round(ratio1 * len(u1)), round(ratio2 * len(u2))
    assert len(per_fact1) == (exposed1 if k1 else 0) and len(per_fact2) == (exposed2 if k2 else 0)
    partners1 = Counter(h1 for q, t, b, h1, h2 in o.chains() if h1 in o.ood and h2 not in o.ood)
    partners2 = Counter(h2 for q, t, b, h1, h2 in o.chains() if h2 in o.ood and h1 not in o.ood)
    for f, n in per_fact1.items():
        assert n == min(k1, partners1[f])
    for f, n in per_fact2.items():
        assert n == min(k2, partners2[f])
    st = ds.manifest["stats"]
    assert (st["u1_facts"], st["u2_facts"]) == (len(u1), len(u2))
    assert (st["hop1_ratio"], st["hop1_k"], st["hop2_ratio"], st["hop2_k"]) == (ratio1, k1, ratio2, k2)
    assert (st["hop1_exposed_facts"], st["hop2_exposed_facts"]) == (exposed1, exposed2)
    assert (st["added_hop1"], st["added_hop2"]) == (sum(per_fact1.values()), sum(per_fact2.values()))
    if ratio1 and k1:
        assert st["added_hop1"] > 0.5 * st["hop1_exposed_facts"] * min(k1, 7)
    if ratio2 and k2:
        assert st["added_hop2"] > 0.5 * st["hop2_exposed_facts"] * min(k2, 7)


def test_regimes_share_everything_but_the_additions(regime_sets):
    base = regime_sets["natural"]
    for regime, ds in regime_sets.items():
        assert (ds.path / "atomic.npy").read_bytes() == (base.path / "atomic.npy").read_bytes()
        for name in PROBES:
            assert (ds.path / "splits" / f"{name}.npy").read_bytes() == \
                   (base.path / "splits" / f"{name}.npy").read_bytes(), (regime, name)
        tr = ds.split("train")
        plain = (tr.flags & F.AUGMENTED) == 0
        assert np.array_equal(tr.subset(plain).rows(), base.split("train").rows())


def test_regime_additions_nest(regime_sets):
    def added(regime, bit):
        o = Oracle(regime_sets[regime])
        return {q for q, t, b, fl, *_ in o.items("train") if fl & F.AUGMENTED and fl & bit}

    full1, full2 = added("both_full", F.HOP1_OOD), added("both_full", F.HOP2_OOD)
    assert full1 and full2
    assert added("first_hop", F.HOP1_OOD) == full1 and not added("first_hop", F.HOP2_OOD)
    assert added("second_hop", F.HOP2_OOD) == full2 and not added("second_hop", F.HOP1_OOD)
    half1, half2 = added("both_half", F.HOP1_OOD), added("both_half", F.HOP2_OOD)
    assert half1 < full1 and half2 < full2
    assert not added("natural", F.AUGMENTED)


@pytest.mark.parametrize("regime, hop1, hop2", [("both_full", 22_700, 21_500), ("both_half", 5_700, 5_800)])
def test_paper_scale_additions_match_the_reference_counts(tmp_path, regime, hop1, hop2):
    from groklab.data import data_config, make_dataset
    st = make_dataset(data_config("paper", regime=regime), tmp_path / "d").manifest["stats"]
    assert st["chains"] == 800_000 and 18.8 < st["phi_max"] < 19.0
    assert abs(st["added_hop1"] - hop1) < 0.06 * hop1 and abs(st["added_hop2"] - hop2) < 0.06 * hop2


# ---------------------------------------------------------------------------- regime custom

def _same_files(a, b) -> bool:
    names = ["atomic.npy", "vocab.json"] + [f"splits/{n}.npy" for n in ("train", *PROBES)]
    return all((a.path / n).read_bytes() == (b.path / n).read_bytes() for n in names)


def _added(ds, bit) -> set:
    return {q for q, t, b, fl, *_ in Oracle(ds).items("train") if fl & F.AUGMENTED and fl & bit}


@pytest.mark.parametrize("regime", list(REGIMES))
def test_custom_with_a_named_regimes_values_is_that_regime(custom_set, regime_sets, regime):
    # (1,18,1,18) == both_full, (.5,9,.5,9) == both_half, (1,18,0,0) == first_hop, ...
    ds, named = custom_set(*REGIMES[regime]), regime_sets[regime]
    assert _same_files(ds, named)
    assert {**ds.manifest["stats"], "regime": regime} == named.manifest["stats"]
    config = ds.manifest["config"]
    assert (config["hop1_ratio"], config["hop1_k"], config["hop2_ratio"], config["hop2_k"]) == REGIMES[regime]


def test_named_regimes_keep_their_manifest_and_custom_defaults(custom_set, regime_sets):
    for ds in regime_sets.values():       # no new keys: named datasets are byte-identical to before
        assert not {"hop1_ratio", "hop1_k", "hop2_ratio", "hop2_k"} & set(ds.manifest["config"])
    assert DataConfig(regime="custom").exposure() == (0.0, 18, 0.0, 18)
    assert _same_files(custom_set(), regime_sets["natural"])
    assert _same_files(custom_set(r1=1.0), regime_sets["first_hop"])
    assert _same_files(custom_set(r2=1, k1=3), regime_sets["second_hop"])


def test_custom_additions_nest_in_ratio_and_in_k(custom_set, regime_sets):
    def chain(settings):
        sets = [_added(custom_set(*s), F.AUGMENTED) for s in settings]
        assert all(a < b for a, b in zip(sets, sets[1:])), settings
        return sets

    ratios = chain([(r, 18, r, 18) for r in (0.0, 0.25, 0.5, 0.75, 1.0)])
    ks = chain([(1.0, k, 1.0, k) for k in (0, 1, 3, 9, 18)])
    assert not ratios[0] and not ks[0]
    both_half = _added(regime_sets["both_half"], F.AUGMENTED)
    assert both_half < ratios[2] < ratios[4]      # both_half (.5, 9) < (.5, 18) < both_full (1, 18)


@pytest.mark.parametrize("exposure", [(0.3, 5, 0.7, 2), (0.25, 18, 0.6, 1), (1.0, 3, 0.1, 18),
                                      (0.05, 18, 0.95, 7), (0.5, 0, 0.5, 40)])
def test_custom_counts_follow_ratio_and_k(custom_set, exposure):
    check_additions(custom_set(*exposure), *exposure)


@pytest.mark.parametrize("fields, message", [
    ({"regime": "custom", "hop1_ratio": 1.5}, "hop1_ratio=1.5 is invalid (allowed: [0.0, 1.0])"),
    ({"regime": "custom", "hop2_ratio": -0.1}, "hop2_ratio=-0.1 is invalid (allowed: [0.0, 1.0])"),
    ({"regime": "custom", "hop2_ratio": "half"}, "hop2_ratio='half' is invalid (allowed: a number in [0, 1])"),
    ({"regime": "custom", "hop1_k": -1}, "hop1_k=-1 is invalid (allowed: [0, inf])"),
    ({"regime": "custom", "hop2_k": 2.5}, "hop2_k=2.5 is invalid (allowed: an integer >= 0)"),
    ({"regime": "custom", "hop2_k": True}, "hop2_k=True is invalid (allowed: an integer >= 0)"),
    ({"regime": "both_half", "hop1_k": 9}, "hop1_k=9 is invalid (allowed: unset (null) with regime both_half"),
    ({"hop2_ratio": 0.0}, "hop2_ratio=0.0 is invalid (allowed: unset (null) with regime natural"),
    ({"task": "comparison", "regime": "custom"}, "regime='custom' is invalid (allowed: natural"),
])
def test_bad_exposure_values_are_one_line_errors_naming_the_field(fields, message):
    with pytest.raises(GroklabError) as err:
        DataConfig(**fields).validate()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
