"""``groklab export RUN --format hf|tensorboard --out DIR``: a run in the ecosystem's formats."""

from __future__ import annotations

import argparse

FORMATS = ("hf", "tensorboard")


def _handler(args) -> int:
    from groklab.errors import GroklabError

    if args.format == "hf":
        from groklab.export.hf import export_run_hf

        out = export_run_hf(args.run, args.out, step=args.step, ema=not args.no_ema, force=args.force)
        print(f"wrote {out}: GPT2LMHeadModel (config.json, model.safetensors) and a tokenizer over the "
              "task vocabulary; load with transformers.GPT2LMHeadModel.from_pretrained / "
              "AutoTokenizer.from_pretrained, read the answer at position length-1")
        return 0
    if args.format == "tensorboard":
        from groklab.export.tensorboard import write_tensorboard

        if args.step is not None or args.no_ema:
            raise GroklabError("--step/--no-ema are invalid with --format tensorboard (allowed: "
                               "--format hf; tensorboard exports the whole metrics.jsonl)")
        out = write_tensorboard(args.run, args.out, force=args.force)
        print(f"wrote {out}: view with  tensorboard --logdir {out}")
        return 0
    raise GroklabError(f"--format={args.format!r} is invalid (allowed: {' | '.join(FORMATS)})")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a run: Hugging Face GPT-2 directory or TensorBoard scalars",
        description="Export a run directory to the ecosystem's formats (docs/export.md).\n"
        "  hf: a decoder checkpoint as a transformers GPT2LMHeadModel directory plus a tokenizer\n"
        "      over the task's vocabulary (decoder, or looped without step embedding, unrolled).\n"
        "  tensorboard: the run's metrics.jsonl as TensorBoard scalars.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  groklab export runs/tiny --format hf --out runs/tiny-hf\n"
               "  groklab export runs/tiny --format hf --step 2000 --out runs/tiny-hf-2000\n"
               "  groklab export runs/tiny --format tensorboard --out runs/tiny-tb")
    p.add_argument("run", metavar="RUN", help="a run directory made by `groklab train`")
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="hf: Hugging Face GPT2LMHeadModel + tokenizer; tensorboard: event files of "
                        "every metrics row")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="directory to write (must not exist or be empty unless --force; written "
                        "atomically)")
    p.add_argument("--step", type=int, default=None, metavar="N",
                   help="hf: the checkpoint step to export (default: the latest checkpoint that "
                        "verifies)")
    p.add_argument("--no-ema", action="store_true",
                   help="hf: export the trained weights even when the run kept an EMA of weights "
                        "(default: the EMA weights, the ones evaluated)")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=_handler)
