"""The comparison task's lens and tracing: label-flipping counterfactuals checked against the
atomic facts, the value lens against a direct computation, the CLI on comparison runs, and the
one-line errors of task-mismatched options."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from analysiskit import small_model
from groklab.analysis.comparison import (ValueTable, build_comparison_counterfactuals,
                                         comparison_queries, majority_of)
from groklab.analysis.comparison_lens import comparison_lens, summarize_comparison_lens
from groklab.analysis.counterfactual import Counterfactuals
from groklab.analysis.tracing import trace_grid, trace_stages
from groklab.cli import main
from groklab.data import DataConfig, make_dataset
from groklab.data.flags import HOP1_OOD
from groklab.train import config_from_dict, load_run, train_run

CMP_TASK = {"task": "comparison", "entities": 24, "relations": 3, "values": 6, "ood_ratio": 0.25,
            "phi": 3.0, "id_test_ratio": 0.2, "seed": 0}
BRIEF = {"optim": {"lr": 3e-3, "warmup_steps": 5},
         "train": {"steps": 10, "batch_size": 32, "eval_every": 10, "checkpoint_every": 10,
                   "plots": False, "device": "cpu"}}
MODEL = {"family": "decoder", "n_layers": 2, "d_model": 32, "n_heads": 4, "max_len": 4}


@pytest.fixture(scope="module")
def cmp_data(tmp_path_factory):
    return make_dataset(DataConfig(**CMP_TASK), tmp_path_factory.mktemp("cmp") / "data")


@pytest.fixture(scope="module")
def cmp_run(tmp_path_factory):
    """A comparison run trained for 10 steps (the instruments need a run directory, not skill)."""
    run = tmp_path_factory.mktemp("cmprun") / "run"
    train_run(config_from_dict({"data": CMP_TASK, "model": MODEL, **BRIEF}), run, quiet=True)
    return run


@pytest.fixture(scope="module")
def composition_run(tmp_path_factory):
    from analysiskit import TASK

    run = tmp_path_factory.mktemp("comprun") / "run"
    train_run(config_from_dict({"data": TASK, "model": MODEL, **BRIEF}), run, quiet=True)
    return run


def _oracle(dataset):
    """(entity token, attribute token) -> (value token, OOD?) from the atomic facts, and the
    label of comparing two value tokens, in plain Python."""
    facts = {(int(e), int(a)): (int(v), bool(f & HOP1_OOD)) for e, a, v, f in dataset.atomic}
    lt = dataset.vocab.index("<lt>")

    def label(v1, v2):
        return lt + (0 if v1 < v2 else 1 if v1 == v2 else 2)
    return facts, label


@pytest.mark.parametrize("split", ["test_inferred_iid", "test_inferred_ood"])
@pytest.mark.parametrize("corrupt", ["e1", "e2", "attr"])
def test_counterfactual_flips_the_label_under_the_atomic_facts(cmp_data, split, corrupt):
    queries = comparison_queries(cmp_data, split, "causal")
    cf = build_comparison_counterfactuals(cmp_data, queries, corrupt, seed=5)
    facts, label = _oracle(cmp_data)
    col = ["attr", "e1", "e2"].index(corrupt)
    # attr: with 3 attributes and matched OOD status (an OOD query needs both entities OOD
    # under a' too) fewer queries have a counterfactual
    floor = {"attr": 0.25 if split.endswith("iid") else 0.05}.get(corrupt, 0.8)
    assert len(cf.clean) >= floor * len(queries) > 0
    diff = cf.clean.tokens != cf.corrupted.tokens
    assert diff[:, col].all() and diff.sum() == len(cf.clean)  # exactly one token changed
    for (a, e1, e2), (ca, ce1, ce2), t, t2 in zip(cf.clean.tokens.tolist(), cf.corrupted.tokens.tolist(),
                                                  cf.clean.target.tolist(), cf.corrupted.target.tolist()):
        assert t == label(facts[(e1, a)][0], facts[(e2, a)][0])       # the split's own label
        assert t2 == label(facts[(ce1, ca)][0], facts[(ce2, ca)][0]) != t
        assert ce1 != ce2
        # the same OOD status for each entity's fact as in the clean query
        assert facts[(ce1, ca)][1] == facts[(e1, a)][1] and facts[(ce2, ca)][1] == facts[(e2, a)][1]
    np.testing.assert_array_equal(cf.corrupted.input_ids[:, :3], cf.corrupted.tokens)
    again = build_comparison_counterfactuals(cmp_data, queries, corrupt, seed=5)
    np.testing.assert_array_equal(again.corrupted.tokens, cf.corrupted.tokens)  # seeded


def test_bad_corruption_names_the_field_and_the_allowed_values(cmp_data):
    queries = comparison_queries(cmp_data, "test_inferred_iid", "causal", n=5)
    with pytest.raises(Exception, match=r"corrupt='r1'.*attr, e1, e2"):
        build_comparison_counterfactuals(cmp_data, queries, "r1")


class _HandBuilt(torch.nn.Module):
    """A 'model' whose lens is known by construction: at stage 1 the e1 position decodes e1's
    value for the first half of the queries and value 0 for the rest; everything else decodes
    the first label; stage 0 decodes <pad> everywhere."""

    causal, layout = True, "causal"

    def __init__(self, dataset, queries):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.v, self.table = dataset.vocab_size, ValueTable(dataset)
        v1 = self.table.value(queries.tokens[:, 1], queries.tokens[:, 0])[0]
        half = np.arange(len(v1)) < len(v1) // 2
        self.e1_token = torch.as_tensor(np.where(half, v1, self.table.values[0]))

    def lens_stages(self):
        return ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"]

    def run_with_cache(self, ids, names):
        n, t = ids.shape
        stage1 = torch.full((n, t), int(self.table.labels[0]))
        stage1[:, 1] = self.e1_token[:n]
        cache = {names[0]: torch.zeros(n, t, dtype=torch.long), names[1]: stage1}
        return self.decode_residual(stage1), cache

    def decode_residual(self, tok):
        return torch.nn.functional.one_hot(tok, self.v).float() * 20.0


def test_value_found_rate_of_a_hand_built_model(cmp_data):
    queries = comparison_queries(cmp_data, "test_inferred_iid", "causal")
    model = _HandBuilt(cmp_data, queries)
    s = summarize_comparison_lens(comparison_lens(model, cmp_data, queries))
    n = len(queries)
    v1 = model.table.value(queries.tokens[:, 1], queries.tokens[:, 0])[0]
    first_half = n // 2
    # second half decodes value 0 at e1: right exactly where e1's value is 0
    expected = (first_half + (v1[first_half:] == model.table.values[0]).sum()) / n
    assert s["all"]["v1"]["found"] == pytest.approx(expected)
    assert s["all"]["v1"]["by_stage"][0] == 0.0  # <pad> everywhere: every value ties, none is top
    assert s["all"]["v2"]["found"] == 0.0
    # stage 1 decodes <lt> at e2 (the answer position): all mass on the labels there
    assert s["all"]["label"]["mass_by_stage"][1] > 0.9 > s["all"]["label"]["mass_by_stage"][0]
    right = np.mean(queries.target.numpy() == model.table.labels[0])
    assert s["all"]["label"]["right_by_stage"][1] == pytest.approx(right, abs=1e-6)
    assert s["accuracy"] == pytest.approx(right) and s["majority"] == majority_of(queries.target)


def test_value_lens_matches_a_direct_computation(cmp_data):
    model = small_model("decoder", cmp_data.vocab_size, seed=3)
    queries = comparison_queries(cmp_data, "test_inferred_iid", "causal", n=60)
    s = summarize_comparison_lens(comparison_lens(model, cmp_data, queries))
    table = ValueTable(cmp_data)
    stages = model.lens_stages()
    _, cache = model.run_with_cache(queries.input_ids, names=stages)
    found = np.zeros(len(queries), bool)
    per_stage, mass = [], []
    with torch.no_grad():
        for name in stages:
            logits = model.decode_residual(cache[name])
            top = []
            for i, (a, e1, e2) in enumerate(queries.tokens.tolist()):
                v1 = table.value(np.array([e1]), np.array([a]))[0][0]
                vals = logits[i, 1, table.values]
                j = int(np.nonzero(table.values == v1)[0][0])
                top.append(bool((vals[j] > torch.cat([vals[:j], vals[j + 1:]])).all()))
            per_stage.append(np.mean(top))
            found |= np.array(top)
            mass.append(float(logits[:, 2].softmax(-1)[:, table.labels].sum(-1).mean()))
    np.testing.assert_allclose(s["all"]["v1"]["by_stage"], per_stage)
    assert s["all"]["v1"]["found"] == pytest.approx(found.mean())
    np.testing.assert_allclose(s["all"]["label"]["mass_by_stage"], mass, rtol=1e-5)
    assert len(s["stages"]) == 3 and s["stages"][-1] == "blocks.1.hook_resid_post"


@pytest.mark.parametrize("corrupt", ["e1", "attr"])
def test_patching_the_corrupted_token_restores_the_clean_run(cmp_data, corrupt):
    """The input stage at the one changed position carries all of the difference: patching it
    gives the clean run's p(label) exactly; elsewhere on the input stage nothing changes."""
    model = small_model("decoder", cmp_data.vocab_size, seed=1)
    queries = comparison_queries(cmp_data, "test_inferred_iid", "causal", n=40)
    cf = build_comparison_counterfactuals(cmp_data, queries, corrupt)
    res = trace_grid(model, cf)
    col = ["attr", "e1", "e2"].index(corrupt)
    np.testing.assert_allclose(res.prob_clean[:, 0, col], res.source_prob_clean, rtol=1e-4, atol=1e-6)
    other = [p for p in range(3) if p != col]
    np.testing.assert_allclose(res.prob_clean[:, 0, other],
                               np.repeat(res.base_prob_clean[:, None], 2, 1), rtol=1e-4, atol=1e-6)
    same = trace_grid(model, Counterfactuals(corrupt, cf.clean, cf.clean, {}))
    assert same.restored.mean() == (same.base_top1 == cf.clean.target.numpy()).mean()


