"""Composition datasets: the study's invariants, checked on real generated data."""

import dataclasses
import json

import numpy as np
import pytest
from graph_oracle import Oracle

from groklab.data import (COLUMNS, DATA_PRESETS, PROBES, DataConfig, data_config, flags as F,
                          load_dataset, make_dataset)
from groklab.errors import GroklabError


def test_layout_and_vocab_follow_the_contract(tiny):
    assert tiny.vocab[:3] == ["<pad>", "<mask>", "</a>"]
    assert tiny.vocab[3] == "<e_0>" and tiny.vocab[3 + 99] == "<e_99>"
    assert tiny.vocab[3 + 100] == "<r_0>" and tiny.vocab_size == 3 + 100 + 20
    assert tiny.split_names == ["train", *PROBES] and tiny.probe_names == list(PROBES)
    assert tiny.manifest["columns"] == list(COLUMNS)
    assert tiny.atomic.shape == (2000, 4) and tiny.atomic.dtype == np.int32
    raw = np.load(tiny.path / "splits" / "train.npy")
    assert raw.dtype == np.int32 and raw.shape == (36200, 7)
    s = tiny.split("train")
    assert s.tokens.dtype == np.int64 and s.tokens.shape == (36200, 3)
    atomic = s.length == 2
    assert np.all(s.tokens[atomic, 2] == 0) and np.all(s.bridge[atomic] == -1)
    assert np.all(s.length[~atomic] == 3) and np.all((s.flags[~atomic] & F.INFERRED) != 0)
    assert np.array_equal(s.subset(atomic).rows(), raw[atomic])


def test_graph_is_functional_and_every_item_follows_from_it(tiny):
    o = Oracle(tiny)  # asserts (h, r) unique
    heads = {}
    for h, r in o.tail:
        heads.setdefault(h, set()).add(r)
    assert len(heads) == 100 and all(len(rs) == 20 for rs in heads.values())
    for split in tiny.split_names:
        for q, t, b, fl, hop1, hop2 in o.items(split):
            if hop2 is None:
                assert o.tail[hop1] == t and b == -1
            else:
                assert b == o.tail[hop1] and o.tail[hop2] == t


@pytest.mark.parametrize("phi", [0.0, 3.6, 7.2, 18.0])
def test_phi_is_exact(tmp_path, phi):
    ds = make_dataset(data_config("tiny", phi=phi), tmp_path / "d")
    fl = ds.split("train").flags
    n_inferred = int(np.sum((fl & (F.INFERRED | F.AUGMENTED)) == F.INFERRED))
    n_id = int(np.sum((ds.atomic[:, 3] & F.HOP1_OOD) == 0))
    assert n_id == 1900 and n_inferred == round(phi * n_id)
    assert ds.manifest["stats"]["phi_reached"] == pytest.approx(n_inferred / n_id)


def test_splits_match_brute_force(tiny):
    o = Oracle(tiny)
    chains = list(o.chains())
    assert len(chains) == 2000 * 20
    both_ood = {q for q, t, b, h1, h2 in chains if h1 in o.ood and h2 in o.ood}
    both_id = {q for q, t, b, h1, h2 in chains if h1 not in o.ood and h2 not in o.ood}
    st = tiny.manifest["stats"]
    assert st["ood_test"] == len(both_ood) and st["pool"] == len(both_id)
    assert st["id_test"] == round(0.005 * len(both_id))
    # below the cap every probe holds its full set
    assert o.queries("test_inferred_ood") == both_ood
    iid = o.queries("test_inferred_iid")
    train = o.queries("train")
    assert len(iid) == st["id_test"] and iid <= both_id and not iid & train
    inferred = {q for q in train if len(q) == 3}
    assert inferred <= both_id and len(inferred) + len(iid) <= len(both_id)
    assert o.queries("ood_atomic") == {q for q in o.tail if q in o.ood}
    assert o.queries("train_inferred") <= inferred and len(o.queries("train_inferred")) == 3000
    # all atomic facts (ID and OOD) are trained
    assert {q for q in train if len(q) == 2} == set(o.tail)


