"""The numpy model: fits, round-trips through JSON exactly, refuses foreign files; the shipped
default loads; AUROC and calibration against hand-computed values."""

import json

import numpy as np
import pytest

from groklab.errors import GroklabError
from groklab.forecast import features as fx
from groklab.analysis.forecast_evaluate import auroc, calibration
from groklab.forecast.model import DEFAULT_PATH, ForecastModel, fit_logistic, fit_target, load_model


def test_logistic_fit_matches_a_known_boundary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(2.0 * X[:, 0] - 1.0 * X[:, 1] + 0.5)))
    y = (rng.random(4000) < p).astype(float)
    w, b = fit_logistic(X, y, l2=1e-6)
    assert w == pytest.approx([2.0, -1.0], abs=0.2) and b == pytest.approx(0.5, abs=0.15)


def _synthetic_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, len(fx.NAMES)))
    hit = X[:, 0] + 0.3 * rng.normal(size=300) > 0
    log_ratio = np.where(hit, 0.5 + 0.2 * X[:, 1], np.nan)
    return ForecastModel({"test_inferred_iid>=0.9": fit_target(X, hit, log_ratio, {})}), X


def test_json_round_trip_is_exact(tmp_path):
    model, X = _synthetic_model()
    path = tmp_path / "m.json"
    model.save(path)
    again = load_model(path)
    a, b = model.targets["test_inferred_iid>=0.9"], again.targets["test_inferred_iid>=0.9"]
    assert np.array_equal(a.probability(X), b.probability(X))
    assert np.array_equal(a.log_ratio(X), b.log_ratio(X))
    assert json.loads(path.read_text())["features"] == list(fx.NAMES)


@pytest.mark.parametrize("content, message", [
    ("{not json", "a JSON file"), ('{"format": "other"}', "groklab-forecast JSON"),
    ('{"format": "groklab-forecast", "version": 1, "features": ["elapsed"], "targets": {}}', "refit it"),
])
def test_foreign_model_files_are_refused(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(GroklabError, match=message):
        load_model(path)


def test_shipped_default_model():
    model = load_model()
    assert DEFAULT_PATH.is_file()
    for key in ("test_inferred_iid>=0.9", "test_inferred_ood>=0.5", "test_inferred_ood>=0.9", "generic"):
        assert key in model.targets
    assert model.meta["n_runs"] >= 200 and len(model.meta["sweeps"]) == 5
    # a target without its own entry uses the pooled one
    assert model.for_target(fx.parse_target("id_atomic>=0.8"))[0] == "generic"


def test_auroc_and_calibration_by_hand():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (.8>.4) 1, (.8>.1) 1, (.4=.4) 0.5, (.4>.1) 1 -> 3.5/4
    assert auroc(np.array([0.8, 0.4, 0.4, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.875)
    assert auroc(np.array([0.3, 0.2]), np.array([1, 1])) is None
    cal = calibration(np.array([0.05, 0.15, 0.95, 0.95]), np.array([0.0, 1.0, 1.0, 1.0]), n_bins=10)
    assert [b["n"] for b in cal["bins"]] == [1, 1, 2]
    # |.05-0| * 1/4 + |.15-1| * 1/4 + |.95-1| * 2/4
    assert cal["ece"] == pytest.approx(0.05 / 4 + 0.85 / 4 + 0.05 / 2)
    assert cal["brier"] == pytest.approx((0.05 ** 2 + 0.85 ** 2 + 2 * 0.05 ** 2) / 4)