def test_lens_and_trace_cli_on_a_comparison_run(cmp_run, capsys):
    assert main(["lens", str(cmp_run), "--n", "40"]) == 0
    out = capsys.readouterr().out
    lens = json.loads((cmp_run / "analysis" / "lens_test_inferred_iid_step10.json").read_text())
    assert lens["task"] == "comparison" and lens["positions"] == ["attr", "e1", "e2"]
    assert lens["stages"] == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post",
                              "blocks.1.hook_resid_post"]
    assert (cmp_run / "analysis" / "lens_test_inferred_iid_step10.png").exists()
    assert f"majority-class rate {lens['majority']:.3f}" in out and "blocks.1.hook_resid_post" in out
    assert main(["trace", str(cmp_run), "--corrupt", "e2", "--n", "30", "--include-wrong"]) == 0
    out = capsys.readouterr().out
    tr = json.loads((cmp_run / "analysis" / "trace_test_inferred_iid_e2_step10.json").read_text())
    assert tr["task"] == "comparison" and tr["positions"] == ["attr", "e1", "e2"]
    assert np.array(tr["restored"]).shape == (3, 3)
    c = tr["counterfactuals"]
    assert f"majority-class rate {c['majority']:.3f}" in out and c["queries"] == 30
    assert "restored: share of answers restored to the clean label" in out
    assert main(["lens", str(cmp_run), "--all-steps", "--n", "40"]) == 0
    steps = json.loads((cmp_run / "analysis" / "lens_test_inferred_iid_steps.json").read_text())
    assert [p["step"] for p in steps["points"]] == load_run(cmp_run).checkpoint_steps
    last = steps["points"][-1]
    assert last["v1_found"] == lens["correct"]["v1"]["found"]  # same queries, same checkpoint
    assert last["majority"] == lens["majority"] and last["accuracy_sample"] == lens["accuracy"]


