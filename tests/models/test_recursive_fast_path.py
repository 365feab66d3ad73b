"""The recursive model's fast paths (position-major ``mlp_t`` mixer on a CPU, answer-slot-only
last MLP) equal the plain computation within float tolerance, values and gradients."""

import pytest
import torch
from modelkit import inputs, make

from groklab.models import answer_logits
from groklab.models.blocks import TokenMixer
import torch.nn.functional as F

TOL = dict(rtol=1e-5, atol=1e-5)


def reference_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """The recursion written with full-width ``PostNormBlock.forward`` calls."""
    x = model.embed(ids)
    z, y = model.z_init.expand_as(x), model.y_init.expand_as(x)
    net = lambda h: [h := block(h) for block in model.net][-1]  # noqa: E731
    for c in range(model.cfg.h_cycles):
        with torch.set_grad_enabled(torch.is_grad_enabled() and c == model.cfg.h_cycles - 1):
            for _ in range(model.cfg.l_cycles):
                z = net(z + y + x)
            y = net(y + z)
    return model.decode_residual(y)


def transposed_token_mix(mixer: TokenMixer, x: torch.Tensor) -> torch.Tensor:
    """``mlp_t`` as a SwiGLU over the transposed input (B, d, T): the form CUDA runs."""
    t = x.shape[1]
    gate, up = F.linear(x.transpose(1, 2), mixer.gate_up.weight[:, :t]).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, mixer.down.weight[:t]).transpose(1, 2)


@pytest.mark.parametrize("seq", [2, 3, 4])
def test_cpu_token_mixer_equals_the_transposed_form(seq):
    mixer = make("recursive_mlp_t").net[0].mixer
    assert isinstance(mixer, TokenMixer)
    x = torch.randn(7, seq, 32, requires_grad=True)
    fast = mixer(x)
    torch.testing.assert_close(fast, transposed_token_mix(mixer, x), **TOL)
    g_fast = torch.autograd.grad(fast.square().sum(), [x, mixer.gate_up.weight])
    g_ref = torch.autograd.grad(transposed_token_mix(mixer, x).square().sum(), [x, mixer.gate_up.weight])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("variant", ["recursive_mlp_t", "recursive_attn"])
@pytest.mark.parametrize("h_cycles, l_cycles", [(1, 1), (2, 1), (2, 3)])
def test_forward_and_answer_forward_match_reference(variant, h_cycles, l_cycles):
    model = make(variant, h_cycles=h_cycles, l_cycles=l_cycles)
    ids = inputs(batch=9, seq=4)
    pos = torch.tensor([3, 2, 1, 3, 0, 2, 3, 3, 1])
    ref = reference_logits(model, ids)
    torch.testing.assert_close(model(ids), ref, **TOL)
    torch.testing.assert_close(model.answer_forward(ids, pos), answer_logits(ref, pos), **TOL)


@pytest.mark.parametrize("variant", ["recursive_mlp_t", "recursive_attn"])
def test_answer_forward_gradients_match_reference(variant):
    model = make(variant, h_cycles=2, l_cycles=2).train()
    ids, target = inputs(batch=16, seq=4), inputs(batch=16, seq=1, seed=2)[:, 0]
    pos = torch.full((16,), 3)
    grads = []
    for logits_fn in (lambda: model.answer_forward(ids, pos),
                      lambda: answer_logits(reference_logits(model, ids), pos)):
        model.zero_grad()
        model.loss(logits_fn(), target).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][name], **TOL, msg=name)


def test_hooked_answer_forward_sees_full_states():
    model = make("recursive_mlp_t")
    ids, pos = inputs(batch=4, seq=4), torch.full((4,), 3)
    seen = []
    with model.hooks([("cycles.1.y.hook_resid_post", lambda x, hook: seen.append(x.shape))]):
        model.answer_forward(ids, pos)
    assert seen == [torch.Size([4, 4, 32])]
