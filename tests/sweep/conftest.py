"""The micro sweep (groklab/configs/sweeps/micro.yaml), run once per session on the local engine."""

import pytest
from sweepkit import MICRO, interrupt_phi4

from groklab.sweep import load_sweep, run_sweep


@pytest.fixture(scope="session")
def micro_spec():
    return load_sweep(MICRO)


@pytest.fixture(scope="session")
def micro_local(tmp_path_factory, micro_spec):
    """First run of the micro sweep, 2 workers: phi=4 is interrupted at step 150 (see
    sweepkit), phi=99 fails generating its data, phi=2 and phi=5 finish."""
    out = tmp_path_factory.mktemp("micro") / "sweep"
    result = run_sweep(micro_spec, out, engine="local", n_jobs=2, trial_fn=interrupt_phi4, quiet=True)
    return out, result
