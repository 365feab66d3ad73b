"""``groklab train``: train a model on a dataset into a run directory (resumable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from groklab.errors import GroklabError

# what --resume may change: groklab.train.rundir.RESUMABLE_FIELDS (not imported here: the CLI stays
# fast to start without torch; tests/train/test_train_cli.py checks the two agree)
RESUMABLE_HELP = ("train.{steps, device, threads, eval_batch_size, early_stop_patience, "
                  "early_stop_delta, plots, checkpoint_every, compile, stop_at, stop_unless_forecast, "
                  "forecast_model}")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a decoder, looped or recursive transformer into a run directory",
        description="Train a model from a preset or a YAML config into the run directory --out:\n"
        "config.yaml, metrics.jsonl, summary.json, checkpoints/, plots/ (and data/ when the\n"
        "dataset is generated). The config is validated before anything is written.\n"
        "Interrupt at any time (Ctrl-C saves a checkpoint) and continue with --resume.",
        epilog="examples:\n  groklab train --preset tiny --out runs/tiny\n"
        "  groklab train --preset tiny --out runs/tiny-wd1 --set optim.weight_decay=1.0\n"
        "  groklab train --out runs/tiny --resume --steps 20000\n"
        "  groklab train --preset tiny --out runs/tiny-ft --init-from runs/tiny@2000 --data DIR",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME",
                     help="a bundled preset (e.g. tiny, small, paper, tiny_looped, tiny_recursive)")
    src.add_argument("--config", metavar="FILE", help="a YAML run config (sections data, model, optim, train)")
    p.add_argument("--out", required=True, metavar="RUN", help="the run directory to create (or to resume)")
    p.add_argument("--data", metavar="DIR",
                   help="train on this existing dataset directory instead of generating the "
                   "config's dataset into RUN/data (its checksums are verified first)")
    p.add_argument("--model", choices=("decoder", "looped", "recursive"),
                   help="override model.family (the other model fields keep the config's values)")
    p.add_argument("--steps", type=int, metavar="N", help="override train.steps (the step budget)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="override train.device: auto = cuda when available, else cpu")
    p.add_argument("--seed", type=int, metavar="N",
                   help="override train.seed (model init and batch order; the dataset keeps data.seed)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest good checkpoint (its config.yaml "
                   "is used; only " + RESUMABLE_HELP + " may change); a finished run is left as it is")
    p.add_argument("--init-from", metavar="RUN[@STEP]", dest="init_from",
                   help="fine-tune: start a new run from RUN's weights at checkpoint STEP (default: "
                   "its newest good one; EMA weights when kept) with a fresh optimizer; same "
                   "model shapes and vocabulary required")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages (for scripts)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write every metrics row as TensorBoard scalars into RUN/tensorboard "
                        "(needs the extra: pip install 'groklab[tensorboard]')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override any config field, e.g. --set optim.lr=1e-3 --set "
                   "train.eval_every=200 --set data.phi=7.2 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    p.add_argument("--eval-loops", action="append", metavar="N[,N..]", help="looped models: also "
                   "evaluate every probe with N loops at each evaluation (test-time depth; metrics "
                   "keys acc@loopsN/<split>); repeatable or a comma list")
    p.add_argument("--eval-cycles", action="append", metavar="H,L", help="recursive models: also "
                   "evaluate with H x L cycles (keys acc@cyclesHxL/<split>); repeatable")
    p.set_defaults(func=run)


def _overrides(args) -> list[str]:
    items = list(args.overrides)
    if args.model:
        items.append(f"model.family={args.model}")
    if args.steps is not None:
        items.append(f"train.steps={args.steps}")
    if args.device:
        items.append(f"train.device={args.device}")
    if args.seed is not None:
        items.append(f"train.seed={args.seed}")
    if args.data:
        items.append(f"data_path={args.data}")
    return items


def run(args) -> int:
    from groklab.train import load_config, train_run
    from groklab.train.rundir import CONFIG_NAME

    source = args.preset or args.config
    overrides = _overrides(args)
    if args.resume:
        stored = Path(args.out) / CONFIG_NAME
        if source:
            cfg = load_config(source, overrides)
        elif stored.is_file():  # the normal config reader: one-line errors for a broken file
            cfg = load_config(stored, overrides)
        else:
            raise GroklabError(f"out={args.out!r} has no {CONFIG_NAME}: nothing to resume")
    else:
        if not source:
            raise GroklabError("--preset or --config is required (or --resume an existing --out)")
        cfg = load_config(source, overrides)
    callbacks = []
    if args.eval_loops or args.eval_cycles:
        from groklab.models.depth import check_depth_for
        from groklab.train.depth import DepthEvalCallback, parse_depths

        field = "eval_loops" if args.eval_loops else "eval_cycles"
        depths = [check_depth_for(cfg.model, d, field)
                  for d in parse_depths(args.eval_loops, args.eval_cycles)]
        callbacks.append(DepthEvalCallback(depths))
    if args.tensorboard:
        from groklab.export.tensorboard import TensorBoardCallback

        callbacks.append(TensorBoardCallback(args.out))  # last: records what others add
    if args.init_from and args.resume:
        raise GroklabError("--init-from is only for a new run (--resume continues from the run's "
                           "own checkpoints)")
    summary = train_run(cfg, args.out, resume=args.resume, quiet=args.quiet, callbacks=callbacks,
                        init_from=args.init_from)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet and "members" in summary:  # train.ensemble > 1: one line per member run
        for name, member in summary["members"].items():
            first = member.get("first_step", {})
            reached = ", ".join(f"{k} at step {v}" for k, v in first.items() if v is not None)
            print(f"{Path(args.out) / name}: {member.get('steps')} steps ({member.get('stopped')}); "
                  f"{reached or 'no threshold reached'}")
    elif not args.quiet:  # the trainer has logged the summary line; say where it is kept
        print(f"{args.out}: {summary.get('steps')} steps; summary.json and metrics.jsonl there")
    return 0
