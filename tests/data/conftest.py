"""Shared small datasets for the data tests (generated once per session, in seconds)."""

import pytest

from groklab.data import REGIMES, DataConfig, make_dataset

# Small but non-trivial: 640 facts, 5,120 chains, |U1|, |U2| in the dozens, k=18 > out_degree.
SMALL = DataConfig(entities=80, relations=16, out_degree=8, ood_ratio=0.1, phi=3.0, seed=3)


@pytest.fixture(scope="session")
def regime_sets(tmp_path_factory):
    """One dataset per regime, all from SMALL's seed."""
    root = tmp_path_factory.mktemp("regimes")
    return {r: make_dataset(DataConfig(**{**SMALL.to_dict(), "regime": r}), root / r) for r in REGIMES}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from groklab.data import data_config
    return make_dataset(data_config("tiny"), tmp_path_factory.mktemp("tiny") / "ds")
