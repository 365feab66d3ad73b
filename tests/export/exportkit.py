"""Helpers of the export tests: a micro run config (40-entity graph, 2-layer d=32 decoder)."""

MICRO = ["data.entities=40", "data.relations=8", "data.out_degree=6", "data.phi=4.0",
         "model.d_model=32", "model.n_layers=2", "model.n_heads=4", "optim.lr=3e-3",
         "optim.warmup_steps=10", "train.steps=120", "train.eval_every=20", "train.batch_size=64",
         "train.checkpoint_every=40", "train.early_stop_patience=0", "train.plots=false",
         "train.device=cpu"]


def micro_config(*extra):
    from groklab.train import load_config
    return load_config("tiny", MICRO + list(extra))
