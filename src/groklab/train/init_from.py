"""Fine-tuning start: load another run's weights at a checkpoint into a new run's model.

``train_run(init_from="RUN[@STEP]")`` uses it; the record it returns is the new run's
``init_from.json`` (docs/architecture.md section 3).
"""

from __future__ import annotations

from groklab.data import Dataset
from groklab.errors import GroklabError
from groklab.train.runs import checkpoint_weights, load_run, parse_run_spec


def load_initial_weights(model, ema, dataset: Dataset, spec) -> dict:
    """Load ``RUN[@STEP]``'s weights (its EMA weights when it kept an EMA; default step: its
    latest good checkpoint) into ``model`` and ``ema`` (a WeightEMA or None); return the
    record ``{"init_from": absolute run path, "step": step}``.

    The source run must have the same vocabulary as ``dataset`` and the same parameters (names
    and shapes) as ``model``.
    """
    path, step = parse_run_spec(spec)
    run = load_run(path)
    if step is None and not run.checkpoint_steps:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run with a "
                           "usable checkpoint; this one has none)")
    step, state = checkpoint_weights(run, step, ema=True)
    if run.dataset.vocab != dataset.vocab:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run whose dataset "
                           f"has this run's vocabulary of {dataset.vocab_size} tokens)")
    mine = model.state_dict()
    differ = sorted(k for k in set(state) | set(mine)
                    if k not in state or k not in mine or state[k].shape != mine[k].shape)
    if differ:
        raise GroklabError(f"init_from={str(spec)!r} is invalid (allowed: a run whose model has "
                           f"this run's parameters; differs in {', '.join(differ[:3])}"
                           f"{', ...' if len(differ) > 3 else ''})")
    model.load_state_dict(state)
    if ema is not None:
        ema.model.load_state_dict(state)
    return {"init_from": str(run.path.resolve()), "step": step}
