"""Claim 1's memoriser dataset: the same queries and facts, the compositions' answers permuted."""

import numpy as np
import pytest

from groklab.data import load_dataset
from groklab.data.memorise import KIND, NO_BRIDGE, shuffled_compositions_dataset
from groklab.data.rows import BRIDGE, IN0, IN1, IN2, LENGTH, TARGET, TWO_HOP_LENGTH
from groklab.errors import GroklabError


def _answers(rows):
    return {(int(a), int(b), int(c)): int(t) for a, b, c, t in rows[:, [IN0, IN1, IN2, TARGET]]}


@pytest.fixture(scope="module")
def pair(tiny, tmp_path_factory):
    return tiny, shuffled_compositions_dataset(tiny.path, tmp_path_factory.mktemp("m") / "ds", seed=3)


def test_same_queries_and_facts_with_the_compositions_answers_permuted(pair):
    src, mem = pair
    a, b = src.split("train").rows(), mem.split("train").rows()
    assert mem.manifest["kind"] == KIND
    assert np.array_equal(np.asarray(src.atomic), np.asarray(mem.atomic))
    assert np.array_equal(a[:, [IN0, IN1, IN2, LENGTH]], b[:, [IN0, IN1, IN2, LENGTH]])
    comp = a[:, LENGTH] == TWO_HOP_LENGTH
    assert np.array_equal(a[~comp], b[~comp])                         # atomic facts untouched
    assert sorted(a[comp, TARGET]) == sorted(b[comp, TARGET])         # a permutation
    unchanged = np.mean(a[comp, TARGET] == b[comp, TARGET])
    assert unchanged < 0.1                                           # near 1 / entities
    assert mem.manifest["stats"]["answers_unchanged"] == int((a[comp, TARGET] == b[comp, TARGET]).sum())
    assert (b[comp, BRIDGE] == NO_BRIDGE).all()


def test_train_inferred_asks_for_the_trained_answers_and_the_tests_for_the_true_ones(pair):
    src, mem = pair
    trained = _answers(mem.split("train").rows())
    probe = mem.split("train_inferred").rows()
    assert all(trained[k] == t for k, t in _answers(probe).items())
    assert np.array_equal(probe[:, :3], src.split("train_inferred").rows()[:, :3])
    for name in ("test_inferred_iid", "test_inferred_ood", "id_atomic", "ood_atomic"):
        assert np.array_equal(src.split(name).rows(), mem.split(name).rows())


def test_seeded_and_refuses_derived_sources(pair, tmp_path):
    src, mem = pair
    again = shuffled_compositions_dataset(src.path, tmp_path / "again", seed=3)
    other = shuffled_compositions_dataset(src.path, tmp_path / "other", seed=4)
    assert np.array_equal(again.split("train").rows(), mem.split("train").rows())
    assert not np.array_equal(other.split("train").rows(), mem.split("train").rows())
    with pytest.raises(GroklabError, match="src="):
        shuffled_compositions_dataset(mem.path, tmp_path / "twice")
    assert load_dataset(mem.path, verify=True).manifest["shuffle"] == {"seed": 3}
