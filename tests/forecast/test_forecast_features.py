"""Features from a hand-written metrics.jsonl equal hand-computed values; nothing after the
truncation step is used."""

import math

import pytest

from groklab.errors import GroklabError
from groklab.forecast import features as fx
from groklab.forecast import forecast, load_model

from fckit import ROWS


def test_features_equal_hand_computed_values():
    f = fx.compute(ROWS, fx.parse_target("test_inferred_iid>=0.9"), budget=100)
    # recent window = rows at steps 20, 30, 40 (the last half of 0..40); x = step / 100
    # slope of y over x = [.2, .3, .4]: sum((x - .3) * y) / 0.02 = 5 * (y40 - y20)
    expected = {
        "elapsed": 0.4, "threshold": 0.9,
        "target_gap": 0.9 - 0.6, "target_max_gap": 0.9 - 0.6,
        "target_slope": 5 * (0.6 - 0.2),                       # 2.0 per budget
        "target_reach": 0.6 + 2.0 * 0.6 - 0.9,                  # 0.9 (inside the clip)
        "target_log_loss": math.log(1.5), "target_loss_slope": 5 * (math.log(1.5) - math.log(2.5)),
        "train_log_loss": math.log(0.25), "train_loss_slope": 5 * (math.log(0.25) - math.log(1.0)),
        "gen_gap": math.log(1.5) - math.log(0.25),
        "train_acc": 1.0, "fitted": 1.0, "fit_step": 0.2, "since_fit": 0.2,   # 0.995 at step 20
        "weight_norm_slope": 5 * (math.log(8.0) - math.log(11.0)),
        "weight_norm_drop": 1 - 8.0 / 12.0, "lr_ratio": 0.5, "iid_acc": 0.6,
        "has_lens": 1.0, "bridge_found": 0.6 - 0.2, "bridge_slope": 5 * (0.4 - 0.2),
    }
    assert set(f) == set(fx.NAMES) == set(expected)
    for name, value in expected.items():
        assert f[name] == pytest.approx(value, abs=1e-9), name


def test_features_of_a_target_without_lens_and_not_fitted():
    f = fx.compute(ROWS[:2], fx.parse_target("test_inferred_ood>=0.5"), budget=50)
    # two rows (steps 0, 10): both in the window; OOD accuracy flat at 0; no OOD loss column
    assert f["elapsed"] == pytest.approx(0.2)
    assert f["target_gap"] == pytest.approx(0.5) and f["target_slope"] == 0.0
    assert f["target_reach"] == pytest.approx(-0.5)
    assert f["fitted"] == 0.0 and f["fit_step"] == pytest.approx(0.2) and f["since_fit"] == 0.0
    assert f["has_lens"] == 0.0 and f["bridge_found"] == 0.0
    assert f["train_loss_slope"] == 0.0  # one finite training loss only (step 0 has none)
    assert f["weight_norm_slope"] == pytest.approx((math.log(12) - math.log(10)) / 0.2)


def test_truncated_forecast_uses_nothing_after_the_step():
    later = [dict(ROWS[-1], step=s, **{"acc/test_inferred_iid": v, "loss": 1e-9, "weight_norm": 1e3,
                                       "loss/test_inferred_iid": 1e-9})
             for s, v in ((60, 0.95), (80, 1.0), (100, 1.0))]
    target = fx.parse_target("test_inferred_iid>=0.9")
    full, cut = ROWS + later, list(ROWS)
    assert fx.compute(full, target, 100, at=40) == fx.compute(cut, target, 100)
    assert fx.compute(full, target, 100, at=45) == fx.compute(cut, target, 100)  # last row <= 45
    model = load_model()
    a, b = forecast(full, target, 100, model, at=40), forecast(cut, target, 100, model)
    assert a == b and a["step"] == 40 and a["reached_at"] is None
    # with the later rows the target has been reached: the answer changes, so they were unseen above
    assert forecast(full, target, 100, model)["reached_at"] == 60


@pytest.mark.parametrize("text", ["test_inferred_iid", "x>=2", ">=0.5", "a b>=0.5", "iid>=0"])
def test_bad_target_syntax(text):
    with pytest.raises(GroklabError, match="--target="):
        fx.parse_target(text)


def test_unknown_split_and_low_budget_and_no_rows():
    with pytest.raises(GroklabError, match="a split of this run: test_inferred_iid | test_inferred_ood | train_acc"):
        fx.compute(ROWS, fx.parse_target("nope>=0.5"), 100)
    with pytest.raises(GroklabError,
                       match=r"--budget=30 is invalid \(allowed: a number of steps >= the run's current step 40\)"):
        fx.compute(ROWS, fx.parse_target("test_inferred_iid>=0.9"), 30)
    with pytest.raises(GroklabError, match="no evaluation rows"):
        fx.compute([], fx.parse_target("test_inferred_iid>=0.9"), 30)
