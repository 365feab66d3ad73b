"""`groklab forecast`: a run forecast (text and JSON); bad input is one line, exit 2."""

import json

import pytest

from groklab.cli import main

from fckit import ROWS, write_run


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error: ") and len(err.splitlines()) == 1, err
    return err


def test_forecast_json_and_text(tmp_path, capsys):
    run = write_run(tmp_path / "run", ROWS)
    assert main(["forecast", str(run), "--target", "test_inferred_iid>=0.9", "--json"]) == 0
    fc = json.loads(capsys.readouterr().out)
    assert {"probability", "predicted_step", "interval", "recommendation", "signals"} <= set(fc)
    assert 0 <= fc["probability"] <= 1 and fc["step"] == 40 and fc["budget"] == 100
    if fc["predicted_step"] is None:
        assert fc["probability"] < 0.5 and fc["interval"] is None
    else:
        lo, hi = fc["interval"]
        assert 40 <= lo <= hi
    assert main(["forecast", str(run), "--target", "test_inferred_iid>=0.2", "--at", "30"]) == 0
    out = capsys.readouterr().out
    assert "already there: test_inferred_iid>=0.2 at step 20" in out


def test_truncated_run_dir_forecast_ignores_later_rows(tmp_path, capsys):
    later = [dict(ROWS[-1], step=s, **{"acc/test_inferred_iid": 0.3 + s / 200}) for s in (60, 80)]
    a = write_run(tmp_path / "a", ROWS)
    b = write_run(tmp_path / "b", ROWS + later)
    outs = []
    for run in (a, b):
        assert main(["forecast", str(run), "--target", "test_inferred_iid>=0.9", "--at", "40", "--json"]) == 0
        fc = json.loads(capsys.readouterr().out)
        fc.pop("run")
        outs.append(fc)
    assert outs[0] == outs[1]


@pytest.mark.parametrize("rows, args, message", [
    ([], [], "a run with at least one metrics.jsonl row"),
    (ROWS, ["--target", "test_inferred_xyz>=0.9"],
     "--target='test_inferred_xyz>=0.9' is invalid (allowed: a split of this run"),
    (ROWS, ["--target", "test_inferred_iid"], "--target='test_inferred_iid' is invalid (allowed: SPLIT>=X"),
    (ROWS, ["--budget", "30"], "--budget=30 is invalid (allowed: a number of steps >= the run's current step 40)"),
    (ROWS, ["--budget", "0"], "--budget=0 is invalid"),
    (ROWS, ["--at", "-5"], "--at=-5 is invalid"),
    (ROWS, ["--model", "/no/such/model.json"], "--model='/no/such/model.json' is invalid"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, rows, args, message):
    run = write_run(tmp_path / "run", rows)
    assert main(["forecast", str(run), *args]) == 2
    assert message in _err(capsys)


def test_bad_command_shapes(tmp_path, capsys):
    assert main(["forecast", str(tmp_path / "nothing")]) == 2
    assert "run=" in _err(capsys)
    assert main(["forecast", "fit", str(tmp_path)]) == 2
    assert "--out=None is invalid" in _err(capsys)
    assert main(["forecast", "fit", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 2
    assert "a sweep directory" in _err(capsys)
    assert main(["forecast", "--evaluate"]) == 2
    assert "SWEEP_DIR" in _err(capsys)
