"""train.ensemble: S stacked runs, each member equal to a separate run with its seed.

Tolerance: every metric of every row within TOL * max(1, |value|) of the separate run's, TOL =
1e-5 (measured differences ~2e-6: the batched matmuls round differently from the unbatched
ones), 1e-4 with Muon, whose Newton-Schulz iterations amplify them (measured 1.4e-5 after 30
steps). Accuracies move in steps of 1/n >= 1/550 here, so they must be equal.
"""

import json

import pytest

from groklab.cli import main
from groklab.errors import GroklabError
from groklab.train import load_run, train_run
from groklab.train import checkpoints as ck
from groklab.train.config import read_config
from groklab.train.metrics import read_metrics

from trainkit import micro_config

TOL, TOL_MUON = 1e-5, 1e-4


def _cfg(data, model=None, optim=None, **train):
    base = {"steps": 30, "eval_every": 10, "checkpoint_every": 10}
    return micro_config(data, model=model or {}, optim=optim or {}, train={**base, **train})


def _assert_same(rows_a, rows_b, tol=TOL):
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    for a, b in zip(rows_a, rows_b):
        assert set(a) == set(b)
        for k in b:
            if k == "time" or b[k] is None:
                assert k == "time" or a[k] is None
                continue
            assert abs(a[k] - b[k]) <= tol * max(1.0, abs(b[k])), (a["step"], k, a[k], b[k])


@pytest.mark.parametrize("model, optim", [
    ({"family": "decoder"}, {"grokfast": "ema", "ema_decay": 0.9, "schedule": "cosine"}),
    ({"family": "looped", "n_loops": 2}, {"optimizer": "muon", "perp_grad": True}),
    ({"family": "recursive", "h_cycles": 2, "l_cycles": 2, "loss": "stablemax"}, {"grokfast": "ma",
                                                                                 "grokfast_window": 5}),
    ({"family": "recursive", "h_cycles": 2, "l_cycles": 1, "format": "study", "prefix_len": 2, "max_len": 7,
      "mixer_norm": "token"}, {"ema_decay": 0.9}),
])
def test_each_member_equals_a_separate_run(micro_data, tmp_path, model, optim):
    train_run(_cfg(micro_data, model, optim, ensemble=3, seed=4), tmp_path / "ens", quiet=True)
    info = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert info["members"] == ["seed_4", "seed_5", "seed_6"]
    finals = set()
    for seed in (4, 5, 6):
        alone = tmp_path / f"alone{seed}"
        train_run(_cfg(micro_data, model, optim, seed=seed), alone, quiet=True)
        member = tmp_path / "ens" / f"seed_{seed}"
        tol = TOL_MUON if optim.get("optimizer") == "muon" else TOL
        _assert_same(read_metrics(member / "metrics.jsonl"), read_metrics(alone / "metrics.jsonl"), tol)
        assert ck.checkpoint_steps(member) == ck.checkpoint_steps(alone) == [0, 10, 20, 30]
        run = load_run(member)  # an ordinary run directory
        assert run.config.train.seed == seed and run.config.train.ensemble == 1
        finals.add(round(read_metrics(member / "metrics.jsonl")[-1]["loss"], 4))
    assert len(finals) == 3  # the members really are different runs


def test_members_stop_on_their_own_and_the_rest_go_on(micro_data, tmp_path):
    target = {"stop_at": ["train_acc>=0.12"], "steps": 60}
    train_run(_cfg(micro_data, ensemble=3, **target), tmp_path / "ens", quiet=True)
    stops = []
    for seed in range(3):
        train_run(_cfg(micro_data, seed=seed, **target), tmp_path / f"alone{seed}", quiet=True)
        rows = read_metrics(tmp_path / "ens" / f"seed_{seed}" / "metrics.jsonl")
        _assert_same(rows, read_metrics(tmp_path / f"alone{seed}" / "metrics.jsonl"))
        summary = json.loads((tmp_path / "ens" / f"seed_{seed}" / "summary.json").read_text())
        stops.append((summary["steps"], summary["stopped"]))
    assert len({s for s, _ in stops}) > 1, stops  # they stopped at different steps


def test_ensemble_resume_is_exact_and_members_resume_alone(micro_data, tmp_path):
    cfg = _cfg(micro_data, optim={"optimizer": "muon", "grokfast": "ema"}, ensemble=2)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train_run(cfg, straight, quiet=True)
    train_run(cfg, killed, quiet=True)
    for seed in (0, 1):  # as if killed after step 20's checkpoints
        member = killed / f"seed_{seed}"
        (member / "summary.json").unlink()
        for p in ck.ckpt_paths(member, 30):
            p.unlink()
    for p in ck.ckpt_paths(killed / "seed_1", 20):  # and seed_1's step-20 checkpoint was lost too
        p.unlink()
    train_run(None, killed, resume=True, quiet=True)
    for seed in (0, 1):
        _assert_same(read_metrics(killed / f"seed_{seed}" / "metrics.jsonl"),
                     read_metrics(straight / f"seed_{seed}" / "metrics.jsonl"), tol=0)  # exact
    # a member is an ordinary run: extend it alone, it matches a 40-step run of its seed
    member = straight / "seed_1"
    more = read_config(member / "config.yaml")
    more.train.steps = 40
    train_run(more, member, resume=True, quiet=True)
    alone = tmp_path / "alone"
    train_run(_cfg(micro_data, optim={"optimizer": "muon", "grokfast": "ema"}, seed=1, steps=40), alone,
              quiet=True)
    _assert_same(read_metrics(member / "metrics.jsonl"), read_metrics(alone / "metrics.jsonl"), TOL_MUON)


@pytest.mark.parametrize("setting, message", [
    ("model.dropout=0.1", "model.dropout=0.1 is invalid with train.ensemble=2"),
    ("train.compile=true", "train.compile=True is invalid with train.ensemble=2"),
    ("train.stop_unless_forecast=test_inferred_iid>=0.9",
     "train.stop_unless_forecast='test_inferred_iid>=0.9' is invalid with train.ensemble=2"),
])
def test_unsupported_combinations_exit_2_with_one_line(tmp_path, capsys, setting, message):
    out = tmp_path / "ens"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--quiet", "--set", "train.ensemble=2",
                 "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("groklab: error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_bad_split_or_changed_resume_leaves_nothing_behind(micro_data, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(GroklabError, match="train.stop_at='nosuch' is invalid"):
        train_run(_cfg(micro_data, ensemble=2, stop_at=["nosuch>=0.5"]), out, quiet=True)
    assert not out.exists()
    train_run(_cfg(micro_data, ensemble=2, steps=10), out, quiet=True)
    before = {p: p.read_bytes() for p in out.rglob("*.yaml")}
    with pytest.raises(GroklabError, match="optim.lr=0.01 is invalid when resuming"):
        train_run(_cfg(micro_data, optim={"lr": 1e-2}, ensemble=2, steps=20), out, resume=True, quiet=True)
    assert {p: p.read_bytes() for p in out.rglob("*.yaml")} == before
