"""Shared fixtures of the speed-lever tests: a micro dataset and Trainer factory."""

from __future__ import annotations

import pytest

from groklab.data import DataConfig, make_dataset

SPEED_DATA = dict(entities=24, relations=6, out_degree=6, phi=4.0, seed=5, id_test_ratio=0.05)


@pytest.fixture(scope="session")
def speed_data(tmp_path_factory):
    """A 24-entity graph (~1k training items) on disk, generated once per session."""
    path = tmp_path_factory.mktemp("speed") / "data"
    make_dataset(DataConfig(**SPEED_DATA), path)
    return path
