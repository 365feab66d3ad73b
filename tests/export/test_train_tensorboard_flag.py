"""`groklab train --tensorboard` writes the metrics rows as TensorBoard scalars."""

import json

import pytest

from groklab.cli import main


def test_train_flag_writes_readable_scalars(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    sets = ["data.entities=24", "data.relations=6", "data.out_degree=6", "data.phi=4.0",
            "model.n_layers=1", "model.d_model=32", "model.n_heads=2", "train.eval_every=20",
            "train.batch_size=64", "train.plots=false"]
    argv = ["train", "--preset", "tiny", "--out", str(out), "--steps", "40", "--device", "cpu",
            "--quiet", "--tensorboard"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tag = next(t for t in acc.Tags()["scalars"] if "test_inferred_iid" in t and "acc" in t)
    events = acc.Scalars(tag)
    assert [e.step for e in events] == [r["step"] for r in rows]
    assert [e.value for e in events] == pytest.approx([r["acc/test_inferred_iid"] for r in rows])
