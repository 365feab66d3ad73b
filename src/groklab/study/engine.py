"""The study's only contact points with data, train and analysis (one place to read).

Everything here is a thin call into another layer's public API (docs/architecture.md);
``train_spec`` is also what each worker of ``--jobs N`` runs (``study.runner.train_job``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from groklab.analysis.compare import compare_models, difference_ci, rate_ci
from groklab.analysis.forecast_runs import forecast_at_fraction
from groklab.analysis.memoriser import compare_with_memoriser
from groklab.analysis.lens import lens_metrics, lens_ranks, resolve_positions, study_rule_summary
from groklab.analysis.queries import two_hop_queries
from groklab.analysis.transfer import split_correct
from groklab.data.config import DataConfig
from groklab.data.dataset import MANIFEST_NAME, load_dataset, make_dataset
from groklab.data.injection import inject_dataset
from groklab.data.memorise import shuffled_compositions_dataset
from groklab.errors import GroklabError
from groklab.models import ModelConfig, count_params
from groklab.models.registry import MODEL_CLASSES, build_shape_only
from groklab.study.scales import StudyScale
from groklab.train import evaluate, load_model, rundir, train_run
from groklab.train.checkpoints import checkpoint_steps
from groklab.train.config import config_from_dict
from groklab.train.ensemble import check_supported, train_ensemble
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


def make_shuffled(src: Path, out: Path, seed: int) -> dict:
    """Claim 1's memoriser dataset (groklab.data.memorise), made once and reused."""
    if (Path(out) / MANIFEST_NAME).exists():
        return load_dataset(out, verify=True).manifest
    return shuffled_compositions_dataset(src, out, seed=seed).manifest


def make_injected(src: Path, out: Path, new_facts: int, replay: int, seed: int) -> dict:
    if (Path(out) / MANIFEST_NAME).exists():
        return load_dataset(out, verify=True).manifest
    return inject_dataset(src, out, new_facts=new_facts, replay=replay, seed=seed).manifest


def manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST_NAME).read_text())


# ---------------------------------------------------------------------------- train
def run_config(scale: StudyScale, family: str, *, data_path: Path, steps: int, eval_every: int,
               device: str, finetune: bool = False, seed: int = 0,
               data: dict | None = None) -> dict:
    """The RunConfig (as a nested dict) of one study run; validated by the train layer.
    ``seed``: model init and batch order (train.seed); ``data``: the dataset's config when it
    is not the scale's (a seed's own graph)."""
    optim = dict(scale.optim[family])
    if finetune:
        optim.update(scale.finetune_optim.get(family, {}))
    train = dict(scale.train, steps=steps, eval_every=eval_every, device=device,
                 early_stop_patience=0, threads=1, seed=seed)
    raw = {"preset": f"study-{scale.name}", "data_path": str(data_path),
           "data": dict(data if data is not None else scale.data),
           "model": dict(scale.models[family]), "optim": optim, "train": train}
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


def stackable(config: dict) -> bool:
    """Whether a stacked ensemble trains runs of ``config`` exactly (ensemble.check_supported)."""
    cfg = config_from_dict(config)
    if cfg.train.ensemble != 1:
        return False
    cfg.train.ensemble = 2
    try:
        check_supported(cfg)
    except GroklabError:
        return False
    return True


def train_stacked(specs: list[dict], stack_dir: str | Path, quiet: bool = True) -> dict:
    """Train fresh study runs that differ only in their seed (RunSpecs as dicts) as one stacked
    ensemble in ``stack_dir`` (train/ensemble.py); each member writes its spec's ordinary run
    directory, as :func:`train_spec` would. An ensemble directory left by an attempt that
    started none of its members holds no training state and is started over."""
    torch.set_num_threads(1)
    stack_dir = Path(stack_dir)
    if stack_dir.exists() and not any(started(s["run_dir"]) for s in specs):
        shutil.rmtree(stack_dir)
    cfg = config_from_dict(specs[0]["config"])
    cfg.train.ensemble = len(specs)
    first = specs[0]
    callbacks = [lens_callback(first["family"], tuple(first["lens_splits"]), first["lens_queries"])]
    members = [(int(s["config"]["train"]["seed"]), Path(s["run_dir"])) for s in specs]
    return train_ensemble(cfg, stack_dir, callbacks=callbacks, quiet=quiet, members=members)


