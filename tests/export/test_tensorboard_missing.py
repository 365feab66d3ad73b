"""Without the tensorboard extra, both ways to ask for TensorBoard output say what is missing
and how to install it, in one line with exit code 2, before anything is written."""

import sys

import pytest

from groklab.cli import main


@pytest.fixture
def no_tensorboard(monkeypatch):
    # None in sys.modules makes `from torch.utils.tensorboard import ...` raise ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def _assert_names_the_extra(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "tensorboard package" in err and "not installed" in err
    assert "pip install 'groklab[tensorboard]'" in err and "make install-extras" in err
    assert "invalid" not in err            # the user's flag is fine; the package is missing


def test_export_tensorboard_names_the_missing_extra(no_tensorboard, tmp_path, capsys):
    rc = main(["export", str(tmp_path / "run"), "--format", "tensorboard", "--out", str(tmp_path / "tb")])
    assert rc == 2
    _assert_names_the_extra(capsys.readouterr().err)
    assert not (tmp_path / "tb").exists()


def test_train_tensorboard_names_the_missing_extra(no_tensorboard, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--preset", "tiny", "--out", str(out), "--steps", "10", "--device", "cpu",
               "--quiet", "--tensorboard"])
    assert rc == 2
    _assert_names_the_extra(capsys.readouterr().err)
    assert not out.exists()
