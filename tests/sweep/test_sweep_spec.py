"""Sweep files: grid and random expansion, names, validation (no training here)."""

import math

import pytest
import yaml

from groklab.errors import GroklabError
from groklab.sweep import load_sweep, parse_sweep
from groklab.sweep.spec import trial_name


def _spec(**raw):
    return parse_sweep({"base": "tiny", **raw})


def test_grid_is_the_cartesian_product_in_file_order():
    spec = _spec(set={"train.steps": 100}, grid={"data.phi": [3.6, 7.2, 18.0], "train.seed": [0, 1]})
    trials = spec.trials()
    assert [t.params for t in trials] == [{"data.phi": p, "train.seed": s}
                                          for p in (3.6, 7.2, 18.0) for s in (0, 1)]
    assert trials[3].overrides == ("train.steps=100", "data.phi=7.2", "train.seed=1")
    assert [t.index for t in trials] == list(range(6))
    assert len({t.name for t in trials}) == 6
    assert trials[0].name.startswith("phi=3.6_seed=0-")


def test_names_depend_only_on_the_swept_values():
    a = _spec(grid={"data.phi": [3.6, 7.2]}).trials()
    b = _spec(set={"train.steps": 50}, grid={"data.phi": [1.0, 7.2, 3.6]}).trials()
    assert {t.name for t in a} <= {t.name for t in b}   # extending a grid keeps existing trials
    assert trial_name({"data.phi": 7.2}) == a[1].name
    assert trial_name({"data.phi": 7.2}) != trial_name({"data.phi": 7.25})


def test_random_search_is_seeded_and_in_range():
    raw = {"grid": {"train.seed": [0, 1]},
           "random": {"samples": 5, "seed": 3, "params": {
               "optim.lr": {"loguniform": [1e-4, 1e-2]},
               "optim.weight_decay": {"uniform": [0.0, 1.0]},
               "data.seed": {"randint": [0, 3]},
               "data.regime": {"choice": ["natural", "both_full"]}}}}
    trials = _spec(**raw).trials()
    assert len(trials) == 10                                  # 2 grid points x 5 samples
    assert [t.params for t in trials] == [t.params for t in _spec(**raw).trials()]
    other = _spec(**{**raw, "random": {**raw["random"], "seed": 4}}).trials()
    assert [t.params for t in other] != [t.params for t in trials]
    for t in trials:
        p = t.params
        assert 1e-4 <= p["optim.lr"] < 1e-2 and 0.0 <= p["optim.weight_decay"] < 1.0
        assert p["data.seed"] in (0, 1, 2, 3) and p["data.regime"] in ("natural", "both_full")
    lrs = [math.log10(t.params["optim.lr"]) for t in trials]
    assert max(lrs) - min(lrs) > 0.5                          # spread on the log scale


@pytest.mark.parametrize("raw, match", [
    ({"grid": {"data.phi": [1.0]}, "bogus": 1}, r"sweep\.bogus=1 is invalid"),
    ({"grid": {"phi": [1.0]}}, r"sweep\.grid\.phi='phi' is invalid \(allowed: section\.field"),
    ({"grid": {"dat.phi": [1.0]}}, r"sweep\.grid\.dat\.phi"),
    ({"grid": {"data.phi": []}}, r"sweep\.grid\.data\.phi=\[\] is invalid \(allowed: a non-empty list"),
    ({"grid": {"data.phi": 3.6}}, r"a non-empty list"),
    ({"grid": {"data.phi": [1.0, 1.0]}}, r"without repeated values"),
    ({"random": {"params": {"optim.lr": {"loguniform": [0, 1]}}}}, r"0 < lo < hi"),
    ({"random": {"params": {"optim.lr": {"uniform": [2, 1]}}}}, r"lo < hi"),
    ({"random": {"params": {"optim.lr": {"normal": [0, 1]}}}}, r"uniform: \[lo, hi\]"),
    ({"random": {"samples": 0, "params": {"optim.lr": {"uniform": [0, 1]}}}}, r"sweep\.random\.samples=0"),
    ({"grid": {"optim.lr": [1.0]}, "random": {"params": {"optim.lr": {"uniform": [0, 1]}}}}, r"not both"),
    ({"grid": {"data.phi": [1.0]}, "ray": {"gpus_per_trial": -1}}, r"sweep\.ray\.gpus_per_trial=-1"),
    ({"grid": {"data.phi": [1.0]}, "ray": {"asha": {"metric": "acc/x", "mode": "up"}}}, r"asha\.mode='up'"),
    ({"grid": {"data.phi": [1.0]}, "lens": {"n": 0}}, r"sweep\.lens\.n=0"),
])
def test_bad_sweep_structure_names_the_field(raw, match):
    with pytest.raises(GroklabError, match=match):
        _spec(**raw)


def test_missing_base_and_bad_yaml(tmp_path):
    with pytest.raises(GroklabError, match=r"sweep\.base=None"):
        parse_sweep({"grid": {"data.phi": [1.0]}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(GroklabError, match="cannot read it as YAML"):
        load_sweep(bad)
    with pytest.raises(GroklabError, match=r"sweep=.*an existing sweep YAML file"):
        load_sweep(tmp_path / "missing.yaml")
    with pytest.raises(GroklabError, match=r"sweep='nope' is invalid .*bundled sweep "
                                           r"\(exposure, khop, khop_recursive, khop_tiny, micro, phi\)"):
        load_sweep("nope")


def test_a_bundled_sweep_loads_by_name():
    """`groklab sweep micro`: the package's sweeps/micro.yaml, also from an installed wheel."""
    from groklab.train.config import SWEEP_DIR

    by_name = load_sweep("micro")
    assert by_name.path == SWEEP_DIR / "micro.yaml" and by_name.to_dict() == load_sweep(SWEEP_DIR / "micro.yaml").to_dict()


def test_every_trial_config_is_validated_on_load(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": "tiny", "grid": {"optim.lr": [1e-3, -1.0]}}))
    with pytest.raises(GroklabError, match=r"trial 1 \(optim\.lr=-1\.0\): optim\.lr=-1\.0 is invalid"):
        load_sweep(path)
    path.write_text(yaml.safe_dump({"base": "tiny", "set": {"model.family": "cnn"}, "grid": {"data.phi": [1.0]}}))
    with pytest.raises(GroklabError, match=r"model\.family='cnn' is invalid"):
        load_sweep(path)


def test_base_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "mine.yaml").write_text("base: tiny\ntrain: {steps: 77}\n")
    (tmp_path / "sweeps").mkdir()
    path = tmp_path / "sweeps" / "s.yaml"
    path.write_text(yaml.safe_dump({"base": "../cfg/mine.yaml", "grid": {"train.seed": [0, 1]}}))
    spec = load_sweep(path)
    assert spec.base == str((tmp_path / "cfg" / "mine.yaml").resolve())
    from groklab.train import load_config
    assert load_config(spec.base, spec.trials()[1].overrides).train.steps == 77
    assert load_config(spec.base, spec.trials()[1].overrides).train.seed == 1


def test_shipped_sweep_files_load():
    from groklab.train.config import SWEEP_DIR as root
    sizes = {p.stem: len(load_sweep(p).trials()) for p in sorted(root.glob("*.yaml"))}
    assert sizes["micro"] == 4
    assert {"phi", "exposure"} <= set(sizes)
