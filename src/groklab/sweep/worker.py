"""Worker process of the local engine: ``python -m groklab.sweep.worker PAYLOAD_JSON``.

PAYLOAD: ``{"job": TrialJob fields, "trial_fn": "module:function", "sys_path": [...]}``.
Runs one trial with one torch thread and writes its record (see ``trial.execute_trial``).
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

    from groklab.sweep.trial import TrialJob, execute_trial

    torch.set_num_threads(1)
    module, _, name = payload["trial_fn"].partition(":")
    trial_fn = importlib.import_module(module)
    for part in name.split("."):
        trial_fn = getattr(trial_fn, part)
    fields = dict(payload["job"])
    fields["overrides"] = tuple(fields["overrides"])
    try:
        execute_trial(TrialJob(**fields), trial_fn, engine="local")
    except KeyboardInterrupt:
        return 130  # recorded as interrupted; the run checkpointed
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
