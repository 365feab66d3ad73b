"""Benchmark: a full causal-tracing grid, batched vs one query at a time, in the same run.

For each model family it builds the model (seeded; weights do not change the timing), takes
300 two-hop queries of the tiny preset's graph (E=100, R=20; split train_inferred because the
tiny ID test has fewer than 300 queries), one corruption (r1), and times

  batched   groklab.analysis.tracing.trace_grid: one forward per stage over
            (positions x queries) rows, the clean state patched in via a hook
  loop      trace_grid_loop: one forward per (query, stage, position), as the reference
            notebooks did (the clean run is cached once per query)

over all stages x positions x queries, checks that both give the same top-1 answers and
probabilities, and prints the speedup. "plain fwd s" is the time of unhooked forward passes
over the same number of rows: the compute floor of re-running the model per patched cell, so
batched / plain shows the patching overhead. ``--run RUN`` times a trained run's model instead.

Usage: python bench/bench_tracing.py [--n 300] [--families decoder,looped,recursive]
       [--loop-n N] [--device auto|cpu|cuda] [--threads 1] [--run RUN] [--json OUT]
--loop-n times the loop on the first N queries only and scales it to n (labelled).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

try:
    import groklab  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from groklab.analysis.counterfactual import build_counterfactuals  # noqa: E402
from groklab.analysis.io import load_at, resolve_device  # noqa: E402
from groklab.analysis.queries import two_hop_queries  # noqa: E402
from groklab.analysis.tracing import subset_counterfactuals, trace_grid, trace_grid_loop  # noqa: E402
from groklab.data import data_config, make_dataset  # noqa: E402
from groklab.models import ModelConfig, build_model, count_params  # noqa: E402

# The tiny preset's decoder (src/groklab/configs/tiny.yaml) and same-width looped / recursive models.
FAMILIES = {
    "decoder": dict(family="decoder", n_layers=2, d_model=128, n_heads=4, max_len=4),
    "looped": dict(family="looped", n_layers=2, n_loops=2, d_model=128, n_heads=4, max_len=4),
    "recursive": dict(family="recursive", n_layers=2, h_cycles=2, l_cycles=6, d_model=128,
                      n_heads=4, max_len=4, mixer="mlp_t"),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _plain_forwards(model, cf, stages: int, device, batch_size: int = 8192) -> float:
    """Seconds for unhooked forwards over the same rows (stages x positions x queries): the
    compute floor of any implementation that re-runs the model per patched cell."""
    ids = cf.corrupted.input_ids.to(device)
    rows = ids.repeat(ids.shape[1], 1)
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(stages):
            for lo in range(0, rows.shape[0], batch_size):
                model(rows[lo:lo + batch_size])
    _sync(device)
    return time.perf_counter() - t0


def bench_model(name, model, dataset, n, split, loop_n, device) -> dict:
    model = model.to(device).eval()
    queries = two_hop_queries(dataset, split, model.answer_slot, n=n, seed=0)
    cf = build_counterfactuals(dataset, queries, "r1", seed=0)
    trace_grid(model, subset_counterfactuals(cf, np.arange(min(8, len(cf.clean)))))  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    fast = trace_grid(model, cf)
    _sync(device)
    t_fast = time.perf_counter() - t0
    t_floor = _plain_forwards(model, cf, stages=fast.top1.shape[1], device=device)
    m = len(cf.clean) if loop_n is None else min(loop_n, len(cf.clean))
    sub = cf if m == len(cf.clean) else subset_counterfactuals(cf, np.arange(m))
    t0 = time.perf_counter()
    slow = trace_grid_loop(model, sub)
    _sync(device)
    t_loop_measured = time.perf_counter() - t0
    t_loop = t_loop_measured * len(cf.clean) / m
    same_top1 = bool((fast.top1[:m] == slow.top1).all())
    max_dp = float(np.abs(fast.prob_clean[:m] - slow.prob_clean).max())
    stages, positions = fast.top1.shape[1:]
    return {"model": name, "params": count_params(model), "queries": len(cf.clean),
            "stages": stages, "positions": positions,
            "cells": len(cf.clean) * stages * positions,
            "batched_s": round(t_fast, 4), "plain_forward_s": round(t_floor, 4),
            "loop_s": round(t_loop, 3),
            "loop_measured_on": m, "speedup": round(t_loop / t_fast, 1),
            "same_top1": same_top1, "max_abs_dprob": max_dp}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="queries (default 300)")
    ap.add_argument("--families", default="decoder,looped,recursive",
                    help="comma list of decoder, looped, recursive")
    ap.add_argument("--loop-n", type=int, default=None,
                    help="time the one-query loop on this many queries and scale (default: all)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--run", default=None, help="a trained run directory to time instead")
    ap.add_argument("--split", default="train_inferred", help="split of the queries")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rows = []
    if args.run:
        model, dataset, step = load_at(args.run, None, device)
        rows.append(bench_model(f"{Path(args.run).name}@{step}", model, dataset, args.n,
                                args.split, args.loop_n, device))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
            dataset = make_dataset(data_config("tiny"), Path(tmp) / "data")
            for fam in args.families.split(","):
                torch.manual_seed(0)
                model = build_model(ModelConfig(**FAMILIES[fam]), dataset.vocab_size)
                rows.append(bench_model(fam, model, dataset, args.n, args.split, args.loop_n,
                                        device))
    print(f"device {device}, torch threads {torch.get_num_threads()}, corruption r1, "
          f"all stages x positions x queries")
    head = f"{'model':<12}{'params':>9}{'queries':>8}{'grid':>7}{'cells':>8}" \
           f"{'batched s':>11}{'plain fwd s':>13}{'loop s':>9}{'speedup':>9}  same"
    print(head)
    for r in rows:
        loop = f"{r['loop_s']:.2f}" + ("*" if r["loop_measured_on"] < r["queries"] else "")
        print(f"{r['model']:<12}{r['params']:>9,}{r['queries']:>8}"
              f"{str(r['stages']) + 'x' + str(r['positions']):>7}{r['cells']:>8}"
              f"{r['batched_s']:>11.3f}{r['plain_forward_s']:>13.3f}{loop:>9}{r['speedup']:>8.1f}x  "
              f"{'yes' if r['same_top1'] else 'NO'} (max |dp| {r['max_abs_dprob']:.1e})")
    if any(r["loop_measured_on"] < r["queries"] for r in rows):
        print("* loop timed on --loop-n queries and scaled linearly")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["same_top1"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
