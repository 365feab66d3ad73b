"""The new-knowledge set: unused pairs, replay closure, no new-fact compositions in training."""

import json

import pytest
from graph_oracle import Oracle

from groklab.data import INJECT_PROBES, data_config, flags as F, inject_dataset, make_dataset
from groklab.errors import GroklabError
from groklab.fsutil import sha256_file


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    cfg = data_config("tiny", entities=120, relations=20, out_degree=8, phi=4.0, regime="both_full")
    return make_dataset(cfg, tmp_path_factory.mktemp("src") / "ds")


@pytest.fixture(scope="module")
def injected(source, tmp_path_factory):
    return inject_dataset(source.path, tmp_path_factory.mktemp("inj") / "ds", new_facts=300,
                          replay=1500, seed=5)


def test_new_facts_use_unused_pairs_and_keep_the_vocab(source, injected):
    assert (injected.path / "vocab.json").read_bytes() == (source.path / "vocab.json").read_bytes()
    old, new = Oracle(source), Oracle(injected)
    assert len(new.new) == 300
    assert not new.new & set(old.tail)                       # unused (h, r) pairs
    assert {k: v for k, v in new.tail.items() if k not in new.new} == old.tail
    assert new.ood == old.ood
    assert new.queries("atomic_new") == new.new
    m = injected.manifest
    assert m["kind"] == "injected" and m["source"]["manifest_sha256"] == sha256_file(source.path / "manifest.json")
    assert m["inject"] == {"new_facts": 300, "replay": 1500, "seed": 5, "chain_fraction": 0.5}
    assert injected.split_names == ["train", *INJECT_PROBES]


def test_train_is_replay_plus_new_atomic_without_new_compositions(source, injected):
    o = Oracle(injected)
    src_train = set(Oracle(source).queries("train"))
    replay, new_atomic = [], []
    for q, t, b, fl, hop1, hop2 in o.items("train"):
        if hop1 in o.new:
            assert hop2 is None and fl == F.HOP1_NEW
            new_atomic.append(q)
        else:
            assert hop2 is None or hop2 not in o.new
            assert q in src_train
            replay.append(q)
    assert len(new_atomic) == 300
    assert 1500 - 60 <= len(replay) <= 1500    # whole facts with their compositions: a bit short
    assert injected.manifest["stats"]["replay_items"] == len(replay)


def test_replay_closure(source, injected):
    """Every replayed atomic fact comes with every training composition that uses it."""
    src, o = Oracle(source), Oracle(injected)
    uses = {}
    for q, t, b, fl, hop1, hop2 in src.items("train"):
        if hop2 is not None:
            uses.setdefault(hop1, set()).add(q)
            uses.setdefault(hop2, set()).add(q)
    train = o.queries("train")
    kept = [q for q in train if len(q) == 2 and q not in o.new]
    comps = {q for q in train if len(q) == 3}
    assert kept and comps
    brought = set()
    for fact in kept:
        assert uses.get(fact, set()) <= comps
        brought |= uses.get(fact, set())
    assert comps == brought   # and no composition without a kept fact
    assert any(fl & F.AUGMENTED for *_, fl, _, _ in o.items("train"))  # augmented ones replay too


def test_transfer_probes(injected):
    o = Oracle(injected)
    expect = {"new_old": (True, False), "old_new": (False, True), "new_new": (True, True)}
    for name, (n1, n2) in expect.items():
        items = list(o.items(name))
        assert items, name
        for q, t, b, fl, hop1, hop2 in items:
            assert (hop1 in o.new, hop2 in o.new) == (n1, n2)
            assert hop1 not in o.ood and hop2 not in o.ood
            assert fl == F.INFERRED | (F.HOP1_NEW if n1 else 0) | (F.HOP2_NEW if n2 else 0)
    full_new_new = {q for q, t, b, h1, h2 in o.chains() if h1 in o.new and h2 in o.new}
    assert o.queries("new_new") == full_new_new and len(full_new_new) >= 100  # chained new facts
    assert o.queries("replay_atomic") | o.queries("replay_inferred") == {
        q for q in o.queries("train") if q[:2] not in o.new}


def test_old_probes_are_the_source_training_items_not_replayed(source, injected):
    """old_atomic / old_inferred: what the finetune may forget (capped samples of it)."""
    src, o = Oracle(source), Oracle(injected)
    src_train = src.queries("train")
    replayed = o.queries("replay_atomic") | o.queries("replay_inferred")
    old_atomic, old_inferred = o.queries("old_atomic"), o.queries("old_inferred")
    assert old_atomic and old_inferred
    assert not (old_atomic | old_inferred) & replayed
    assert all(len(q) == 2 for q in old_atomic) and all(len(q) == 3 for q in old_inferred)
    assert old_atomic | old_inferred <= set(src_train)
    stats = injected.manifest["stats"]
    n_src_atomic = sum(1 for q in src_train if len(q) == 2)
    assert stats["old_atomic_total"] == n_src_atomic - stats["replay_atomic"]
    assert stats["old_atomic_total"] + stats["old_inferred_total"] + stats["replay_items"] == len(src_train)
    assert len(old_atomic) == min(stats["old_atomic_total"], injected.config["probe_cap"])


def test_inject_is_reproducible(source, injected, tmp_path):
    again = inject_dataset(source.path, tmp_path / "again", new_facts=300, replay=1500, seed=5)
    for p in injected.path.rglob("*.npy"):
        assert p.read_bytes() == (again.path / p.relative_to(injected.path)).read_bytes()
    other = inject_dataset(source.path, tmp_path / "other", new_facts=300, replay=1500, seed=6)
    assert Oracle(other).new != Oracle(injected).new


def test_inject_errors(source, tmp_path):
    tiny = make_dataset(data_config("tiny", entities=20, relations=4, out_degree=4, phi=1.0), tmp_path / "full")
    with pytest.raises(GroklabError, match=r"new_facts=10 is invalid \(allowed: none: the source graph uses every"):
        inject_dataset(tiny.path, tmp_path / "o", new_facts=10, replay=10)
    free = 120 * 20 - 120 * 8
    with pytest.raises(GroklabError, match=rf"new_facts=5000 is invalid \(allowed: \[1, {free}\]"):
        inject_dataset(source.path, tmp_path / "o", new_facts=5000, replay=10)
    with pytest.raises(GroklabError, match=r"replay=-1 is invalid"):
        inject_dataset(source.path, tmp_path / "o", new_facts=5, replay=-1)
    assert not (tmp_path / "o").exists()
    assert json.loads((source.path / "manifest.json").read_text())["kind"] == "generated"
