"""`groklab sweep` on the command line: dry run, errors, continuing a sweep, plots."""

import shutil
import subprocess
import sys

import pytest

from groklab.errors import GroklabError
from groklab.sweep import read_summary_csv, run_sweep

from sweepkit import MICRO


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "groklab.cli", "sweep", *map(str, args)],
                          capture_output=True, text=True)


def test_dry_run_lists_trials_and_writes_nothing(tmp_path):
    proc = _cli(MICRO, "--out", tmp_path / "s", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "micro: 4 trials (base tiny)"
    assert [ln.split()[1] for ln in lines[1:]] == ["data.phi=2.0", "data.phi=4.0", "data.phi=5.0", "data.phi=99.0"]
    assert not (tmp_path / "s").exists()


def test_dry_run_of_the_exposure_map(tmp_path):
    proc = _cli(MICRO.parent / "exposure.yaml", "--out", tmp_path / "s", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "exposure: 18 trials (base tiny_recursive)" and len(lines) == 19
    assert "data.hop1_ratio=0.5, data.hop2_ratio=1.0, train.seed=1" in lines[12]
    assert not (tmp_path / "s").exists()


def test_bad_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: tiny\ngrid: {train.seed: [0, 1]}\nrandom: {samples: 2, params: {optim.lr: {uniform: [1, 0]}}}\n")
    for args in ([bad, "--out", tmp_path / "s"], [MICRO, "--out", tmp_path / "s", "--jobs", "0"],
                 [MICRO, "--out", tmp_path / "nothing", "--plot-only"],
                 [MICRO, "--out", tmp_path / "s", "--asha", "acc/x", "--engine", "local", "--jobs", "-3"]):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "sweep.random.params.optim.lr.uniform=[1, 0] is invalid" in _cli(bad, "--out", tmp_path / "s").stderr
    assert not (tmp_path / "s").exists()


def test_continuing_a_sweep_runs_only_what_is_left_and_plots(tmp_path, micro_local):
    out = tmp_path / "copy"
    shutil.copytree(micro_local[0], out)
    proc = _cli(MICRO, "--out", out, "--jobs", "2", "--plot")
    assert proc.returncode == 1, proc.stderr                    # phi=99 fails (on purpose)
    assert "already complete" in proc.stdout and "1 failed" in proc.stdout
    rows = {r["data.phi"]: r["status"] for r in read_summary_csv(out / "summary.csv")}
    assert rows == {2.0: "done", 4.0: "done", 5.0: "done", 99.0: "failed"}
    assert (out / "plots" / "phi_grok.png").is_file()
    assert "Traceback" not in proc.stderr


def test_missing_ray_is_a_one_line_error_before_anything_is_written(tmp_path, monkeypatch, micro_spec):
    monkeypatch.setitem(sys.modules, "ray", None)   # as if not installed
    with pytest.raises(GroklabError, match=r"--engine=ray is invalid here .*pip install 'groklab\[ray\]'"):
        run_sweep(micro_spec, tmp_path / "s", engine="ray")
    assert not (tmp_path / "s").exists()
