"""Correctness of every speed lever (no timing assertions): answer-position forward, the
compiled step, bf16 autocast, the device-resident data path without host syncs, stop_at.

The GPU path is the same code with ``device="cuda"``; here it runs on CPU, and on a machine
with CUDA the device-parametrised tests also run there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from groklab.data import load_dataset
from groklab.errors import GroklabError
from groklab.models import ModelConfig, answer_logits, build_model
from groklab.train import config_from_dict, train_run
from groklab.train import checkpoints as ck
from groklab.train import trainer as loop  # Trainer and COMPILE_BACKEND live in train.trainer
from groklab.train.trainer import Trainer
from groklab.train.metrics import read_metrics

from conftest import SPEED_DATA

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
VOCAB = 30


def speed_config(data_path, model=None, optim=None, train=None):
    raw = {
        "data": dict(SPEED_DATA),
        "model": {"family": "decoder", "n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4,
                  **(model or {})},
        "optim": {"lr": 3e-3, "weight_decay": 0.1, "warmup_steps": 5, **(optim or {})},
        "train": {"steps": 40, "batch_size": 64, "eval_every": 20, "checkpoint_every": 20,
                  "device": "cpu", "plots": False, **(train or {})},
        "data_path": str(data_path),
    }
    return config_from_dict(raw)


def make_trainer(data_path, device="cpu", tmp=Path("unused-run-dir"), **sections):
    cfg = speed_config(data_path, **sections)
    return Trainer(cfg, load_dataset(data_path), torch.device(device), tmp)


# ---------------------------------------------------------------------------- answer-position forward

@pytest.mark.parametrize("family", [
    dict(family="decoder"), dict(family="decoder", n_layers=1, tie_embeddings=False),
    dict(family="looped", n_loops=2), dict(family="recursive", mixer="mlp_t", h_cycles=2, l_cycles=2)])
def test_answer_forward_equals_the_full_forward_and_its_gradients(family):
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{"n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4,
                                       **family}), VOCAB)
    ids = torch.randint(3, VOCAB, (9, 3), generator=torch.Generator().manual_seed(1))
    pos = torch.tensor([0, 1, 2, 2, 1, 2, 0, 2, 1])
    target = torch.randint(3, VOCAB, (9,), generator=torch.Generator().manual_seed(2))

    def grads(fn):
        model.zero_grad()
        logits = fn()
        model.loss(logits, target).backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    full, g_full = grads(lambda: answer_logits(model(ids), pos))
    fast, g_fast = grads(lambda: model.answer_forward(ids, pos))
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_fast, g_full):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert full.shape == (9, VOCAB) and full.abs().sum() > 0


def test_answer_forward_runs_the_full_model_while_hooks_are_attached():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=2, d_model=32, n_heads=4, max_len=4), VOCAB)
    ids, pos = torch.randint(3, VOCAB, (4, 3)), torch.tensor([2, 1, 2, 0])
    seen = []
    zero_last = ("blocks.1.hook_resid_post", lambda x, hook: seen.append(x.shape) or torch.zeros_like(x))
    with model.hooks([zero_last]):
        patched = model.answer_forward(ids, pos)
    assert seen == [torch.Size([4, 3, 32])]  # the hook fired on the whole residual stream
    # the patch took effect: zero residual -> LayerNorm -> bias only -> identical rows
    torch.testing.assert_close(patched, patched[:1].expand_as(patched))
    assert not model.hooks_attached()
    assert not torch.allclose(model.answer_forward(ids, pos), patched)


@pytest.mark.parametrize("family", [
    dict(family="decoder", dropout=0.0), dict(family="looped", n_loops=2),
    dict(family="recursive", mixer="attn", h_cycles=2, l_cycles=1)])
def test_short_input_attention_equals_the_fused_kernel(family, monkeypatch):
    """Explicit-matmul attention (CPU, inputs of <= SHORT_SEQ_CPU positions) vs the fused kernel."""
    from groklab.models import blocks
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{"n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4,
                                       **family}), VOCAB)
    ids = torch.randint(3, VOCAB, (6, 4), generator=torch.Generator().manual_seed(3))
    pos = torch.tensor([3, 1, 2, 0, 3, 2])

    def run():
        model.zero_grad()
        out = model(ids), model.answer_forward(ids, pos)
        (out[0].square().mean() + out[1].square().mean()).backward()
        return [o.detach() for o in out], [p.grad.clone() for p in model.parameters()]

    short = run()
    monkeypatch.setattr(blocks, "SHORT_SEQ_CPU", 0)  # every input through the fused kernel
    fused = run()
    for a, b in zip(short[0] + short[1], fused[0] + fused[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- GPU path, on CPU

class _NoHostSync:
    """Make every tensor -> Python conversion (a host sync on CUDA) raise while active."""

    NAMES = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy")

    def __init__(self, monkeypatch):
        self.mp = monkeypatch

    def __enter__(self):
        def forbid(name):
            def raiser(*args, **kwargs):
                raise AssertionError(f"host sync: Tensor.{name} called inside a training step")
            return raiser
        for name in self.NAMES:
            self.mp.setattr(torch.Tensor, name, forbid(name))
        return self

    def __exit__(self, *exc):
        self.mp.undo()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optim, train", [
    ({}, {"amp": "bf16"}),
    ({"grokfast": "ema", "ema_decay": 0.99}, {}),
    ({"grokfast": "ma", "grokfast_window": 3, "schedule": "cosine"}, {"amp": "bf16"}),
])
def test_training_steps_make_no_host_sync_and_stay_on_the_device(speed_data, monkeypatch, device,
                                                                  optim, train):
    tr = make_trainer(speed_data, device, optim=optim, train={**train, "device": device})
    dev = torch.device(device)
    assert tr.train_data.input_ids.device.type == dev.type and tr.sampler.device.type == dev.type
    assert all(p.device.type == dev.type for p in tr.model.parameters())
    assert all(b.target.device.type == dev.type for b in tr.probes.values())
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.model.train()
    if dev.type == "cuda":  # on a GPU, CUDA itself reports any synchronising call
        torch.cuda.set_sync_debug_mode("error")
    try:
        with _NoHostSync(monkeypatch):
            for _ in range(6):
                tr.train_step()
                assert tr.sampler.next().device.type == dev.type  # batches are drawn on the device
    finally:
        if dev.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    assert tr.step == 6 and tr.loss_count == 6 and tr.loss_sum.device.type == dev.type
    moved = sum(float((p.detach() - b).abs().sum()) for p, b in zip(tr.model.parameters(), before))
    assert moved > 0
    row = tr.evaluate_row(1.0)  # metrics are read once, at evaluation
    assert row["loss"] > 0 and 0 <= row["acc/id_atomic"] <= 1


class _MatmulDtypes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.bmm):
            self.dtypes.add(args[0].dtype)
        elif func.overloadpacket is torch.ops.aten.addmm:  # (bias, input, weight)
            self.dtypes.add(args[1].dtype)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("amp, expected", [("bf16", torch.bfloat16), ("none", torch.float32)])
def test_bf16_autocast_runs_the_matmuls_in_bf16_and_keeps_float32_weights(speed_data, amp, expected):
    tr = make_trainer(speed_data, train={"amp": amp})
    tr.model.train()
    with _MatmulDtypes() as seen:
        tr.train_step()
    assert seen.dtypes == {expected}
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    assert tr.loss_sum.dtype == torch.float32 and torch.isfinite(tr.loss_sum)


def test_bf16_training_follows_float32_training_closely(speed_data, tmp_path):
    rows = {}
    for amp in ("none", "bf16"):
        train_run(speed_config(speed_data, train={"amp": amp, "steps": 200, "eval_every": 50}),
                  tmp_path / amp, quiet=True)
        rows[amp] = read_metrics(tmp_path / amp / "metrics.jsonl")
    assert rows["none"][-1]["loss"] < 0.85 * rows["none"][1]["loss"]  # it really trains
    assert rows["none"][-1]["acc/id_atomic"] > 2 * rows["none"][1]["acc/id_atomic"]
    for a, b in zip(rows["none"][1:], rows["bf16"][1:]):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.03)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=0.03)


# ---------------------------------------------------------------------------- torch.compile

def _steps_with_compile(data_path, compile_: bool, n: int = 4):
    tr = make_trainer(data_path, train={"compile": compile_}, optim={"grokfast": "ema"})
    tr.model.train()
    losses = []
    for _ in range(n):
        tr.train_step()
        losses.append(float(tr.loss_sum))
    return losses, [p.detach().clone() for p in tr.model.parameters()]


def test_compiled_step_matches_the_eager_step(speed_data, monkeypatch):
    """Graph capture + AOT autograd (backend aot_eager: no code generation, seconds)."""
    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    eager_losses, eager_params = _steps_with_compile(speed_data, False)
    comp_losses, comp_params = _steps_with_compile(speed_data, True)
    assert comp_losses == pytest.approx(eager_losses, rel=1e-5)
    for a, b in zip(comp_params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_many_compiled_trainers_in_one_process_all_compile(speed_data, monkeypatch):
    """Sequential runs in one process (a sweep's local trials, a study) each compile their step:
    without a reset, dynamo's recompile limit (8) silently sends the later ones back to eager."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    limit = torch._dynamo.config.recompile_limit
    compiled = []
    for i in range(limit + 2):  # a different width each time, as in a sweep: a new graph each
        tr = make_trainer(speed_data, train={"compile": True}, model={"d_model": 16 + 4 * i})
        tr.model.train()
        before = counters["stats"]["unique_graphs"]
        tr.train_step()
        compiled.append(counters["stats"]["unique_graphs"] - before)
    assert all(n >= 1 for n in compiled), compiled


@pytest.mark.slow
def test_inductor_compiled_step_matches_the_eager_step(speed_data):
    """The real compiler (inductor; ~1 min of C++ compilation on a 2-core CPU)."""
    torch._dynamo.reset()
    eager_losses, eager_params = _steps_with_compile(speed_data, False)
    comp_losses, comp_params = _steps_with_compile(speed_data, True)
    assert comp_losses == pytest.approx(eager_losses, rel=1e-4)
    for a, b in zip(comp_params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_compiled_step_matches_the_eager_step(speed_data):
    """On CUDA, train.compile replays forward + backward as CUDA graphs (mode reduce-overhead)."""
    torch._dynamo.reset()
    runs = {}
    for compile_ in (False, True):
        tr = make_trainer(speed_data, "cuda", train={"compile": compile_, "device": "cuda"})
        tr.model.train()
        for _ in range(6):
            tr.train_step()
        runs[compile_] = (float(tr.loss_sum), [p.detach().clone() for p in tr.model.parameters()])
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-4)
    for a, b in zip(runs[True][1], runs[False][1]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------- stop_at

def test_stop_at_ends_the_run_once_every_target_is_met(speed_data, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = speed_config(speed_data, train={"steps": 400, "eval_every": 10, "checkpoint_every": 1000,
                                          "stop_at": ["id_atomic>=0.5", "train_acc>=0.3"]})
    summary = train_run(cfg, run, quiet=True)
    rows = read_metrics(run / "metrics.jsonl")
    last = rows[-1]
    assert summary["stopped"] == "target" and summary["finished"] and summary["steps"] == last["step"]
    assert last["acc/id_atomic"] >= 0.5 and last["train_acc"] >= 0.3 and last["step"] < 400
    assert not any(r["acc/id_atomic"] >= 0.5 and r["train_acc"] >= 0.3 for r in rows[:-1])
    assert ck.checkpoint_steps(run)[-1] == last["step"]
    train_run(None, run, resume=True, quiet=True)
    assert "(target)" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["iid>0.9", "test_inferred_iid>=x", ">=0.9", "test_inferred_iid>=1.5"])
def test_bad_stop_at_names_the_field(speed_data, value):
    with pytest.raises(GroklabError, match=r"train\.stop_at"):
        speed_config(speed_data, train={"stop_at": [value]})


def test_stop_at_on_a_split_the_dataset_lacks_is_refused(speed_data, tmp_path):
    with pytest.raises(GroklabError, match=r"train\.stop_at=.*new_old"):
        train_run(speed_config(speed_data, train={"stop_at": ["new_old>=0.9"]}), tmp_path / "r", quiet=True)
