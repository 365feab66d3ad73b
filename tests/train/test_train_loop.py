"""train_run end to end on a micro dataset: run directory, reload, resume, callbacks, lock."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from groklab.errors import GroklabError
from groklab.train import evaluate, load_model, load_run, train_run
from groklab.train import checkpoints as ck
from groklab.train.lock import RunLock
from groklab.train.metrics import read_metrics
from groklab.train.rundir import resolve_device

from trainkit import micro_config

ROW_KEYS = {"step", "time", "loss", "lr", "weight_norm", "train_acc"}
ALLOWED_SUFFIXES = {".yaml", ".jsonl", ".json", ".safetensors", ".png", ".npy"}


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_run_directory_contents_and_reload(micro_data, tmp_path):
    run = tmp_path / "run"
    cfg = micro_config(micro_data, train={"plots": True})
    summary = train_run(cfg, run, quiet=True)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 20, 40, 60]
    probes = ["id_atomic", "ood_atomic", "train_inferred", "test_inferred_iid", "test_inferred_ood"]
    for r in rows:
        assert ROW_KEYS | {f"acc/{p}" for p in probes} | {f"loss/{p}" for p in probes} <= set(r)
    assert rows[0]["loss"] is None and rows[-1]["loss"] > 0 and rows[-1]["lr"] == pytest.approx(3e-3)
    assert rows[-1]["loss/id_atomic"] < rows[0]["loss/id_atomic"]  # it trains
    assert summary["finished"] and summary["stopped"] == "max_steps" and summary["steps"] == 60
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["device"] == str(resolve_device(cfg.train.device))  # what auto resolved to
    assert ck.checkpoint_steps(run) == [0, 20, 40, 60]
    assert (run / "plots" / "accuracy.png").stat().st_size > 1000
    assert (run / "config.yaml").is_file() and not (run / "data").exists()  # data_path given
    files = [p for p in run.rglob("*") if p.is_file() and p.name != ".lock"]
    assert {p.suffix for p in files} <= ALLOWED_SUFFIXES  # nothing pickled
    loaded = load_run(run)
    assert loaded.metrics == rows and loaded.checkpoint_steps == [0, 20, 40, 60]
    assert loaded.config.to_dict() == cfg.to_dict()
    model, dataset = load_model(run)
    accs = evaluate(model, dataset)
    assert accs == {p: rows[-1][f"acc/{p}"] for p in probes}  # the checkpoint is the evaluated model
    model20, _ = load_model(run, step=20)
    assert evaluate(model20, dataset)["id_atomic"] == rows[1]["acc/id_atomic"]
    with pytest.raises(GroklabError, match=r"step=30 is invalid \(allowed: a checkpointed step"):
        load_model(run, step=30)


def test_dataset_is_generated_into_the_run(tmp_path):
    run = tmp_path / "run"
    train_run(micro_config(train={"steps": 5, "eval_every": 5}), run, quiet=True)
    assert (run / "data" / "manifest.json").is_file()
    assert load_run(run).dataset.path == run / "data"


def test_loading_never_unpickles(micro_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train_run(micro_config(micro_data, optim={"ema_decay": 0.9}), run, quiet=True)

    def forbidden(*a, **k):
        raise AssertionError("pickle used")
    import pickle
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    model, _ = load_model(run, ema=True)
    model_raw, _ = load_model(run, ema=False)
    assert not torch.equal(model.wte.weight, model_raw.wte.weight)  # EMA weights differ from raw
    train_run(None, run, resume=True, quiet=True)


FULL_STATE = dict(model={"dropout": 0.1}, optim={"ema_decay": 0.95, "grokfast": "ma", "grokfast_window": 7},
                  train={"steps": 600, "eval_every": 20, "checkpoint_every": 50})


def test_resume_after_sigkill_matches_an_uninterrupted_run(micro_data, tmp_path):
    cfg = micro_config(micro_data, **FULL_STATE)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(cfg.to_yaml())
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "groklab.cli", "train", "--config", str(cfg_file),
                             "--out", str(killed), "--quiet"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not any(s >= 150 for s in ck.checkpoint_steps(killed)):
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    partial = read_metrics(killed / "metrics.jsonl")
    assert 140 <= partial[-1]["step"] < 600  # really killed mid-run
    assert not json.loads((killed / "summary.json").read_text())["finished"]

    straight = tmp_path / "straight"
    train_run(cfg, straight, quiet=True)
    train_run(None, killed, resume=True, quiet=True)
    a, b = read_metrics(straight / "metrics.jsonl"), read_metrics(killed / "metrics.jsonl")
    assert len(a) == 31 and _without_time(a) == _without_time(b)
    sa = json.loads((straight / "summary.json").read_text())
    sb = json.loads((killed / "summary.json").read_text())
    assert sa["first_step"] == sb["first_step"] and sa["final"] == sb["final"]


def test_ctrl_c_checkpoints_mid_run_and_resume_is_exact(micro_data, tmp_path):
    cfg = micro_config(micro_data, **{**FULL_STATE, "train": {"steps": 100, "eval_every": 20,
                                                               "checkpoint_every": 1000}})

    def interrupt_at_40(step, model, dataset, row):
        if step == 40:
            os.kill(os.getpid(), signal.SIGINT)  # arrives inside a step: deferred to its end

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, run, quiet=True, callbacks=[interrupt_at_40])
    assert ck.checkpoint_steps(run) == [0, 40]
    train_run(None, run, resume=True, quiet=True)
    straight = tmp_path / "straight"
    train_run(cfg, straight, quiet=True)
    assert _without_time(read_metrics(run / "metrics.jsonl")) == _without_time(read_metrics(straight / "metrics.jsonl"))


def test_finished_run_resume_is_a_noop_and_steps_can_be_extended(micro_data, tmp_path, capsys):
    run = tmp_path / "run"
    train_run(micro_config(micro_data), run, quiet=True)
    before = (run / "metrics.jsonl").read_bytes()
    train_run(None, run, resume=True, quiet=True)
    assert "already finished at step 60" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_bytes() == before
    longer = micro_config(micro_data, train={"steps": 100})
    train_run(longer, run, resume=True, quiet=True)
    straight = tmp_path / "straight"
    train_run(longer, straight, quiet=True)
    assert _without_time(read_metrics(run / "metrics.jsonl")) == _without_time(read_metrics(straight / "metrics.jsonl"))


def test_resume_refuses_changed_settings_and_fresh_runs_refuse_used_dirs(micro_data, tmp_path):
    run = tmp_path / "run"
    train_run(micro_config(micro_data, train={"steps": 5, "eval_every": 5}), run, quiet=True)
    with pytest.raises(GroklabError, match=r"optim\.lr=0\.01 is invalid when resuming"):
        train_run(micro_config(micro_data, optim={"lr": 1e-2}), run, resume=True, quiet=True)
    with pytest.raises(GroklabError, match="already exists and is not empty"):
        train_run(micro_config(micro_data), run, quiet=True)
    with pytest.raises(GroklabError, match="nothing to resume"):
        train_run(None, tmp_path / "empty", resume=True, quiet=True)


def test_a_second_writer_is_refused(micro_data, tmp_path):
    run = tmp_path / "run"
    train_run(micro_config(micro_data, train={"steps": 5, "eval_every": 5}), run, quiet=True)
    lock = RunLock(run).acquire()
    try:
        with pytest.raises(GroklabError, match=rf"locked by pid {os.getpid()}"):
            train_run(None, run, resume=True, quiet=True)
    finally:
        lock.release()


def test_callbacks_add_columns_without_disturbing_training(micro_data, tmp_path):
    cfg = micro_config(micro_data, model={"dropout": 0.2})
    seen = []

    def probe(step, model, dataset, row):
        torch.rand(1000)  # uses the global RNG, which dropout also uses
        seen.append((step, model.training))
        return {"cb/double": step * 2, "cb/iid": evaluate(model, dataset, ["test_inferred_iid"])["test_inferred_iid"]}

    train_run(cfg, tmp_path / "a", quiet=True)
    train_run(cfg, tmp_path / "b", quiet=True, callbacks=[probe])
    a, b = read_metrics(tmp_path / "a" / "metrics.jsonl"), read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [r["cb/double"] for r in b] == [0, 40, 80, 120]
    assert all(r["cb/iid"] == r["acc/test_inferred_iid"] for r in b)
    assert seen == [(0, False), (20, False), (40, False), (60, False)]
    assert _without_time(a) == [{k: v for k, v in r.items() if not k.startswith("cb/")} for r in _without_time(b)]


@pytest.mark.parametrize("model, optim, train", [
    ({"family": "looped", "n_loops": 2}, {}, {}),
    ({"family": "recursive", "h_cycles": 2, "l_cycles": 2, "loss": "stablemax"}, {"ema_decay": 0.9}, {}),
    ({}, {"grokfast": "ema", "schedule": "cosine"}, {"amp": "bf16"}),
])
def test_other_families_and_options_train_and_resume(micro_data, tmp_path, model, optim, train):
    cfg = micro_config(micro_data, model=model, optim=optim,
                       train={"steps": 20, "eval_every": 10, "checkpoint_every": 10, **train})
    run = tmp_path / "run"
    train_run(cfg, run, quiet=True)
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 10, 20] and all(r["loss"] > 0 for r in rows[1:])
    (run / "summary.json").unlink()  # pretend it was killed after its last checkpoint
    for p in ck.ckpt_paths(run, 20):
        p.unlink()
    train_run(None, run, resume=True, quiet=True)
    assert _without_time(read_metrics(run / "metrics.jsonl")) == _without_time(rows)


def test_early_stop_ends_the_run_and_is_final(micro_data, tmp_path, monkeypatch, capsys):
    from groklab.train import metrics as mx
    real = mx.plateaued
    monkeypatch.setattr(mx, "plateaued", lambda rows, patience, delta: rows[-1]["step"] >= 40)
    run = tmp_path / "run"
    summary = train_run(micro_config(micro_data, train={"steps": 1000, "early_stop_patience": 100,
                                                        "checkpoint_every": 1000}), run, quiet=True)
    assert summary["stopped"] == "early_stop" and summary["steps"] == 40 and summary["finished"]
    assert ck.checkpoint_steps(run) == [0, 40]  # the final state is always checkpointed
    monkeypatch.setattr(mx, "plateaued", real)
    train_run(None, run, resume=True, quiet=True)
    assert "already finished at step 40 (early_stop)" in capsys.readouterr().err


def test_resume_skips_a_corrupted_checkpoint_with_a_warning(micro_data, tmp_path):
    run = tmp_path / "run"
    cfg = micro_config(micro_data, model={"dropout": 0.1})
    train_run(cfg, run, quiet=True)
    rows = read_metrics(run / "metrics.jsonl")
    (run / "summary.json").unlink()  # as if killed right after the last checkpoint
    st, _ = ck.ckpt_paths(run, 60)
    st.write_bytes(st.read_bytes()[:-100])  # truncated
    with pytest.warns(ck.CheckpointWarning, match=r"step_00000060.*checksum"):
        train_run(None, run, resume=True, quiet=True)
    assert _without_time(read_metrics(run / "metrics.jsonl")) == _without_time(rows)  # redone from 40
    ck.load_checkpoint(run, 60)  # rewritten, good again
