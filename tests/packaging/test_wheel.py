"""The built wheel is a working install: presets ship as package data (no source tree needed)."""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_trains_from_a_bundled_preset(tmp_path):
    # build from a copy of the sources, so the checkout gets no build/ or egg-info
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, tree])
    wheel = next(dist.glob("groklab-*.whl"))

    # a fresh venv that sees this interpreter's packages (torch, numpy, ...) but not its groklab:
    # a .pth line adds their site-packages after the venv's own; the editable install of groklab
    # there is a .pth file of that directory, which a plain path entry does not run
    # (the wheel goes in first, so pip sees no other groklab and touches nothing outside the venv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel], env=env)
    venv_site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    assert (venv_site / "groklab" / "configs" / "tiny.yaml").is_file()
    (venv_site / "parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = _run([py, "-c", "import groklab; print(groklab.__file__)"], env=env, cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv_site)                 # the wheel's groklab, not the checkout's
    out = tmp_path / "run"
    _run([venv / "bin" / "groklab", "train", "--preset", "tiny", "--steps", "5", "--out", out,
          "--device", "cpu", "--quiet"], env=env, cwd=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["steps"], summary["stopped"], summary["finished"]) == (5, "max_steps", True)
    assert "preset: tiny" in (out / "config.yaml").read_text()
