"""Helpers of the sweep tests: the micro sweep file and trial functions (module level, so the
worker processes of the local engine can import them by name)."""


from groklab.sweep.trial import train_trial
from groklab.train.config import SWEEP_DIR

MICRO = SWEEP_DIR / "micro.yaml"
INTERRUPT_AT = 150


def interrupt_phi4(job, callbacks=()):
    """Train like the default trial, but the phi=4 trial is interrupted (Ctrl-C) at step 150,
    after its step-100 checkpoint, as if the user stopped the sweep there."""
    callbacks = list(callbacks)
    if job.name.startswith("phi=4-"):
        def stop(step, model, dataset, row):
            if step >= INTERRUPT_AT:
                raise KeyboardInterrupt
        callbacks.append(stop)
    return train_trial(job, callbacks)


def crash_by_seed(job, callbacks=()):
    """No training: seed 0 kills its own process, seed 1 exits with code 3, seed 2 raises."""
    import os
    import signal

    seed = int(dict(o.split("=", 1) for o in job.overrides)["train.seed"])
    if seed == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    if seed == 1:
        os._exit(3)
    raise RuntimeError(f"boom in trial seed={seed}")


def act_by_name(job, callbacks=()):
    """No training: prints its name and pid; a trial named ``kill-*`` kills its own process,
    ``stop-*`` is interrupted (Ctrl-C), ``boom-*`` raises; the others return a summary."""
    import os
    import signal

    print(f"trial {job.name} in pid {os.getpid()}", flush=True)
    if job.name.startswith("kill-"):
        os.kill(os.getpid(), signal.SIGKILL)
    if job.name.startswith("stop-"):
        raise KeyboardInterrupt
    if job.name.startswith("boom-"):
        raise RuntimeError(f"boom in {job.name}")
    return {"steps": 0, "stopped": "max_steps"}
