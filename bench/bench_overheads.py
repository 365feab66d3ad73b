"""Costs around the training step that the study pays for every run: evaluation and workers.

``eval``: the ``cpu`` scale's natural dataset (4,032 probe items: id_atomic 720, ood_atomic 80,
train_inferred 3,000, test_inferred_iid 130, test_inferred_ood 102) evaluated by the study's
models (decoder 2 x 128, study-format TRM 2 x 64, H=2, L=1, mlp_t; fresh weights) the way the
trainer does every ``eval_every`` steps (``evaluate_batchables`` with ``eval_batch_size``
4,096), one torch thread. Baseline: one forward of all rows per split (the engine before
2026-12-04); now: at most ``CPU_EVAL_ROWS`` rows per forward on a CPU. Prints median seconds
per evaluation (wall = thread CPU here), the ratio baseline / now and whether every accuracy
is equal (losses may differ in their last digits: summation order).

``pool``: K tiny-preset trials of ``--steps`` steps on ``--jobs`` workers of the local engine,
a fresh interpreter per trial (``trials_per_worker=1``, the engine before 2026-12-04) against
workers that serve many trials (the default). Prints wall seconds, the workers' CPU seconds
(RUSAGE_CHILDREN) and the ratios baseline / now.

Usage: python bench/bench_overheads.py [--part eval|pool|all] [--repeats 5] [--trials 8]
       [--steps 50] [--jobs 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_grok import machine  # noqa: E402

from groklab.data import make_dataset  # noqa: E402
from groklab.data.config import DataConfig  # noqa: E402
from groklab.models import ModelConfig, build_model  # noqa: E402
from groklab.study.scales import SCALES  # noqa: E402
from groklab.sweep.local import run_local  # noqa: E402
from groklab.sweep.trial import TrialJob  # noqa: E402

ev = importlib.import_module("groklab.train.evaluate")  # the package's ``evaluate`` is the function


def bench_eval(repeats: int, tmp: Path) -> dict:
    scale = SCALES["cpu"]
    ds = make_dataset(DataConfig.from_dict(dict(scale.data, regime="natural")), tmp / "data")
    out, chunk = {}, ev.CPU_EVAL_ROWS
    for family in ("decoder", "recursive"):
        torch.manual_seed(0)
        model = build_model(ModelConfig.from_dict(scale.models[family]), ds.vocab_size)
        probes = {n: ev.to_batchable(ds.split(n), model.layout) for n in ds.probe_names}
        times, results = {}, {}
        for label, rows in (("baseline", 10 ** 9), ("now", chunk)):
            ev.CPU_EVAL_ROWS = rows
            ev.evaluate_batchables(model, probes, 4096)           # warm-up
            runs = []
            for _ in range(repeats):
                t0 = time.thread_time()
                results[label] = ev.evaluate_batchables(model, probes, 4096)
                runs.append(time.thread_time() - t0)
            times[label] = statistics.median(runs)
        same = all(results["baseline"][k][0] == results["now"][k][0] for k in results["now"])
        out[family] = {"items": sum(len(p) for p in probes.values()), **times,
                       "ratio": times["baseline"] / times["now"], "accuracy_equal": same}
        print(f"eval {family:9s} {out[family]['items']} items: baseline {times['baseline']:.3f} s,"
              f" now {times['now']:.3f} s per evaluation (median of {repeats}); ratio "
              f"{out[family]['ratio']:.2f}x; accuracies equal: {same}", flush=True)
    return out


def bench_pool(trials: int, steps: int, jobs: int, tmp: Path) -> dict:
    out = {}
    for label, per_worker in (("baseline", 1), ("now", None)):
        sweep = tmp / f"pool-{label}"
        todo = [TrialJob(name=f"t{k}", sweep_dir=str(sweep), base="tiny",
                         overrides=(f"train.seed={k}", f"train.steps={steps}",
                                    f"train.eval_every={steps}", "train.plots=false"))
                for k in range(trials)]
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        records = run_local(todo, n_jobs=jobs, trials_per_worker=per_worker)
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        bad = [n for n, r in records.items() if r["status"] != "done"]
        if bad:
            raise SystemExit(f"pool {label}: trials not done: {bad}")
        out[label] = {"wall_s": wall, "cpu_s": cpu}
        print(f"pool {label:8s} {trials} trials x {steps} steps, --jobs {jobs}: {wall:.1f} s wall,"
              f" {cpu:.1f} CPU-s ({'a fresh worker per trial' if per_worker else 'reused workers'})",
              flush=True)
    out["wall_ratio"] = out["baseline"]["wall_s"] / out["now"]["wall_s"]
    out["cpu_ratio"] = out["baseline"]["cpu_s"] / out["now"]["cpu_s"]
    out["cpu_saved_per_trial_s"] = (out["baseline"]["cpu_s"] - out["now"]["cpu_s"]) / trials
    print(f"pool ratios baseline / now: wall {out['wall_ratio']:.2f}x, CPU {out['cpu_ratio']:.2f}x;"
          f" {out['cpu_saved_per_trial_s']:.2f} CPU-s saved per trial", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("eval", "pool", "all"), default="all")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {machine()}; one torch thread", flush=True)
    result = {"machine": machine(), "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("eval", "all"):
            result["eval"] = bench_eval(args.repeats, Path(tmp))
        if args.part in ("pool", "all"):
            result["pool"] = bench_pool(args.trials, args.steps, args.jobs, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
