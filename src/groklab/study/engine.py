"""The study's only contact points with data, train and analysis (one place to read).

Everything here is a thin call into another layer's public API (docs/architecture.md);
``train_spec`` is also what each worker of ``--jobs N`` runs (``study.runner.train_job``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from groklab.analysis.compare import compare_models
from groklab.analysis.lens import lens_metrics
from groklab.data.config import DataConfig
from groklab.data.dataset import MANIFEST_NAME, load_dataset, make_dataset
from groklab.data.injection import inject_dataset
from groklab.errors import GroklabError
from groklab.models import ModelConfig, build_model, count_params
from groklab.study.scales import StudyScale
from groklab.train import load_model, rundir, train_run
from groklab.train.checkpoints import checkpoint_steps
from groklab.train.config import config_from_dict
from groklab.train.rundir import RESUMABLE_FIELDS


def torch_version() -> str:
    return torch.__version__


# ---------------------------------------------------------------------------- data
def make_data(cfg: dict, out: Path) -> dict:
    """Generate a dataset (reused when a complete one is already there); return its counts."""
    if (Path(out) / MANIFEST_NAME).exists():
        ds = load_dataset(out, verify=True)
    else:
        ds = make_dataset(DataConfig.from_dict(cfg), out)
    return ds.manifest


def make_injected(src: Path, out: Path, new_facts: int, replay: int, seed: int) -> dict:
    if (Path(out) / MANIFEST_NAME).exists():
        return load_dataset(out, verify=True).manifest
    return inject_dataset(src, out, new_facts=new_facts, replay=replay, seed=seed).manifest


def manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST_NAME).read_text())


# ---------------------------------------------------------------------------- train
def run_config(scale: StudyScale, family: str, *, data_path: Path, steps: int, eval_every: int,
               device: str, finetune: bool = False) -> dict:
    """The RunConfig (as a nested dict) of one study run; validated by the train layer."""
    optim = dict(scale.optim[family])
    if finetune:
        optim.update(scale.finetune_optim.get(family, {}))
    train = dict(scale.train, steps=steps, eval_every=eval_every, device=device,
                 early_stop_patience=0, threads=1)
    raw = {"preset": f"study-{scale.name}", "data_path": str(data_path),
           "data": dict(scale.data), "model": dict(scale.models[family]), "optim": optim,
           "train": train}
    return config_from_dict(raw).to_dict()


def finished_summary(run_dir: str, config: dict) -> dict | None:
    """The summary of a finished run made with ``config``; None if unfinished or absent.

    A finished run made with another configuration is an error, never silently reused.
    """
    summary = rundir.read_summary(run_dir)
    if not rundir.is_finished(summary, config_from_dict(config)):
        return None
    have = rundir.read_config(run_dir).to_dict()
    if _comparable(have) != _comparable(config):
        raise GroklabError(f"run {run_dir} was made with a different configuration; "
                           "use a new --out or remove that run directory")
    return summary


def _comparable(cfg: dict) -> dict:
    """The parts of a run config that decide its trajectory (data through data_path)."""
    cfg = json.loads(json.dumps(cfg))
    return {"data_path": str(Path(cfg["data_path"]).resolve()) if cfg.get("data_path") else None,
            "model": cfg["model"], "optim": cfg["optim"],
            "train": {k: v for k, v in cfg["train"].items() if k not in RESUMABLE_FIELDS}}


def has_checkpoint(run_dir: str) -> bool:
    return bool(checkpoint_steps(run_dir))


def started(run_dir: str) -> bool:
    """True once train_run has written the run's config.yaml (then it can be resumed)."""
    return rundir.is_started(run_dir)


