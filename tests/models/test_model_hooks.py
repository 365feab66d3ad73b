"""Hook points: each fires once per forward with a distinct name; caching and patching."""

from collections import Counter

import pytest
import torch

from modelkit import SMALL, VARIANTS, all_variants, inputs, make
from groklab.errors import GroklabError


def expected_hook_count(variant: str) -> int:
    cfg = {**SMALL, **VARIANTS[variant]}
    if cfg["family"] == "decoder":
        return 2 + 3 * cfg["n_layers"] + 1                      # embeds, blocks, ln_final
    if cfg["family"] == "looped":
        return 2 + 3 * cfg["n_layers"] * cfg["n_loops"] + 1
    pos = 1 if cfg["mixer"] == "attn" else 0
    return 1 + pos + 1 + cfg["h_cycles"] * (cfg["l_cycles"] + 1) + 1    # embeds, init state, updates, ln_final


@all_variants
def test_hooks_fire_once_with_distinct_names(variant):
    model = make(variant)
    fired = Counter()
    model.run_with_hooks(inputs(), [(lambda n: True, lambda x, hook: fired.update([hook.name]))])
    assert len(model.hook_points) == expected_hook_count(variant)
    assert set(fired) == set(model.hook_points)
    assert all(v == 1 for v in fired.values()), fired
    assert len({id(hp) for hp in model.hook_points.values()}) == len(model.hook_points)
    for name, hp in model.hook_points.items():
        assert hp.name == name


def test_hook_names_follow_the_contract():
    assert "blocks.1.hook_resid_mid" in make("decoder").hook_points
    looped = make("looped").hook_points
    assert {"loops.2.blocks.1.hook_resid_post", "hook_pos_embed", "ln_final.hook_normalized"} \
        <= set(looped)
    assert not any(n.startswith("blocks.") for n in looped)        # shared weights carry no hooks
    rec = make("recursive_mlp_t")
    assert rec.residual_stages() == [
        "cycles.0.z.0.hook_resid_post", "cycles.0.z.1.hook_resid_post",
        "cycles.0.z.2.hook_resid_post", "cycles.0.y.hook_resid_post",
        "cycles.1.z.0.hook_resid_post", "cycles.1.z.1.hook_resid_post",
        "cycles.1.z.2.hook_resid_post", "cycles.1.y.hook_resid_post"]
    assert make("decoder").residual_stages() == [
        "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    assert len(make("looped").residual_stages()) == 1 + 2 * 3


@all_variants
def test_run_with_cache_has_every_stage(variant):
    model = make(variant)
    ids = inputs(batch=5, seq=4)
    logits, cache = model.run_with_cache(ids)
    assert logits.shape == (5, 4, 40)
    for name in model.residual_stages():
        assert cache[name].shape == (5, 4, 32), name
    _, only = model.run_with_cache(ids, names=model.residual_stages()[-1:])
    assert list(only) == model.residual_stages()[-1:]
    _, one = model.run_with_cache(ids, names="hook_embed")
    assert list(one) == ["hook_embed"]


@all_variants
def test_decode_last_stage_equals_logits_exactly(variant):
    model = make(variant)
    logits, cache = model.run_with_cache(inputs())
    assert torch.equal(model.decode_residual(cache[model.residual_stages()[-1]]), logits)
    # earlier stages decode to something else (the norm is recomputed per stage)
    assert not torch.allclose(model.decode_residual(cache[model.residual_stages()[0]]), logits)


@all_variants
def test_patching_own_value_is_a_no_op_and_other_values_are_not(variant):
    model = make(variant)
    ids = inputs()
    clean, cache = model.run_with_cache(ids)
    stages = model.residual_stages()
    same = model.run_with_hooks(ids, [(n, lambda x, hook: cache[hook.name]) for n in stages])
    assert torch.equal(same, clean)
    # patching a middle stage (for recursive: inside a no-grad cycle) with zeros changes output
    changed = model.run_with_hooks(ids, [(stages[1], lambda x, hook: torch.zeros_like(x))])
    assert not torch.allclose(changed, clean)


@all_variants
def test_patch_clean_state_into_corrupted_run_at_one_position(variant):
    model = make(variant)
    clean_ids = inputs()
    corrupt_ids = clean_ids.clone()
    corrupt_ids[:, 0] = (clean_ids[:, 0] + 1 - 3) % (40 - 3) + 3
    clean, cache = model.run_with_cache(clean_ids)
    corrupt = model(corrupt_ids)
    last = model.residual_stages()[-1]

    def patch_pos(x, hook, pos=2):
        x = x.clone()
        x[:, pos] = cache[hook.name][:, pos]
        return x

    patched = model.run_with_hooks(corrupt_ids, [(last, patch_pos)])
    assert torch.allclose(patched[:, 2], clean[:, 2], atol=1e-6)
    assert not torch.allclose(corrupt[:, 2], clean[:, 2])


def test_hooks_are_removed_even_after_an_exception():
    model = make("decoder")
    ids = inputs()
    clean = model(ids)

    def boom(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        model.run_with_hooks(ids, [("blocks.0.hook_resid_post", boom)])
    assert all(not hp._fns for hp in model.hook_points.values())
    assert torch.equal(model(ids), clean)
    with pytest.raises(GroklabError, match="hook='blocks.9.hook_resid_post'"):
        model.run_with_hooks(ids, [("blocks.9.hook_resid_post", boom)])
