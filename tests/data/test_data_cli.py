"""`groklab data ...` from the command line: outputs, exit codes, no half-written directories."""

import json
import subprocess
import sys

import pytest

from groklab.cli import main


def test_make_stats_export_import(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["data", "make", "--preset", "tiny", "--regime", "both_half", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["data", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test_inferred_ood" in text and "regime both_half" in text and "phi 18" in text
    assert main(["data", "stats", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["counts"]["train"] == 1900 + 100 + 34200 + s["stats"]["added_hop1"] + s["stats"]["added_hop2"]
    assert s["train_breakdown"]["augmented_hop1"] == s["stats"]["added_hop1"] > 0
    assert main(["data", "export", str(out), "--format", "reference", "--out", str(tmp_path / "ref")]) == 0
    assert main(["data", "import", str(tmp_path / "ref"), "--out", str(tmp_path / "back")]) == 0
    capsys.readouterr()
    assert main(["data", "make", "--preset", "tiny", "--phi", "max", "--seed", "1", "--out",
                 str(tmp_path / "max")]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--phi", "19"], "phi=19.0 is invalid"),
    (["--phi", "lots"], "phi='lots' is invalid"),
    (["--out-degree", "21"], "out_degree=21 is invalid (allowed: [1, 20])"),
    (["--entities", "0"], "entities=0 is invalid"),
    (["--relations", "-2"], "relations=-2 is invalid"),
    (["--ood-ratio", "-0.1"], "ood_ratio=-0.1 is invalid"),
    (["--regime", "sideways"], "invalid choice: 'sideways'"),
])
def test_bad_input_exits_2_with_one_line_and_keeps_old_output(tmp_path, capsys, argv, message):
    out = tmp_path / "d"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code = None
    try:
        code = main(["data", "make", "--preset", "tiny", "--out", str(out), "--force", *argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temp directory left behind


def test_inject_and_import_errors_exit_2(tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["data", "make", "--preset", "tiny", "--entities", "30", "--relations", "5",
                 "--out-degree", "5", "--phi", "2", "--out", str(src)]) == 0
    assert main(["data", "inject", str(src), "--new-facts", "10", "--replay", "50", "--out",
                 str(tmp_path / "inj")]) == 2
    err = capsys.readouterr().err
    assert "new_facts=10 is invalid (allowed: none" in err and not (tmp_path / "inj").exists()
    ref = tmp_path / "ref"
    assert main(["data", "export", str(src), "--out", str(ref)]) == 0
    text = (ref / "train.json").read_text()
    (ref / "train.json").write_text(text.replace('"target_text"', '"target_txt"', 1))
    assert main(["data", "import", str(ref), "--out", str(tmp_path / "imp")]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.json item 0: target_text=None is invalid" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "imp").exists()


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "data", "make", "--preset", "tiny",
                           "--phi", "25", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("groklab: error: phi=25.0 is invalid (allowed: [0, 18.91")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("sets, message", [
    (["data.regime=custom", "data.hop1_ratio=1.5"], "data.hop1_ratio=1.5 is invalid (allowed: [0.0, 1.0])"),
    (["data.regime=custom", "data.hop2_k=-1"], "data.hop2_k=-1 is invalid (allowed: [0, inf])"),
    (["data.regime=both_half", "data.hop1_k=9"], "data.hop1_k=9 is invalid (allowed: unset (null) with regime both_half"),
])
def test_bad_exposure_set_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, sets, message):
    # `train --set` reaches the same DataConfig checks as `data make --hop1-ratio ...`
    argv = ["train", "--preset", "tiny", "--out", str(tmp_path / "run")]
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error: " + message) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_make_custom_exposure_from_the_command_line(tmp_path, capsys):
    """`data make --regime custom --hop1-ratio R`: R of U1 exposed (k 18), nothing for hop 2."""
    out = tmp_path / "custom"
    assert main(["data", "make", "--preset", "tiny", "--regime", "custom", "--hop1-ratio", "0.5",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["stats"]
    assert st["hop1_exposed_facts"] == round(0.5 * st["u1_facts"]) > 0
    assert (st["hop1_ratio"], st["hop1_k"], st["hop2_ratio"], st["added_hop2"]) == (0.5, 18, 0.0, 0)
    bad = tmp_path / "bad"
    assert main(["data", "make", "--regime", "both_half", "--hop1-k", "3", "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "hop1_k=3 is invalid" in err and len(err.strip().splitlines()) == 1 and not bad.exists()
