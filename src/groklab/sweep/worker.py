"""Worker process of the local engine: ``python -m groklab.sweep.worker PAYLOAD_JSON``.

PAYLOAD: ``{"job": the job's fields, "job_type": "module:Class" (default TrialJob),
"trial_fn": "module:function", "sys_path": [...]}``. Runs one trial with one torch thread and
writes its record (see ``trial.execute_trial``).
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str]) -> int:
    payload = json.loads(argv[0])
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
