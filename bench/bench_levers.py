"""Optimizer and loss levers of issue 15: steps (and time) to grok, each lever alone and combined.

``--target tiny``: the ``tiny`` preset from a fresh start (a new ``groklab train`` process, as
bench_grok's target 1) to ``test_inferred_iid >= 0.9``, one thread, per recipe and seed: the
preset itself, each lever added alone (Muon on the hidden matrices, ⊥Grad, ⊥Grad + StableMax,
Grokfast-EMA) and the best combination found. Targets: median <= 1,000 steps and <= 15 s wall.

``--target phi72``: phi = 7.2 on the tiny graph with bench_grok's model and data (2 x 128
decoder at GPT-2 init, batch 512, bf16 autocast), in-process runs to ID >= 0.9 within
``--budget`` steps: issue 7's best recipe (lr 1e-3, wd 5.0, Grokfast-EMA 0.99), each lever
added to it alone, and their combination. Target: a recipe <= 2,000 steps on every seed.
(The standard recipe's own step is not rerun here: bench_grok recorded > 60,000 steps for
seeds 0 and 1, docs/performance.md.)

Every lever changes the optimizer or the loss only, never the data. Printed per recipe: the
steps to the target per seed ("> N" = not within the budget), their median, median wall and
CPU seconds (tiny: the child process; phi72: the run's thread).

Usage: python bench/bench_levers.py [--target tiny|phi72|all] [--seeds 0,1,2]
       [--recipes NAME,...] [--budget N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_grok import (PHI72_BASE, PHI72_RECIPES, TARGET, fresh_start, machine,  # noqa: E402
                        phi72_config)

from groklab.data import make_dataset  # noqa: E402
from groklab.train import load_config, train_run  # noqa: E402

MUON = ["optim.optimizer=muon"]
PERP = ["optim.perp_grad=true"]
STABLEMAX = ["model.loss=stablemax"]
GF_EMA = ["optim.grokfast=ema", "optim.grokfast_alpha=0.98", "optim.grokfast_lamb=2.0"]
EMA99 = ["optim.ema_decay=0.99"]
EMA995 = ["optim.ema_decay=0.995"]
CONST = ["optim.schedule=constant"]
WD1 = ["optim.weight_decay=1.0"]

TINY_RECIPES = {  # key: (name, overrides of the tiny preset)
    "preset": ("tiny preset (AdamW)", []),
    "muon": ("+ muon", MUON),
    "perp": ("+ perp_grad", PERP),
    "perp-sm": ("+ perp_grad + stablemax", PERP + STABLEMAX),
    "gf-ema": ("+ grokfast-ema", GF_EMA),
    # best found (docs/performance.md): Muon (lr 4e-3 took the same 1,600 steps as the preset's
    # 2e-3) with bf16 autocast (issue 7's opt-in speed lever: fewer seconds per step on AVX512-BF16)
    "best": ("best: muon, lr 4e-3, bf16 autocast", MUON + ["optim.lr=4e-3", "train.amp=bf16"]),
    # weight EMA (evaluated on the averaged weights; issue 15, 2026-12-02 session): alone, with a
    # constant lr and wd 1.0 (the decoder recipe that grokked at the study's cpu scale), with Muon
    "ema99": ("+ ema .99", EMA99),
    "ema995": ("+ ema .995", EMA995),
    "ema99-const": ("+ ema .99, constant lr", EMA99 + CONST),
    "ema99-const-wd1": ("+ ema .99, constant lr, wd 1.0", EMA99 + CONST + WD1),
    "ema99-lr4": ("+ ema .99, lr 4e-3", EMA99 + ["optim.lr=4e-3"]),
    "ema99-const-lr4": ("+ ema .99, constant lr 4e-3", EMA99 + CONST + ["optim.lr=4e-3"]),
    "muon-ema99": ("+ muon + ema .99", MUON + EMA99),
    "muon-ema995": ("+ muon + ema .995", MUON + EMA995),
    "muon-ema99-const": ("+ muon + ema .99, constant lr", MUON + EMA99 + CONST),
    "muon-ema99-lr4": ("+ muon + ema .99, lr 4e-3", MUON + EMA99 + ["optim.lr=4e-3"]),
    "muon-ema99-lr8": ("+ muon + ema .99, lr 8e-3", MUON + EMA99 + ["optim.lr=8e-3"]),
    "muon-ema99-const-wd1": ("+ muon + ema .99, constant lr, wd 1.0", MUON + EMA99 + CONST + WD1),
    "muon-ema99-b128": ("+ muon + ema .99, batch 128", MUON + EMA99 + ["train.batch_size=128"]),
    "muon-ema99-b512": ("+ muon + ema .99, batch 512", MUON + EMA99 + ["train.batch_size=512"]),
    "muon-ema99-lr4-b512": ("+ muon + ema .99, lr 4e-3, batch 512",
                            MUON + EMA99 + ["optim.lr=4e-3", "train.batch_size=512"]),
    "muon-ema99-lr8-b512": ("+ muon + ema .99, lr 8e-3, batch 512",
                            MUON + EMA99 + ["optim.lr=8e-3", "train.batch_size=512"]),
    "muon-ema99-lr8-b512-bf16": ("+ muon + ema .99, lr 8e-3, batch 512, bf16",
                                 MUON + EMA99 + ["optim.lr=8e-3", "train.batch_size=512",
                                                 "train.amp=bf16"]),
    "muon-ema99-lr8-b1024": ("+ muon + ema .99, lr 8e-3, batch 1024",
                             MUON + EMA99 + ["optim.lr=8e-3", "train.batch_size=1024"]),
}

ISSUE7_BEST = PHI72_RECIPES["best"][1]
EMA_RECIPE = ["optim.lr=2e-3", "optim.weight_decay=1.0", "optim.warmup_steps=100",
              "optim.schedule=constant", "optim.grad_clip=1.0", "optim.ema_decay=0.99"]
PHI72_LEVERS = {  # key: (name, overrides on top of PHI72_BASE)
    "issue7": ("issue-7 best (lr 1e-3, wd 5, gf-ema .99)", ISSUE7_BEST),
    "muon": ("+ muon", ISSUE7_BEST + MUON),
    "perp": ("+ perp_grad", ISSUE7_BEST + PERP),
    "perp-sm": ("+ perp_grad + stablemax", ISSUE7_BEST + PERP + STABLEMAX),
    # the combination tried (measured worse than issue 7's recipe: docs/performance.md)
    "combined": ("combined: + muon + perp_grad", ISSUE7_BEST + MUON + PERP),
    # the decoder recipe that grokked at the study's cpu scale (docs/study.md, 2026-12-02):
    # AdamW lr 2e-3 constant after 100 warmup steps, wd 1.0, weight EMA .99 (no Grokfast)
    "ema-const-wd1": ("ema .99, lr 2e-3 constant, wd 1.0", EMA_RECIPE),
    "ema-const-wd1-muon": ("ema .99, lr 2e-3 constant, wd 1.0, + muon", EMA_RECIPE + MUON),
    # the tiny preset's fastest recipe (Muon + EMA .99, lr 8e-3, the tiny preset's cosine and wd
    # 0.1) carried over to phi = 7.2; then with the tiny preset's init (std 0.1, 8 heads) as well
    "muon-ema99-lr8": ("tiny's best: muon + ema .99, lr 8e-3", MUON + EMA99 + ["optim.lr=8e-3"]),
    "muon-ema99-lr8-init": ("tiny's best + init std 0.1, 8 heads",
                            MUON + EMA99 + ["optim.lr=8e-3", "model.init_std=0.1", "model.n_heads=8"]),
    "muon-ema99-lr4-wd1": ("muon + ema .99, lr 4e-3, wd 1.0", MUON + EMA99 + ["optim.lr=4e-3"] + WD1),
    "ema-const-wd1-muon-lr4": ("ema .99, lr 4e-3 constant, wd 1.0, + muon",
                               EMA_RECIPE + MUON + ["optim.lr=4e-3"]),
    "ema-const-wd1-muon-lr8": ("ema .99, lr 8e-3 constant, wd 1.0, + muon",
                               EMA_RECIPE + MUON + ["optim.lr=8e-3"]),
}


# The recursive model at the study's format (preset tiny_recursive: TRM d=64, mlp_t, H=2 x L=1,
# labels on every position; its own recipe already holds lr 1e-2 constant, wd 1.0, EMA 0.99).
# "without the levers" = the preset's recipe minus the EMA (the one lever of issue 15 it has).
RECURSIVE_RECIPES = {  # key: (name, overrides of the tiny_recursive preset)
    "preset": ("tiny_recursive preset (AdamW, EMA .99)", []),
    "no-ema": ("preset without EMA (no levers)", ["optim.ema_decay=0"]),
    "muon": ("+ muon", MUON),
    "muon-no-ema": ("+ muon, no EMA", MUON + ["optim.ema_decay=0"]),
    "perp": ("+ perp_grad", PERP),
    "ema995": ("EMA .995 instead of .99", ["optim.ema_decay=0.995"]),
}


def _median(values):
    """Median of steps where None (not reached) counts as +inf; None if the median is inf."""
    xs = sorted(float("inf") if v is None else v for v in values)
    m = statistics.median(xs)
    return None if m == float("inf") else m


def _steps(step, budget) -> str:
    return f"{int(step)}" if step is not None else f">{budget}"


def _table_head():
    print(f"{'recipe':<44} {'steps to ID>=.9 per seed':<26} {'median':>7} {'wall s':>7} {'CPU s':>7}")


def _table_row(name, runs, budget):
    per_seed = " ".join(_steps(r["id_step"], budget) for r in runs)
    med = _median([r["id_step"] for r in runs])
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    final = " ".join(f"{r['final_id']:.3f}" for r in runs if "final_id" in r)
    print(f"{name:<44} {per_seed:<26} {_steps(med, budget):>7} {wall:>7.1f} {cpu:>7.1f}"
          + (f"  final ID {final}" if final else ""), flush=True)
    return med


def _fresh_runner(work: Path, name: str, preset: str):
    """``run_one`` for :func:`_ablation`: each seed of a recipe as a fresh ``groklab train``
    process of ``preset`` (bench_grok.fresh_start), its run directory removed after."""
    def run_one(key, sets, seed):
        run = work / f"{name}-{key}-{seed}"
        shutil.rmtree(run, ignore_errors=True)
        r = fresh_start(run, sets + [f"train.seed={seed}"], preset=preset)
        shutil.rmtree(run, ignore_errors=True)
        return {"seed": seed, "id_step": r["first_step"], "wall": r["wall"], "cpu": r["cpu"],
                "steps": r["steps"]}
    return run_one


def _ablation(table: dict, recipes: list[str], seeds: list[int], budget: int, run_one) -> dict:
    """One table row per recipe: ``run_one(key, overrides, seed) -> run dict`` for each seed."""
    _table_head()
    out = {}
    for key in recipes:
        name, sets = table[key]
        runs = [run_one(key, sets, seed) for seed in seeds]
        out[key] = {"name": name, "runs": runs, "median": _table_row(name, runs, budget)}
    return out


def bench_tiny(work: Path, seeds: list[int], recipes: list[str]) -> dict:
    budget = load_config("tiny").train.steps
    print(f"\n## tiny preset, fresh start (new process) to {TARGET}, one thread, seeds "
          f"{','.join(map(str, seeds))}; median wall = the process's wall time (imports, data, "
          f"training), CPU = its user+sys time; budget = the preset's {budget} steps")

    out = _ablation(TINY_RECIPES, recipes, seeds, budget, _fresh_runner(work, "tiny", "tiny"))
    best = out.get("best")
    if best:
        wall = statistics.median(r["wall"] for r in best["runs"])
        cpu = statistics.median(r["cpu"] for r in best["runs"])
        ok_steps = best["median"] is not None and best["median"] <= 1000
        print(f"target (median <= 1,000 steps and <= 15 s wall): {_steps(best['median'], budget)} steps "
              f"({'met' if ok_steps else 'missed'}), {wall:.1f} s wall "
              f"({'met' if wall <= 15 else 'missed'}; {cpu:.1f} s CPU)")
    return out


def bench_phi72(work: Path, seeds: list[int], recipes: list[str], budget: int) -> dict:
    eval_every = 250
    data_path = work / "data-phi72"
    if not (data_path / "manifest.json").is_file():
        make_dataset(load_config("tiny", PHI72_BASE).data, data_path, force=True)
    print(f"\n## phi=7.2 on the tiny graph (bench_grok's data and model), in-process, one thread, "
          f"seeds {','.join(map(str, seeds))}, budget {budget} steps, eval every {eval_every}; "
          f"wall/CPU = the run's")

    def run_one(key, sets, seed):
        cfg = phi72_config(data_path, sets, seed, budget, eval_every)
        run = work / f"phi72-{key}-{seed}"
        shutil.rmtree(run, ignore_errors=True)
        t0, c0 = time.perf_counter(), time.thread_time()
        s = train_run(cfg, run, quiet=True)
        shutil.rmtree(run, ignore_errors=True)
        return {"seed": seed, "id_step": s["first_step"][TARGET], "wall": time.perf_counter() - t0,
                "cpu": time.thread_time() - c0, "steps": s["steps"],
                "final_id": s["final"]["acc/test_inferred_iid"]}

    out = _ablation(PHI72_LEVERS, recipes, seeds, budget, run_one)
    every = {key: all(r["id_step"] is not None and r["id_step"] <= 2000 for r in v["runs"])
             for key, v in out.items()}
    met = [out[k]["name"] for k, ok in every.items() if ok]
    print("target (a recipe <= 2,000 steps on every seed): "
          + (f"met by {', '.join(met)}" if met else "missed by every recipe run"))
    return out


def bench_recursive(work: Path, seeds: list[int], recipes: list[str]) -> dict:
    cfg = load_config("tiny_recursive")
    budget = cfg.train.steps
    print(f"\n## tiny_recursive (format {cfg.model.format}), fresh start (new process) to {TARGET}, "
          f"one thread, seeds {','.join(map(str, seeds))}, eval every {cfg.train.eval_every}; "
          f"wall/CPU = the process's; budget = the preset's {budget} steps")

    return _ablation(RECURSIVE_RECIPES, recipes, seeds, budget,
                     _fresh_runner(work, "recursive", "tiny_recursive"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["tiny", "phi72", "recursive", "all"], default="all")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated train seeds (default 0,1,2)")
    ap.add_argument("--recipes", default=None,
                    help="comma-separated subset (tiny: " + ", ".join(TINY_RECIPES) + "; phi72: "
                         + ", ".join(PHI72_LEVERS) + "; recursive: " + ", ".join(RECURSIVE_RECIPES)
                         + "; default all)")
    ap.add_argument("--budget", type=int, default=2500, help="phi72: step budget per run (default 2500)")
    ap.add_argument("--work", default=None, help="directory for runs (default: a temp dir, removed)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-levers-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench_levers: {time.strftime('%Y-%m-%d %H:%M')}, {machine()}")
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    t0 = time.perf_counter()
    try:
        for target, table in (("tiny", TINY_RECIPES), ("phi72", PHI72_LEVERS),
                              ("recursive", RECURSIVE_RECIPES)):
            if args.target not in (target, "all"):
                continue
            recipes = [r.strip() for r in args.recipes.split(",")] if args.recipes else list(table)
            unknown = [r for r in recipes if r not in table]
            if unknown:
                ap.error(f"--recipes: unknown {', '.join(unknown)} for {target} "
                         f"(allowed: {', '.join(table)})")
            if target == "tiny":
                out[target] = bench_tiny(work, seeds, recipes)
            elif target == "phi72":
                out[target] = bench_phi72(work, seeds, recipes, args.budget)
            else:
                out[target] = bench_recursive(work, seeds, recipes)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"# total {time.perf_counter() - t0:.0f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
