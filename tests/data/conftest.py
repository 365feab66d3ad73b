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


@pytest.fixture
def custom_set(tmp_path):
    """Builder of SMALL datasets with regime custom: custom_set(r1, k1, r2, k2), None = unset."""
    def build(r1=None, k1=None, r2=None, k2=None):
        cfg = DataConfig(**{**SMALL.to_dict(), "regime": "custom", "hop1_ratio": r1, "hop1_k": k1,
                            "hop2_ratio": r2, "hop2_k": k2})
        return make_dataset(cfg, tmp_path / f"custom-{len(list(tmp_path.iterdir()))}")
    return build
