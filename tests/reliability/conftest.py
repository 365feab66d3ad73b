"""Shared fixtures of the reliability tests: a micro dataset, its reference export, a short run."""

from __future__ import annotations

import pytest

from groklab.data import export_reference, make_dataset
from relkit import MICRO_CONFIG, TRAIN_ARGS, cli


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("GROKLAB_DEBUG", raising=False)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel") / "ds"
    make_dataset(MICRO_CONFIG, path)
    return path


@pytest.fixture(scope="session")
def refdir(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("rel") / "ref"
    export_reference(dataset, path)
    return path


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, dataset):
    """A 10-step run with checkpoints at steps 0, 5, 10."""
    path = tmp_path_factory.mktemp("rel") / "run"
    code, _, err = cli(["train", *TRAIN_ARGS, "--data", dataset, "--steps", "10", "--out", path])
    assert code == 0, err
    return path


@pytest.fixture(scope="session")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel") / "sweep.yaml"
    path.write_text("name: rel\nbase: tiny\nset:\n  data.entities: 24\n  data.relations: 8\n"
                    "  data.out_degree: 6\n  model.d_model: 32\n  model.n_heads: 2\n"
                    "  model.n_layers: 1\n  train.steps: 4\n  train.eval_every: 2\n"
                    "  train.plots: false\n  train.device: cpu\ngrid:\n  data.phi: [2.0]\n")
    return path
