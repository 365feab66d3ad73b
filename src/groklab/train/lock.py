"""Run-directory lock: one writer per run directory.

``RUN/.lock`` is held with ``fcntl.flock`` for the life of the writer and records its pid and
host. The kernel drops the lock when the process dies (even by SIGKILL), so a lock file left by
a dead writer is stale and simply taken over; a live holder makes a second writer fail with a
:class:`GroklabError` that names it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import socket
import time
from pathlib import Path

from groklab.errors import GroklabError
from groklab.train.rundir import LOCK_NAME


class RunLock:
    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None
        self.took_over: dict | None = None  # holder info of a stale lock we replaced

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # never through a symlink: it would truncate whatever the link points to
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise GroklabError(f"{self.path} is a symbolic link (refused: the run lock must be a "
                               "regular file; remove the link)") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise GroklabError(f"{self.path} is not a regular file (refused as the run lock)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else "another process"
            raise GroklabError(
                f"run directory {str(self.path.parent)!r} is locked by {who} (another groklab process "
                f"is writing it); wait for it to finish or use another --out") from None
        previous = _read_holder(fd)
        if previous:
            self.took_over = previous
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd: int) -> dict | None:
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        return json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
