"""Optimizer levers of issue 15: ⊥Grad and Muon on toy tensors, their options, real short runs."""

import pytest
import torch
from torch import nn

from groklab.cli import main
from groklab.models import build_model
from groklab.train import train_run
from groklab.train import checkpoints as ck
from groklab.train.metrics import read_metrics
from groklab.train.muon import Muon, adjusted_lr, muon_split, newton_schulz
from groklab.train.optim import build_optimizer
from groklab.train.perp import perp_grad_

from trainkit import micro_config


def _with_grad(shape, seed):
    g = torch.Generator().manual_seed(seed)
    p = nn.Parameter(torch.randn(shape, generator=g))
    p.grad = torch.randn(shape, generator=g) + 0.7 * p.detach()  # a large parallel component
    return p


def test_perp_grad_is_orthogonal_to_the_weights_and_keeps_the_norm():
    params = [_with_grad((16, 8), 0), _with_grad((8,), 1), _with_grad((3, 4, 5), 2)]
    before = [p.grad.clone() for p in params]
    assert all(abs(torch.dot(p.flatten(), g.flatten())) > 1 for p, g in zip(params, before))
    perp_grad_(params)
    for p, g0 in zip(params, before):
        g = p.grad
        cos = torch.dot(p.flatten(), g.flatten()) / (p.norm() * g.norm())
        assert abs(cos) < 1e-6
        assert torch.allclose(g.norm(), g0.norm(), rtol=1e-6)
        # what was removed is parallel to the weights: g0 = c1 * w + c2 * g (g rescaled)
        basis = torch.stack([p.detach().flatten(), g.flatten()], 1)
        coef = torch.linalg.lstsq(basis, g0.flatten()[:, None]).solution
        assert torch.allclose(basis @ coef, g0.flatten()[:, None], atol=1e-4)
    # an SGD step along the ⊥ gradient leaves the weight norm unchanged to first order
    p = params[0]
    w = p.detach().clone()
    step = 1e-3 * p.grad
    assert abs((w - step).norm() ** 2 - w.norm() ** 2) < 1e-5 * w.norm() ** 2


def test_perp_grad_per_member_of_a_stack_equals_each_member_alone():
    members = [_with_grad((6, 5), s) for s in range(3)]
    stacked = nn.Parameter(torch.stack([m.detach() for m in members]))
    stacked.grad = torch.stack([m.grad for m in members])
    perp_grad_(members)
    perp_grad_([stacked], member_dims=1)
    assert torch.allclose(stacked.grad, torch.stack([m.grad for m in members]), atol=1e-6)


@pytest.mark.parametrize("shape", [(64, 32), (32, 96), (4, 4, 24)])
def test_newton_schulz_orthogonalises(shape):
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(*shape[:-2], max(shape[-2:]), max(shape[-2:]), generator=g))
    v, _ = torch.linalg.qr(torch.randn(*shape[:-2], min(shape[-2:]), min(shape[-2:]), generator=g))
    k = min(shape[-2:])
    spread = torch.logspace(0, -1, k)  # singular values 1 .. 0.1 (condition number 10)
    if shape[-2] >= shape[-1]:
        x = u[..., :, :k] @ torch.diag_embed(spread.expand(*shape[:-2], k)) @ v.mT
    else:
        x = v @ torch.diag_embed(spread.expand(*shape[:-2], k)) @ u[..., :k, :]
    sv = torch.linalg.svdvals(newton_schulz(x * 37.0).float())
    sv32 = torch.linalg.svdvals(newton_schulz(x * 37.0, dtype=torch.float32))
    assert sv32.min() > 0.5 and sv32.max() < 1.5, (sv32.min(), sv32.max())
    # torch.optim.Muon documents S' in (0.5, 1.5) for its 5-step quintic; measured on Gaussian matrices: [0.68, 1.14]
    assert sv.min() > 0.5 and sv.max() < 1.5, (sv.min(), sv.max())
    assert torch.linalg.svdvals(x).min() < 0.11  # the input really was spread out


