"""Transfer probes on a new-knowledge set built from the trained model's own dataset."""

from __future__ import annotations

import pytest

from groklab.analysis.transfer import TRANSFER_SPLITS, transfer_callback, transfer_metrics
from groklab.data import inject_dataset
from groklab.train import evaluate


@pytest.fixture(scope="module")
def injected(trained, tmp_path_factory):
    _, dataset = trained
    return inject_dataset(dataset.path, tmp_path_factory.mktemp("inject") / "data",
                          new_facts=60, replay=600, seed=0)


def test_transfer_metrics_before_finetuning(trained, injected):
    model, _ = trained
    m = transfer_metrics(model, injected, bridge_positions=["r1"])  # hop-1 recall
    print({k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in m.items()})
    assert set(TRANSFER_SPLITS) <= set(m)
    expected = evaluate(model, injected, splits=list(m))
    for split, entry in m.items():
        assert entry["em"] == pytest.approx(expected[split])   # same EM as the engine
        assert entry["n"] == len(injected.split(split))
    assert "bridge_found" not in m["atomic_new"] and "bridge_found" in m["new_old"]
    assert m["atomic_new"]["em"] <= 0.2           # the facts are new to this model
    assert m["replay_atomic"]["em"] >= 0.9        # the old ones are known
    # hop 1 old: the model resolves the bridge; hop 1 new: it cannot know it
    assert m["old_new"]["bridge_found"] >= 0.8
    assert m["new_old"]["bridge_found"] <= m["old_new"]["bridge_found"] - 0.4


def test_transfer_callback_flat_keys(trained, injected):
    model, _ = trained
    row = transfer_callback(n=32)(0, model, injected, {})
    assert "transfer/atomic_new/em" in row and "transfer/new_new/bridge_found" in row
    assert all(0.0 <= v <= 1.0 for v in row.values())
