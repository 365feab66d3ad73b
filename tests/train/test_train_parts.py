"""Batch sampling, metrics files, the run lock and checkpoint files (no pickle, checksums)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from groklab.errors import GroklabError
from groklab.train import checkpoints as ck
from groklab.train import metrics as mx
from groklab.train.batching import BatchSampler
from groklab.train.lock import RunLock


def test_sampler_covers_each_epoch_and_resumes_exactly():
    s = BatchSampler(10, 4, seed=7)
    seen = torch.cat([s.next() for _ in range(5)])  # 20 indices = two epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    tensors, meta = s.state()
    rest = [s.next() for _ in range(6)]
    t = BatchSampler(10, 4, seed=999)
    t.load_state(tensors, json.loads(json.dumps(meta)))
    for a in rest:
        assert torch.equal(a, t.next())
    big = BatchSampler(3, 7, seed=0).next()  # a batch larger than the split spans epochs
    assert len(big) == 7 and set(big.tolist()) == {0, 1, 2}


def test_metrics_reader_skips_torn_last_line_and_summary(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 0, "time": 0.0, "acc/id_atomic": 0.1, "acc/ood_atomic": 0.0,
             "acc/train_inferred": 0.0, "acc/test_inferred_iid": 0.0, "train_acc": 0.0333},
            {"step": 100, "time": 2.0, "acc/id_atomic": 1.0, "acc/ood_atomic": 1.0,
             "acc/train_inferred": 0.98, "acc/test_inferred_iid": 0.95, "train_acc": 0.9933},
            {"step": 200, "time": 4.0, "acc/id_atomic": 1.0, "acc/ood_atomic": 1.0,
             "acc/train_inferred": 1.0, "acc/test_inferred_iid": 0.85, "train_acc": 1.0}]
    mx.write_metrics(path, rows)
    with open(path, "a") as f:
        f.write('{"step": 300, "ti')  # a kill in the middle of a write
    assert mx.read_metrics(path) == rows
    s = mx.summarize(rows, stopped="max_steps", finished=True)
    assert s["first_step"]["train_acc>=0.99"] == 100
    assert s["first_step"]["test_inferred_iid>=0.9"] == 100
    assert s["first_time"]["test_inferred_iid>=0.9"] == 2.0
    assert s["first_step"]["train_inferred>=0.9"] == 100
    assert s["final"]["acc/test_inferred_iid"] == 0.85 and s["best"]["acc/test_inferred_iid"] == 0.95
    assert s["steps"] == 200 and s["finished"]


def test_plateau_rule():
    def row(step, acc, train=1.0):
        return {"step": step, "acc/a": acc, "acc/id_atomic": train, "acc/ood_atomic": train,
                "acc/train_inferred": train}
    flat = [row(s, 0.5) for s in range(0, 1100, 100)]
    assert mx.plateaued(flat, patience=500, delta=0.01)
    rising = flat[:-1] + [row(1000, 0.6)]
    assert not mx.plateaued(rising, patience=500, delta=0.01)
    unfit = [row(s, 0.5, train=0.5) for s in range(0, 1100, 100)]
    assert not mx.plateaued(unfit, patience=500, delta=0.01)  # never before the train fit
    assert not mx.plateaued(flat[:3], patience=500, delta=0.01)  # not enough history
    assert not mx.plateaued(flat, patience=0, delta=0.01)  # off


HOLDER = textwrap.dedent("""
    import sys, time
    from groklab.train.lock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_lock_refuses_a_second_writer_and_takes_over_a_dead_one(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(GroklabError, match=rf"locked by pid {proc.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    # the holder died (SIGKILL) without cleaning up: its lock file is stale and gets taken over
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == proc.pid
    lock = RunLock(tmp_path).acquire()
    assert lock.took_over["pid"] == proc.pid
    with pytest.raises(GroklabError, match="locked by pid"):  # and now we hold it
        RunLock(tmp_path).acquire()
    lock.release()
    RunLock(tmp_path).acquire().release()  # released: free again


def _tensors():
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    return {"model.wte.weight": w, "model.lm_head.weight": w,  # tied: same storage
            "optim.0.exp_avg": torch.ones(2, 3), "rng.cpu": torch.get_rng_state(),
            "sampler.pending": torch.arange(10)[3:]}  # a view into a larger buffer


def test_checkpoint_roundtrip_tied_weights_and_no_pickle(tmp_path):
    ck.save_checkpoint(tmp_path, 5, _tensors(), {"time": 1.5})
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["step_00000005.json", "step_00000005.safetensors"]
    meta = json.loads((tmp_path / "checkpoints" / "step_00000005.json").read_text())
    assert meta["aliases"] == {"model.lm_head.weight": "model.wte.weight"} and meta["step"] == 5
    raw = (tmp_path / "checkpoints" / "step_00000005.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8:8 + header_len])  # a safetensors header, not a pickle
    tensors, meta = ck.load_checkpoint(tmp_path, 5)
    for k, v in _tensors().items():
        assert torch.equal(tensors[k], v), k
    assert meta["time"] == 1.5


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar"])
def test_corrupted_checkpoint_falls_back_with_a_warning(tmp_path, damage):
    for step in (10, 20):
        t = _tensors()
        t["optim.0.exp_avg"] = torch.full((2, 3), float(step))
        ck.save_checkpoint(tmp_path, step, t, {})
    st, js = ck.ckpt_paths(tmp_path, 20)
    data = bytearray(st.read_bytes())
    if damage == "flip":
        data[-3] ^= 0xFF
        st.write_bytes(bytes(data))
    elif damage == "truncate":
        st.write_bytes(bytes(data[: len(data) // 2]))
    else:
        js.write_text(js.read_text()[:20])
    with pytest.warns(ck.CheckpointWarning, match="step_00000020"):
        step, tensors, _ = ck.load_latest_good(tmp_path)
    assert step == 10 and tensors["optim.0.exp_avg"][0, 0] == 10.0
    with pytest.raises(GroklabError):
        ck.load_checkpoint(tmp_path, 20)


def test_checkpoint_schedule_dense_then_sparse():
    sched = [[100, 10], [1000, 100], [None, 1000]]
    due = [s for s in range(0, 5001) if ck.checkpoint_due(s, sched)]
    assert due[:11] == list(range(0, 101, 10))
    assert due[11:] == list(range(200, 1001, 100)) + [2000, 3000, 4000, 5000]
