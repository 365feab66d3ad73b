"""Export a decoder checkpoint as a Hugging Face ``GPT2LMHeadModel`` directory.

groklab's decoder is GPT-2's architecture over the task's own vocabulary: learned positions,
pre-LN blocks with biases, LayerNorm eps 1e-5, GELU with the tanh approximation (HF
``gelu_new``), attention scaled by 1/sqrt(head_dim), final LayerNorm, unembedding tied to the
token embedding (or a separate head with ``tie_embeddings: false``). The mapping is therefore
exact: logits of the exported model equal groklab's up to float rounding.

Written (no ``transformers`` needed to write; it is needed to load):

    OUT/config.json              GPT2Config (model_type gpt2, architectures GPT2LMHeadModel)
    OUT/model.safetensors        weights under HF names; Conv1D weights are (in, out)
    OUT/generation_config.json   eos = pad = the task's end/pad tokens
    OUT/tokenizer.json           a WordLevel tokenizer: one token per entity / relation, split on spaces
    OUT/tokenizer_config.json    PreTrainedTokenizerFast, special tokens <pad>, <mask>, </a>
    OUT/special_tokens_map.json
    OUT/vocab.json               token -> id (the dataset's vocab.json is the id -> token list)
    OUT/groklab.json             where it came from: run, step, EMA or not, answer position

Not exportable: the recursive (TRM) family, and a looped model with a step embedding. A
looped model without one is exported unrolled: ``n_loops * n_layers`` GPT-2 blocks whose
weights repeat (equal outputs; the copies are no longer tied if you fine-tune them).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from groklab.errors import GroklabError
from groklab.fsutil import atomic_output_dir, atomic_write_json
from groklab.models.registry import MODEL_CLASSES

LAYER_NORM_EPS = 1e-5        # torch nn.LayerNorm default = GPT-2's layer_norm_epsilon
ACTIVATION = "gelu_new"      # HF name of GELU with the tanh approximation


def check_exportable(cfg) -> None:
    """GroklabError unless a model of ``cfg`` (a ModelConfig) maps exactly onto GPT2LMHeadModel."""
    if not MODEL_CLASSES[cfg.family].hf_exportable:
        raise GroklabError(f"model.family={cfg.family!r} is invalid for --format hf (allowed: "
                           "decoder, looped without step_embedding: GPT-2 has no recursive "
                           "latent loop)")
    if cfg.step_embedding and MODEL_CLASSES[cfg.family].applications(cfg)[0] > 1:
        raise GroklabError("model.step_embedding=True is invalid for --format hf (allowed: false; "
                           "GPT-2 blocks have no per-iteration embedding)")


def _stack_applications(cfg) -> int:
    """How often the block stack runs per forward (decoder 1, looped n_loops): GPT-2 gets the
    unrolled layers."""
    return MODEL_CLASSES[cfg.family].applications(cfg)[0]


def gpt2_config(model, special: dict[str, int]) -> dict:
    """The config.json of the exported GPT2LMHeadModel."""
    cfg = model.cfg
    n_loops = _stack_applications(cfg)
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": model.vocab_size,
        "n_positions": cfg.max_len,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layers * n_loops,
        "n_head": cfg.n_heads,
        "n_inner": cfg.mlp_width,
        "activation_function": ACTIVATION,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": cfg.init_std,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": bool(cfg.tied),
        "use_cache": True,
        "bos_token_id": special["eos"],
        "eos_token_id": special["eos"],
        "pad_token_id": special["pad"],
        "torch_dtype": "float32",
    }


def gpt2_state_dict(model) -> dict[str, torch.Tensor]:
    """groklab decoder/looped weights under GPT2LMHeadModel names (float32, contiguous)."""
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    cfg = model.cfg
    n_loops = _stack_applications(cfg)
    out = {"transformer.wte.weight": sd["wte.weight"], "transformer.wpe.weight": sd["wpe.weight"]}
    for loop in range(n_loops):
        for i in range(cfg.n_layers):
            src, dst = f"blocks.{i}.", f"transformer.h.{loop * cfg.n_layers + i}."
            for name in ("ln_1", "ln_2"):
                out[dst + f"{name}.weight"] = sd[src + f"{name}.weight"]
                out[dst + f"{name}.bias"] = sd[src + f"{name}.bias"]
            # nn.Linear weight is (out, in); HF's Conv1D stores (in, out)
            for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                                 ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):
                out[dst + f"{theirs}.weight"] = sd[src + f"{ours}.weight"].t()
                out[dst + f"{theirs}.bias"] = sd[src + f"{ours}.bias"]
    out["transformer.ln_f.weight"] = sd["ln_final.weight"]
    out["transformer.ln_f.bias"] = sd["ln_final.bias"]
    if not cfg.tied:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return {k: v.contiguous().clone() for k, v in out.items()}


def tokenizer_files(vocab: list[str], special: dict[str, int]) -> dict[str, dict]:
    """tokenizer.json (WordLevel over whitespace-separated tokens), its config and maps."""
    token_to_id = {tok: i for i, tok in enumerate(vocab)}
    specials = {vocab[special[k]] for k in ("pad", "mask", "eos")}
    added = [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(vocab) if tok in specials]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
        "decoder": None,
        # no <unk> in the task's vocabulary: an unknown word is an error, not a silent id
        "model": {"type": "WordLevel", "vocab": token_to_id, "unk_token": "<unk>"},
    }
    special_map = {"pad_token": vocab[special["pad"]], "mask_token": vocab[special["mask"]],
                   "eos_token": vocab[special["eos"]]}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": None,
              "clean_up_tokenization_spaces": False, **special_map}
    return {"tokenizer.json": tokenizer, "tokenizer_config.json": config,
            "special_tokens_map.json": special_map, "vocab.json": token_to_id}


def special_ids(vocab: list[str]) -> dict[str, int]:
    """Ids of the special tokens (groklab.data.vocab: <pad>, <mask>, </a> at ids 0, 1, 2)."""
    from groklab.data.vocab import END, MASK, PAD, SPECIALS

    if list(vocab[:len(SPECIALS)]) != SPECIALS:
        raise GroklabError(f"vocab[:3]={list(vocab[:3])!r} is invalid (allowed: {SPECIALS}, a groklab "
                           "vocabulary)")
    return {"pad": PAD, "mask": MASK, "eos": END}


def export_model_hf(model, vocab: list[str], out: str | os.PathLike, force: bool = False,
                    provenance: dict | None = None) -> Path:
    """Write ``model`` (decoder or looped without step embedding) as an HF GPT-2 directory."""
    from safetensors.torch import save_file

    check_exportable(model.cfg)
    if len(vocab) != model.vocab_size:
        raise GroklabError(f"vocab size={len(vocab)} is invalid (allowed: the model's {model.vocab_size})")
    special = special_ids(vocab)
    with atomic_output_dir(out, force=force) as tmp:
        atomic_write_json(tmp / "config.json", gpt2_config(model, special))
        save_file(gpt2_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        atomic_write_json(tmp / "generation_config.json",
                          {"bos_token_id": special["eos"], "eos_token_id": special["eos"],
                           "pad_token_id": special["pad"]})
        for name, obj in tokenizer_files(vocab, special).items():
            atomic_write_json(tmp / name, obj, indent=None if name == "tokenizer.json" else 2)
        atomic_write_json(tmp / "groklab.json", {
            "exported_from": provenance or {},
            "family": model.cfg.family,
            "answer_position": "length - 1 (the last query token); queries are 'h r' or 'h r1 r2'",
            "loss": model.cfg.loss,
        })
    return Path(out)


def export_run_hf(run_dir: str | os.PathLike, out: str | os.PathLike, step: int | None = None,
                  ema: bool = True, force: bool = False) -> Path:
    """Export a run's checkpoint (``step`` None = latest good; EMA weights when kept)."""
    from groklab.train import load_model, load_run
    from groklab.train.checkpoints import load_latest_good

    run = load_run(run_dir)
    check_exportable(run.config.model)  # before loading anything
    if step is None:
        found = load_latest_good(run.path)
        if found is None:
            raise GroklabError(f"run {run.path} has no usable checkpoint")
        step = found[0]
    model, dataset = load_model(run_dir, step=step, ema=ema)
    provenance = {"run": str(Path(run_dir).resolve()), "step": step,
                  "ema": bool(ema and run.config.optim.ema_decay > 0), "dataset": str(dataset.path)}
    return export_model_hf(model, dataset.vocab, out, force=force, provenance=provenance)
