"""The CLI shell: help works, user errors are one line with exit code 2."""

import subprocess
import sys

import pytest

from groklab.cli import main
from groklab.errors import GroklabError, bad_value, check_range


def test_help_lists_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "groklab" in capsys.readouterr().out


def test_unknown_command_exit_2():
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "no-such-command"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2


def test_check_range_messages():
    assert check_range("phi", 3.6, 0, 18.9) == 3.6
    with pytest.raises(GroklabError, match=r"phi=20\.0 is invalid \(allowed: \[0, 18\.9\]\)"):
        check_range("phi", 20.0, 0, 18.9)
    with pytest.raises(GroklabError, match=r"\(0, inf\]"):
        check_range("lr", 0.0, 0, None, lo_open=True)
    assert str(bad_value("regime", "x", "natural, both_full")) == "regime='x' is invalid (allowed: natural, both_full)"


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    from groklab.fsutil import atomic_output_dir, atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "hi")
        with atomic_output_dir(tmp_path / "d") as d:
            (d / "x").write_text("1")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert (tmp_path / "a.txt").read_text() == "hi"