def test_muon_matches_torch_optim_muon():
    torch.manual_seed(0)
    ours = [nn.Parameter(torch.randn(24, 16)), nn.Parameter(torch.randn(16, 40))]
    ref = [nn.Parameter(p.detach().clone()) for p in ours]
    opt = Muon(ours, weight_decay=0.1, momentum=0.95, adjust_lr="match_rms_adamw", dtype=torch.bfloat16)
    fp32 = [nn.Parameter(p.detach().clone()) for p in ours]
    opt32 = Muon(fp32, weight_decay=0.1)  # on a CPU: Newton-Schulz in float32
    tref = torch.optim.Muon(ref, lr=0.02, weight_decay=0.1, momentum=0.95,
                            adjust_lr_fn="match_rms_adamw")
    start = [p.detach().clone() for p in ours]
    for step in range(3):
        grads = [torch.randn_like(p) for p in ours]
        for p, q, r, g in zip(ours, ref, fp32, grads):
            p.grad, q.grad, r.grad = g.clone(), g.clone(), g.clone()
        opt.step(0.02)
        opt32.step(0.02)
        tref.step()
    for p, q, r, p0 in zip(ours, ref, fp32, start):
        moved = (q - p0).norm()
        assert moved > 0.1
        assert torch.allclose(p, q, atol=1e-6, rtol=0)  # the same bf16 operations in the same order
        assert (r - q).norm() < 0.03 * moved  # float32 vs bf16: rounding-level differences
    assert adjusted_lr(1.0, torch.Size([24, 16]), "original") == pytest.approx(1.5 ** 0.5)


def test_muon_on_a_stack_equals_each_member_alone():
    torch.manual_seed(1)
    members = [nn.Parameter(torch.randn(12, 20)) for _ in range(3)]
    stacked = nn.Parameter(torch.stack([m.detach() for m in members]))
    alone = Muon(members, weight_decay=0.5)
    together = Muon([stacked], weight_decay=0.5)
    for _ in range(2):
        grads = [torch.randn(12, 20) for _ in members]
        for m, g in zip(members, grads):
            m.grad = g
        stacked.grad = torch.stack(grads)
        alone.step(0.01)
        together.step(0.01)
    assert torch.allclose(stacked, torch.stack(list(members)), atol=2e-4)


@pytest.mark.parametrize("family", ["decoder", "looped", "recursive"])
def test_muon_takes_hidden_matrices_only(family):
    cfg = micro_config(model={"family": family, "tie_embeddings": False}).model
    model = build_model(cfg, 50)
    hidden, rest = muon_split(model)
    names = {id(p): n for n, p in model.named_parameters()}
    hidden_names = {names[id(p)] for p in hidden}
    rest_names = {names[id(p)] for p in rest}
    assert hidden and all(p.ndim == 2 for p in hidden)
    assert "wte.weight" in rest_names and "lm_head.weight" in rest_names
    assert all(n.endswith(".weight") and "ln" not in n and "norm" not in n for n in hidden_names)
    assert len(hidden) + len(rest) == len(list(model.parameters()))
    opt = build_optimizer(model, (0.9, 0.98), 1e-8, 0.1, optimizer="muon")
    assert {k.split(".")[0] for k in opt.state_tensors()} == {"muon_buf", "exp_avg", "exp_avg_sq"}


@pytest.mark.parametrize("setting, message", [
    ("optim.optimizer=sgd", "optim.optimizer='sgd' is invalid (allowed: adamw | muon)"),
    ("optim.perp_grad=maybe", "optim.perp_grad='maybe' is invalid (allowed: true | false)"),
    ("optim.muon_momentum=1.5", "optim.muon_momentum=1.5 is invalid (allowed: [0, 1))"),
    ("optim.muon_adjust_lr=rms", "optim.muon_adjust_lr='rms' is invalid"),
    ("train.ensemble=0", "train.ensemble=0 is invalid (allowed: [1, inf])"),
])
def test_bad_lever_values_exit_2_with_one_line(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--quiet", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


LEVERS = {"optimizer": "muon", "perp_grad": True, "grokfast": "ema", "weight_decay": 1.0}


def _rows(run):
    return [{k: v for k, v in r.items() if k != "time"} for r in read_metrics(run / "metrics.jsonl")]


@pytest.mark.parametrize("optim", [{"perp_grad": True}, {"optimizer": "muon"}, LEVERS])
def test_levers_train_and_resume_exactly(micro_data, tmp_path, optim):
    cfg = micro_config(micro_data, optim=optim, model={"loss": "stablemax"},
                       train={"steps": 30, "eval_every": 10, "checkpoint_every": 10})
    run, plain = tmp_path / "run", tmp_path / "plain"
    train_run(cfg, run, quiet=True)
    train_run(micro_config(micro_data, model={"loss": "stablemax"},
                           train={"steps": 30, "eval_every": 10, "checkpoint_every": 10}), plain, quiet=True)
    rows = _rows(run)
    assert rows[-1]["loss"] < rows[1]["loss"]  # it learns
    assert rows[-1]["weight_norm"] != _rows(plain)[-1]["weight_norm"]  # and the lever acted
    (run / "summary.json").unlink()  # killed after step 20's checkpoint
    for p in ck.ckpt_paths(run, 30):
        p.unlink()
    train_run(None, run, resume=True, quiet=True)
    assert _rows(run) == rows
