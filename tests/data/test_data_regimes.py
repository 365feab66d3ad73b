"""Augmentation regimes: exposure rules, counts vs ratio and k, shared random streams."""

from collections import Counter

import numpy as np
import pytest
from graph_oracle import Oracle

from groklab.data import PROBES, REGIMES, flags as F


def _ood_test_usage(o: Oracle):
    u1, u2 = set(), set()
    for q, t, b, h1, h2 in o.chains():
        if h1 in o.ood and h2 in o.ood:
            u1.add(h1)
            u2.add(h2)
    return u1, u2


@pytest.mark.parametrize("regime", list(REGIMES))
def test_additions_expose_one_ood_hop_and_never_an_ood_test_query(regime_sets, regime):
    ds = regime_sets[regime]
    o = Oracle(ds)
    ood_test = {q for q, t, b, h1, h2 in o.chains() if h1 in o.ood and h2 in o.ood}
    train = o.queries("train")
    assert not ood_test & train
    assert o.queries("test_inferred_ood") == ood_test
    assert not o.queries("test_inferred_iid") & train
    u1, u2 = _ood_test_usage(o)
    ratio1, k1, ratio2, k2 = REGIMES[regime]
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
    assert len(per_fact1) == round(ratio1 * len(u1)) and len(per_fact2) == round(ratio2 * len(u2))
    partners1 = Counter(h1 for q, t, b, h1, h2 in o.chains() if h1 in o.ood and h2 not in o.ood)
    partners2 = Counter(h2 for q, t, b, h1, h2 in o.chains() if h2 in o.ood and h1 not in o.ood)
    for f, n in per_fact1.items():
        assert n == min(k1, partners1[f])
    for f, n in per_fact2.items():
        assert n == min(k2, partners2[f])
    st = ds.manifest["stats"]
    assert (st["u1_facts"], st["u2_facts"]) == (len(u1), len(u2))
    assert (st["added_hop1"], st["added_hop2"]) == (sum(per_fact1.values()), sum(per_fact2.values()))
    if ratio1:
        assert st["added_hop1"] > 0.5 * st["hop1_exposed_facts"] * min(k1, 7)
    if ratio2:
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
