"""``groklab forecast``: will this run reach its target within the budget, and when?

    groklab forecast RUN [--target test_inferred_ood>=0.9] [--budget STEPS] [--at STEP] [--json]
    groklab forecast fit SWEEP_DIR... --out MODEL.json [--target T ...]
    groklab forecast --evaluate SWEEP_DIR... [--out DIR] [--target T ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from groklab.errors import bad_value

# the targets (ID >= .9, OOD >= .5), the command's default (OOD >= .9), and ID >= .7, which
# a quarter of the corpus' runs reach (at this micro scale 15 of 200 reach ID >= .9 in 800 steps)
EVAL_TARGETS = ("test_inferred_iid>=0.9", "test_inferred_iid>=0.7", "test_inferred_ood>=0.5",
                "test_inferred_ood>=0.9")


def _targets(args):
    from groklab.forecast import parse_target

    return [parse_target(t) for t in (args.target or EVAL_TARGETS)]


def _fit(args, dirs) -> int:
    from groklab.analysis.forecast_corpus import fit_corpus, load_corpus

    if not args.out:
        raise bad_value("--out", None, "MODEL.json, where `forecast fit` writes the model")
    if not dirs:
        raise bad_value("SWEEP_DIR", None, "one or more sweep directories to fit on")
    runs = load_corpus(dirs)
    model = fit_corpus(runs, _targets(args))
    model.meta["fitted"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    model.save(args.out)
    entries = ", ".join(f"{k} ({v.info.get('n_examples')} examples, {v.info.get('n_hit')} reach)"
                        for k, v in model.targets.items())
    print(f"forecast fit: {len(runs)} runs of {len(model.meta['sweeps'])} sweeps -> {args.out}: {entries}")
    return 0


def _evaluate(args, dirs) -> int:
    from groklab.analysis.forecast_corpus import load_corpus
    from groklab.analysis.forecast_evaluate import evaluate_corpus
    from groklab.analysis.forecast_report import table, write_evaluation

    if not dirs:
        raise bad_value("SWEEP_DIR", None, "two or more sweep directories (held out one at a time)")
    runs = load_corpus(dirs)
    if len({r.sweep for r in runs}) < 2:
        raise bad_value("SWEEP_DIR", " ".join(map(str, dirs)),
                        "at least two sweeps with finished runs (each is held out in turn)")
    result = evaluate_corpus(runs, _targets(args), stop_below=args.stop_below)
    out = Path(args.out or "forecast-evaluation")
    paths = write_evaluation(result, out)
    print(table(result))
    print("\n".join(f"wrote {p}" for p in paths))
    return 0


def _print(fc: dict) -> None:
    print(f"forecast for {fc['run']} at step {fc['step']} of a {fc['budget']}-step budget: {fc['target']}")
    print(f"  probability within budget: {fc['probability']:.3f}")
    if fc["predicted_step"] is not None:
        lo, hi = fc["interval"]
        print(f"  predicted step: {fc['predicted_step']} (interval {lo} - {hi})")
    else:
        print("  predicted step: none (not expected within the budget)")
    print(f"  recommendation: {fc['recommendation']}")
    if fc["signals"]:
        print("  signals (contribution to the log-odds):")
        for s in fc["signals"]:
            print(f"    {s['feature']:<18} = {s['value']:>8.4g}  {s['log_odds']:+.2f}   {s['means']}")


def _handler(args) -> int:
    from groklab.analysis.forecast_runs import DEFAULT_TARGET, forecast_run

    if args.stop_below is not None and not 0 < args.stop_below <= 0.5:
        raise bad_value("--stop-below", args.stop_below, "(0, 0.5]")
    items = list(args.items)
    if args.evaluate:
        return _evaluate(args, items)
    if items and items[0] == "fit":
        return _fit(args, items[1:])
    if len(items) != 1:
        raise bad_value("RUN", " ".join(items) or None,
                        "one run directory (or `fit SWEEP_DIR...`, or --evaluate SWEEP_DIR...)")
    if args.target and len(args.target) > 1:
        raise bad_value("--target", args.target, "one target for a run forecast")
    if args.budget is not None and args.budget < 1:
        raise bad_value("--budget", args.budget, "a number of steps >= 1")
    fc = forecast_run(items[0], args.target[0] if args.target else DEFAULT_TARGET, budget=args.budget,
                      at=args.at, model=args.model, stop_below=args.stop_below)
    if args.json:
        json.dump(fc, sys.stdout, indent=1)
        print()
    else:
        _print(fc)
    return 0


def register(subparsers) -> None:
    from groklab.forecast.predict import STOP_BELOW

    p = subparsers.add_parser(
        "forecast", help="predict whether and when a run reaches a target (e.g. OOD >= .9) within its budget",
        description="From a run's metrics so far (and logit-lens rows if any), the probability that "
        "TARGET is reached within the budget, the predicted step with an interval, the signals that "
        "drive it and a recommendation (docs/forecast.md). `forecast fit SWEEP_DIR... --out M.json` "
        "fits a model on finished sweeps; `forecast --evaluate SWEEP_DIR...` scores it leave-one-"
        "sweep-out at 10/25/50%% of the budget against baselines.")
    p.add_argument("items", nargs="*", metavar="RUN | fit SWEEP_DIR...",
                   help="a run directory; or `fit` and sweep directories; or sweep directories with --evaluate")
    p.add_argument("--target", action="append", default=None,
                   help="SPLIT>=X (default test_inferred_ood>=0.9; fit/evaluate: repeatable, default "
                   + ", ".join(EVAL_TARGETS) + ")")
    p.add_argument("--budget", type=int, default=None, help="steps the run may take (default: its train.steps)")
    p.add_argument("--at", type=int, default=None, help="forecast from the rows up to this step only")
    p.add_argument("--model", default=None, help="a model JSON from `forecast fit` (default: the shipped one)")
    p.add_argument("--stop-below", type=float, default=STOP_BELOW,
                   help=f"probability under which the advice is to stop (default {STOP_BELOW})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--evaluate", action="store_true", help="leave-one-sweep-out evaluation of SWEEP_DIRs")
    p.add_argument("--out", default=None, help="fit: MODEL.json; --evaluate: output directory "
                   "(default forecast-evaluation)")
    p.set_defaults(func=_handler)
