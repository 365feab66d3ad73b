"""Worker process of the local engine: ``python -m groklab.sweep.worker PAYLOAD_JSON``.

PAYLOAD: ``{"trial_fn": "module:function", "sys_path": [...], "parent_pid": N, "result_fd":
FD}``. The worker then reads jobs from stdin, one JSON line each (``{"job": the job's fields,
"job_type": "module:Class"}``), and runs them one after another with one torch thread: for each
it sends its stdout/stderr to the job's log file, runs the trial and writes its record
(``trial.execute_trial``), then writes the job's name and a newline to ``result_fd``. It exits
at the end of its input, and after a trial that was interrupted. A worker whose sweep process
dies (even by SIGKILL) gets a SIGINT, as on Ctrl-C: a running trial checkpoints and stops
(recorded as interrupted), so no orphan keeps training; Linux delivers it through
PR_SET_PDEATHSIG, elsewhere a thread watches the parent.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_S = 1.0
GRACE_S = 60.0  # after the SIGINT, a trial that does not stop is ended


def exit_with_parent(parent_pid: int | None) -> None:
    """Interrupt this process when ``parent_pid`` (the sweep) dies."""
    if not parent_pid:
        return
    # the notice is a SIGINT, so SIGINT must raise KeyboardInterrupt here even where it was
    # inherited as ignored: a shell starts background jobs (`groklab sweep ... &`, nohup) so
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(WATCH_S)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(GRACE_S)
        os._exit(130)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # it died before the watch began
        os.kill(os.getpid(), signal.SIGINT)


def redirect_output(log_path: str) -> None:
    """From now on this process's stdout and stderr (file descriptors 1 and 2) append to
    ``log_path``: the output of the trial that starts next."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    payload = json.loads(argv[0])
    exit_with_parent(payload.get("parent_pid"))
    for entry in reversed(payload.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        import torch

        from groklab.sweep.trial import execute_trial

        torch.set_num_threads(1)
        trial_fn = _resolve(payload["trial_fn"])
        result_fd = int(payload["result_fd"])
        while line := sys.stdin.readline():
            message = json.loads(line)
            job = _resolve(message["job_type"])(**message["job"])
            job.log_path.parent.mkdir(parents=True, exist_ok=True)
            redirect_output(str(job.log_path))
            execute_trial(job, trial_fn, engine="local")
            sys.stdout.flush()
            sys.stderr.flush()
            os.write(result_fd, job.name.encode() + b"\n")
    except KeyboardInterrupt:
        return 130  # a running trial was recorded as interrupted; its run checkpointed
    return 0


def _resolve(name: str):
    """The object ``module:qualname`` names."""
    module, _, qualname = name.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