def metrics(run_dir: str | Path) -> list[dict]:
    return rundir.read_metrics(run_dir)


def n_params(model: dict, vocab_size: int) -> int:
    """Parameter count of a model config (built on the meta device, uninitialised)."""
    return int(count_params(build_shape_only(ModelConfig.from_dict(model), vocab_size)))


def vocab_size(data_dir: str | Path) -> int:
    return len(json.loads((Path(data_dir) / "vocab.json").read_text()))


# ---------------------------------------------------------------------------- analysis
def bridge_positions(family: str):
    """Where groklab's lens rule counts the bridge for ``family`` (a fact of its model class:
    r2 for causal models, whose r1 state is hop-1 recall; every position for the recursive)."""
    spec = MODEL_CLASSES[family].bridge_positions
    return spec if isinstance(spec, str) else list(spec)


def circuit_families(families) -> tuple[str, ...]:
    """The families whose bridge-found rate indicates a circuit (claim 2 judges only these)."""
    return tuple(f for f in families if MODEL_CLASSES[f].circuit_indicator)


CLAIM1_MEASURE = ("Pearson r of the two models' causal-tracing grids (fraction of answers "
                  "restored, r1 corrupted; stages x positions, on queries both answer right)")


def lens_callback(family: str, splits: tuple[str, ...], max_queries: int):
    """Training callback: logit-lens bridge-found rates (``lens/<split>/bridge_found``...)."""
    positions = bridge_positions(family)

    def callback(step, model, dataset, row):
        return lens_metrics(model, dataset, list(splits), n=max_queries, seed=0,
                            bridge_positions=positions)

    return callback


def bridge_key(split: str) -> str:
    """metrics.jsonl key of the lens callback's bridge-found rate on ``split`` (groklab rule)."""
    return f"lens/{split}/bridge_found"


def study_key(split: str, what: str) -> str:
    """metrics.jsonl key of a study-rule lens number (``bridge_found``, ``target_found``,
    ``bridge_found_correct``, ``chance``, ``chance_correct``) on ``split``."""
    return f"lens/{split}/study_{what}"


def saturation_checkpoint(run_dir: str | Path, fit: float, key: str = "train_acc") -> int | None:
    """The first checkpoint at or after the first evaluation with train accuracy (``key``)
    >= ``fit`` (the study's "stopped at training saturation"); None if the run never fit."""
    fit_step = next((int(r["step"]) for r in metrics(run_dir)
                     if (r.get(key) or 0) >= fit), None)
    if fit_step is None:
        return None
    return next((s for s in sorted(checkpoint_steps(run_dir)) if s >= fit_step), None)


def bridge_on_correct(run_dir: str | Path, step: int | None, split: str, bootstrap: int) -> dict:
    """Claim 1 (a): the lens on every two-hop query of ``split``; among the queries the model
    answers correctly, the fraction with the bridge found, with a bootstrap CI, and the chance
    control's rate on the same queries. Any stage, at the family's bridge positions
    (``GrokModel.bridge_positions``): every position for the recursive model (the study's rule),
    r2 for causal models, whose r1 state decodes b by recalling the atomic fact h r1 -> b."""
    model, ds = load_model(run_dir, step=step, ema=True)
    res = lens_ranks(model, two_hop_queries(ds, split, model.layout))
    spec = model.bridge_positions if isinstance(model.bridge_positions, str) else list(model.bridge_positions)
    allowed = resolve_positions(spec, res.positions, res.causal, "bridge")
    correct = res.correct
    found = (res.ranks["bridge"][correct][:, :, allowed] == 1).any(axis=(1, 2))
    chance = (res.ranks["control"][correct][:, :, allowed] == 1).any(axis=(1, 2))
    summary = study_rule_summary(res)
    return {**rate_ci(found, bootstrap, seed=0), "chance": rate_ci(chance, bootstrap, seed=1),
            "positions": [res.positions[i] for i in allowed],
            "queries": summary["n"], "accuracy": summary["accuracy"],
            "target_found": summary["target_found"], "split": split, "step": step,
            "by_stage": summary["bridge_found_by_stage"]}


