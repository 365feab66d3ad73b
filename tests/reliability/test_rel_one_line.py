"""Family 1: every failure a user can cause is one line on stderr, exit 2, no traceback;
--debug / GROKLAB_DEBUG=1 shows the traceback. And an unwritable --out creates nothing."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from relkit import TRAIN_ARGS, cli, failing_writes, one_line_error, tree

# every command that writes, as argv with OUT standing for its --out
COMMANDS = {
    "data make": lambda fx: ["data", "make", "--entities", "24", "--relations", "8",
                             "--out-degree", "6", "--phi", "2", "--out", "OUT"],
    "data inject": lambda fx: ["data", "inject", fx["dataset"], "--new-facts", "5",
                               "--replay", "20", "--out", "OUT"],
    "data import": lambda fx: ["data", "import", fx["refdir"], "--out", "OUT"],
    "data export": lambda fx: ["data", "export", fx["dataset"], "--out", "OUT"],
    "train": lambda fx: ["train", *TRAIN_ARGS, "--data", fx["dataset"], "--steps", "2", "--out", "OUT"],
    "lens": lambda fx: ["lens", fx["run_dir"], "--n", "8", "--device", "cpu", "--out", "OUT/lens.json"],
    "trace": lambda fx: ["trace", fx["run_dir"], "--n", "4", "--include-wrong", "--device", "cpu", "--out", "OUT/t.json"],
    "export hf": lambda fx: ["export", fx["run_dir"], "--format", "hf", "--out", "OUT"],
    "export tensorboard": lambda fx: ["export", fx["run_dir"], "--format", "tensorboard", "--out", "OUT"],
    "sweep": lambda fx: ["sweep", fx["sweep_file"], "--out", "OUT", "--jobs", "1", "--quiet"],
    "reproduce": lambda fx: ["reproduce", "--scale", "micro", "--device", "cpu", "--out", "OUT"],
}
# how --out is unwritable: a path through a regular file (ENOTDIR, real even as root); a
# directory on a read-only filesystem (EROFS, simulated); an existing empty --out that is itself
# read-only (EROFS inside it, while its parent is writable: temp siblings must be cleaned up)
KINDS = ("file_as_dir", "readonly_parent", "readonly_out")


@pytest.fixture
def fixtures(dataset, refdir, run_dir, sweep_file):
    return {"dataset": dataset, "refdir": refdir, "run_dir": run_dir, "sweep_file": sweep_file}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_out_is_one_line_exit_2_and_creates_nothing(tmp_path, fixtures, command, kind):
    root = tmp_path / "root"
    root.mkdir()
    if kind == "file_as_dir":
        (root / "afile").write_text("not a directory\n")
        out, blocked = root / "afile" / "out", None
    elif kind == "readonly_parent":
        (root / "ro").mkdir()
        out, blocked = root / "ro" / "out", root / "ro"
    else:
        (root / "out").mkdir()
        out, blocked = root / "out", root / "out"
    before = tree(root)
    argv = [str(a).replace("OUT", str(out)) for a in COMMANDS[command](fixtures)]
    if blocked is None:
        code, _, err = cli(argv)
    else:
        with failing_writes(blocked, errno=errno.EROFS):
            code, _, err = cli(argv)
    line = one_line_error(code, err)
    assert str(root) in line  # names the path
    assert tree(root) == before, f"{command} left {tree(root) - before}"


@pytest.mark.parametrize("command", ["data make", "train", "data export"])
def test_full_disk_is_one_line_exit_1(tmp_path, fixtures, command):
    """ENOSPC is not the user's input: exit 1, still one line, and no half-written output."""
    root = tmp_path / "full"
    root.mkdir()
    argv = [str(a).replace("OUT", str(root / "out")) for a in COMMANDS[command](fixtures)]
    with failing_writes(root, errno=errno.ENOSPC):
        code, _, err = cli(argv)
    line = one_line_error(code, err, expected_code=1)
    assert "No space left on device" in line
    assert tree(root) == set()


def test_non_utf8_yaml_config_and_sweep_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"model:\n  d_model: 32\n# caf\xe9\n")
    line = one_line_error(*cli(["train", "--config", bad, "--out", tmp_path / "run"])[::2])
    assert "bad.yaml" in line and "UTF-8" in line
    line = one_line_error(*cli(["sweep", bad, "--out", tmp_path / "sw"])[::2])
    assert "bad.yaml" in line
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml"]


