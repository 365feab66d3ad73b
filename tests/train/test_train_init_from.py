"""Fine-tuning from another run: ``train_run(init_from="RUN[@STEP]")`` and ``--init-from``."""

from __future__ import annotations

import json
import shutil

import pytest

from groklab.cli import main
from groklab.errors import GroklabError
from groklab.train import train_run
from groklab.train.metrics import read_metrics

from trainkit import micro_config

ACCS = ("acc/id_atomic", "acc/train_inferred", "acc/test_inferred_iid")


@pytest.fixture(scope="module")
def source_run(micro_data, tmp_path_factory):
    """A 40-step micro run with checkpoints at 0, 20 and 40."""
    out = tmp_path_factory.mktemp("init-from") / "source"
    train_run(micro_config(micro_data, train={"steps": 40}), out, quiet=True)
    return out


def _row(run, step):
    return next(r for r in read_metrics(run / "metrics.jsonl") if r["step"] == step)


def _accs(row):
    return [row[k] for k in ACCS]


def test_new_run_starts_from_the_source_weights(micro_data, source_run, tmp_path):
    out = tmp_path / "ft"
    cfg = micro_config(micro_data, train={"steps": 10, "eval_every": 10}, optim={"lr": 1e-3})
    train_run(cfg, out, quiet=True, init_from=f"{source_run}@20")
    # step 0 of the new run evaluates exactly the source's weights at step 20
    assert _accs(_row(out, 0)) == _accs(_row(source_run, 20))
    assert _accs(_row(source_run, 20)) != _accs(_row(source_run, 0))  # the check can fail
    record = json.loads((out / "init_from.json").read_text())
    assert record == {"init_from": str(source_run.resolve()), "step": 20}
    # no step given: the newest good checkpoint
    latest = tmp_path / "ft-latest"
    train_run(cfg, latest, quiet=True, init_from=source_run)
    assert _accs(_row(latest, 0)) == _accs(_row(source_run, 40))
    assert json.loads((latest / "init_from.json").read_text())["step"] == 40


def test_resume_before_the_first_checkpoint_starts_from_the_source(micro_data, source_run, tmp_path):
    out = tmp_path / "ft"
    cfg = micro_config(micro_data, train={"steps": 10, "eval_every": 10})
    train_run(cfg, out, quiet=True, init_from=f"{source_run}@20")
    # as if the process died after writing config.yaml and init_from.json, before any checkpoint
    shutil.rmtree(out / "checkpoints")
    (out / "metrics.jsonl").unlink()
    (out / "summary.json").unlink()
    train_run(None, out, resume=True, quiet=True)
    assert _accs(_row(out, 0)) == _accs(_row(source_run, 20))


def test_mismatches_are_one_line_errors_and_write_nothing(micro_data, source_run, tmp_path, capsys):
    out = tmp_path / "ft"
    wider = micro_config(micro_data, model={"d_model": 48})
    with pytest.raises(GroklabError, match=r"init_from=.* is invalid \(allowed: a run whose model has"):
        train_run(wider, out, quiet=True, init_from=source_run)
    assert not out.exists()
    with pytest.raises(GroklabError, match="a checkpointed step"):
        train_run(micro_config(micro_data), out, quiet=True, init_from=f"{source_run}@7")
    assert not out.exists()
    with pytest.raises(GroklabError, match="only for a new run"):
        train_run(None, source_run, resume=True, quiet=True, init_from=source_run)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(wider.to_yaml())
    code = main(["train", "--config", str(cfg_file), "--out", str(out), "--quiet",
                 "--init-from", str(source_run)])
    err = capsys.readouterr().err
    assert code == 2 and "init_from=" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_init_from(micro_data, source_run, tmp_path, capsys):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(micro_config(micro_data, train={"steps": 10, "eval_every": 10}).to_yaml())
    out = tmp_path / "ft"
    assert main(["train", "--config", str(cfg_file), "--out", str(out), "--quiet",
                 "--init-from", f"{source_run}@40"]) == 0
    assert _accs(_row(out, 0)) == _accs(_row(source_run, 40))
