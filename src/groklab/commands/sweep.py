"""``groklab sweep SWEEP.yaml --out DIR``: run a grid / random sweep of training runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from groklab.errors import GroklabError


def _handler(args) -> int:
    from groklab.sweep import ENGINES, load_sweep, parse_asha, plot_sweep, run_sweep
    from groklab.sweep.summary import SUMMARY_NAME, read_summary_csv

    if args.engine not in ENGINES:  # argparse checks choices; kept for direct calls
        raise GroklabError(f"--engine={args.engine!r} is invalid (allowed: {' | '.join(ENGINES)})")
    if args.jobs is not None and args.jobs < 1:
        raise GroklabError(f"--jobs={args.jobs} is invalid (allowed: [1, inf])")
    spec = load_sweep(args.sweep)
    trials = spec.trials()
    if args.dry_run:
        print(f"{spec.name}: {len(trials)} trials (base {spec.base})")
        for t in trials:
            values = ", ".join(f"{k}={v}" for k, v in t.params.items())
            print(f"  {t.name}  {values}")
        return 0
    out = Path(args.out)
    if args.plot_only:
        path = out / SUMMARY_NAME
        if not path.is_file():
            raise GroklabError(f"--out={str(out)!r} is invalid with --plot-only (allowed: a sweep "
                               f"directory with {SUMMARY_NAME}; run the sweep first)")
        plots = plot_sweep(out, read_summary_csv(path))
        print("\n".join(f"wrote {p}" for p in plots) or "nothing to plot: phi and the exposure "
              "ratios are each the same in every finished trial")
        return 0
    asha = parse_asha(args.asha, "--asha") if args.asha else None
    t0 = time.perf_counter()
    result = run_sweep(spec, out, engine=args.engine, n_jobs=args.jobs, plot=args.plot, quiet=args.quiet,
                       address=args.address, asha=asha, cpus_per_trial=args.cpus_per_trial,
                       gpus_per_trial=args.gpus_per_trial, stack=args.stack)
    bad = result.count("failed") + result.count("interrupted")
    print(f"{spec.name}: {len(result.rows)} trials ({len(result.skipped)} already complete) in "
          f"{time.perf_counter() - t0:.1f}s: {result.count('done')} done, {result.count('failed')} failed, "
          f"{result.count('stopped')} stopped, {result.count('interrupted')} interrupted; "
          f"summary {result.summary_path}")
    for p in result.plots:
        print(f"wrote {p}")
    return 1 if bad else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid / random sweep of training runs (local processes or Ray Tune)",
        description="Run every trial of a sweep file (a YAML grid and/or random search over config "
        "fields, see docs/sweeps.md) as an ordinary run directory DIR/trials/NAME, and collect "
        "DIR/summary.csv (swept values, status, grok steps, final accuracies). Re-running the same "
        "command skips finished trials, resumes interrupted ones and retries failed ones. Exit "
        "code 0 when every trial is done (or stopped by ASHA), 1 when some failed, 2 on bad input.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  groklab sweep micro --out runs/sweep-micro --jobs 2 --plot\n"
               "  groklab sweep phi --out runs/sweep-phi --engine ray --plot\n"
               "  groklab sweep phi --out runs/sweep-phi --plot-only")
    p.add_argument("sweep", metavar="SWEEP", help="the sweep file, or a bundled sweep by name (micro, phi, exposure)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="sweep directory (created if missing; an existing one is continued)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: a pool of worker processes on this machine, no extra dependency "
                        "(default); ray: Ray Tune (pip install 'groklab[ray]'), on this machine or "
                        "a cluster (--address)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="trials at once: local default = number of CPUs (one torch thread each); "
                        "ray default = as many as the per-trial resources allow")
    p.add_argument("--stack", type=int, default=1, metavar="S",
                   help="local engine: train up to S fresh trials that differ only in train.seed "
                        "as one stacked ensemble (train.ensemble, one process); each member is an "
                        "ordinary trial run whose metrics equal a separate run's within float "
                        "rounding (docs/sweeps.md). Meant for GPUs; on a CPU break-even at best "
                        "(docs/performance.md). Default 1: one trial per process")
    p.add_argument("--plot", action="store_true",
                   help="after the sweep, draw DIR/plots/phi_grok.png (phi vs grok step, Wang et "
                        "al. fig. 2a) and/or DIR/plots/exposure_map.png (hop-1 x hop-2 exposure "
                        "ratio -> OOD accuracy and bridge-found rate), whichever the sweep varies")
    p.add_argument("--plot-only", action="store_true",
                   help="only redraw the plots from DIR/summary.csv; run nothing")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the sweep file and list its trials; write nothing")
    ray = p.add_argument_group("ray engine (override the sweep file's `ray:` section)")
    ray.add_argument("--address", default=None,
                     help="Ray cluster to join (e.g. auto or ray://head:10001); default: start a "
                          "local Ray instance. DIR must be on a filesystem every node sees")
    ray.add_argument("--asha", default=None, metavar="METRIC",
                     help="stop lagging trials early with ASHA on this metrics.jsonl key, "
                          "maximised (e.g. acc/test_inferred_iid); set mode, grace_period and "
                          "reduction_factor in the sweep file's ray.asha")
    ray.add_argument("--cpus-per-trial", type=float, default=None, metavar="N",
                     help="CPUs Ray reserves per trial (default 1)")
    ray.add_argument("--gpus-per-trial", type=float, default=None, metavar="F",
                     help="GPUs per trial; a fraction shares one GPU among several small runs "
                          "(default 0.25 when the cluster has GPUs, else 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_handler)
