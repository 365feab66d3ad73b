"""k-hop lens (bridge order) and tracing of any input token (analysis/khop.py)."""

import json

import numpy as np
import pytest
import torch

from groklab.analysis.khop import (_order_summary, bridge_order, khop_counterfactuals,
                                   khop_queries, prepare_khop_counterfactuals)
from groklab.analysis.tracing import input_stage, summarize_trace, trace_grid
from groklab.data import DataConfig, make_dataset
from groklab.models import ModelConfig, build_model

DATA = dict(entities=24, relations=6, out_degree=6, phi=2.0, seed=3, id_test_ratio=0.05,
            hops=(2, 3), test_hops=(4,), probe_cap=200)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(DataConfig(**DATA), tmp_path_factory.mktemp("k") / "d")


def _model(family, vocab, **kw):
    torch.manual_seed(0)
    extra = {"recursive": {"h_cycles": 2, "l_cycles": 1, "format": "study"}}.get(family, {})
    return build_model(ModelConfig(family=family, n_layers=2, d_model=32, n_heads=4, max_len=7,
                                   **{**extra, **kw}), vocab).eval()


def test_order_summary_on_known_hits():
    """Three queries, 3 stages, 2 positions, 2 bridges: first stages by hand."""
    hit = np.zeros((3, 3, 2, 2), bool)
    hit[0, 0, 1, 0] = hit[0, 2, 0, 1] = True     # q0: b1 at stage 0 (pos 1), b2 at stage 2: in order
    hit[1, 1, 0, 0] = hit[1, 1, 1, 1] = True     # q1: both at stage 1: tied
    hit[2, 2, 0, 0] = True                        # q2: b2 never found
    s = _order_summary(hit, ["s0", "s1", "s2"], ["h", "r1"])
    assert s["found"] == [1.0, pytest.approx(2 / 3, abs=1e-6)]
    assert s["first_stage"] == [[pytest.approx(1 / 3, abs=1e-6), 0.0],
                                [pytest.approx(1 / 3, abs=1e-6), pytest.approx(1 / 3, abs=1e-6)],
                                [pytest.approx(1 / 3, abs=1e-6), pytest.approx(1 / 3, abs=1e-6)]]
    assert s["first_position"][1][0] == pytest.approx(1 / 3, abs=1e-6)  # q0's b1 at position r1
    assert s["all_found"] == pytest.approx(2 / 3) and s["in_order"] == 0.5 and s["in_order_or_tied"] == 1.0
    assert s["mean_first_stage"] == [1.0, 1.5]


@pytest.mark.parametrize("family", ["decoder", "looped", "recursive"])
def test_bridge_order_map_shapes_and_rates(ds, family):
    model = _model(family, ds.vocab_size)
    q, bridges = khop_queries(ds, "test_inferred_iid_h3", model.layout)
    assert q.tokens.shape[1] == 5 and bridges.shape == (len(q), 2)  # padded to the 4-hop width
    assert q.positions[:4] == ["h", "r1", "r2", "r3"] and len(q.positions) == q.input_ids.shape[1]
    # the lens' own answers equal the trained evaluation path (full-width inputs)
    acc = (model.answer_forward(q.input_ids, q.answer_pos).argmax(-1) == q.target).float().mean()
    s = bridge_order(model, q, bridges)
    assert s["accuracy"] == pytest.approx(float(acc))
    from groklab.train.evaluate import evaluate
    if len(q) == len(ds.split("test_inferred_iid_h3")):
        assert s["accuracy"] == pytest.approx(evaluate(model, ds, ["test_inferred_iid_h3"])["test_inferred_iid_h3"])
    assert s["hops"] == 3 and s["bridges"] == ["b1", "b2"]
    assert np.array(s["first_stage"]).shape == (len(model.lens_stages()), 2)
    for j in range(2):  # the first-decode distribution sums to the found rate
        assert sum(row[j] for row in s["first_stage"]) == pytest.approx(s["found"][j], abs=1e-5)
        assert sum(row[j] for row in s["first_position"]) == pytest.approx(s["found"][j], abs=1e-5)
    assert 0 <= s["control"] <= 1


def test_khop_counterfactuals_follow_the_graph(ds):
    tail = {(h, r): t for h, r, t, _ in ds.atomic.tolist()}
    q, _ = khop_queries(ds, "test_inferred_iid_h3", "causal", n=60)
    for corrupt, j in (("h", 0), ("r1", 1), ("r2", 2), ("r3", 3)):
        cf = khop_counterfactuals(ds, q, corrupt, seed=1)
        assert cf.stats["with_counterfactual"] == len(cf.clean) > 0
        for a, b, t in zip(cf.clean.tokens.tolist(), cf.corrupted.tokens.tolist(),
                           cf.corrupted.target.tolist()):
            assert [i for i in range(len(a)) if a[i] != b[i]] == [j]
            e = b[0]
            for r in b[1:4]:
                e = tail[(e, r)]   # the corrupted chain exists
            assert e == t
        assert (cf.clean.target != cf.corrupted.target).all()
    with pytest.raises(Exception, match="corrupt='r4' is invalid"):
        khop_counterfactuals(ds, q, "r4")