def accuracy_at(run_dir: str | Path, step: int | None, splits: tuple[str, ...]) -> dict:
    """Exact-match accuracy of a run's model at checkpoint ``step`` on whole splits."""
    model, ds = load_model(run_dir, step=step, ema=True)
    return evaluate(model, ds, [s for s in splits if s in ds.split_names])


def forecast_panel_row(run_dir: str | Path, fraction: float, target: str) -> dict:
    """What ``groklab forecast`` (the shipped model) said at ``fraction`` of the run's budget,
    against what happened; ``{"error": ...}`` when it cannot say (e.g. no model for ``target``)."""
    try:
        return forecast_at_fraction(run_dir, fraction, target)
    except GroklabError as exc:
        return {"error": str(exc)}


def transfer_difference(run_a: str | Path, run_b: str | Path, splits: tuple[str, ...],
                        bootstrap: int) -> dict:
    """Claim 1 (c): per split, EM of A's final model minus B's on the same items, with a paired
    bootstrap CI (both finetuned runs read the same injected dataset)."""
    model_a, ds = load_model(run_a, ema=True)
    model_b, _ = load_model(run_b, ema=True)
    out = {}
    for k, split in enumerate(splits):
        if split in ds.split_names:
            out[split] = difference_ci(split_correct(model_a, ds, split),
                                       split_correct(model_b, ds, split), bootstrap, seed=k)
    return out


def compare_memoriser(run_a: Path, run_b: Path, step_b: int, split: str, n: int,
                      bootstrap: int) -> dict:
    """Claim 1's memoriser control: path similarity of run A (final) and memoriser B at
    ``step_b``, each judged on its own trained answers (groklab.analysis.memoriser); the
    keys of :func:`compare_paths` that the control reads."""
    model_a, ds_a = load_model(run_a, ema=True)
    model_b, ds_b = load_model(run_b, step=step_b, ema=True)
    out = {"similarity": None, "ci_low": None, "ci_high": None, "n": 0}
    try:
        tr = compare_with_memoriser(model_a, ds_a, model_b, ds_b, split, n=n, seed=0,
                                    n_boot=bootstrap)
    except GroklabError as exc:
        return {**out, "error": str(exc)}
    return {"similarity": tr["restored_corr"]["value"], "ci_low": tr["restored_corr"]["ci"][0],
            "ci_high": tr["restored_corr"]["ci"][1], "n": tr["n"],
            "similarity_free": tr["restored_corr_free"]["value"],
            "free_ci": tr["restored_corr_free"]["ci"], "cells": tr["cells"],
            "free_cells": tr["free_cells"],
            "grids": {"natural": tr["a"]["restored"], "memoriser": tr["b"]["restored"],
                      "rows": tr["a"]["stages"], "cols": tr["a"]["positions"]}}


def compare_paths(run_a: Path, run_b: Path, split: str, n: int, bootstrap: int,
                  device: str = "auto", step_b: int | None = None) -> dict:
    """Claim 1: inference-path similarity of two runs' models (A final, B at ``step_b`` or
    final), with a bootstrap CI.

    Returns {similarity, ci_low, ci_high, n, measure, lens_corr, lens_ci, maps, compare};
    similarity None (with ``error``) when no query can be traced (models that do not answer).
    """
    model_a, ds_a = load_model(run_a, ema=True)
    model_b, ds_b = load_model(run_b, step=step_b, ema=True)
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
               similarity_free=tr["restored_corr_free"]["value"],
               free_ci=tr["restored_corr_free"]["ci"], cells=tr["cells"],
               free_cells=tr["free_cells"],
               maps={name: {"values": tr[k]["restored"], "rows": tr[k]["stages"],
                            "cols": tr[k]["positions"]}
                     for name, k in (("grokked (natural)", "a"), ("non-grokked", "b"))},
               maps_title="fraction of answers restored by patching (r1 corrupted)",
               compare=res)
    return out