@pytest.mark.parametrize("text", ["data: [unclosed\n  model: {\n", "- a\n- list\n"])
def test_resume_with_broken_config_yaml(tmp_path, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(text)
    line = one_line_error(*cli(["train", "--resume", "--out", run])[::2])
    assert "config.yaml" in line


@pytest.mark.parametrize("argv", [
    ["data", "make", "--phi", "inf", "--out", "OUT"],
    ["data", "make", "--phi", "nan", "--out", "OUT"],
    ["train", *TRAIN_ARGS, "--set", "data.phi=inf", "--out", "OUT"],
    ["train", *TRAIN_ARGS, "--set", "optim.lr=inf", "--out", "OUT"],
])
def test_non_finite_numbers_are_refused(tmp_path, argv):
    argv = [str(a).replace("OUT", str(tmp_path / "out")) for a in argv]
    line = one_line_error(*cli(argv)[::2])
    assert "inf" in line or "nan" in line
    assert not (tmp_path / "out").exists()


def _copy_dataset(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage", ["list", "no_files", "wrong_dtype", "wrong_shape", "not_json",
                                    "wrong_shape_rehashed"])
def test_malformed_manifest_or_split(tmp_path, dataset, damage):
    ds = _copy_dataset(dataset, tmp_path / "ds")
    manifest = json.loads((ds / "manifest.json").read_text())
    if damage == "list":
        (ds / "manifest.json").write_text(json.dumps([manifest]))
    elif damage == "no_files":
        del manifest["files"]
        (ds / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "not_json":
        (ds / "manifest.json").write_bytes(b"{\"format_version\": 1, \xff")
    else:
        arr = np.load(ds / "splits" / "id_atomic.npy")
        arr = arr.astype(np.float64) if damage == "wrong_dtype" else arr[:, :5]
        np.save(ds / "splits" / "id_atomic.npy", arr)
        if damage == "wrong_shape_rehashed":  # checksums made to match: the shape check must catch it
            from groklab.fsutil import sha256_file, sha256_json
            manifest["files"]["splits/id_atomic.npy"] = sha256_file(ds / "splits" / "id_atomic.npy")
            manifest.pop("manifest_sha256", None)
            manifest["manifest_sha256"] = sha256_json(manifest)
            (ds / "manifest.json").write_text(json.dumps(manifest))
    for argv in (["data", "stats", ds], ["train", *TRAIN_ARGS, "--data", ds, "--out", tmp_path / "run"]):
        line = one_line_error(*cli(argv)[::2])
        assert "ds" in line
    assert not (tmp_path / "run").exists()


def test_checkpoint_sidecar_of_wrong_shape_falls_back(tmp_path, run_dir):
    """A sidecar that is valid JSON but not an object: skipped with a warning (the documented
    fallback), the previous checkpoint is used."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "checkpoints" / "step_00000010.json").write_text("[1, 2, 3]\n")
    code, out, err = cli(["lens", run, "--n", "8", "--device", "cpu"])
    assert code == 0, err
    assert "Traceback" not in err
    assert "@5 " in out  # fell back to the step-5 checkpoint
    from groklab.train.checkpoints import CheckpointWarning
    with pytest.warns(CheckpointWarning, match="not a checkpoint sidecar.*falling back"):
        code, _, err = cli(["train", "--resume", "--steps", "12", "--quiet", "--out", run])
    assert code == 0, err


def test_torn_metrics_line(tmp_path, run_dir):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    line = one_line_error(*cli(["lens", run, "--n", "8", "--device", "cpu"])[::2])
    assert "metrics.jsonl" in line and "line 2" in line


def test_out_is_a_file(tmp_path, dataset):
    f = tmp_path / "afile"
    f.write_text("x")
    for argv in (["data", "make", "--out", f], ["train", *TRAIN_ARGS, "--out", f],
                 ["data", "export", dataset, "--out", f]):
        line = one_line_error(*cli(argv)[::2])
        assert "afile" in line
    assert f.read_text() == "x"


def test_deeply_nested_json_in_import(tmp_path, refdir):
    import shutil
    ref = tmp_path / "ref"
    shutil.copytree(refdir, ref)
    (ref / "train.json").write_text("[" * 100_000 + "]" * 100_000)
    line = one_line_error(*cli(["data", "import", ref, "--out", tmp_path / "out"])[::2])
    assert "train.json" in line
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "afile"
    bad.write_text("x")
    argv = [sys.executable, "-m", "groklab.cli", "data", "make", "--out", str(bad / "out")]
    env = dict(os.environ)
    env.pop("GROKLAB_DEBUG", None)
    plain = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run(argv[:3] + ["--debug"] + argv[3:], capture_output=True, text=True, env=env)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    env["GROKLAB_DEBUG"] = "1"
    by_env = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert by_env.returncode == 2 and "Traceback" in by_env.stderr
