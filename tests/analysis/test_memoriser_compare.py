"""Tracing against a model trained on other answers (claim 1's memoriser control): each model
is judged on the answers it was trained on, on the same counterfactual inputs."""

import numpy as np
import pytest

from groklab.analysis.compare import compare_models
from groklab.analysis.memoriser import answer_table, compare_with_memoriser
from groklab.data.memorise import shuffled_compositions_dataset
from groklab.errors import GroklabError


def test_judged_on_its_own_true_answers_a_model_matches_itself(trained):
    model, ds = trained
    res = compare_with_memoriser(model, ds, model, ds, n=200, n_boot=50)
    assert res["n"] > 20
    assert np.array_equal(res["a"]["restored"], res["b"]["restored"])
    assert res["restored_corr"]["value"] == pytest.approx(1.0)
    # the same grids as the ordinary comparison of the model with itself on these queries
    plain = compare_models(model, model, ds, split="train_inferred", corrupt="r1", n=200,
                           n_boot=50)["trace"]
    assert plain["n"] == res["n"]
    assert np.allclose(plain["a"]["restored"], res["a"]["restored"])


def test_permuted_answers_are_what_the_other_model_is_judged_on(trained, tmp_path):
    model, ds = trained
    shuffled = shuffled_compositions_dataset(ds.path, tmp_path / "shuf", seed=1)
    table, true = answer_table(shuffled), answer_table(ds)
    assert table.keys() == true.keys() and np.mean([table[k] == true[k] for k in table]) < 0.2
    # a model that answers the true graph gets few permuted answers right: only coincidences
    # (where the permutation kept the true answer) can be traced
    try:
        res = compare_with_memoriser(model, ds, model, shuffled, n=200, n_boot=50)
    except GroklabError as exc:
        assert "answers none" in str(exc)
        return
    same = compare_with_memoriser(model, ds, model, ds, n=200, n_boot=50)
    assert res["n"] < 0.25 * same["n"]
