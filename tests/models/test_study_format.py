"""The study's TRM format (study.md section 9): inputs, labels, loss, prefix, stages, width."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from groklab.models import ModelConfig, build_model, count_params
from groklab.models.layout import END_ID, IGNORE, MASK_ID, PAD_ID, make_inputs, make_labels

# hand-built items: a two-hop query h r1 r2 -> t and an atomic fact h r -> t
TOKENS = torch.tensor([[5, 30, 33], [7, 31, PAD_ID]])
LENGTH = torch.tensor([3, 2])
TARGET = torch.tensor([9, 10])
VOCAB = 40


def _study_model(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(family="recursive", n_layers=2, d_model=32, n_heads=2, max_len=5, format="study",
               h_cycles=2, l_cycles=2, **kw)
    return build_model(ModelConfig(**cfg), VOCAB).eval()


def test_study_inputs_have_pads_at_the_answer_and_end_slots_and_no_mask():
    ids, pos = make_inputs(TOKENS, LENGTH, "study")
    assert ids.tolist() == [[5, 30, 33, PAD_ID, PAD_ID], [7, 31, PAD_ID, PAD_ID, PAD_ID]]
    assert pos.tolist() == [3, 2]
    assert not (ids == MASK_ID).any()


def test_study_labels_reproduce_the_prompt_then_answer_and_end():
    labels = make_labels(TOKENS, LENGTH, TARGET, "study")
    assert labels.tolist() == [[5, 30, 33, 9, END_ID], [7, 31, 10, END_ID, IGNORE]]
    assert make_labels(TOKENS, LENGTH, TARGET, "answer_slot") is None
    assert make_labels(TOKENS, LENGTH, TARGET, "causal") is None


def test_sequence_loss_is_cross_entropy_over_labelled_positions_only():
    model = _study_model()
    ids, _ = make_inputs(TOKENS, LENGTH, "study")
    labels = make_labels(TOKENS, LENGTH, TARGET, "study")
    logits = model(ids)
    keep = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2), (1, 3)]  # 9 of 10
    by_hand = torch.stack([F.cross_entropy(logits[i, j][None], labels[i, j][None])
                           for i, j in keep]).mean()
    torch.testing.assert_close(model.sequence_loss(logits, labels), by_hand)
    # a change of the logits at the ignored position (the atomic fact's last pad) changes nothing
    bumped = logits.clone()
    bumped[1, 4] += torch.randn(VOCAB) * 10
    torch.testing.assert_close(model.sequence_loss(bumped, labels), by_hand)


def test_prefix_slots_are_learned_constant_and_invisible_to_hooks():
    model = _study_model(prefix_len=4, mixer_norm="token")
    ids, pos = make_inputs(TOKENS, LENGTH, "study")
    logits, cache = model.run_with_cache(ids, names=model.lens_stages())
    assert logits.shape == (2, 5, VOCAB)
    assert all(v.shape == (2, 5, 32) for v in cache.values())
    assert model.prefix.shape == (4, 32) and model.prefix.requires_grad
    # the answer-slot fast path equals the full forward, prefix included
    torch.testing.assert_close(model.answer_forward(ids, pos), logits[torch.arange(2), pos])
    # the prefix matters: another prefix gives other logits
    with torch.no_grad():
        model.prefix.normal_()
    assert not torch.allclose(model(ids), logits)


def test_patching_a_stage_with_its_own_state_reproduces_the_run():
    model = _study_model(prefix_len=3)
    ids, _ = make_inputs(TOKENS, LENGTH, "study")
    base, cache = model.run_with_cache(ids)
    for name in model.lens_stages():
        out = model.run_with_hooks(ids, [(name, lambda x, hook, n=name: cache[n])])
        torch.testing.assert_close(out, base)


def test_lens_stages_are_init_then_every_update_and_commit():
    cfg = ModelConfig(family="recursive", n_layers=2, d_model=16, n_heads=2, max_len=5,
                      format="study", h_cycles=2, l_cycles=6)
    stages = build_model(cfg, VOCAB).lens_stages()
    assert len(stages) == 15 and stages[0] == "hook_init"
    assert stages[7] == "cycles.0.y.hook_resid_post" and stages[-1] == "cycles.1.y.hook_resid_post"


def test_token_axis_norm_normalises_over_positions():
    from groklab.models.blocks import rms_norm_tokens

    x = torch.randn(3, 7, 5)
    y = rms_norm_tokens(x)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(3, 5), atol=1e-3, rtol=1e-3)


def test_paper_preset_is_the_study_width():
    from groklab.train.config import load_config

    cfg = load_config("paper_recursive").model
    assert (cfg.d_model, cfg.mlp_width, cfg.mixer_width, cfg.prefix_len) == (1536, 4096, 256, 16)
    with torch.device("meta"):
        model = build_model(cfg, 3 + 2000 + 200)
    assert 44.4e6 < count_params(model) < 44.8e6          # study.md s.9: about 44.6M


@pytest.mark.parametrize("bad", [dict(format="mask"), dict(prefix_len=-1), dict(mixer_norm="x")])
def test_bad_format_fields_are_one_line_errors(bad):
    from groklab.errors import GroklabError

    with pytest.raises(GroklabError, match="model\\."):
        ModelConfig(family="recursive", **bad)
