"""`groklab train`: bad input exits 2 with one line and writes nothing; a real run via the CLI."""

import json
import shutil
import subprocess
import sys

import pytest

from groklab.cli import main

from trainkit import micro_config


@pytest.mark.parametrize("extra, message", [
    (["--set", "optim.lr=-1"], "optim.lr=-1.0 is invalid (allowed: (0, inf])"),
    (["--set", "model.n_layers=0"], "model.n_layers=0 is invalid (allowed: [1, inf])"),
    (["--set", "model.family=gpt"], "model.family='gpt' is invalid (allowed: decoder | looped | recursive)"),
    (["--steps", "0"], "train.steps=0 is invalid (allowed: [1, inf])"),
    (["--set", "data.phi=50"], "data.phi=50.0 is invalid"),
    (["--data", "/no/such/dataset"], "dataset='/no/such/dataset' is invalid"),
])
def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_corrupted_dataset_exits_2_before_writing(micro_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(micro_data, data)
    split = data / "splits" / "train.npy"
    raw = bytearray(split.read_bytes())
    raw[-1] ^= 0x01
    split.write_bytes(bytes(raw))
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--data", str(data), "--out", str(out)]) == 2
    assert "does not match its sha256" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_option_value_and_missing_source(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "r"), "--model", "rnn"])
    assert exc.value.code == 2
    assert main(["train", "--out", str(tmp_path / "r")]) == 2
    assert "--preset or --config is required" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for opt in ("--preset", "--config", "--data", "--model", "--out", "--steps", "--device",
                "--seed", "--resume", "--quiet", "--set"):
        assert opt in text


def test_cli_run_and_resume(micro_data, tmp_path, capsys):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(micro_config(micro_data, train={"steps": 20, "eval_every": 10}).to_yaml())
    out = tmp_path / "run"
    args = ["train", "--config", str(cfg_file), "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", *args, "--json", "--quiet", "--seed", "4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 20 and summary["finished"] and proc.stderr == ""
    assert "seed: 4" in (out / "config.yaml").read_text()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert "already finished" in capsys.readouterr().err
    assert main([*args, "--quiet"]) == 2  # a used run directory needs --resume
    assert "--resume" in capsys.readouterr().err


def test_errors_found_after_generation_still_leave_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--out", str(out), "--quiet", "--steps", "5",
            "--set", "data.entities=30", "--set", "data.relations=5", "--set", "data.out_degree=5"]
    assert main(args + ["--set", "data.phi=5"]) == 2  # above this graph's pool (< out_degree)
    assert "data.phi=5.0 is invalid" in capsys.readouterr().err
    assert not out.exists()
    assert main(args + ["--set", "data.phi=1", "--set", "train.stop_at=[new_old>=0.9]"]) == 2
    assert "train.stop_at='new_old' is invalid" in capsys.readouterr().err
    assert not out.exists()


def test_resume_help_lists_every_resumable_field():
    """--resume's help names exactly the fields a resumed run may change."""
    import re

    from groklab.commands.train import RESUMABLE_HELP
    from groklab.train.rundir import RESUMABLE_FIELDS

    listed = set(re.findall(r"[a-z_]+", RESUMABLE_HELP.split("{", 1)[1]))
    assert listed == set(RESUMABLE_FIELDS)
