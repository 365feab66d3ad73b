"""GrokModel: the interface every model family implements (docs/architecture.md section 2)."""

from __future__ import annotations

import torch

from groklab.errors import bad_value
from groklab.models.config import ModelConfig
from groklab.models.hooks import HookedModel
from groklab.models.layout import IGNORE, answer_logits, input_width
from groklab.models.stablemax import softmax_cross_entropy, stablemax_cross_entropy


class GrokModel(HookedModel):
    """A hooked model over the task's own vocabulary.

    Subclasses implement ``forward(input_ids) -> logits (B, T, V)``, ``residual_stages()`` and
    ``decode_residual(resid)`` and call ``setup_hooks()`` at the end of ``__init__``.
    """

    # A family's facts live here, on its class (adding a family = one class + its registration)
    answer_slot: bool = False     # non-causal with an answer slot (recursive)
    causal: bool = True           # a position sees only earlier ones
    layout: str = "causal"        # models/layout.py: how a query becomes input (and labels)
    hf_exportable: bool = False   # export/hf can write it as a GPT2LMHeadModel
    circuit_indicator: bool = False  # its bridge-found rate indicates a circuit (claim 2)
    # where groklab's lens rule counts "bridge found" ("auto" = every position); the study's
    # rule always uses every position
    bridge_positions: tuple[str, ...] | str = "auto"
    # the config fields a test-time depth changes (models/depth.py); () = fixed depth
    depth_fields: tuple[str, ...] = ()

    @classmethod
    def applications(cls, cfg: ModelConfig) -> tuple[int, int]:
        """(forward, back-propagated) applications of the parameter stack per training step."""
        return 1, 1

    @classmethod
    def layout_for(cls, cfg: ModelConfig) -> str:
        """The input layout a model of ``cfg`` uses (``layout``, per instance)."""
        return cls.layout

    @classmethod
    def positions_per_query(cls, cfg: ModelConfig, query_len: int = 3) -> int:
        """Positions the network processes for one query of ``query_len`` tokens."""
        return input_width(query_len, cls.layout_for(cfg))

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size

    def residual_stages(self) -> list[str]:
        """Hook names of the residual states (B, T, d), earliest first."""
        raise NotImplementedError

    def lens_stages(self) -> list[str]:
        """Hook names the study's lens rule decodes (default: the residual stages)."""
        return self.residual_stages()

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

    def sequence_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss over every labelled position of (N, T, V) logits; labels (N, T) with
        ``layout.IGNORE`` outside the loss (the study format)."""
        keep = labels != IGNORE
        return self.loss(logits[keep], labels[keep])

    def _check_input(self, input_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2:
            raise bad_value("input_ids.shape", tuple(input_ids.shape), "(batch, positions)")
        if input_ids.shape[1] > self.cfg.max_len:
            raise bad_value("input length", input_ids.shape[1],
                            f"[1, model.max_len={self.cfg.max_len}]")
