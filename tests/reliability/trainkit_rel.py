"""A RunConfig on the reliability tests' micro dataset (a 1-layer d=32 decoder)."""

from groklab.train import config_from_dict


def micro_run_config(data_path, steps=20):
    return config_from_dict({
        "data_path": str(data_path),
        "model": {"family": "decoder", "n_layers": 1, "d_model": 32, "n_heads": 2, "max_len": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "train": {"steps": steps, "batch_size": 32, "eval_every": 5, "checkpoint_every": 5,
                  "device": "cpu", "plots": False},
    })
