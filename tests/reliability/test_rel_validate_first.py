"""Family 3: config, data, device and the model (built on the meta device) are validated before
the first byte is written: a refused `train` or `reproduce` leaves no --out behind, and the
corrected rerun is not refused as "already exists"."""

from __future__ import annotations

import json
import shutil

import pytest

from relkit import TRAIN_ARGS, cli, one_line_error


@pytest.mark.parametrize("override,field", [
    ("model.max_len=2", "model.max_len"),
    ("data.phi=inf", "data.phi"),
    ("model.d_model=200000", "model.d_model"),
    ("train.batch_size=1e9", "train.batch_size"),
])
def test_bad_train_requests_leave_no_out(tmp_path, monkeypatch, override, field):
    monkeypatch.setenv("GROKLAB_MEMORY_LIMIT", "2G")
    out = tmp_path / "run"
    line = one_line_error(*cli(["train", *TRAIN_ARGS, "--steps", "2", "--set", override,
                                "--out", out])[::2])
    assert field in line
    assert not out.exists()
    code, _, err = cli(["train", *TRAIN_ARGS, "--steps", "2", "--out", out])  # corrected rerun
    assert code == 0, err


def test_model_errors_are_caught_on_the_meta_device(tmp_path, dataset, monkeypatch):
    """Whatever torch refuses while building the model is a one-line error before any write."""
    import groklab.models as models

    def broken(cfg, vocab_size):
        raise RuntimeError("torch cannot build this")

    monkeypatch.setattr(models, "build_model", broken)
    out = tmp_path / "run"
    line = one_line_error(*cli(["train", *TRAIN_ARGS, "--data", dataset, "--out", out])[::2])
    assert "model" in line and "torch cannot build this" in line
    assert not out.exists()


def test_manifest_listing_a_missing_split(tmp_path, dataset):
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    (ds / "splits" / "ood_atomic.npy").unlink()
    manifest = json.loads((ds / "manifest.json").read_text())
    del manifest["files"]["splits/ood_atomic.npy"]
    (ds / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "run"
    line = one_line_error(*cli(["train", *TRAIN_ARGS, "--data", ds, "--out", out])[::2])
    assert "ood_atomic" in line
    assert not out.exists()


def test_imported_dataset_with_an_empty_train_split(tmp_path, refdir):
    ref = tmp_path / "ref"
    shutil.copytree(refdir, ref)
    (ref / "train.json").write_text("[]")
    code, _, err = cli(["data", "import", ref, "--out", tmp_path / "ds"])
    if code == 0:  # importable (the atomic facts come from atomic.json), but not trainable
        out = tmp_path / "run"
        line = one_line_error(*cli(["train", *TRAIN_ARGS, "--data", tmp_path / "ds", "--out", out])[::2])
        assert "train" in line and "empty" in line
        assert not out.exists()
    else:
        assert "train" in one_line_error(code, err)
        assert not (tmp_path / "ds").exists()


def test_reproduce_on_a_missing_cuda_leaves_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "study"
    line = one_line_error(*cli(["reproduce", "--scale", "micro", "--device", "cuda", "--out", out])[::2])
    assert "cuda" in line
    assert not out.exists()
    out2 = tmp_path / "run"
    line = one_line_error(*cli(["train", *TRAIN_ARGS, "--device", "cuda", "--out", out2])[::2])
    assert not out2.exists()
