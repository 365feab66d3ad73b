"""A short real training run to export (micro graph, 2-layer decoder, 120 steps)."""

import pytest
from exportkit import micro_config


@pytest.fixture(scope="session")
def decoder_run(tmp_path_factory):
    from groklab.train import train_run
    run = tmp_path_factory.mktemp("export") / "run"
    train_run(micro_config(), run, quiet=True)
    return run
