"""Stacked ensembles (issue 15, part 2): S runs in one stacked step vs S separate runs.

For each preset: S separate runs, one after another in this process (seeds 0..S-1, one
thread), then one ``train.ensemble: S`` run with the same seeds, same fixed step budget and
the preset's evaluation and checkpoint schedules (no early stop or target, so both do the same
work). Printed: wall and thread-CPU seconds of each, the ratio separate / stacked (> 1: the
ensemble is faster), and the largest difference between a member's metrics and its separate
run's (the correctness check of tests/train/test_train_ensemble.py, on a real preset). The
separate runs pay no process start-up here, so the ratio is conservative.

Usage: python bench/bench_ensemble.py [--presets tiny,tiny_looped,tiny_recursive] [--size 4]
       [--steps 600] [--device cpu|cuda] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_grok import machine  # noqa: E402

from groklab.data import make_dataset  # noqa: E402
from groklab.train import load_config, train_run  # noqa: E402
from groklab.train.metrics import read_metrics  # noqa: E402


def _timed(fn):
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - t0, time.thread_time() - c0


def _max_diff(a_rows, b_rows) -> float:
    worst = 0.0
    for a, b in zip(a_rows, b_rows, strict=True):
        for k, v in b.items():
            if k != "time" and isinstance(v, float):
                worst = max(worst, abs(a[k] - v))
    return worst


def bench_preset(work: Path, preset: str, size: int, steps: int, device: str) -> dict:
    sets = [f"train.steps={steps}", "train.early_stop_patience=0", "train.plots=false",
            f"train.device={device}", "train.threads=1"]
    data = work / f"data-{preset}"
    make_dataset(load_config(preset, sets).data, data, force=True)
    sets.append(f"data_path={data}")
    separate = work / f"{preset}-separate"

    def run_separate():
        for seed in range(size):
            train_run(load_config(preset, sets + [f"train.seed={seed}"]), separate / f"seed_{seed}", quiet=True)

    stacked = work / f"{preset}-stacked"
    sep_wall, sep_cpu = _timed(run_separate)
    ens_wall, ens_cpu = _timed(lambda: train_run(load_config(preset, sets + [f"train.ensemble={size}"]),
                                                 stacked, quiet=True))
    diff = max(_max_diff(read_metrics(stacked / f"seed_{s}" / "metrics.jsonl"),
                         read_metrics(separate / f"seed_{s}" / "metrics.jsonl")) for s in range(size))
    r = {"preset": preset, "size": size, "steps": steps, "separate_wall": sep_wall, "separate_cpu": sep_cpu,
         "stacked_wall": ens_wall, "stacked_cpu": ens_cpu, "wall_ratio": sep_wall / ens_wall,
         "cpu_ratio": sep_cpu / ens_cpu, "max_metric_diff": diff}
    print(f"{preset:<16} {size:>2} {steps:>6} {sep_wall:>8.1f} {sep_cpu:>8.1f} {ens_wall:>8.1f} {ens_cpu:>8.1f} "
          f"{r['wall_ratio']:>7.2f}x {r['cpu_ratio']:>7.2f}x {diff:>10.1e}", flush=True)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny", help="comma-separated presets (default tiny)")
    ap.add_argument("--size", type=int, default=4, help="ensemble size S (default 4)")
    ap.add_argument("--steps", type=int, default=600, help="steps per run (default 600)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default=None, help="directory for runs (default: a temp dir, removed)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-ensemble-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench_ensemble: {time.strftime('%Y-%m-%d %H:%M')}, {machine()}, device {args.device}, "
          "one thread")
    print("# S separate runs one after another vs one train.ensemble=S run; same seeds, data, steps, "
          "evaluations and checkpoints")
    print(f"{'preset':<16} {'S':>2} {'steps':>6} {'sep s':>8} {'sep CPU':>8} {'stack s':>8} {'stk CPU':>8} "
          f"{'wall':>8} {'CPU':>8} {'max diff':>10}")
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "results": []}
    try:
        for preset in [p.strip() for p in args.presets.split(",")]:
            out["results"].append(bench_preset(work, preset, args.size, args.steps, args.device))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("(ratios: separate / stacked, > 1 = the stacked ensemble is faster; max diff: the largest "
          "|member metric - separate run's metric| over every row)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
