"""Family 2: a request's memory is estimated and checked before anything is allocated; a
refusal is one line that says how much is needed and how much there is."""

from __future__ import annotations

import json
import re
import time
import tracemalloc

import pytest

from groklab.data import DataConfig
from relkit import TRAIN_ARGS, cli, one_line_error

NEEDS = re.compile(r"needs about [\d.]+ [KMGT]iB.*[\d.]+ [KMGT]iB available")


@pytest.fixture
def one_gib(monkeypatch):
    """Pretend the machine has 1 GiB available, whatever it really has."""
    monkeypatch.setenv("GROKLAB_MEMORY_LIMIT", "1G")


@pytest.fixture
def no_generation(monkeypatch):
    """Any attempt to generate or import data, or to build a real model, fails the test."""
    import groklab.data.comparison as comparison
    import groklab.data.splits as splits

    def boom(*a, **k):
        raise AssertionError("allocated before the memory check")

    monkeypatch.setattr(splits, "build_composition", boom)
    monkeypatch.setattr(comparison, "build_comparison", boom)


@pytest.mark.parametrize("argv", [
    ["data", "make", "--entities", "499000", "--phi", "0", "--out", "OUT"],
    ["data", "make", "--task", "comparison", "--entities", "50000", "--relations", "200",
     "--phi", "18", "--out", "OUT"],
    ["train", "--preset", "tiny", "--set", "data.entities=499000", "--set", "data.phi=0",
     "--device", "cpu", "--out", "OUT"],
])
def test_data_requests_refused_before_allocating(tmp_path, one_gib, no_generation, argv):
    argv = [str(a).replace("OUT", str(tmp_path / "out")) for a in argv]
    t0 = time.perf_counter()
    line = one_line_error(*cli(argv)[::2])
    assert time.perf_counter() - t0 < 30  # (train imports torch: seconds on a busy machine)
    assert NEEDS.search(line), line
    assert not (tmp_path / "out").exists()


def test_import_of_a_huge_vocabulary_refused_before_allocating(tmp_path, one_gib):
    ref = tmp_path / "ref"
    ref.mkdir()
    E, R = 300_000, 4
    (ref / "vocab.json").write_text(json.dumps([f"<e_{i}>" for i in range(E)]
                                               + [f"<r_{j}>" for j in range(R)]))
    (ref / "train.json").write_text('[{"input_text": "<e_0><r_0>", "target_text": "<e_0><r_0><e_1></a>"}]')
    (ref / "test.json").write_text("[]")
    # E x R = 1.2M slots: fits. Make it not fit with a 4 MiB budget instead of allocating 67 GiB
    import os
    os.environ["GROKLAB_MEMORY_LIMIT"] = "4M"
    try:
        line = one_line_error(*cli(["data", "import", ref, "--out", tmp_path / "out"])[::2])
    finally:
        os.environ["GROKLAB_MEMORY_LIMIT"] = "1G"
    assert NEEDS.search(line) and "300000" in line.replace(",", "")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override", ["model.d_model=200000", "model.n_layers=100000",
                                      "train.batch_size=1e9"])
def test_model_and_batch_sizes_refused_before_allocating(tmp_path, dataset, one_gib, override):
    t0 = time.perf_counter()
    line = one_line_error(*cli(["train", *TRAIN_ARGS, "--data", dataset, "--set", override,
                                "--out", tmp_path / "run"])[::2])
    assert time.perf_counter() - t0 < 30
    assert NEEDS.search(line), line
    assert override.split("=")[0] in line
    assert not (tmp_path / "run").exists()


def test_requests_that_fit_still_run(tmp_path, one_gib):
    code, _, err = cli(["data", "make", "--entities", "24", "--relations", "8", "--out-degree",
                        "6", "--phi", "2", "--out", tmp_path / "ds"])
    assert code == 0, err


@pytest.mark.parametrize("cfg", [
    DataConfig(entities=500, relations=50, out_degree=20, phi=18.0),
    DataConfig(entities=2000, relations=200, out_degree=20, phi=0.0),
    DataConfig(entities=400, relations=40, out_degree=30, phi=3.0, regime="both_full"),
    DataConfig(task="comparison", entities=400, relations=20, phi=9.0),
])
def test_data_estimate_bounds_the_measured_peak(cfg):
    """The estimate is an upper bound of the generator's traced peak, and not a loose one."""
    from groklab.data.comparison import build_comparison
    from groklab.data.splits import build_composition
    from groklab.resources import data_bytes

    build = build_composition if cfg.task == "composition" else build_comparison
    tracemalloc.start()
    build(cfg.validate())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    estimate = data_bytes(cfg)
    assert peak <= estimate <= 3 * peak + (8 << 20), (peak, estimate)


def test_available_memory_reads_the_machine(monkeypatch):
    from groklab.resources import available_memory, parse_bytes

    monkeypatch.delenv("GROKLAB_MEMORY_LIMIT", raising=False)
    avail = available_memory()
    assert 16 << 20 < avail < 1 << 50
    monkeypatch.setenv("GROKLAB_MEMORY_LIMIT", "3G")
    assert available_memory() == min(avail, 3 << 30)
    assert parse_bytes("1.5M") == 3 << 19 and parse_bytes("123") == 123
