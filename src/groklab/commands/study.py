"""``groklab reproduce``: run the study end to end and write its report."""

from __future__ import annotations

import sys

from groklab.errors import GroklabError, check_range

# the scales' names, here so that `groklab --help` need not import torch; equal to
# groklab.study.SCALES (tests/study/test_scales.py checks it)
SCALE_NAMES = ("micro", "tiny", "cpu", "cpu_grok", "cpu_l6", "cpu_l6_long", "small", "paper")


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="reproduce 'Is Grokking Worthwhile?' end to end and write a report",
        description=(
            "Run the study's pipeline at a chosen scale: datasets for the five augmentation "
            "regimes and a fully supervised control; pretraining per regime and model family with "
            "logit-lens curves; claim 1 (same inference path), claim 2 (fake grokking), claim 3 "
            "(transfer of injected facts), compute vs data; then STUDY/report.md and a "
            "self-contained STUDY/report.html with verdicts by stated rules. Interrupt it at any "
            "time: running the same command again reuses finished stages and runs and resumes "
            "an interrupted run from its checkpoint. Scales: micro (CI, ~1 min), tiny (make "
            "demo, <= 15 min on a 2-core CPU), cpu (tiny with budgets for claims 1, 3 and 4: "
            "34 min per seed on an idle 2-core CPU, measured), small (hours on CPU), paper "
            "(the study's sizes: a GPU job of roughly 400 GPU-hours; prints its cost estimate and asks before "
            "starting). See docs/study.md."))
    p.add_argument("--scale", default="tiny", choices=SCALE_NAMES,
                   help="study scale: graph size, model sizes, step budgets (default: tiny)")
    p.add_argument("--out", required=True, metavar="STUDY",
                   help="study directory; an existing one is resumed (same scale only)")
    p.add_argument("--models", default="decoder,recursive", metavar="F1,F2",
                   help="model families to study, comma-separated, from decoder, recursive, "
                        "looped (default: decoder,recursive)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--jobs", default="auto", metavar="N",
                   help="training runs in parallel processes, one torch thread each; auto (the "
                        "default) = one per CPU core (at most 4) on CPU, 1 on a GPU. Measured "
                        "on a 2-core CPU in docs/study.md")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="replicate the study over N seeds (train.seed 0..N-1; the graph is "
                        "fixed unless --vary-graph): STUDY/seeds/<k>/ holds each seed's study, "
                        "STUDY/report.* the evidence pooled over seeds with 95%% intervals and "
                        "the verdicts on it (default: 1)")
    p.add_argument("--stack", type=int, default=1, metavar="S",
                   help="with --seeds: train up to S seeds' fresh pretraining runs of one family "
                        "and regime as one stacked ensemble (train.ensemble, one process), each "
                        "seed still an ordinary run directory whose metrics equal a separate "
                        "run's within float rounding. Meant for GPUs; on a CPU break-even at best "
                        "(docs/performance.md). Default 1")
    p.add_argument("--vary-graph", action="store_true",
                   help="with --seeds: seed k also draws graph k (data.seed = k)")
    p.add_argument("--yes", action="store_true",
                   help="start a paper-scale study without asking for confirmation")
    p.add_argument("--estimate-only", action="store_true",
                   help="print the cost estimate of the chosen scale and exit")
    p.set_defaults(func=run_reproduce)


def run_reproduce(args) -> int:
    from groklab.study.cost import format_estimate
    from groklab.study.pipeline import Study
    from groklab.study.scales import get_scale, parse_families
    from groklab.train.config import check_device

    scale = get_scale(args.scale)
    families = parse_families(args.models)
    check_device(args.device)
    from groklab.train.loop import resolve_device
    resolve_device(args.device)  # a missing CUDA is refused before the study directory exists
    jobs = _parse_jobs(args.jobs, args.device)

    seeds = check_range("seeds", args.seeds, 1, 100)
    if scale.gpu_job or scale.name == "small" or args.estimate_only:
        rows, data_items = _estimate(scale, families, seeds)
        print(format_estimate(scale, rows, data_items, seeds, jobs))
        if args.estimate_only:
            return 0
        if scale.gpu_job and not args.yes:
            if not sys.stdin.isatty():
                raise GroklabError("yes=False is invalid for --scale paper without a terminal "
                                   "(allowed: pass --yes to start the GPU job)")
            answer = input("Start this study? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("not started")
                return 1

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"groklab reproduce: scale {scale.name}, models {','.join(families)}, device "
        f"{args.device}, jobs {jobs}, out {args.out}")
    if args.vary_graph and seeds == 1:
        raise GroklabError("vary_graph=True is invalid with seeds=1 (allowed: --vary-graph with "
                           "--seeds N, N >= 2)")
    stack = check_range("stack", args.stack, 1, 100)
    if stack > 1 and seeds == 1:
        raise GroklabError(f"stack={stack} is invalid with seeds=1 (allowed: 1, or --stack S with "
                           "--seeds N, N >= 2: it stacks the seeds' runs)")
    if seeds == 1:       # the study logs the report line itself
        Study(args.out, scale, families, device=args.device, jobs=jobs, log=log).run()
    else:
        from groklab.study.seeds import SeededStudy
        SeededStudy(args.out, scale, families, seeds, vary_graph=args.vary_graph,
                    device=args.device, jobs=jobs, log=log, stack=stack).run()
    return 0


def _parse_jobs(text, device: str) -> int:
    from groklab.study.pipeline import default_jobs

    if str(text) == "auto":
        return default_jobs(device)
    try:
        jobs = int(text)
    except ValueError:
        raise GroklabError(f"jobs={text!r} is invalid (allowed: auto or an integer in [1, 64])") from None
    return check_range("jobs", jobs, 1, 64)


def _estimate(scale, families, seeds=1):
    from groklab.data.vocab import composition_vocab
    from groklab.study.cost import estimate
    from groklab.study.engine import n_params

    vocab = len(composition_vocab(scale.data["entities"], scale.data["relations"]))
    params = {f: n_params(scale.models[f], vocab) for f in families}
    anchor = params.get("recursive") or n_params(scale.models["recursive"], vocab)
    data_items = 6 * int(round(scale.data["phi"] * scale.data["entities"]
                               * scale.data["out_degree"] * (1 - scale.data["ood_ratio"])))
    return estimate(scale, families, params, anchor, seeds), data_items
