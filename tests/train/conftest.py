"""Shared fixtures for the training tests."""

from __future__ import annotations

import pytest

from groklab.data import DataConfig, make_dataset
from trainkit import MICRO_DATA


@pytest.fixture(scope="session")
def micro_data(tmp_path_factory):
    """A 24-entity graph (~1k training items): enough to exercise every split quickly."""
    path = tmp_path_factory.mktemp("micro") / "data"
    make_dataset(DataConfig(**MICRO_DATA), path)
    return path
