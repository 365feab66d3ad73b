"""How a query becomes model input, where the answer is read, and (study format) the labels.

Three layouts, one per way a family reads a query (``model.layout``):

- ``causal`` (decoder, looped): input = the query tokens ``h r`` / ``h r1 r2`` (padded with
  ``<pad>``); the answer is predicted at the last query token, position ``length - 1``.
- ``answer_slot`` (recursive, ``format: answer_slot``): query tokens with ``<mask>`` written at
  position ``length`` (``h r <mask> <pad>`` / ``h r1 r2 <mask>``); the answer is read there and
  only the answer is in the loss.
- ``study`` (recursive, ``format: study``; He et al.'s TRM format, study.md section 9): the
  sequence is two columns longer than the query, the answer slot and the slot after it hold
  ``<pad>`` (no mask token): ``h r1 r2 <pad> <pad>`` / ``h r <pad> <pad> <pad>``. Labels
  reproduce the prompt at its own positions and end with the answer and ``</a>``
  (``h r1 r2 t </a>`` / ``h r t </a> <pad>``); every non-pad label is in the loss. The answer
  is read at position ``length`` as in ``answer_slot``.
"""

from __future__ import annotations

import torch

from groklab.errors import bad_value

PAD_ID = 0
MASK_ID = 1
END_ID = 2
IGNORE = -100          # label of a position outside the loss
LAYOUTS = ("causal", "answer_slot", "study")
EXTRA_COLUMNS = {"causal": 0, "answer_slot": 1, "study": 2}


def _layout_name(layout) -> str:
    # ``True`` / ``False`` are accepted for the older answer_slot flag
    if layout is True:
        return "answer_slot"
    if layout is False:
        return "causal"
    if layout not in LAYOUTS:
        raise bad_value("layout", layout, " | ".join(LAYOUTS))
    return layout


def input_width(query_width: int, layout) -> int:
    """Model input length for queries of ``query_width`` tokens."""
    return query_width + EXTRA_COLUMNS[_layout_name(layout)]


def make_inputs(tokens, length, layout, mask_id: int = MASK_ID
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(input_ids (N, T) int64, answer_pos (N,) int64)`` for ``layout``.

    ``tokens``: (N, W) token ids (numpy or torch), ``<pad>`` after each query; ``length``: (N,)
    number of query tokens. ``answer_slot`` adds one column (T = W + 1), ``study`` two.
    """
    layout = _layout_name(layout)
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    length = torch.as_tensor(length, dtype=torch.long, device=tokens.device)
    if tokens.dim() != 2 or length.shape != tokens.shape[:1]:
        raise bad_value("tokens/length shapes", (tuple(tokens.shape), tuple(length.shape)),
                        "tokens (N, W) and length (N,)")
    n, width = tokens.shape
    if n and (int(length.min()) < 1 or int(length.max()) > width):
        raise bad_value("length", (int(length.min()), int(length.max())), f"[1, {width}]")
    if layout == "causal":
        return tokens.clone(), length - 1
    input_ids = torch.cat([tokens, tokens.new_full((n, EXTRA_COLUMNS[layout]), PAD_ID)], dim=1)
    if layout == "answer_slot":
        input_ids.scatter_(1, length.unsqueeze(1), mask_id)
    return input_ids, length.clone()


def make_labels(tokens, length, target, layout) -> torch.Tensor | None:
    """Per-position labels (N, T) of the ``study`` layout, :data:`IGNORE` outside the loss;
    None for the layouts whose loss is the answer alone."""
    if _layout_name(layout) != "study":
        return None
    input_ids, answer_pos = make_inputs(tokens, length, "study")
    labels = input_ids.clone()
    rows = torch.arange(labels.shape[0])
    labels[rows, answer_pos] = torch.as_tensor(target, dtype=torch.long)
    labels[rows, answer_pos + 1] = END_ID
    return labels.masked_fill(labels == PAD_ID, IGNORE)


def answer_logits(logits: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
    """Pick each row's answer position: logits (N, T, V), answer_pos (N,) -> (N, V)."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, answer_pos.to(logits.device)]
