"""How a query becomes model input, and where the answer is read.

Decoder/looped (causal): input = the query tokens ``h r`` / ``h r1 r2`` (padded with ``<pad>``);
the answer is predicted at the last query token, position ``length - 1``.
Recursive (non-causal, ``answer_slot=True``): input = query tokens with ``<mask>`` written at
position ``length`` (``h r <mask> <pad>`` / ``h r1 r2 <mask>``); the answer is read there.
"""

from __future__ import annotations

import torch

from groklab.errors import bad_value

PAD_ID = 0
MASK_ID = 1


def make_inputs(tokens, length, answer_slot: bool, mask_id: int = MASK_ID
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(input_ids (N, T) int64, answer_pos (N,) int64)``.

    ``tokens``: (N, W) token ids (numpy or torch), ``<pad>`` after each query; ``length``: (N,)
    number of query tokens. With ``answer_slot`` the input gains one column (T = W + 1).
    """
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    length = torch.as_tensor(length, dtype=torch.long, device=tokens.device)
    if tokens.dim() != 2 or length.shape != tokens.shape[:1]:
        raise bad_value("tokens/length shapes", (tuple(tokens.shape), tuple(length.shape)),
                        "tokens (N, W) and length (N,)")
    n, width = tokens.shape
    if n and (int(length.min()) < 1 or int(length.max()) > width):
        raise bad_value("length", (int(length.min()), int(length.max())), f"[1, {width}]")
    if not answer_slot:
        return tokens.clone(), length - 1
    input_ids = torch.cat([tokens, tokens.new_full((n, 1), PAD_ID)], dim=1)
    input_ids.scatter_(1, length.unsqueeze(1), mask_id)
    return input_ids, length.clone()


def answer_logits(logits: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
    """Pick each row's answer position: logits (N, T, V), answer_pos (N,) -> (N, V)."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, answer_pos.to(logits.device)]
