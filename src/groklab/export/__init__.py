"""groklab.export: the ecosystem's formats.

- ``hf``: a decoder run/checkpoint as a Hugging Face ``GPT2LMHeadModel`` directory plus a
  tokenizer over the task's vocabulary (docs/export.md).
- ``tensorboard``: a training callback writing each metrics row as TensorBoard scalars, and
  the conversion of an existing metrics.jsonl.

Optional dependencies (``transformers``, ``tensorboard``) are imported only when used.
"""

from groklab.export.hf import export_model_hf, export_run_hf, gpt2_config, gpt2_state_dict
from groklab.export.tensorboard import TensorBoardCallback, write_tensorboard

__all__ = ["TensorBoardCallback", "export_model_hf", "export_run_hf", "gpt2_config", "gpt2_state_dict",
           "write_tensorboard"]
