"""TRM-style recursive model (Jolicoeur-Martineau 2025, "Less is More").

One small net (``n_layers`` post-norm blocks) is applied over and over to a latent ``z`` and an
answer state ``y``, both starting from fixed random vectors (buffers, not trained)::

    x = [prefix; embed(input)]             # prefix: prefix_len learned constant slots
    z, y = z_init, y_init                  # y: hook_init (the first lens stage)
    for c in range(h_cycles):              # all but the last cycle under torch.no_grad
        for j in range(l_cycles):
            z = net(z + y + x)             # latent update: hook cycles.{c}.z.{j}.hook_resid_post
        y = net(y + z)                     # answer commit: hook cycles.{c}.y.hook_resid_post
    logits = head(rms_norm(y))[prefix_len:]

In TRM's own notation this is ``z_L <- net(z_L, z_H + x)`` L times, then ``z_H <- net(z_H, z_L)``,
the net adding its second argument before its blocks (study.md section 9).

Non-causal. ``mixer="mlp_t"`` mixes tokens with a SwiGLU across the sequence axis (prefix
included) and uses no positional encoding (the mixer is position-aware); ``mixer="attn"`` uses
bidirectional attention plus learned absolute position embeddings (TRM's learned-position
option, no RoPE). ``format`` picks the input layout (models/layout.py): ``<mask>`` at the answer
slot with an answer-only loss, or the study's format with every position in the loss.

Every hook point sees the input positions only (B, T, d), never the prefix slots, so lens and
tracing index positions the same way for every family.
"""

from __future__ import annotations

import dataclasses
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
    causal = False
    circuit_indicator = True
    depth_fields = ("h_cycles", "l_cycles")

    @classmethod
    def applications(cls, cfg) -> tuple[int, int]:
        # h_cycles x (l_cycles + 1) net applications forward; only the last cycle's backward
        return cfg.h_cycles * (cfg.l_cycles + 1), cfg.l_cycles + 1

    @classmethod
    def layout_for(cls, cfg) -> str:
        return cfg.format

    @classmethod
    def positions_per_query(cls, cfg, query_len: int = 3) -> int:
        return super().positions_per_query(cfg, query_len) + cfg.prefix_len

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
        self.hook_init = HookPoint()
        self.cycles = _cycle_hooks(cfg.h_cycles, cfg.l_cycles)
        self.ln_final = RMSFinalNorm()
        self.lm_head = None if cfg.tied else nn.Linear(d, vocab_size, bias=False)
        fan_in_init(self)
        for emb in (self.wte, getattr(self, "wpe", None)):
            if emb is not None:  # unit-RMS embeddings after scaling, as in TRM
                nn.init.trunc_normal_(emb.weight, 0.0, 1 / self.embed_scale,
                                      -2 / self.embed_scale, 2 / self.embed_scale)
        if cfg.prefix_len:  # TRM's puzzle embedding with one identifier: zeros at init
            self.prefix = nn.Parameter(torch.zeros(cfg.prefix_len, d))
        self.setup_hooks()

    @property
    def layout(self) -> str:
        return self.cfg.format

    def set_depth(self, h_cycles: int, l_cycles: int) -> None:
        """Recurse ``h_cycles`` x ``l_cycles`` from now on (test-time depth; weights untouched,
        fresh hook points per cycle)."""
        self.cfg = dataclasses.replace(self.cfg, h_cycles=h_cycles, l_cycles=l_cycles)
        self.cycles = _cycle_hooks(h_cycles, l_cycles)
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
        p = self.cfg.prefix_len
        if p:
            prefix = (self.prefix * self.embed_scale).to(x.dtype)
            x = torch.cat([prefix.expand(x.shape[0], -1, -1), x], dim=1)
            at = at + p if at is not None else None
        z = self.z_init.to(x.dtype).expand_as(x)
        y = self._hooked(self.hook_init, self.y_init.to(x.dtype).expand_as(x))
        last = self.cfg.h_cycles - 1
        for c, hooks in enumerate(self.cycles):
            with torch.set_grad_enabled(torch.is_grad_enabled() and c == last):
                for z_hooks in hooks["z"]:
                    z = self._hooked(z_hooks.hook_resid_post, self.run_net(z + y + x))
                y_at = at if c == last else None
                y = self.run_net(y + z, y_at)
                if y_at is None:
                    y = self._hooked(hooks["y"].hook_resid_post, y)
        return y[:, p:] if at is None else y

    def _hooked(self, hook: HookPoint, state: torch.Tensor) -> torch.Tensor:
        """Run ``hook`` on the input positions of ``state`` (the prefix slots stay as they are)."""
        p = self.cfg.prefix_len
        if not p:
            return hook(state)
        if not hook._fns:
            return state
        return torch.cat([state[:, :p], hook(state[:, p:])], dim=1)

    def decode_residual(self, resid: torch.Tensor) -> torch.Tensor:
        x = self.ln_final(resid)
        return F.linear(x, self.wte.weight) if self.lm_head is None else self.lm_head(x)

    def lens_stages(self) -> list[str]:
        """The study's lens stages: the initial answer state, then every latent update and
        answer commit (1 + h_cycles * (l_cycles + 1); 15 at H=2, L=6)."""
        return ["hook_init"] + self.residual_stages()

    def residual_stages(self) -> list[str]:
        names = []
        for c in range(self.cfg.h_cycles):
            names += [f"cycles.{c}.z.{j}.hook_resid_post" for j in range(self.cfg.l_cycles)]
            names.append(f"cycles.{c}.y.hook_resid_post")
        return names


def _cycle_hooks(h_cycles: int, l_cycles: int) -> nn.ModuleList:
    return nn.ModuleList(
        nn.ModuleDict({"z": nn.ModuleList(ResidPost() for _ in range(l_cycles)), "y": ResidPost()})
        for _ in range(h_cycles))


def _trunc_normal(d: int) -> torch.Tensor:
    """A fixed init state: truncated N(0, 1) vector, drawn from the global (seeded) RNG."""
    return nn.init.trunc_normal_(torch.empty(d), 0.0, 1.0, -2.0, 2.0)
