"""`groklab lens|trace|compare` on the trained run: outputs, names, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from groklab.cli import main
from groklab.train import load_run


def _read(path):
    return json.loads(path.read_text())


def test_lens_trace_compare_write_json_and_png(trained_run, capsys):
    out = trained_run / "analysis"
    assert main(["lens", str(trained_run), "--n", "200", "--device", "cpu"]) == 0
    lens = _read(out / "lens_test_inferred_iid_step1250.json")
    assert lens["n"] == 200 and lens["bridge"]["found_by_position"]["r1"] >= 0.8 and lens["meta"]["step"] == 1250
    assert (out / "lens_test_inferred_iid_step1250.png").stat().st_size > 1000
    assert main(["lens", str(trained_run), "--step", "500", "--n", "200"]) == 0
    assert (out / "lens_test_inferred_iid_step500.json").is_file()      # both kept
    assert (out / "lens_test_inferred_iid_step1250.json").is_file()

    assert main(["trace", str(trained_run), "--corrupt", "r2", "--n", "100"]) == 0
    tr = _read(out / "trace_test_inferred_iid_r2_step1250.json")
    assert len(tr["restored"]) == len(tr["stages"]) == 3 and len(tr["restored"][0]) == 3
    assert tr["n"] <= 100 and tr["restored"][0][2] >= 0.95   # the corrupted token itself
    assert (out / "trace_test_inferred_iid_r2_step1250.png").is_file()

    assert main(["compare", f"{trained_run}@500", str(trained_run), "--n", "100",
                 "--boot", "100"]) == 0
    cmp = _read(out / f"compare_test_inferred_iid_r1_step500_vs_{trained_run.name}_step1250.json")
    assert cmp["meta"]["a"]["step"] == 500 and cmp["meta"]["b"]["step"] == 1250
    assert -1.0 <= cmp["similarity"]["trace_restored_corr"] <= 1.0
    text = capsys.readouterr().out
    assert "bridge found" in text and "trace restored corr" in text


def test_trace_prints_tables_or_one_json_object(trained_run, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["trace", str(trained_run), "--n", "60", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    saved = _read(out)
    assert "{" not in text and "[" not in text                    # no raw dict or list
    assert "restored: share of answers restored" in text and "changed: share" in text
    lines = text.splitlines()
    head = lines.index(next(x for x in lines if x.startswith("restored:")))
    assert lines[head + 1].split() == ["stage", *saved["positions"]]
    top = lines[head + 3].split()                                  # latest stage first
    assert top[0] == "b1.post" and [float(v) for v in top[1:]] == pytest.approx(
        saved["restored"][-1], abs=5e-4)

    assert main(["trace", str(trained_run), "--n", "60", "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    obj = json.loads(cap.out)                                      # stdout is exactly one object
    assert obj["restored"] == saved["restored"] and obj["stages"] == saved["stages"]
    assert obj["step"] == 1250 and obj["corrupt"] == "r1" and "wrote" in cap.err


def test_lens_all_steps_curve_and_out_option(trained_run, tmp_path):
    target = tmp_path / "elsewhere" / "curve.json"
    before = sorted(p.name for p in (trained_run / "analysis").glob("*")) \
        if (trained_run / "analysis").exists() else []
    assert main(["lens", str(trained_run), "--all-steps", "--n", "100", "--out", str(target)]) == 0
    doc = _read(target)
    run = load_run(trained_run)
    assert [p["step"] for p in doc["points"]] == run.checkpoint_steps
    acc = {r["step"]: r["acc/test_inferred_iid"] for r in run.metrics}
    assert all(p["accuracy"] == acc[p["step"]] for p in doc["points"])
    assert target.with_suffix(".png").is_file()
    after = sorted(p.name for p in (trained_run / "analysis").glob("*")) \
        if (trained_run / "analysis").exists() else []
    assert after == before                       # --out writes nothing into the run


@pytest.mark.parametrize("argv, field", [
    (["lens", "{run}", "--n", "0"], "n=0"),
    (["lens", "{run}", "--step", "7"], "step=7"),
    (["lens", "{run}", "--split", "id_atomic"], "id_atomic"),
    (["lens", "{run}", "--positions", "r9"], "bridge_positions"),
    (["trace", "{run}", "--batch-size", "0"], "batch_size=0"),
    (["trace", "{run}", "--out", "x.txt"], "--out"),
    (["compare", "{run}", "{run}", "--boot", "1"], "boot=1"),
    (["lens", "/no/such/run"], "run="),
])
def test_bad_input_is_one_line_exit_2(trained_run, capsys, argv, field):
    argv = [a.replace("{run}", str(trained_run)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error:") and field in err and len(err.splitlines()) == 1


def test_cli_subprocess_error_has_no_traceback(trained_run):
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "trace", str(trained_run),
                           "--corrupt", "r1", "--split", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "split='nope'" in proc.stderr


@pytest.mark.parametrize("family, model", [
    ("looped", {"family": "looped", "n_layers": 2, "n_loops": 2, "d_model": 32, "n_heads": 4,
                "max_len": 4}),
    ("recursive", {"family": "recursive", "n_layers": 2, "h_cycles": 2, "l_cycles": 2,
                   "d_model": 32, "n_heads": 4, "max_len": 4, "mixer": "mlp_t"}),
])
def test_looped_and_recursive_runs_through_the_cli(tmp_path, family, model):
    """A briefly trained run of each parameter-sharing family: grids over iterations/stages."""
    from analysiskit import TASK
    from groklab.train import config_from_dict, train_run

    cfg = config_from_dict({"data": TASK, "model": model,
                            "optim": {"lr": 3e-3, "warmup_steps": 10},
                            "train": {"steps": 40, "batch_size": 64, "eval_every": 40,
                                      "checkpoint_every": 40, "plots": False, "device": "cpu"}})
    run = tmp_path / family
    train_run(cfg, run, quiet=True)
    assert main(["lens", str(run), "--n", "50"]) == 0
    lens = _read(run / "analysis" / "lens_test_inferred_iid_step40.json")
    assert main(["trace", str(run), "--n", "50", "--include-wrong"]) == 0
    tr = _read(run / "analysis" / "trace_test_inferred_iid_r1_step40.json")
    if family == "looped":   # input + 2 loops x 2 layers; positions h, r1, r2
        assert len(tr["stages"]) == 5 and tr["stages"][3] == "loops.1.blocks.0.hook_resid_post"
        assert tr["positions"] == ["h", "r1", "r2"] and len(lens["stages"]) == 5
    else:                    # embedding + 2 cycles x (2 z + 1 y); the mask slot is a position
        assert len(tr["stages"]) == 7 and tr["stages"][0] == "hook_embed"
        assert tr["positions"] == ["h", "r1", "r2", "mask"] and len(lens["stages"]) == 7 and lens["stages"][0] == "hook_init"
        assert lens["bridge"]["positions"] == ["h", "r1", "r2", "mask"]
    assert np.array(tr["restored"]).shape == (len(tr["stages"]), len(tr["positions"]))
    assert tr["counterfactuals"]["require_correct"] is False
