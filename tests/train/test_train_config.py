"""Run configs: presets, overrides with type coercion, validation errors naming the field."""

import pytest

from groklab.errors import GroklabError
from groklab.train import available_presets, config_from_dict, load_config, read_config
from groklab.train.config import CONFIG_DIR

from trainkit import micro_config


def test_every_preset_loads_and_validates():
    names = available_presets()
    assert {"tiny", "small", "paper", "tiny_looped", "tiny_recursive", "paper_recursive"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.preset == name and cfg.train.steps >= 1


def test_comparison_long_preset_is_tiny_comparison_trained_longer():
    short, long = load_config("tiny_comparison"), load_config("tiny_comparison_long")
    assert long.train.steps == 4 * short.train.steps
    assert (long.data, long.model, long.optim) == (short.data, short.model, short.optim)


def test_tiny_preset_is_the_studied_setting():
    cfg = load_config("tiny")
    assert (cfg.data.entities, cfg.data.relations, cfg.data.out_degree) == (100, 20, 20)
    assert cfg.data.phi == 18.0 and cfg.data.regime == "natural"
    assert cfg.model.family == "decoder" and cfg.model.n_layers == 2


def test_paper_presets_follow_the_references():
    wang = load_config("paper")
    assert (wang.model.n_layers, wang.model.d_model, wang.model.n_heads) == (8, 768, 12)
    assert (wang.optim.lr, wang.optim.weight_decay, wang.optim.warmup_steps, wang.optim.grad_clip) == (1e-4, 0.1, 2000, 1.0)
    assert wang.train.batch_size == 512
    trm = load_config("paper_recursive")
    assert trm.model.family == "recursive" and trm.model.mixer == "mlp_t" and trm.model.loss == "stablemax"
    assert trm.optim.lr == 4e-5 and trm.optim.betas == (0.9, 0.95) and trm.optim.weight_decay == 1.0
    assert trm.optim.ema_decay == 0.999 and trm.train.batch_size == 512


def test_overrides_are_coerced_to_field_types():
    cfg = load_config("tiny", ["optim.lr=3e-3", "train.steps=1e3", "optim.betas=[0.8, 0.9]",
                               "train.plots=false", "model.d_mlp=null", "data.phi=max",
                               "train.checkpoint_every=[[100, 10], [null, 50]]", "model.dropout=0"])
    assert cfg.optim.lr == 3e-3 and cfg.train.steps == 1000 and isinstance(cfg.train.steps, int)
    assert cfg.optim.betas == (0.8, 0.9) and cfg.train.plots is False and cfg.model.d_mlp is None
    assert cfg.data.phi == "max" and cfg.train.checkpoint_every == [[100, 10], [None, 50]]
    assert load_config("tiny", ["train.checkpoint_every=500"]).train.checkpoint_every == [[None, 500]]


@pytest.mark.parametrize("override, pattern", [
    ("optim.lr=-1e-3", r"optim\.lr=-0\.001 is invalid \(allowed: \(0, inf\]\)"),
    ("model.family=transformer", r"model\.family='transformer' is invalid \(allowed: decoder"),
    ("model.n_layers=0", r"model\.n_layers=0 is invalid"),
    ("optim.lr=fast", r"optim\.lr='fast' is invalid \(allowed: a number\)"),
    ("train.steps=1.5", r"train\.steps=1\.5 is invalid \(allowed: an integer\)"),
    ("optim.schedule=linear", r"optim\.schedule='linear' is invalid \(allowed: constant \| cosine\)"),
    ("optim.betas=[0.9]", r"optim\.betas="),
    ("optim.momentum=0.9", r"optim\.momentum=.* is invalid \(allowed: one of lr,"),
    ("trainer.steps=3", r"--set trainer\.steps"),
    ("data.entities=1", r"data\.entities=1 is invalid"),
    ("data.phi=-2", r"data\.phi=-2\.0 is invalid"),
    ("train.device=tpu", r"train\.device='tpu' is invalid"),
    ("train.checkpoint_every=[[100, 10], [50, 5]]", r"train\.checkpoint_every="),
    ("noequals", r"--set='noequals' is invalid"),
])
def test_bad_values_name_the_field(override, pattern):
    with pytest.raises(GroklabError, match=pattern):
        load_config("tiny", [override])


def test_unknown_preset_and_missing_file():
    with pytest.raises(GroklabError, match=r"preset='nope' is invalid \(allowed: .*tiny"):
        load_config("nope")
    with pytest.raises(GroklabError, match=r"config='/no/such.yaml' is invalid"):
        load_config("/no/such.yaml")


def test_config_file_with_base_and_roundtrip(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: tiny\noptim:\n  lr: 0.002\ntrain:\n  steps: 77\n")
    cfg = load_config(path)
    tiny = load_config("tiny")
    assert cfg.optim.lr == 0.002 and cfg.train.steps == 77
    assert cfg.model == tiny.model and cfg.optim.weight_decay == tiny.optim.weight_decay
    out = tmp_path / "resolved.yaml"
    out.write_text(cfg.to_yaml())
    again = read_config(out)
    assert again.to_dict() == cfg.to_dict()


def test_config_dir_is_the_packaged_configs():
    assert (CONFIG_DIR / "tiny.yaml").is_file()
    assert CONFIG_DIR.parent.name == "groklab"   # package data, not a path beside the source tree


def test_micro_config_helper_is_valid(micro_data):
    cfg = micro_config(micro_data)
    assert cfg.data_path == str(micro_data)
    with pytest.raises(GroklabError, match="unknown_section"):
        config_from_dict({**cfg.to_dict(), "unknown_section": {}})


def test_validate_never_changes_a_config_and_to_dict_is_canonical():
    from groklab.train.config import TrainConfig

    t = TrainConfig(checkpoint_every=100, stop_at="test_inferred_iid>=0.90")
    assert t.validate("train.") is t
    assert (t.checkpoint_every, t.stop_at) == (100, "test_inferred_iid>=0.90")   # as given
    d = t.to_dict()
    assert (d["checkpoint_every"], d["stop_at"]) == ([[None, 100]], ["test_inferred_iid>=0.9"])
    cfg = load_config("tiny", ["train.checkpoint_every=100"])
    assert cfg.train == TrainConfig(**{**cfg.train.to_dict()})          # parsed once, already canonical


def test_errors_name_the_path_the_validator_was_given():
    from groklab.data import DataConfig

    bad = DataConfig(phi=-1.0)
    with pytest.raises(GroklabError, match=r"^phi=-1\.0 is invalid"):
        bad.validate()
    with pytest.raises(GroklabError, match=r"^data\.phi=-1\.0 is invalid"):
        bad.validate("data.")
