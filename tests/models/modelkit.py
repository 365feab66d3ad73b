"""Small configs shared by the model tests (imported as `modelkit`)."""

import pytest
import torch

from groklab.models import ModelConfig, build_model

VOCAB = 40
SMALL = dict(n_layers=2, d_model=32, n_heads=4, max_len=4)
VARIANTS = {
    "decoder": dict(family="decoder"),
    "looped": dict(family="looped", n_loops=3),
    "looped_step": dict(family="looped", n_loops=2, step_embedding=True),
    "recursive_mlp_t": dict(family="recursive", mixer="mlp_t", h_cycles=2, l_cycles=3),
    "recursive_attn": dict(family="recursive", mixer="attn", h_cycles=3, l_cycles=2),
}


def make(variant: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**SMALL, **VARIANTS[variant], **overrides}), VOCAB).eval()


def inputs(batch: int = 5, seq: int = 4, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, seq), generator=g)


all_variants = pytest.mark.parametrize("variant", list(VARIANTS))
