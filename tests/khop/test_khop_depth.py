"""k-hop training and test-time depth: models take K+1-token inputs, max_len follows the data,
evaluation at other depths, and the trained depth reproduces training-time accuracy exactly."""

import json

import numpy as np
import pytest
import torch

from groklab.cli import main
from groklab.data import DataConfig, make_dataset
from groklab.models import ModelConfig, build_model
from groklab.models.depth import at_depth, depth_of
from groklab.train import config_from_dict, load_run, train_run
from groklab.train.depth import DepthEvalCallback

MICRO_KHOP = dict(entities=24, relations=6, out_degree=6, phi=2.0, seed=3, id_test_ratio=0.05,
                  hops=[2, 3], test_hops=[4], probe_cap=300)


def _config(family: str, **model):
    m = {"family": family, "n_layers": 1, "d_model": 32, "n_heads": 2, "max_len": 4, **model}
    return config_from_dict({
        "data": dict(MICRO_KHOP), "model": m,
        "optim": {"lr": 3e-3, "weight_decay": 0.1, "warmup_steps": 10},
        "train": {"steps": 40, "batch_size": 64, "eval_every": 20, "checkpoint_every": 20,
                  "device": "cpu", "plots": False},
    })


@pytest.mark.parametrize("family, model, depths", [
    ("looped", {"n_loops": 2}, [(2,), (1,), (4,)]),
    ("recursive", {"h_cycles": 2, "l_cycles": 1, "format": "study"}, [(2, 1), (1, 1), (3, 2)]),
])
def test_khop_run_trains_and_trained_depth_reproduces_its_metrics(tmp_path, capsys, family, model, depths):
    run = tmp_path / "run"
    summary = train_run(_config(family, **model), run, quiet=True, callbacks=[DepthEvalCallback(depths)])
    assert summary["steps"] == 40
    r = load_run(run)
    need = 5 if family == "looped" else 7  # 4-hop queries: 5 tokens (+2 slots in the study format)
    assert r.config.model.max_len == need  # raised from 4: max_len follows the data
    last = r.metrics[-1]
    probes = r.dataset.probe_names
    assert "heldout_iid_h4" in probes and "test_inferred_iid_h3" in probes
    trained = "loops2" if family == "looped" else "cycles2x1"
    for name in probes:  # the callback at the trained depth = the trainer's own evaluation
        assert last[f"acc@{trained}/{name}"] == last[f"acc/{name}"], name
    other = "loops4" if family == "looped" else "cycles3x2"
    assert any(last[f"acc@{other}/{n}"] != last[f"acc/{n}"] for n in probes)  # depth matters
    # `groklab evaluate` at the trained depth reproduces the checkpoint's metrics row exactly
    flag = ["--loops", "2,4"] if family == "looped" else ["--cycles", "2,1", "--cycles", "3,2"]
    out = tmp_path / "ev.json"
    assert main(["evaluate", str(run), *flag, "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "iid hops" in text and "4 (held out)" in text
    t = json.loads(out.read_text())
    assert t["hops"] == [2, 3, 4] and t["heldout"] == [False, False, True]
    col = t["labels"].index(trained)
    for i, k in enumerate(t["hops"]):
        iid = f"test_inferred_iid_h{k}" if k < 4 else "heldout_iid_h4"
        ood = f"test_inferred_ood_h{k}" if k < 4 else "heldout_ood_h4"
        assert t["iid"][i][col] == last[f"acc/{iid}"]
        assert t["ood"][i][col] == last[f"acc/{ood}"] or len(r.dataset.split(ood)) == 0
        assert t["iid"][i][1 - col] == last[f"acc@{other}/{iid}"]
    assert (tmp_path / "ev.png").is_file()


@pytest.mark.parametrize("family, trained, other", [
    ("looped", dict(n_loops=2), dict(n_loops=5)),
    ("recursive", dict(h_cycles=2, l_cycles=2), dict(h_cycles=3, l_cycles=1)),
])
def test_set_depth_equals_a_model_built_at_that_depth(family, trained, other):
    torch.manual_seed(0)
    cfg = dict(family=family, n_layers=2, d_model=32, n_heads=4, max_len=7)
    a = build_model(ModelConfig(**cfg, **trained), 40).eval()
    b = build_model(ModelConfig(**cfg, **other), 40).eval()
    b.load_state_dict(a.state_dict())
    ids = torch.randint(3, 40, (6, 7), generator=torch.Generator().manual_seed(1))
    before = a(ids)
    depth = tuple(other.values())
    with torch.no_grad(), at_depth(a, depth):
        assert depth_of(a) == depth
        assert torch.equal(a(ids), b(ids))
        names = a.residual_stages()
        _, cache = a.run_with_cache(ids, names=names)  # fresh hook points for every iteration
        assert len(cache) == len(names) == len(b.residual_stages())
    assert depth_of(a) == tuple(trained.values()) and torch.equal(a(ids), before)


def test_khop_inputs_up_to_k_plus_one_tokens_every_family(tmp_path):
    ds = make_dataset(DataConfig(**{**MICRO_KHOP, "hops": (2, 3, 4), "test_hops": (5,)}), tmp_path / "d")
    assert ds.query_width == 6
    from groklab.train.evaluate import evaluate
    for family, extra in (("decoder", {}), ("looped", {}), ("recursive", {"format": "study"}),
                          ("recursive", {"format": "answer_slot"})):
        width = 6 + {"study": 2, "answer_slot": 1}.get(extra.get("format"), 0)
        model = build_model(ModelConfig(family=family, n_layers=1, d_model=16, n_heads=2,
                                        max_len=width, **extra), ds.vocab_size)
        accs = evaluate(model, ds, ["heldout_iid_h5", "id_atomic"])
        assert set(accs) == {"heldout_iid_h5", "id_atomic"}
        small = build_model(ModelConfig(family=family, n_layers=1, d_model=16, n_heads=2,
                                        max_len=width - 1, **extra), ds.vocab_size)
        with pytest.raises(Exception, match="max_len"):
            evaluate(small, ds, ["heldout_iid_h5"])


def _exit(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


def test_bad_depth_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    train_run(_config("looped", n_loops=2), run, quiet=True)
    for argv, msg in (
        (["evaluate", str(run), "--loops", "0"], "loops='0' is invalid"),
        (["evaluate", str(run), "--cycles", "2,1"], "cycles='2,1' is invalid"),
        (["lens", str(run), "--eval-loops", "0", "--split", "test_inferred_iid_h3"], "eval_loops='0' is invalid"),
        (["trace", str(run), "--eval-loops", "x", "--split", "test_inferred_iid_h3"], "eval_loops='x' is invalid"),
        (["train", "--preset", "tiny", "--out", str(tmp_path / "t"), "--eval-loops", "2"],
         "eval_loops='2' is invalid (allowed: unset for family decoder"),
        (["train", "--preset", "tiny_looped", "--out", str(tmp_path / "t"), "--eval-loops", "0"],
         "eval_loops='0' is invalid"),
    ):
        code, err = _exit([*argv, "--device", "cpu"] if argv[0] != "train" else argv, capsys)
        assert code == 2 and msg in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "t").exists()


def test_step_embedding_caps_the_test_time_depth():
    m = build_model(ModelConfig(family="looped", n_layers=1, d_model=16, n_heads=2, n_loops=2,
                                step_embedding=True), 30)
    with pytest.raises(Exception, match=r"eval_loops=3 is invalid \(allowed: \[1, 2\]"):
        m.set_depth(3)
    m.set_depth(1)
    assert np.isfinite(m(torch.tensor([[3, 4, 5]])).detach().numpy()).all()