def test_natural_training_never_uses_an_ood_fact_in_a_composition(regime_sets):
    ds = regime_sets["natural"]
    o = Oracle(ds)
    n = 0
    for q, t, b, fl, hop1, hop2 in o.items("train"):
        if hop2 is not None:
            n += 1
            assert hop1 not in o.ood and hop2 not in o.ood
            assert fl == F.INFERRED
        else:
            assert fl == (F.HOP1_OOD if hop1 in o.ood else 0)
    assert n == round(3.0 * (640 - 64))


def test_probes_are_capped_seeded_samples(tmp_path):
    cfg = dataclasses.replace(DATA_PRESETS["tiny"], probe_cap=50)
    ds = make_dataset(cfg, tmp_path / "a")
    full = make_dataset(DATA_PRESETS["tiny"], tmp_path / "b")
    train = {q for q in Oracle(ds).queries("train") if len(q) == 3}
    for name in PROBES:
        small, big = Oracle(ds).queries(name), Oracle(full).queries(name)
        assert len(small) == min(50, len(big))
        # at tiny size the full probes (except train_inferred) hold their whole sets
        assert small <= (train if name == "train_inferred" else big)


def test_phi_max_takes_the_whole_pool(tmp_path):
    ds = make_dataset(data_config("tiny", phi="max"), tmp_path / "d")
    st = ds.manifest["stats"]
    assert st["train_inferred"] == st["pool"] - st["id_test"]
    assert st["phi_reached"] == pytest.approx(st["phi_max"]) and st["phi_max"] > 18.8
    assert ds.config["phi"] == "max"


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path):
    cfg = data_config("tiny", regime="both_half", seed=7)
    a, b = make_dataset(cfg, tmp_path / "a"), make_dataset(cfg, tmp_path / "b")
    files = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    assert len(files) == 3 + len(PROBES) + 1
    for rel in files:
        assert (a.path / rel).read_bytes() == (b.path / rel).read_bytes(), rel
    c = make_dataset(dataclasses.replace(cfg, seed=8), tmp_path / "c")
    assert not np.array_equal(a.atomic, c.atomic)
    assert Oracle(a).tail != Oracle(c).tail


def test_load_verifies_checksums(tmp_path):
    ds = make_dataset(data_config("tiny", entities=30, relations=5, out_degree=3, phi=1.0), tmp_path / "d")
    assert load_dataset(ds.path).manifest == ds.manifest
    arr = np.load(ds.path / "splits" / "train.npy")
    arr[0, 4] += 1
    np.save(ds.path / "splits" / "train.npy", arr)
    with pytest.raises(GroklabError, match="splits/train.npy does not match its sha256"):
        load_dataset(ds.path)
    with pytest.raises(GroklabError, match="manifest.json"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(GroklabError, match="split='nope'"):
        ds.split("nope")


@pytest.mark.parametrize("change, field", [
    ({"phi": 30.0}, "phi=30.0"), ({"phi": -1.0}, "phi=-1.0"),
    ({"out_degree": 21}, "out_degree=21"), ({"entities": 0}, "entities=0"),
    ({"relations": -3}, "relations=-3"), ({"out_degree": 0}, "out_degree=0"),
    ({"regime": "sideways"}, "regime='sideways'"), ({"ood_ratio": 1.0}, "ood_ratio=1.0"),
    ({"task": "sorting"}, "task='sorting'"), ({"seed": -1}, "seed=-1"),
    ({"probe_cap": 0}, "probe_cap=0"), ({"entities": 2.5}, "entities=2.5"),
])
def test_bad_config_names_field_value_and_range(tmp_path, change, field):
    cfg = dataclasses.replace(DATA_PRESETS["tiny"], **change)
    with pytest.raises(GroklabError, match="^" + field.replace("(", r"\(").replace(".", r"\.")
                       + r" is invalid \(allowed: "):
        make_dataset(cfg, tmp_path / "d")
    assert not (tmp_path / "d").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_phi_error_names_the_maximum(tmp_path):
    with pytest.raises(GroklabError, match=r"phi=19\.0 is invalid \(allowed: \[0, 18\.9115\] or 'max'"):
        make_dataset(data_config("tiny", phi=19.0), tmp_path / "d")


def test_config_dict_round_trip_and_unknown_key():
    cfg = data_config("small", phi="max", regime="first_hop")
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(GroklabError, match="data.nodes"):
        DataConfig.from_dict({"nodes": 5})
