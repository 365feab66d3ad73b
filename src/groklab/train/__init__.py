"""groklab.train: configs, the training loop, checkpoints, metrics and run directories.

See docs/training.md and docs/architecture.md section 3.
"""

from groklab.train.config import (OptimConfig, RunConfig, TrainConfig, available_presets,
                                  config_from_dict, load_config, read_config)
from groklab.train.evaluate import evaluate
from groklab.train.loop import train_run
from groklab.train.runs import Run, load_model, load_run

__all__ = [
    "OptimConfig", "RunConfig", "TrainConfig", "available_presets", "config_from_dict",
    "load_config", "read_config", "evaluate", "train_run", "Run", "load_model", "load_run",
]
