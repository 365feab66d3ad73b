"""Looped decoder (Wang et al. App. E.2): ``n_layers`` distinct blocks applied ``n_loops``
times with shared weights, optionally adding a learned step embedding before each iteration.

Each iteration has its own hook points ``loops.{t}.blocks.{i}.hook_resid_pre|mid|post``; the
shared blocks ``blocks.{i}`` hold only weights. With ``n_loops=1`` and no step embedding the
parameters and the computation are exactly those of :class:`Decoder`.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from groklab.models.blocks import PreLNBlock, ResidHooks
from groklab.models.decoder import Decoder


class Looped(Decoder):
    """Decoder whose block stack is re-applied ``n_loops`` times."""

    answer_fast_path = False
    depth_fields = ("n_loops",)

    @classmethod
    def applications(cls, cfg) -> tuple[int, int]:
        return cfg.n_loops, cfg.n_loops

    @property
    def n_residual_layers(self) -> int:
        return self.cfg.n_layers * self.cfg.n_loops

    def build_blocks(self) -> None:
        cfg = self.cfg
        self.blocks = nn.ModuleList(PreLNBlock(cfg, hooked=False) for _ in range(cfg.n_layers))
        self.loops = self._loop_hooks(cfg.n_loops)
        self.step_emb = nn.Embedding(cfg.n_loops, cfg.d_model) if cfg.step_embedding else None

    def _loop_hooks(self, n: int) -> nn.ModuleList:
        return nn.ModuleList(
            nn.ModuleDict({"blocks": nn.ModuleList(ResidHooks() for _ in range(self.cfg.n_layers))})
            for _ in range(n))

    def set_depth(self, n_loops: int) -> None:
        """Run the shared blocks ``n_loops`` times from now on (test-time depth; the weights
        are untouched, each iteration gets fresh hook points). A step embedding has a row per
        trained iteration only, so it caps the depth."""
        if self.step_emb is not None and n_loops > self.step_emb.num_embeddings:
            from groklab.errors import bad_value
            raise bad_value("eval_loops", n_loops, f"[1, {self.step_emb.num_embeddings}] (a step "
                            "embedding has one row per trained iteration)")
        self.cfg = dataclasses.replace(self.cfg, n_loops=n_loops)
        self.loops = self._loop_hooks(n_loops)
        self.setup_hooks()

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
