"""Checks of a new run before its first byte is written (docs/guarantees.md).

Everything that can be known from the config, the device and an existing dataset is checked
here, before the run directory exists: a dataset to use must have a non-empty train split, a
dataset to generate must fit in memory, the model is built on the meta device (no memory; any
error torch raises becomes one line), its inputs must fit ``model.max_len``, and its training
state and a training batch must fit in the device's memory. What can only be known once the
data is generated (a phi above what the graph's pool allows) is checked then; the run
directory that call created is removed again.
"""

from __future__ import annotations

import dataclasses

import torch

import groklab.models as models
from groklab.models.registry import MODEL_CLASSES, initialisers_off
from groklab.data import Dataset, check_generation_memory
from groklab.data.vocab import comparison_vocab, composition_vocab
from groklab.errors import GroklabError, bad_value
from groklab.resources import (batch_bytes, check_memory, format_bytes, model_state_bytes,
                               params_lower_bound)

QUERY_TOKENS = 3  # two-hop splits' tokens are (N, 3): h r1 r2 or attr e1 e2 (atomic: h r <pad>)


def query_tokens(cfg, dataset: Dataset | None = None) -> int:
    """Input tokens of the longest query of the run's data: 3 for two hops, K + 1 for K hops."""
    if dataset is not None:
        return dataset.query_width
    return cfg.data.max_hops + 1 if cfg.data.task == "composition" else QUERY_TOKENS


def fit_max_len(cfg, dataset: Dataset | None = None) -> bool:
    """``model.max_len`` follows the data: raised (in ``cfg``, so config.yaml records it) to
    what the family's layout needs for the longest query; True when it was raised."""
    m = cfg.model
    need = MODEL_CLASSES[m.family].positions_per_query(m, query_tokens(cfg, dataset))
    if m.max_len >= need or query_tokens(cfg, dataset) <= QUERY_TOKENS:
        return False  # two-hop configs are left exactly as they are
    cfg.model = dataclasses.replace(m, max_len=need)
    return True


def preflight(cfg, device: torch.device, dataset: Dataset | None = None) -> None:
    """Raise GroklabError if the run ``cfg`` on ``device`` (with ``dataset``, or generating
    ``cfg.data``) would fail for a reason knowable now. Allocates nothing."""
    if dataset is not None:
        if dataset.manifest["counts"].get("train", 0) < 1:
            raise GroklabError(f"data_path={str(dataset.path)!r} is invalid (allowed: a dataset "
                               "whose train split is not empty; this one's is empty)")
        vocab_size = dataset.vocab_size
        probe_items = max([dataset.manifest["counts"][n] for n in dataset.probe_names] or [1])
    else:
        check_generation_memory(cfg.data)
        d = cfg.data
        vocab = (composition_vocab(d.entities, d.relations) if d.task == "composition"
                 else comparison_vocab(d.entities, d.relations, d.values))
        vocab_size, probe_items = len(vocab), d.probe_cap
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    m = cfg.model
    subject = (f"model size model.n_layers={m.n_layers}, model.d_model={m.d_model}, "
               f"model.d_mlp={m.mlp_width}")
    lower = params_lower_bound(m, vocab_size)
    check_memory(subject, model_state_bytes(lower, cfg.optim),
                 f"training a model of at least {lower:,} parameters", free)
    try:
        with initialisers_off(), torch.device("meta"):  # shapes only: no memory, no init
            model = models.build_model(m, vocab_size)
    except GroklabError:
        raise
    except Exception as exc:  # whatever torch refuses about these shapes
        raise GroklabError(f"model: cannot be built with this config ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    width = query_tokens(cfg, dataset)
    seq_len = model.positions_per_query(m, width)  # the family's input layout
    if m.max_len < seq_len:
        raise bad_value("model.max_len", m.max_len, f">= {seq_len} (the inputs of {width}-"
                        f"token queries in layout {model.layout_for(m)!r} are {seq_len} long)")
    n_params = models.count_params(model)
    states = model_state_bytes(n_params, cfg.optim)
    check_memory(subject, states, f"training this {n_params:,}-parameter model (weights, "
                 "gradients, AdamW moments)", free)
    stages = len(model.residual_stages())
    t = cfg.train
    train_batch = batch_bytes(t.batch_size, seq_len, m.d_model, m.mlp_width, stages, vocab_size)
    check_memory(f"train.batch_size={t.batch_size}", states + train_batch,
                 f"one training batch ({format_bytes(train_batch)} of activations, with the "
                 f"model's {format_bytes(states)})", free)
    eval_batch = batch_bytes(min(t.eval_batch_size, probe_items), seq_len, m.d_model, m.mlp_width,
                             stages, vocab_size, train=False)
    check_memory(f"train.eval_batch_size={t.eval_batch_size}", states + eval_batch,
                 "one evaluation batch with the model", free)
