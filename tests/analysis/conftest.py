"""Fixtures of the analysis tests: ONE trained decoder run, shared by every analysis test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from analysiskit import TASK, TRAINED_RUN
from groklab.analysis.io import load_at
from groklab.data import DataConfig, make_dataset
from groklab.train import config_from_dict, train_run

torch.set_num_threads(1)  # a busy 2-core CPU: more threads are much slower


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A seeded 2-layer decoder trained with the real engine until it composes ID facts."""
    run = tmp_path_factory.mktemp("analysis") / "decoder"
    summary = train_run(config_from_dict(TRAINED_RUN), run, quiet=True)
    assert summary["final"]["acc/test_inferred_iid"] >= 0.7, summary["final"]
    return run


@pytest.fixture(scope="session")
def trained(trained_run):
    """(model, dataset) at the last checkpoint of :func:`trained_run`."""
    model, dataset, _ = load_at(trained_run)
    return model, dataset


@pytest.fixture(scope="session")
def task_data(tmp_path_factory):
    """The same small task as a dataset directory (for untrained models)."""
    return make_dataset(DataConfig(**TASK), tmp_path_factory.mktemp("task") / "data")


def pytest_collection_modifyitems(config, items):
    """Tests that need the trained run share its ~40-70 s training: mark them slow."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents and {"trained", "trained_run"} & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
