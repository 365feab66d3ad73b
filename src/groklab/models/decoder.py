"""GPT-2 style decoder: token + learned position embeddings, pre-LN causal blocks, final LN,
(tied) unembedding. The answer is predicted at the last query position."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from groklab.models.base import GrokModel
from groklab.models.blocks import PreLNBlock, gpt2_init
from groklab.models.config import ModelConfig
from groklab.models.hooks import HookPoint


class FinalNorm(nn.LayerNorm):
    """The final LayerNorm with a hook on its output (``ln_final.hook_normalized``)."""

    def __init__(self, d: int):
        super().__init__(d)
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_normalized(super().forward(x))


class Decoder(GrokModel):
    """Standard decoder-only transformer with hook points on every residual state."""

    hf_exportable = True
    # a causal model's state at r1 of ``h r1 r2`` is its state for the atomic query ``h r1``,
    # trained to answer b: b there is hop-1 recall, so groklab's rule looks at r2 only
    bridge_positions = ("r2",)
    answer_fast_path = True   # answer_forward may compute the last block at one position

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__(cfg, vocab_size)
        self.wte = nn.Embedding(vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.max_len, cfg.d_model)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.drop = nn.Dropout(cfg.dropout)
        self.build_blocks()
        self.ln_final = FinalNorm(cfg.d_model)
        self.lm_head = None if cfg.tied else nn.Linear(cfg.d_model, vocab_size, bias=False)
        gpt2_init(self, cfg.init_std, self.n_residual_layers)
        self.setup_hooks()

    # The looped model overrides these three.
    @property
    def n_residual_layers(self) -> int:
        return self.cfg.n_layers

    def build_blocks(self) -> None:
        self.blocks = nn.ModuleList(PreLNBlock(self.cfg) for _ in range(self.cfg.n_layers))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        self._check_input(input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.hook_embed(self.wte(input_ids)) + self.hook_pos_embed(self.wpe(pos))
        x = self.run_blocks(self.drop(x))
        return self.decode_residual(x)

    def answer_forward(self, input_ids: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
        """Logits at the answer positions only. The last block runs its query, MLP, final norm
        and unembedding at the answer position alone (causal attention: nothing later is needed);
        with hooks attached, or for the looped family, the full forward is used instead."""
        if not self.answer_fast_path or self.hooks_attached():
            return super().answer_forward(input_ids, answer_pos)
        self._check_input(input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))
        for block in self.blocks[:-1]:
            x = block(x)
        return self.decode_residual(self.blocks[-1].forward_at(x, answer_pos.to(x.device)))

    def decode_residual(self, resid: torch.Tensor) -> torch.Tensor:
        x = self.ln_final(resid)
        return F.linear(x, self.wte.weight) if self.lm_head is None else self.lm_head(x)

    def residual_stages(self) -> list[str]:
        n = self.cfg.n_layers
        return ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(n)]
