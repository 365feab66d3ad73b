"""ModelConfig validation: bad values are one-line GroklabErrors naming the field."""

import pytest

from groklab.errors import GroklabError
from groklab.models import ModelConfig, build_model


@pytest.mark.parametrize("kwargs, field", [
    ({"n_layers": 0}, "model.n_layers=0"),
    ({"n_layers": -3}, "model.n_layers=-3"),
    ({"n_layers": 2.5}, "model.n_layers=2.5"),
    ({"n_layers": True}, "model.n_layers=True"),
    ({"family": "gpt3"}, "model.family='gpt3'"),
    ({"d_model": 30, "n_heads": 4}, "model.d_model=30"),
    ({"dropout": 1.0}, "model.dropout=1.0"),
    ({"dropout": -0.1}, "model.dropout=-0.1"),
    ({"init_std": 0.0}, "model.init_std=0.0"),
    ({"mixer": "conv"}, "model.mixer='conv'"),
    ({"loss": "mse"}, "model.loss='mse'"),
    ({"n_loops": 0}, "model.n_loops=0"),
    ({"h_cycles": 0}, "model.h_cycles=0"),
    ({"l_cycles": 0}, "model.l_cycles=0"),
    ({"d_mlp": 0}, "model.d_mlp=0"),
    ({"max_len": 0}, "model.max_len=0"),
    ({"step_embedding": "yes"}, "model.step_embedding='yes'"),
])
def test_bad_values_name_the_field(kwargs, field):
    with pytest.raises(GroklabError) as exc:
        ModelConfig(**kwargs)
    msg = str(exc.value)
    assert msg.startswith(field) and "allowed" in msg and "\n" not in msg


def test_heads_need_not_divide_width_without_attention():
    cfg = ModelConfig(family="recursive", mixer="mlp_t", d_model=30, n_heads=4)
    assert cfg.d_model == 30
    with pytest.raises(GroklabError, match="model.d_model=30"):
        ModelConfig(family="recursive", mixer="attn", d_model=30, n_heads=4)


def test_from_dict_round_trip_and_unknown_key():
    cfg = ModelConfig(family="looped", n_loops=3, step_embedding=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(GroklabError, match="model.n_layer="):
        ModelConfig.from_dict({"n_layer": 2})


def test_build_model_checks_vocab_and_family_defaults():
    with pytest.raises(GroklabError, match="vocab_size=2"):
        build_model(ModelConfig(), 2)
    assert ModelConfig().tied and not ModelConfig(family="recursive").tied
    assert ModelConfig(d_model=64).mlp_width == 256
