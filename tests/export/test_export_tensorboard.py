"""TensorBoard scalars: the callback during training and the after-the-fact conversion, read
back with tensorboard's own event reader."""

import json

import pytest

from groklab.errors import GroklabError
from groklab.export.tensorboard import TensorBoardCallback, write_tensorboard
from groklab.train import train_run

from exportkit import micro_config

TAGS = ("acc/test_inferred_iid", "acc/id_atomic", "train_acc", "loss", "lr", "weight_norm")


def _read(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series, read with tensorboard's own event reader."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]


def _assert_matches(scalars, rows):
    for tag in TAGS:
        expected = [(r["step"], r[tag]) for r in rows if r.get(tag) is not None]
        got = scalars[tag]
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6, abs=1e-7), tag


def test_callback_writes_every_row_readable_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    cb = TensorBoardCallback(run)
    train_run(micro_config(), run, callbacks=[cb], quiet=True)
    cb.close()
    rows = _metrics(run)
    assert [r["step"] for r in rows] == list(range(0, 121, 20))
    _assert_matches(_read(run / "tensorboard"), rows)


def test_resumed_run_purges_events_past_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"

    def interrupt(step, model, dataset, row):  # Ctrl-C at step 60, after the step-40 checkpoint
        if step == 60:
            raise KeyboardInterrupt

    first = TensorBoardCallback(run)
    with pytest.raises(KeyboardInterrupt):
        train_run(micro_config(), run, callbacks=[first, interrupt], quiet=True)
    first.close()
    assert [s for s, _ in _read(run / "tensorboard")["loss"]] == [20, 40, 60]   # 60 written, not in metrics
    second = TensorBoardCallback(run)
    train_run(micro_config(), run, resume=True, callbacks=[second], quiet=True)
    second.close()
    rows = _metrics(run)
    assert [r["step"] for r in rows] == list(range(0, 121, 20))
    _assert_matches(_read(run / "tensorboard"), rows)   # the stale step-60 event is gone


def test_convert_existing_metrics(tmp_path, decoder_run):
    pytest.importorskip("tensorboard")
    out = write_tensorboard(decoder_run, tmp_path / "tb")
    _assert_matches(_read(out), _metrics(decoder_run))
    with pytest.raises(GroklabError, match="already exists"):
        write_tensorboard(decoder_run, out)


def test_missing_tensorboard_is_a_one_line_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(GroklabError, match=r"pip install 'groklab\[tensorboard\]'"):
        TensorBoardCallback(tmp_path)
