"""train.stop_unless_forecast and the trainer's stopper hook: a hopeless micro run is stopped
(``stopped: forecast``), a run that reaches its target never is."""

import json
from pathlib import Path

import numpy as np
import pytest

from groklab.errors import GroklabError
from groklab.forecast import features as fx
from groklab.forecast.model import ForecastModel, TargetModel
from groklab.forecast.stop import ForecastStopper, parse_stop_spec
from groklab.train import load_config, train_run
from groklab.train.config import CONFIG_DIR

from fckit import ROWS

BASE = CONFIG_DIR / "sweeps" / "forecast" / "base.yaml"


def _hopeless_model(path: Path) -> Path:
    """A model that gives every pending target probability ~0 (intercept -30)."""
    n = len(fx.NAMES)
    tm = TargetModel(np.zeros(n), np.ones(n), np.zeros(n), -30.0)
    ForecastModel({"generic": tm}).save(path)
    return path


def test_stopper_never_stops_once_the_target_is_reached(tmp_path):
    model = _hopeless_model(tmp_path / "m.json")
    reached = ForecastStopper("test_inferred_iid>=0.1", budget=100, model_path=str(model))
    pending = ForecastStopper("test_inferred_iid>=0.9", budget=100, model_path=str(model))
    for k in range(1, len(ROWS) + 1):
        rows = ROWS[:k]
        assert reached(rows) is None  # 0.1 holds from step 10 (10% of the budget) on
        if rows[-1]["step"] < 10:      # no decision before 10% of the budget
            assert pending(rows) is None
        else:
            assert pending(rows) == "forecast"
    assert reached.last["recommendation"].startswith("already there")


def test_stop_spec_parsing_and_config_validation():
    assert parse_stop_spec("test_inferred_ood>=0.5") == (fx.Target("test_inferred_ood", 0.5), 0.05)
    assert parse_stop_spec("test_inferred_iid>=0.9@0.1") == (fx.Target("test_inferred_iid", 0.9), 0.1)
    for bad in ("test_inferred_iid", "test_inferred_iid>=0.9@0.7", "test_inferred_iid>=0.9@x"):
        with pytest.raises(GroklabError, match="train.stop_unless_forecast="):
            parse_stop_spec(bad)
    with pytest.raises(GroklabError, match=r"^train.stop_unless_forecast='iid>=2' is invalid"):
        load_config(BASE, ["train.stop_unless_forecast=iid>=2"])
    assert load_config(BASE).train.stop_unless_forecast == ""  # off by default


def _lens():
    """The corpus sweeps' logit-lens columns (their `lens:`), so these runs look like the corpus'."""
    from groklab.analysis.lens import lens_callback

    return lens_callback(["test_inferred_iid", "test_inferred_ood"], n=64)


def _micro(tmp_path, **over):
    ov = [f"{k}={v}" for k, v in over.items()]
    return load_config(BASE, ["train.eval_every=20", *ov])


def test_trainer_takes_a_stopper_hook(tmp_path):
    cfg = _micro(tmp_path, **{"train.steps": 100, "model.n_layers": 1, "model.d_model": 32})
    seen = []

    def stopper(rows):
        seen.append(rows[-1]["step"])
        return "custom" if rows[-1]["step"] >= 40 else None

    summary = train_run(cfg, tmp_path / "run", quiet=True, stoppers=[stopper])
    assert summary["stopped"] == "custom" and summary["steps"] == 40 and seen == [0, 20, 40]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stopped"] == "custom"


def test_missing_forecast_model_is_refused_before_training(tmp_path):
    cfg = _micro(tmp_path, **{"train.steps": 40, "train.stop_unless_forecast": "test_inferred_iid>=0.9",
                              "train.forecast_model": str(tmp_path / "none.json")})
    with pytest.raises(GroklabError, match=r"^train.forecast_model='.*none.json' is invalid"):
        train_run(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_unknown_forecast_split_is_refused_before_training(tmp_path):
    cfg = _micro(tmp_path, **{"train.steps": 40, "train.stop_unless_forecast": "no_such_split>=0.5"})
    with pytest.raises(GroklabError, match="train.stop_unless_forecast='no_such_split>=0.5' is invalid"):
        train_run(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_stop_unless_forecast_stops_a_hopeless_micro_run(tmp_path):
    # phi = 0: no two-hop training facts at all, so ID test composition cannot be learned
    cfg = _micro(tmp_path, **{"train.steps": 800, "data.phi": 0.0,
                              "train.stop_unless_forecast": "test_inferred_iid>=0.9"})
    summary = train_run(cfg, tmp_path / "run", quiet=True, callbacks=[_lens()])
    assert summary["stopped"] == "forecast" and 80 <= summary["steps"] < 800
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stopped"] == "forecast"
    # resuming a forecast-stopped run does nothing
    again = train_run(None, tmp_path / "run", resume=True, quiet=True)
    assert again["steps"] == summary["steps"]


@pytest.mark.slow
def test_stop_unless_forecast_never_stops_a_run_that_reaches_its_target(tmp_path):
    target = REACHING["target"]
    cfg = _micro(tmp_path, **REACHING["set"], **{"train.stop_unless_forecast": target,
                                                 "train.stop_at": f"[{target}]"})
    summary = train_run(cfg, tmp_path / "run", quiet=True, callbacks=[_lens()])
    assert summary["stopped"] == "target"  # reached, never cut short by the forecast
    assert summary["steps"] == 380          # the corpus run's step: same config and seed


# a corpus run that reaches its target: decoder_regime's both_full, phi max, wd 1, seed 0 (OOD test
# >= .5 at step 380 of 800 in the corpus)
REACHING = {"target": "test_inferred_ood>=0.5",
            "set": {"train.steps": 800, "data.regime": "both_full", "data.phi": "max",
                    "optim.weight_decay": 1.0, "optim.schedule": "cosine", "optim.min_lr_ratio": 0.1}}