@pytest.mark.parametrize("which, argv, needles", [
    ("cmp", ["trace", "{run}", "--corrupt", "r1"], ["corrupt='r1'", "attr, e1, e2"]),
    ("cmp", ["lens", "{run}", "--positions", "r1"], ["positions='r1'", "auto"]),
    ("cmp", ["lens", "{run}", "--rule", "study"], ["rule='study'", "groklab"]),
    ("cmp", ["lens", "{run}", "--all-steps", "--rule", "study"], ["rule='study'", "groklab"]),
    ("cmp", ["lens", "{run}", "--split", "id_atomic"], ["split='id_atomic'", "comparison query"]),
    ("comp", ["trace", "{run}", "--corrupt", "e1"], ["corrupt='e1'", "h, r1, r2"]),
])
def test_task_mismatched_options_are_one_line_exit_2(cmp_run, composition_run, capsys, which,
                                                     argv, needles):
    run = cmp_run if which == "cmp" else composition_run
    assert main([a.replace("{run}", str(run)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("groklab: error:")
    for needle in needles:
        assert needle in err


def test_comparison_error_in_a_subprocess_has_no_traceback(cmp_run):
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", "trace", str(cmp_run),
                           "--corrupt", "h"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "corrupt='h'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("family", ["looped", "recursive"])
def test_every_family_gets_the_comparison_grids(cmp_data, family):
    """Looped: one row per loop iteration x layer; recursive: its answer slot is a position and
    labels are read there."""
    model = small_model(family, cmp_data.vocab_size)
    queries = comparison_queries(cmp_data, "test_inferred_iid", model.layout, n=16)
    s = summarize_comparison_lens(comparison_lens(model, cmp_data, queries))
    assert s["stages"] == model.lens_stages()
    want = ["attr", "e1", "e2"] + (["mask"] if family == "recursive" else [])
    assert s["positions"] == want and s["all"]["label"]["position"] == want[-1]
    assert np.array(s["all"]["v1"]["grid"]).shape == (len(s["stages"]), len(want))
    cf = build_comparison_counterfactuals(cmp_data, queries, "e1")
    res = trace_grid(model, cf)
    assert res.top1.shape[1:] == (len(trace_stages(model)), len(want))
