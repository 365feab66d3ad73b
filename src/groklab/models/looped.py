"""Looped decoder (Wang et al. App. E.2): ``n_layers`` distinct blocks applied ``n_loops``
times with shared weights, optionally adding a learned step embedding before each iteration.

Each iteration has its own hook points ``loops.{t}.blocks.{i}.hook_resid_pre|mid|post``; the
shared blocks ``blocks.{i}`` hold only weights. With ``n_loops=1`` and no step embedding the
parameters and the computation are exactly those of :class:`Decoder`.
"""

from __future__ import annotations

import torch
from torch import nn

from groklab.models.blocks import PreLNBlock, ResidHooks
from groklab.models.decoder import Decoder


class Looped(Decoder):
    """Decoder whose block stack is re-applied ``n_loops`` times."""

    answer_fast_path = False

    @classmethod
    def applications(cls, cfg) -> tuple[int, int]:
        return cfg.n_loops, cfg.n_loops

    @property
    def n_residual_layers(self) -> int:
        return self.cfg.n_layers * self.cfg.n_loops

    def build_blocks(self) -> None:
        cfg = self.cfg
        self.blocks = nn.ModuleList(PreLNBlock(cfg, hooked=False) for _ in range(cfg.n_layers))
        self.loops = nn.ModuleList(
            nn.ModuleDict({"blocks": nn.ModuleList(ResidHooks() for _ in range(cfg.n_layers))})
            for _ in range(cfg.n_loops))
        self.step_emb = nn.Embedding(cfg.n_loops, cfg.d_model) if cfg.step_embedding else None

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for t, loop in enumerate(self.loops):
            if self.step_emb is not None:
                x = x + self.step_emb.weight[t]
            for block, hooks in zip(self.blocks, loop["blocks"]):
                x = block(x, hooks)
        return x

    def residual_stages(self) -> list[str]:
        k, n = self.cfg.n_layers, self.cfg.n_loops
        return ["loops.0.blocks.0.hook_resid_pre"] + [
            f"loops.{t}.blocks.{i}.hook_resid_post" for t in range(n) for i in range(k)]
