"""make_inputs: decoder reads the answer at the last query token, recursive at a <mask> slot."""

import numpy as np
import pytest
import torch

from groklab.errors import GroklabError
from groklab.models import answer_logits, make_inputs

TOKENS = np.array([[5, 30, 0], [7, 31, 33]], dtype=np.int64)   # atomic "h r", two-hop "h r1 r2"
LENGTH = np.array([2, 3])


def test_decoder_layout():
    ids, pos = make_inputs(TOKENS, LENGTH, layout="causal")
    assert ids.dtype == torch.long and ids.tolist() == [[5, 30, 0], [7, 31, 33]]
    assert pos.tolist() == [1, 2]


def test_recursive_layout_has_mask_slot():
    ids, pos = make_inputs(TOKENS, LENGTH, layout="answer_slot")
    assert ids.tolist() == [[5, 30, 1, 0], [7, 31, 33, 1]]
    assert pos.tolist() == [2, 3]
    assert (ids[torch.arange(2), pos] == 1).all()
    ids9, _ = make_inputs(torch.as_tensor(TOKENS), torch.as_tensor(LENGTH), True, mask_id=9)
    assert ids9.tolist() == [[5, 30, 9, 0], [7, 31, 33, 9]]


def test_inputs_are_not_modified_and_bad_length_rejected():
    tokens = torch.as_tensor(TOKENS.copy())
    ids, _ = make_inputs(tokens, LENGTH, layout="causal")
    ids[0, 0] = 99
    assert tokens[0, 0] == 5
    with pytest.raises(GroklabError, match="length"):
        make_inputs(TOKENS, np.array([0, 3]), layout="answer_slot")
    with pytest.raises(GroklabError, match="length"):
        make_inputs(TOKENS, np.array([2, 4]), layout="causal")


def test_answer_logits_picks_rows():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    out = answer_logits(logits, torch.tensor([2, 3]))
    assert torch.equal(out, torch.stack([logits[0, 2], logits[1, 3]]))