@pytest.mark.parametrize("family", ["looped", "recursive"])
def test_tracing_any_token_patching_the_input_restores_the_clean_run(ds, family):
    model = _model(family, ds.vocab_size)
    cf = prepare_khop_counterfactuals(model, ds, "test_inferred_iid_h3", "r3", n=30, require_correct=False)
    res = trace_grid(model, cf)
    s = summarize_trace(res)
    assert s["positions"][:4] == ["h", "r1", "r2", "r3"]
    # the clean input state at the corrupted position makes the corrupted run the clean run
    si, pj = res.stages.index(input_stage(model)), 3
    clean_top1 = model(cf.clean.input_ids)[torch.arange(len(cf.clean)), cf.clean.answer_pos].argmax(-1)
    assert np.array_equal(res.top1[:, si, pj], clean_top1.numpy())


# ---------------------------------------------------------------- trace --queries FILE

H3 = "test_inferred_iid_h3"


@pytest.fixture(scope="module")
def khop_run(tmp_path_factory):
    """A looped k-hop run of a few steps: `trace` needs a run directory, not a skilled model."""
    from groklab.train import config_from_dict, train_run

    run = tmp_path_factory.mktemp("khoprun") / "run"
    train_run(config_from_dict({
        "data": {**DATA, "hops": list(DATA["hops"]), "test_hops": list(DATA["test_hops"])},
        "model": {"family": "looped", "n_layers": 1, "n_loops": 2, "d_model": 32, "n_heads": 2,
                  "max_len": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "train": {"steps": 6, "batch_size": 32, "eval_every": 6, "checkpoint_every": 6,
                  "device": "cpu", "plots": False}}), run, quiet=True)
    return run


def _chosen_rows(dataset):
    """Seven rows of the 3-hop split, out of order, none of them the seeded sample's whole set."""
    n = len(dataset.split(H3))
    return [int(r) for r in np.linspace(n - 1, 0, 7).round()]


@pytest.mark.parametrize("fmt", ["rows.json", "tokens.txt"])
def test_trace_queries_file_on_a_khop_split_traces_exactly_those_rows(khop_run, tmp_path, fmt):
    from groklab.analysis.io import load_at
    from groklab.cli import main

    model, dataset, _ = load_at(khop_run)
    rows = _chosen_rows(dataset)
    data = dataset.split(H3)
    qfile = tmp_path / fmt
    if fmt == "rows.json":
        qfile.write_text(json.dumps(rows))
    else:  # the tokens of each query, without the padding of the 4-hop width
        qfile.write_text("\n".join(" ".join(dataset.vocab[int(t)] for t in data.tokens[r][:4])
                                   for r in rows) + "\n")
    out = tmp_path / "t.json"
    assert main(["trace", str(khop_run), "--split", H3, "--corrupt", "r2", "--queries", str(qfile),
                 "--include-wrong", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    cf = prepare_khop_counterfactuals(model, dataset, H3, "r2", rows=rows, require_correct=False)
    assert cf.clean.index.tolist() == [r for r in rows if r in set(cf.clean.index.tolist())]
    assert cf.stats["queries"] == len(rows) == got["counterfactuals"]["queries"]
    want = summarize_trace(trace_grid(model, cf))
    assert got["n"] == want["n"] == len(cf.clean) > 0
    for key in ("restored", "changed", "prob_clean", "flipped"):
        assert got[key] == want[key], key


@pytest.mark.parametrize("content, needles", [
    ("[0, 100000]", ["queries=100000", "3-hop queries in test_inferred_iid_h3", "(0.."]),
    ("[-1]", ["queries=-1", "(0.."]),
    ("[]", ["queries=", "non-empty list"]),
    ("<e_0> <r_0>\n<e_1> <r_1>\n", ["queries item", "the tokens of one query"]),
    ("<e_0> <e_0> <e_0> <e_0>\n", ["queries item='<e_0> <e_0> <e_0> <e_0>'",
                                   "a query of split test_inferred_iid_h3"]),
])
def test_trace_bad_queries_file_on_a_khop_split_is_one_line(khop_run, tmp_path, capsys, content,
                                                            needles):
    from groklab.cli import main

    qfile = tmp_path / "q.txt"
    qfile.write_text(content)
    assert main(["trace", str(khop_run), "--split", H3, "--queries", str(qfile),
                 "--include-wrong"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("groklab: error:"), err
    for needle in needles:
        assert needle in err, err


def test_khop_queries_rows_keep_their_order_and_stop_at_the_split_end(ds):
    n3 = len(ds.split(H3))
    q, bridges = khop_queries(ds, H3, "causal", rows=[n3 - 1, 0, n3 - 1])
    assert q.index.tolist() == [n3 - 1, 0, n3 - 1] and bridges.shape == (3, 2)
    np.testing.assert_array_equal(q.tokens, ds.split(H3).tokens[[n3 - 1, 0, n3 - 1]])
    with pytest.raises(Exception, match=rf"queries={n3} is invalid .*\(0..{n3 - 1}\)"):
        khop_queries(ds, H3, "causal", rows=[0, n3])


def test_trace_bad_queries_file_in_a_subprocess_has_no_traceback(khop_run, tmp_path):
    import subprocess
    import sys

    qfile = tmp_path / "q.json"
    qfile.write_text("[100000]")
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "trace", str(khop_run), "--split",
                           H3, "--queries", str(qfile)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "queries=100000" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
