"""GrokModel: the interface every model family implements (docs/architecture.md section 2)."""

from __future__ import annotations

import torch

from groklab.errors import bad_value
from groklab.models.config import ModelConfig
from groklab.models.hooks import HookedModel
from groklab.models.layout import answer_logits
from groklab.models.stablemax import softmax_cross_entropy, stablemax_cross_entropy


class GrokModel(HookedModel):
    """A hooked model over the task's own vocabulary.

    Subclasses implement ``forward(input_ids) -> logits (B, T, V)``, ``residual_stages()`` and
    ``decode_residual(resid)`` and call ``setup_hooks()`` at the end of ``__init__``.
    """

    answer_slot: bool = False

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size

    def residual_stages(self) -> list[str]:
        """Hook names of the residual states (B, T, d), earliest first."""
        raise NotImplementedError

    def decode_residual(self, resid: torch.Tensor) -> torch.Tensor:
        """Final norm recomputed on ``resid`` + unembedding -> logits (..., V)."""
        raise NotImplementedError

    def answer_forward(self, input_ids: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
        """Logits at each row's answer position only: (N, T) ids, (N,) positions -> (N, V).

        Equals ``answer_logits(self(input_ids), answer_pos)``; families override it to skip
        work that only other positions need (training and evaluation call this).
        """
        return answer_logits(self(input_ids), answer_pos)

    def loss(self, logits_at_answer: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over rows of (N, V) answer logits: cross-entropy or stablemax CE."""
        if self.cfg.loss == "stablemax":
            return stablemax_cross_entropy(logits_at_answer, target)
        return softmax_cross_entropy(logits_at_answer, target)

    def _check_input(self, input_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2:
            raise bad_value("input_ids.shape", tuple(input_ids.shape), "(batch, positions)")
        if input_ids.shape[1] > self.cfg.max_len:
            raise bad_value("input length", input_ids.shape[1],
                            f"[1, model.max_len={self.cfg.max_len}]")
