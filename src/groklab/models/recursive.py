"""TRM-style recursive model (Jolicoeur-Martineau 2025, "Less is More").

One small net (``n_layers`` post-norm blocks) is applied over and over to a latent ``z`` and an
answer state ``y``, both starting from fixed random vectors (buffers, not trained)::

    for c in range(h_cycles):              # all but the last cycle under torch.no_grad
        for j in range(l_cycles):
            z = net(z + y + x)             # hook cycles.{c}.z.{j}.hook_resid_post
        y = net(y + z)                     # hook cycles.{c}.y.hook_resid_post
    logits = head(rms_norm(y))

Non-causal. ``mixer="mlp_t"`` mixes tokens with a SwiGLU across the sequence axis and uses no
positional encoding (the mixer is position-aware); ``mixer="attn"`` uses bidirectional attention
plus learned absolute position embeddings (TRM's learned-position option, no RoPE).
The input carries ``<mask>`` at the answer slot (``answer_slot=True``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from groklab.models.base import GrokModel
from groklab.models.blocks import PostNormBlock, fan_in_init, rms_norm
from groklab.models.config import ModelConfig
from groklab.models.hooks import HookPoint


class ResidPost(nn.Module):
    """Holds one ``hook_resid_post`` hook point."""

    def __init__(self):
        super().__init__()
        self.hook_resid_post = HookPoint()


class RMSFinalNorm(nn.Module):
    """Weightless RMSNorm before the head, hooked as ``ln_final.hook_normalized``."""

    def __init__(self):
        super().__init__()
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_normalized(rms_norm(x))


class Recursive(GrokModel):
    """Tiny recursive model: latent ``z``, answer ``y``, one shared net."""

    answer_slot = True

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__(cfg, vocab_size)
        d = cfg.d_model
        self.embed_scale = math.sqrt(d)
        self.wte = nn.Embedding(vocab_size, d)
        self.hook_embed = HookPoint()
        if cfg.mixer == "attn":
            self.wpe = nn.Embedding(cfg.max_len, d)
            self.hook_pos_embed = HookPoint()
        self.net = nn.ModuleList(PostNormBlock(cfg) for _ in range(cfg.n_layers))
        self.register_buffer("z_init", _trunc_normal(d))
        self.register_buffer("y_init", _trunc_normal(d))
        self.cycles = nn.ModuleList(
            nn.ModuleDict({"z": nn.ModuleList(ResidPost() for _ in range(cfg.l_cycles)),
                           "y": ResidPost()})
            for _ in range(cfg.h_cycles))
        self.ln_final = RMSFinalNorm()
        self.lm_head = None if cfg.tied else nn.Linear(d, vocab_size, bias=False)
        fan_in_init(self)
        for emb in (self.wte, getattr(self, "wpe", None)):
            if emb is not None:  # unit-RMS embeddings after scaling, as in TRM
                nn.init.trunc_normal_(emb.weight, 0.0, 1 / self.embed_scale,
                                      -2 / self.embed_scale, 2 / self.embed_scale)
        self.setup_hooks()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.hook_embed(self.wte(input_ids) * self.embed_scale)
        if self.cfg.mixer == "attn":
            pos = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = (x + self.hook_pos_embed(self.wpe(pos) * self.embed_scale)) / math.sqrt(2)
        return x

    def run_net(self, h: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """The shared net on (B, T, d); with ``at`` (B,) the last block's MLP runs only at
        those positions and the result is (B, d)."""
        last = len(self.net) - 1
        for i, block in enumerate(self.net):
            h = block(h, at if i == last else None)
        return h

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.decode_residual(self._recurse(input_ids))

    def answer_forward(self, input_ids: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
        """Logits at the answer slot; the last net application's last MLP runs only there.
        With hooks attached, or dropout in training, the full forward is used instead."""
        if self.hooks_attached() or (self.training and self.cfg.dropout > 0):
            return super().answer_forward(input_ids, answer_pos)
        return self.decode_residual(self._recurse(input_ids, answer_pos.to(input_ids.device)))

    def _recurse(self, input_ids: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """The final answer state ``y``: (B, T, d), or (B, d) at positions ``at``."""
        self._check_input(input_ids)
        x = self.embed(input_ids)
        z = self.z_init.to(x.dtype).expand_as(x)
        y = self.y_init.to(x.dtype).expand_as(x)
        last = self.cfg.h_cycles - 1
        for c, hooks in enumerate(self.cycles):
            with torch.set_grad_enabled(torch.is_grad_enabled() and c == last):
                for z_hooks in hooks["z"]:
                    z = z_hooks.hook_resid_post(self.run_net(z + y + x))
                y = hooks["y"].hook_resid_post(self.run_net(y + z, at if c == last else None))
        return y

    def decode_residual(self, resid: torch.Tensor) -> torch.Tensor:
        x = self.ln_final(resid)
        return F.linear(x, self.wte.weight) if self.lm_head is None else self.lm_head(x)

    def residual_stages(self) -> list[str]:
        names = []
        for c in range(self.cfg.h_cycles):
            names += [f"cycles.{c}.z.{j}.hook_resid_post" for j in range(self.cfg.l_cycles)]
            names.append(f"cycles.{c}.y.hook_resid_post")
        return names


def _trunc_normal(d: int) -> torch.Tensor:
    """A fixed init state: truncated N(0, 1) vector, drawn from the global (seeded) RNG."""
    return nn.init.trunc_normal_(torch.empty(d), 0.0, 1.0, -2.0, 2.0)
