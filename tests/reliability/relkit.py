"""Helpers of the reliability tests: an in-process CLI runner and simulated filesystem faults.

Tests run as root in CI, where ``chmod`` does not stop writes, so a read-only or full
filesystem is simulated by making every write primitive (mkdir, open for writing, rename,
rmdir, unlink) fail with the chosen errno for paths under given roots.
"""

from __future__ import annotations

import builtins
import contextlib
import errno as E
import io
import os

from groklab.data import DataConfig

MICRO_DATA = dict(entities=24, relations=8, out_degree=6, phi=4.0, seed=3, id_test_ratio=0.05)
MICRO_CONFIG = DataConfig(**MICRO_DATA)
# a 1-layer d=32 decoder on the micro data, a few steps: seconds on one CPU thread
TRAIN_ARGS = ["--preset", "tiny", "--device", "cpu", "--quiet",
              "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
              "--set", "train.batch_size=32", "--set", "train.eval_every=5",
              "--set", "train.checkpoint_every=5", "--set", "train.plots=false",
              "--set", "train.threads=1"]
for key, value in MICRO_DATA.items():
    TRAIN_ARGS += ["--set", f"data.{key}={value}"]


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``groklab ARGV`` in this process: (exit code, stdout, stderr)."""
    from groklab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str, expected_code: int = 2) -> str:
    """Assert the standard failure shape and return the message line."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == expected_code, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("groklab: error: "), err
    return lines[0]


def tree(path) -> set[str]:
    """Every path under ``path`` (relative), to compare before/after."""
    out = set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(root, name), path))
    return out


@contextlib.contextmanager
def failing_writes(*roots, errno: int = E.EROFS):
    """Every write under ``roots`` fails with ``errno`` (a read-only or full filesystem)."""
    roots = [os.path.abspath(r) for r in roots]

    def inside(p) -> bool:
        if isinstance(p, int):
            return False
        p = os.path.abspath(os.fsdecode(p))
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def fail(p):
        raise OSError(errno, os.strerror(errno), os.fsdecode(p))

    real = {name: getattr(os, name) for name in ("mkdir", "open", "rename", "replace", "rmdir",
                                                 "unlink", "symlink")}
    real_open = builtins.open

    def guard(name):
        def wrapped(*args, **kw):
            paths = args[:2] if name in ("rename", "replace", "symlink") else args[:1]
            if name == "open" and len(args) > 1 and not args[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                return real[name](*args, **kw)
            for p in paths:
                if inside(p):
                    fail(p)
            return real[name](*args, **kw)
        return wrapped

    def guarded_open(file, mode="r", *args, **kw):
        if any(c in mode for c in "wax+") and inside(file):
            fail(file)
        return real_open(file, mode, *args, **kw)

    try:
        for name in real:
            setattr(os, name, guard(name))
        builtins.open = io.open = guarded_open
        yield
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        builtins.open = io.open = real_open


def sleeping_trial(job, callbacks=()):
    """A sweep trial that never ends by itself (for the orphaned-worker test)."""
    import time
    while True:
        time.sleep(0.1)
