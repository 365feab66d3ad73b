"""The training progress bar names what it shows in plain words: train, test_id, test_ood."""

from groklab.cli import main
from groklab.train.trainer import bar_postfix

SETS = ["data.entities=24", "data.relations=6", "data.out_degree=6", "data.phi=4.0",
        "model.n_layers=1", "model.d_model=32", "model.n_heads=2", "train.eval_every=20",
        "train.batch_size=64", "train.plots=false"]


def test_progress_bar_uses_plain_split_names(tmp_path, capfd):
    argv = ["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--steps", "40",
            "--device", "cpu"]
    for s in SETS:
        argv += ["--set", s]
    assert main(argv) == 0
    out, err = capfd.readouterr()
    bar = err.replace("\r", "\n").strip().splitlines()
    last = next(line for line in reversed(bar) if "40/40" in line)
    for name in ("loss=", "train=", "test_id=", "test_ood=", "facts_id=", "facts_ood=", "train_inferred="):
        assert name in last, last
    for old in (" id=", " ood=", " inf=", " iid=", "ood2="):
        assert old not in err
    # one summary line from the trainer (stderr) and one pointer to the files (stdout)
    assert err.count("stopped at step 40") == 1
    assert out.strip().splitlines() == [f"{tmp_path / 'run'}: 40 steps; summary.json and "
                                        "metrics.jsonl there"]


def test_bar_postfix_formats_a_row():
    row = {"step": 5, "loss": 0.1234, "train_acc": 0.5, "acc/test_inferred_iid": 0.25,
           "acc/test_inferred_ood": None, "acc/other": 1.0}
    assert bar_postfix(row) == "loss=0.123 train=0.50 test_id=0.25 other=1.00"
