"""Worker process of the local engine: ``python -m groklab.sweep.worker PAYLOAD_JSON``.

PAYLOAD: ``{"job": the job's fields, "job_type": "module:Class" (default TrialJob),
"trial_fn": "module:function", "sys_path": [...], "parent_pid": N}``. Runs one trial with one
torch thread and writes its record (see ``trial.execute_trial``). A worker whose sweep process
dies (even by SIGKILL) gets a SIGINT, as on Ctrl-C: the trial checkpoints and stops (recorded
as interrupted), so no orphan keeps training; Linux delivers it through PR_SET_PDEATHSIG,
elsewhere a thread watches the parent.
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


def main(argv: list[str]) -> int:
    payload = json.loads(argv[0])
    exit_with_parent(payload.get("parent_pid"))
    for entry in reversed(payload.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import torch

    from groklab.sweep.trial import execute_trial

    torch.set_num_threads(1)
    trial_fn = _resolve(payload["trial_fn"])
    job_type = _resolve(payload.get("job_type", "groklab.sweep.trial:TrialJob"))
    try:
        execute_trial(job_type(**payload["job"]), trial_fn, engine="local")
    except KeyboardInterrupt:
        return 130  # recorded as interrupted; the run checkpointed
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