def train_spec(spec: dict, quiet: bool = True) -> dict:
    """Train, resume or finetune one study run (a RunSpec as a dict); return its summary.

    An unfinished run is resumed from its latest checkpoint (``train_run(resume=True)``; with
    no checkpoint yet it starts over). A finetune run starts from the pretrained run's final
    weights (EMA when kept): ``train_run(init_from=...)``.
    """
    torch.set_num_threads(1)
    cfg = config_from_dict(spec["config"])
    callbacks = [lens_callback(spec["family"], tuple(spec["lens_splits"]), spec["lens_queries"])]
    if started(spec["run_dir"]):
        return train_run(cfg, spec["run_dir"], resume=True, callbacks=callbacks, quiet=quiet)
    return train_run(cfg, spec["run_dir"], resume=False, callbacks=callbacks, quiet=quiet,
                     init_from=spec.get("init_from"))


def metrics(run_dir: str | Path) -> list[dict]:
    return rundir.read_metrics(run_dir)


def n_params(model: dict, vocab_size: int) -> int:
    return int(count_params(build_model(ModelConfig.from_dict(model), vocab_size)))


def vocab_size(data_dir: str | Path) -> int:
    return len(json.loads((Path(data_dir) / "vocab.json").read_text()))


# ---------------------------------------------------------------------------- analysis
# Where the lens looks for the bridge entity. Causal models (decoder, looped) are trained on
# atomic facts "h r1 -> b" with the answer read at r1's position, so the top decode at r1 is
# b for every memorised fact: bridge-found there says nothing about composition. We count the
# bridge only at r2's position for them (b carried to where the second hop is applied); the
# recursive model (non-causal, answer slot) is not trained at r1 and may use any position.
BRIDGE_POSITIONS = {"decoder": ["r2"], "looped": ["r2"], "recursive": "auto"}
CLAIM1_MEASURE = ("Pearson r of the two models' causal-tracing grids (fraction of answers "
                  "restored, r1 corrupted; stages x positions, on queries both answer right)")


def lens_callback(family: str, splits: tuple[str, ...], max_queries: int):
    """Training callback: logit-lens bridge-found rates (``lens/<split>/bridge_found``...)."""
    positions = BRIDGE_POSITIONS[family]

    def callback(step, model, dataset, row):
        return lens_metrics(model, dataset, list(splits), n=max_queries, seed=0,
                            bridge_positions=positions)

    return callback


def bridge_key(split: str) -> str:
    """metrics.jsonl key of the lens callback's bridge-found rate on ``split``."""
    return f"lens/{split}/bridge_found"


def compare_paths(run_a: Path, run_b: Path, split: str, n: int, bootstrap: int,
                  device: str = "auto") -> dict:
    """Claim 1: inference-path similarity of two runs' final models, with a bootstrap CI.

    Returns {similarity, ci_low, ci_high, n, measure, lens_corr, lens_ci, maps, compare};
    similarity None (with ``error``) when no query can be traced (models that do not answer).
    """
    model_a, ds_a = load_model(run_a, ema=True)
    model_b, ds_b = load_model(run_b, ema=True)
    out = {"similarity": None, "ci_low": None, "ci_high": None, "n": 0,
           "measure": CLAIM1_MEASURE, "split": split}
    try:
        res = compare_models(model_a, model_b, ds_a, split=split, corrupt="r1", n=n, seed=0,
                             n_boot=bootstrap, dataset_b=ds_b)
    except GroklabError as exc:
        out["error"] = str(exc)
        return out
    tr, lens = res["trace"], res["lens"]
    out.update(similarity=tr["restored_corr"]["value"], ci_low=tr["restored_corr"]["ci"][0],
               ci_high=tr["restored_corr"]["ci"][1], n=tr["n"],
               lens_corr=lens["bridge_mrr_corr"]["value"], lens_ci=lens["bridge_mrr_corr"]["ci"],
               maps={name: {"values": tr[k]["restored"], "rows": tr[k]["stages"],
                            "cols": tr[k]["positions"]}
                     for name, k in (("grokked (natural)", "a"), ("fully supervised", "b"))},
               maps_title="fraction of answers restored by patching (r1 corrupted)",
               compare=res)
    return out
