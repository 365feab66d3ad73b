"""Forward behaviour of the three families: shapes, causality, weight sharing, recursion grads."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from groklab.errors import GroklabError
from groklab.models import (ModelConfig, build_model, count_params, make_inputs,
                            answer_logits)
from groklab.models.blocks import rms_norm
from modelkit import VOCAB, all_variants, inputs, make


@all_variants
def test_forward_shapes_and_loss(variant):
    model = make(variant)
    for batch, seq in [(5, 4), (1, 3), (2, 1)]:
        assert model(inputs(batch, seq)).shape == (batch, seq, VOCAB)
    ids, pos = make_inputs(torch.tensor([[5, 30, 0], [7, 31, 33]]), torch.tensor([2, 3]),
                           model.answer_slot)
    logits = answer_logits(model(ids), pos)
    loss = model.loss(logits, torch.tensor([4, 9]))
    assert logits.shape == (2, VOCAB) and loss.ndim == 0 and torch.isfinite(loss)
    assert model.answer_slot == variant.startswith("recursive")


def test_input_longer_than_max_len_is_rejected():
    with pytest.raises(GroklabError, match="input length=5"):
        make("decoder")(inputs(2, 5))


def test_decoder_is_causal():
    model = make("decoder")
    ids = inputs()
    changed = ids.clone()
    changed[:, 2] = (ids[:, 2] + 1 - 3) % (VOCAB - 3) + 3
    a, b = model(ids), model(changed)
    assert torch.equal(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2:], b[:, 2:])


@pytest.mark.parametrize("variant", ["recursive_mlp_t", "recursive_attn"])
def test_recursive_is_not_causal(variant):
    model = make(variant)
    ids = inputs()
    changed = ids.clone()
    changed[:, 3] = (ids[:, 3] + 1 - 3) % (VOCAB - 3) + 3
    a, b = model(ids), model(changed)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-4       # position 0 sees a later token


def test_looped_with_one_loop_is_the_decoder():
    decoder = make("decoder")
    looped = make("looped", n_loops=1)
    looped.load_state_dict(decoder.state_dict(), strict=True)
    ids = inputs()
    assert torch.equal(looped(ids), decoder(ids))
    assert count_params(looped) == count_params(decoder)


def test_looped_shares_weights_across_iterations():
    counts = {n: count_params(make("looped", n_loops=n)) for n in (1, 2, 4)}
    assert len(set(counts.values())) == 1, counts
    # looping twice is the decoder stack applied twice
    decoder, looped = make("decoder"), make("looped", n_loops=2)
    looped.load_state_dict(decoder.state_dict())
    ids = inputs()
    _, cache = looped.run_with_cache(ids)
    x = decoder.wte(ids) + decoder.wpe(torch.arange(4))
    for _ in range(2):
        for block in decoder.blocks:
            x = block(x)
    assert torch.allclose(cache["loops.1.blocks.1.hook_resid_post"], x, atol=1e-6)


def test_step_embedding_adds_one_vector_per_loop():
    plain, step = make("looped", n_loops=2), make("looped", n_loops=2, step_embedding=True)
    assert count_params(step) - count_params(plain) == 2 * 32
    step.load_state_dict({**plain.state_dict(), "step_emb.weight": torch.zeros(2, 32)})
    ids = inputs()
    assert torch.equal(step(ids), plain(ids))
    with torch.no_grad():
        step.step_emb.weight[1] = 1.0
    assert not torch.allclose(step(ids), plain(ids))


def test_recursive_init_states_are_seeded_buffers():
    a, b, c = make("recursive_mlp_t"), make("recursive_mlp_t"), make("recursive_mlp_t", seed=1)
    names = {n for n, _ in a.named_parameters()}
    assert "z_init" not in names and "y_init" not in names
    assert {"z_init", "y_init"} <= set(a.state_dict())
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.z_init, c.z_init)


def _net_cycles(model, x, z, y, n):
    for _ in range(n):
        for _ in range(model.cfg.l_cycles):
            z = model.run_net(z + y + x)
        y = model.run_net(y + z)
    return z, y


@pytest.mark.parametrize("variant", ["recursive_mlp_t", "recursive_attn"])
def test_recursive_gradients_flow_only_through_the_last_cycle(variant):
    model = make(variant).train()
    ids, target = inputs(), torch.randint(3, VOCAB, (5,))
    needs_grad = {}

    def record(x, hook):
        needs_grad[hook.name] = x.requires_grad

    logits = model.run_with_hooks(ids, [(lambda n: n.startswith("cycles."), record)])
    assert len(needs_grad) == model.cfg.h_cycles * (model.cfg.l_cycles + 1)
    last = model.cfg.h_cycles - 1
    for name, flag in needs_grad.items():
        assert flag == name.startswith(f"cycles.{last}."), name
    model.zero_grad()
    model.loss(logits[:, 3], target).backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}

    def manual(truncate: bool):
        model.zero_grad()
        x = model.embed(ids)
        z, y = model.z_init.expand_as(x), model.y_init.expand_as(x)
        with torch.set_grad_enabled(not truncate):
            z, y = _net_cycles(model, x, z, y, last)
        z, y = _net_cycles(model, x, z, y, 1)
        model.loss(model.decode_residual(y)[:, 3], target).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    truncated, full = manual(True), manual(False)
    for n in got:
        assert torch.allclose(got[n], truncated[n], atol=1e-6), n
    assert any(not torch.allclose(full[n], got[n], atol=1e-6) for n in got)


def test_mlp_t_accepts_shorter_inputs_and_rms_norm_is_unit():
    model = make("recursive_mlp_t", max_len=6)
    assert model(inputs(3, 4)).shape == (3, 4, VOCAB)
    _, cache = model.run_with_cache(inputs(3, 4))
    y = cache["cycles.1.y.hook_resid_post"]
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(3, 4), atol=1e-3)   # post-norm states
    assert torch.allclose(rms_norm(y), y, atol=1e-4)


@all_variants
def test_bf16_autocast_and_dropout(variant):
    model = make(variant, dropout=0.1).train()
    ids = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids)
        loss = model.loss(logits[:, -1], torch.randint(3, VOCAB, (5,)))
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    assert torch.equal(model(ids), model(ids))


@all_variants
def test_state_dict_round_trips_through_safetensors(variant, tmp_path):
    model = make(variant)
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    other = make(variant, seed=5)
    other.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    ids = inputs()
    assert torch.equal(other(ids), model(ids))


def test_tied_and_untied_heads():
    tied = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2), 20)
    untied = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, tie_embeddings=False), 20)
    assert tied.lm_head is None and count_params(untied) - count_params(tied) == 20 * 16


def test_deepcopy_keeps_its_own_hook_points():
    model = make("looped")
    twin = copy.deepcopy(model)                      # e.g. an EMA copy
    modules = dict(twin.named_modules())
    assert all(twin.hook_points[n] is modules[n] for n in twin.hook_points)
    _, cache = twin.run_with_cache(inputs())
    assert set(cache) == set(twin.hook_points)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@all_variants
def test_cuda_matches_cpu(variant):
    model = make(variant)
    ids = inputs()
    expected = model(ids)
    model.cuda()
    got = model(ids.cuda())
    assert torch.allclose(got.cpu(), expected, atol=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model.loss(model(ids.cuda())[:, -1], torch.randint(3, VOCAB, (5,)).cuda())
    assert torch.isfinite(loss)
