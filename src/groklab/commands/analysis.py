"""``groklab lens``, ``groklab trace``, ``groklab compare``: look inside trained runs."""

from __future__ import annotations

import argparse
import json
import sys
import time

from groklab.errors import GroklabError, check_range

POSITIONS_HELP = ("groklab rule: positions where a top-1 decode of the bridge counts as 'bridge "
                  "found': auto (causal models: r2; recursive: all), all, or a comma list such "
                  "as r1 (the study rule always uses every position)")
RULE_HELP = ("which 'found' rule the printed numbers use: groklab (allowed positions, see "
             "--positions) or study (He et al.: the token is the top-1 decode at any stage, the "
             "recursive model's initial state included, and any position); default groklab. "
             "The JSON holds both")


def register(sub) -> None:
    lens = sub.add_parser("lens", help="logit lens: decode every residual state of a run",
                          description="Decode every residual stage at every position through "
                          "the final norm (recomputed per state) and the unembedding; report "
                          "rank/MRR of the bridge and the answer per (stage, position), 'bridge "
                          "found' and 'answer found'; on a comparison run, the attribute values "
                          "at the entity positions and the label space at the answer position. "
                          "Writes JSON and a heatmap PNG into RUN/analysis/ (or --out).")
    lens.add_argument("run", metavar="RUN", help="run directory (made by `groklab train`)")
    when = lens.add_mutually_exclusive_group()
    when.add_argument("--step", type=int, default=None,
                      help="checkpoint step to analyse (default: the latest good checkpoint)")
    when.add_argument("--all-steps", action="store_true",
                      help="analyse every checkpoint: curves of bridge found / answer found "
                      "next to accuracy over training")
    _common(lens, n_default=1000)
    lens.add_argument("--positions", default="auto", help=POSITIONS_HELP)
    lens.add_argument("--rule", choices=("groklab", "study"), default="groklab", help=RULE_HELP)
    lens.add_argument("--json", action="store_true",
                      help="print one JSON object (n, bridge_found, bridge_found_correct, "
                      "target_found, chance, ... under --rule; comparison runs: n, accuracy, "
                      "majority, v1/v2 found and their controls) instead of the text summary")
    lens.add_argument("--bridge-order", action="store_true",
                      help="the k-hop lens: for each bridge b_i the stage and position where it "
                      "is first decoded (a stage x hop map) and how often bridges resolve in "
                      "order; the default for splits of 3 or more hops (docs/khop.md)")
    _depth_options(lens)
    lens.set_defaults(func=cmd_lens)

    trace = sub.add_parser("trace", help="causal tracing: patch clean states into corrupted runs",
                           description="For each query build a counterfactual that changes one "
                           "input token and the answer; patch the clean state at every (stage, "
                           "position) into the corrupted run and measure how often the clean "
                           "answer comes back. Writes the grid as JSON and a heatmap PNG into "
                           "RUN/analysis/ (or --out).")
    trace.add_argument("run", metavar="RUN", help="run directory (made by `groklab train`)")
    trace.add_argument("--step", type=int, default=None,
                       help="checkpoint step (default: the latest good checkpoint)")
    trace.add_argument("--corrupt", default=None,
                       help="which input token the counterfactual changes: h, r1, r2 (default "
                       "r1; r3..rK for splits of K-hop queries); comparison runs: e1, e2, attr "
                       "(default e1)")
    trace.add_argument("--reverse", action="store_true",
                       help="patch counterfactual states into the clean run instead (Wang et "
                       "al.'s direction; their metric is the 'changed' grid)")
    trace.add_argument("--cf-rule", choices=("groklab", "wang"), default="groklab",
                       help="counterfactual rule: groklab (defined chain, answer changes, same "
                       "ID/OOD kind per hop) or wang (Wang et al.'s: also undefined chains and "
                       "OOD hops; comparison runs: their nearest label-flipping value for e1/e2, "
                       "any other attribute for attr); default groklab")
    trace.add_argument("--queries", default=None, metavar="FILE",
                       help="trace exactly these queries of --split: a JSON list or lines of row "
                       "numbers or of a query's tokens ('h r1 r2', 'h r1 .. rK' for k-hop splits, "
                       "'attr e1 e2' on comparison runs; overrides --n and the seeded sample)")
    trace.add_argument("--include-wrong", action="store_true",
                       help="also trace queries the model gets wrong (clean or corrupted); by "
                       "default only queries answered right in both runs are traced")
    trace.add_argument("--batch-size", type=int, default=8192,
                       help="maximum rows (queries x positions) per patched forward pass")
    trace.add_argument("--json", action="store_true",
                       help="print one JSON object (run, step, split, corrupt, direction, n, "
                       "stages, positions, restored, changed, prob_clean grids) instead of the "
                       "tables")
    _common(trace, n_default=300)
    _depth_options(trace)
    trace.set_defaults(func=cmd_trace)

    ev = sub.add_parser("evaluate", help="accuracy per hop count x test-time depth",
                        description="Evaluate a run's checkpoint on every hop count of its "
                        "dataset (ID and OOD probes, held-out hop counts included) at several "
                        "test-time depths: --loops for looped models, --cycles for recursive "
                        "ones (a decoder has only its own depth). Prints the tables and writes "
                        "JSON and a heatmap PNG into RUN/analysis/ (or --out).")
    ev.add_argument("run", metavar="RUN", help="run directory (made by `groklab train`)")
    ev.add_argument("--step", type=int, default=None,
                    help="checkpoint step (default: the latest good checkpoint)")
    ev.add_argument("--loops", action="append", metavar="N[,N..]",
                    help="looped: loop counts to evaluate, e.g. 1,2,4,8 (default: the trained one)")
    ev.add_argument("--cycles", action="append", metavar="H,L",
                    help="recursive: H,L cycles to evaluate (repeatable; default: the trained ones)")
    ev.add_argument("--device", default="auto", help="auto (cuda if present) | cpu | cuda | cuda:N")
    ev.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ev.add_argument("--out", default=None, help="JSON output file (the PNG goes beside it)")
    ev.set_defaults(func=cmd_evaluate, n=1)

    comp = sub.add_parser("compare", help="compare two models' inference paths (same queries)",
                          description="Lens profiles and tracing grids of two runs (or two "
                          "checkpoints) on the same queries and counterfactuals, with Pearson "
                          "correlations of the grids, agreement of the depth where the bridge "
                          "first becomes decodable, and seeded bootstrap confidence intervals "
                          "over queries. Different depths are aligned on normalised depth; "
                          "different input layouts (causal vs recursive) are refused. Writes into "
                          "RUN_A/analysis/ (or --out).")
    comp.add_argument("run_a", metavar="RUN_A[@STEP]", help="first run, optionally @checkpoint step")
    comp.add_argument("run_b", metavar="RUN_B[@STEP]", help="second run, optionally @checkpoint step")
    comp.add_argument("--corrupt", default=None,
                      help="token changed by the tracing counterfactuals: h, r1, r2 (default "
                      "r1; r3..rK for splits of K-hop queries); two comparison runs: e1, e2, "
                      "attr (default e1)")
    comp.add_argument("--boot", type=int, default=1000,
                      help="bootstrap resamples for the confidence intervals (default 1000)")
    comp.add_argument("--include-wrong", action="store_true",
                      help="also trace queries a model gets wrong (clean or corrupted); by "
                      "default only queries both models answer right in both runs are traced")
    comp.add_argument("--cf-rule", choices=("groklab", "wang"), default="groklab",
                      help="counterfactual rule, as for `groklab trace`: groklab (default) or "
                      "wang (Wang et al.'s; two-hop composition and comparison runs only)")
    _common(comp, n_default=300)
    comp.set_defaults(func=cmd_compare)


def _depth_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval-loops", metavar="N", help="looped models: run with N loops instead of "
                   "the trained number (test-time depth)")
    p.add_argument("--eval-cycles", metavar="H,L", help="recursive models: run with H x L cycles "
                   "instead of the trained ones")


def _at_depth(model, args):
    """The model at the --eval-loops / --eval-cycles depth (set in place; one-line errors)."""
    from groklab.models.depth import check_depth
    from groklab.train.depth import parse_depths

    if not (args.eval_loops or args.eval_cycles):
        return model
    field = "eval_loops" if args.eval_loops else "eval_cycles"
    depths = parse_depths([args.eval_loops] if args.eval_loops else None,
                          [args.eval_cycles] if args.eval_cycles else None)
    if len(depths) != 1:
        from groklab.errors import bad_value
        raise bad_value(field, args.eval_loops or args.eval_cycles, "one depth")
    model.set_depth(*check_depth(model, depths[0], field))
    return model


def _split_hops(dataset, split: str) -> int | None:
    """The split's one hop count, or None (no compositions, or several hop counts)."""
    from groklab.analysis.khop import split_hops
    from groklab.errors import GroklabError

    try:
        return split_hops(dataset, split)
    except GroklabError:
        return None


def _common(p: argparse.ArgumentParser, n_default: int) -> None:
    p.add_argument("--split", default="test_inferred_iid",
                   help="probe split of two-hop queries (default test_inferred_iid)")
    p.add_argument("--n", type=int, default=n_default,
                   help=f"number of queries, a seeded sample of the split (default {n_default})")
    p.add_argument("--seed", type=int, default=0, help="seed of the query sample, "
                   "counterfactuals and bootstrap (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda if present) | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a busy 2-core CPU more threads were "
                   "measured up to 100x slower; 0 = torch's default)")
    p.add_argument("--out", default=None,
                   help="JSON output file (the PNG goes beside it); default RUN/analysis/<name>.json")


def _setup(args):
    """Validate the shared options, set torch threads; return the device."""
    import torch

    from groklab.analysis.io import resolve_device

    check_range("n", args.n, 1)
    check_range("threads", args.threads, 0)
    if args.threads:
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def _positions(text: str):
    return text if text in ("auto", "all") else [p.strip() for p in text.split(",") if p.strip()]


def cmd_lens(args) -> int:
    from groklab.analysis.io import load_at, output_paths, write_json
    from groklab.analysis.lens import lens_ranks, summarize_lens
    from groklab.analysis.plots import curves, heatmaps
    from groklab.analysis.queries import two_hop_queries
    from groklab.train import load_run

    started = time.time()
    device = _setup(args)
    positions = _positions(args.positions)
    run = load_run(args.run)
    if args.all_steps and run.dataset.task == "comparison":
        return _lens_comparison_steps(args, run, device, started)
    if args.all_steps:
        rows = {r["step"]: r for r in run.metrics}
        points = []
        for step in run.checkpoint_steps:
            model, dataset, _ = load_at(args.run, step, device)
            _at_depth(model, args)
            queries = two_hop_queries(dataset, args.split, model.layout, args.n, args.seed)
            s = summarize_lens(lens_ranks(model, queries), positions)
            points.append({"step": step, "bridge_found": s["bridge"]["found"],
                           "bridge_found_control": s["bridge"]["found_control"],
                           "bridge_mrr": s["bridge"]["mrr_best"],
                           "answer_found": s["answer"]["found"],
                           "accuracy_sample": s["accuracy"],
                           "accuracy": rows.get(step, {}).get(f"acc/{args.split}")})
            print(f"step {step:>8}  bridge found {s['bridge']['found']:.3f} "
                  f"(control {s['bridge']['found_control']:.3f})  answer found "
                  f"{s['answer']['found']:.3f}  acc {s['accuracy']:.3f}")
        json_path, png_path = output_paths(args.run, f"lens_{args.split}_steps", args.out)
        series = {k: [p[k] for p in points]
                  for k in ("bridge_found", "bridge_found_control", "answer_found")}
        series["accuracy"] = [p["accuracy"] if p["accuracy"] is not None else p["accuracy_sample"]
                              for p in points]
        curves([p["step"] for p in points], series, png_path,
               title=f"{run.path.name}: lens on {args.split}", ylabel="rate")
        write_json(json_path, {"split": args.split, "positions": positions, "points": points},
                   started, command="lens", run=str(run.path), n=args.n, seed=args.seed)
    else:
        model, dataset, step = load_at(args.run, args.step, device)
        _at_depth(model, args)
        if dataset.task == "comparison":
            return _lens_comparison(args, model, dataset, step, run, started)
        hops = _split_hops(dataset, args.split)
        if args.bridge_order or (hops is not None and hops > 2):
            return _lens_bridge_order(args, model, dataset, step, run, started)
        queries = two_hop_queries(dataset, args.split, model.layout, args.n, args.seed)
        res = lens_ranks(model, queries)
        s = summarize_lens(res, positions)
        headline = rule_headline(res, s, args.rule)
        json_path, png_path = output_paths(args.run, f"lens_{args.split}_step{step}", args.out)
        heatmaps([("bridge MRR", s["bridge"]["mrr"]), ("bridge top-1", s["bridge"]["top1"]),
                  ("answer MRR", s["answer"]["mrr"])], s["stages"], s["positions"], png_path,
                 title=f"{run.path.name}@{step} lens, {args.split} (n={s['n']})")
        write_json(json_path, {**s, "headline": headline}, started, command="lens",
                   run=str(run.path), step=step, n=args.n, seed=args.seed)
        if args.json:
            print(json.dumps({**headline, "step": step, "run": str(run.path)}))
            print(f"wrote {json_path} and {png_path}", file=sys.stderr)
            return 0
        _print_lens(run.path.name, step, args.split, s, headline)
    print(f"wrote {json_path} and {png_path}")
    return 0


def _lens_comparison(args, model, dataset, step, run, started) -> int:
    """The comparison lens: attribute values at the entity positions, labels at the answer."""
    from groklab.analysis.comparison import comparison_queries
    from groklab.analysis.comparison_lens import (comparison_lens, format_comparison_lens,
                                                  summarize_comparison_lens)
    from groklab.analysis.io import output_paths, write_json
    from groklab.analysis.plots import heatmaps

    _check_comparison_lens_options(args)
    queries = comparison_queries(dataset, args.split, model.layout, args.n, args.seed)
    s = summarize_comparison_lens(comparison_lens(model, dataset, queries))
    json_path, png_path = output_paths(args.run, f"lens_{args.split}_step{step}", args.out)
    c = s["correct"] if s["n_correct"] else s["all"]
    heatmaps([("v1 top value", c["v1"]["grid"]), ("v1 control", c["v1_control"]["grid"]),
              ("v2 top value", c["v2"]["grid"]), ("label mass", c["label"]["mass_grid"])],
             s["stages"], s["positions"], png_path,
             title=f"{run.path.name}@{step} comparison lens, {args.split} "
             f"({'correct' if s['n_correct'] else 'all'} n={c['n']})")
    write_json(json_path, s, started, command="lens", mode="comparison", run=str(run.path),
               step=step, n=args.n, seed=args.seed)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    headline = {"task": "comparison", "split": s["split"], "n": s["n"], "n_correct": s["n_correct"],
                "accuracy": s["accuracy"], "majority": s["majority"],
                **{f"{k}_found_correct": s["correct"][k]["found"] for k in
                   ("v1", "v1_control", "v2", "v2_control")}}
    if args.json:
        print(json.dumps({**headline, "step": step, "run": str(run.path)}))
        print(f"wrote {json_path} and {png_path}", file=sys.stderr)
        return 0
    print(f"{run.path.name}@{step} {args.split} (comparison) n={s['n']} accuracy "
          f"{fmt(s['accuracy'])} (majority-class rate {fmt(s['majority'])}); values: top value "
          f"among the {round(1 / s['chance']['value_top1_one_cell'])} value tokens at the entity's "
          f"position; labels at {c['label']['position']}")
    for subset, what in (("correct", f"the {s['n_correct']} answered correctly"),
                         ("all", f"all {s['n']} queries")):
        print()
        print(f"{what}:")
        print(format_comparison_lens(s, subset))
    print(f"wrote {json_path} and {png_path}")
    return 0


def _check_comparison_lens_options(args) -> None:
    from groklab.errors import bad_value

    if args.positions != "auto":
        raise bad_value("positions", args.positions, "auto (a comparison run's lens reads each "
                        "value at its own entity position)")
    if args.rule != "groklab" or args.bridge_order:
        what, value = ("rule", args.rule) if args.rule != "groklab" else ("bridge_order", True)
        raise bad_value(what, value, "groklab rule without --bridge-order (comparison runs have "
                        "no bridges)")


def _lens_comparison_steps(args, run, device, started) -> int:
    """The comparison lens at every checkpoint: value found (correct queries) against its
    control, right label at the last stage, accuracy against the majority-class rate."""
    from groklab.analysis.comparison import comparison_queries
    from groklab.analysis.comparison_lens import comparison_lens, summarize_comparison_lens
    from groklab.analysis.io import load_at, output_paths, write_json
    from groklab.analysis.plots import curves

    _check_comparison_lens_options(args)
    rows = {r["step"]: r for r in run.metrics}
    points = []
    fmt = lambda v: "  n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for step in run.checkpoint_steps:
        model, dataset, _ = load_at(args.run, step, device)
        _at_depth(model, args)
        queries = comparison_queries(dataset, args.split, model.layout, args.n, args.seed)
        s = summarize_comparison_lens(comparison_lens(model, dataset, queries))
        c = s["correct"]
        right = c["label"]["right_by_stage"]
        points.append({"step": step, "n_correct": s["n_correct"],
                       **{f"{k}_found": c[k]["found"] for k in ("v1", "v1_control", "v2", "v2_control")},
                       "label_right_last_stage": right[-1] if right else None,
                       "accuracy_sample": s["accuracy"], "majority": s["majority"],
                       "accuracy": rows.get(step, {}).get(f"acc/{args.split}")})
        p = points[-1]
        print(f"step {step:>8}  on the {s['n_correct']} correct: v1 found {fmt(p['v1_found'])} "
              f"(control {fmt(p['v1_control_found'])}), v2 found {fmt(p['v2_found'])} (control "
              f"{fmt(p['v2_control_found'])})  acc {s['accuracy']:.3f} (majority {s['majority']:.3f})")
    json_path, png_path = output_paths(args.run, f"lens_{args.split}_steps", args.out)
    nan = float("nan")  # a checkpoint that answers nothing right has no value rates to plot
    series = {k: [nan if p[k] is None else p[k] for p in points]
              for k in ("v1_found", "v1_control_found", "v2_found", "v2_control_found", "majority")}
    series["accuracy"] = [p["accuracy"] if p["accuracy"] is not None else p["accuracy_sample"]
                          for p in points]
    curves([p["step"] for p in points], series, png_path,
           title=f"{run.path.name}: comparison lens on {args.split}", ylabel="rate")
    write_json(json_path, {"task": "comparison", "split": args.split, "points": points}, started,
               command="lens", mode="comparison", run=str(run.path), n=args.n, seed=args.seed)
    print(f"wrote {json_path} and {png_path}")
    return 0


def _lens_bridge_order(args, model, dataset, step, run, started) -> int:
    """The k-hop lens: stage x hop map of first decodes (analysis/khop.py)."""
    from groklab.analysis.io import output_paths, write_json
    from groklab.analysis.khop import bridge_order, khop_queries
    from groklab.analysis.plots import heatmaps

    queries, bridges = khop_queries(dataset, args.split, model.layout, args.n, args.seed)
    if bridges.shape[1] == 0:
        from groklab.errors import bad_value
        raise bad_value("split", args.split, "a split of compositions (2 or more hops)")
    positions = None if args.positions in ("auto", "all") else _positions(args.positions)
    s = bridge_order(model, queries, bridges, seed=args.seed, positions=positions)
    depth = f"_{args.eval_loops or args.eval_cycles}".replace(",", "x") if (
        args.eval_loops or args.eval_cycles) else ""
    where = "" if positions is None else "_at_" + "-".join(positions)
    json_path, png_path = output_paths(args.run, f"lens_order_{args.split}_step{step}{depth}{where}",
                                       args.out)
    heatmaps([("first decoded (stage)", s["first_stage"]), ("top-1 at stage", s["top1"])],
             s["stages"], s["bridges"], png_path,
             title=f"{run.path.name}@{step} bridge order, {args.split} (n={s['n']})")
    write_json(json_path, s, started, command="lens", mode="bridge_order", run=str(run.path),
               step=step, n=args.n, seed=args.seed)
    if args.json:
        import json

        print(json.dumps({k: s[k] for k in ("split", "n", "hops", "accuracy", "found", "in_order",
                                            "in_order_or_tied", "mean_first_stage", "control")}))
        return 0
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{run.path.name}@{step} {args.split} ({s['hops']} hops) n={s['n']} accuracy "
          f"{s['accuracy']:.3f}; chance control {s['control']:.3f}; positions "
          + ", ".join(s["positions"]))
    print("found: " + ", ".join(f"{b} {v:.3f}" for b, v in zip(s["bridges"], s["found"]))
          + f"; all found {s['all_found']:.3f}, in order {fmt(s['in_order'])} (ties allowed "
          f"{fmt(s['in_order_or_tied'])})")
    width = max(len(x) for x in s["stages"])
    print(" " * width + "  " + "  ".join(f"{b:>6}" for b in s["bridges"]) + "   (first decoded)")
    for stage, row in zip(reversed(s["stages"]), reversed(s["first_stage"])):
        print(f"{stage:>{width}}  " + "  ".join(f"{v:6.3f}" for v in row))
    print("mean first stage: " + ", ".join(f"{b} {fmt(v)}" for b, v in
                                           zip(s["bridges"], s["mean_first_stage"])))
    where = [max(range(len(s["positions"])), key=lambda p: s["first_position"][p][j])
             for j in range(len(s["bridges"]))]
    print("most common first position: " + ", ".join(f"{b} {s['positions'][p]}"
                                                      for b, p in zip(s["bridges"], where)))
    print(f"wrote {json_path} and {png_path}")
    return 0


def rule_headline(res, summary: dict, rule: str) -> dict:
    """The top-level numbers of ``groklab lens`` under ``rule``: n, bridge_found,
    bridge_found_correct, target_found, chance (and the rule's details)."""
    from groklab.analysis.lens import study_rule_summary

    if rule == "study":
        return study_rule_summary(res)
    b = summary["bridge"]
    correct = res.correct
    from groklab.analysis.lens import first_found_stage, resolve_positions

    allowed = resolve_positions(b["positions"], res.positions, res.causal, "bridge")
    found = first_found_stage(res.ranks["bridge"], allowed) >= 0
    return {"rule": "groklab", "split": summary["split"], "n": summary["n"],
            "n_correct": int(correct.sum()), "accuracy": summary["accuracy"],
            "positions": b["positions"], "bridge_found": b["found"],
            "bridge_found_correct": float(found[correct].mean()) if correct.any() else None,
            "target_found": summary["answer"]["found"], "chance": b["found_control"]}


def _print_lens(name: str, step: int, split: str, s: dict, headline: dict) -> None:
    b = s["bridge"]
    print(f"{name}@{step} {split} n={s['n']} accuracy {s['accuracy']:.3f}")
    h = headline
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{h['rule']} rule: bridge found {fmt(h['bridge_found'])} (on the {h['n_correct']} "
          f"answered correctly {fmt(h['bridge_found_correct'])}), target found "
          f"{fmt(h['target_found'])}; chance control {fmt(h['chance'])}")
    if h["rule"] == "study":
        per = ", ".join(f"{k.replace('.hook_resid_post', '')} {v:.2f}"
                        for k, v in h["bridge_found_by_stage"].items())
        print(f"bridge found per stage (correct queries): {per}")
    by_pos = ", ".join(f"{k} {v:.3f}" for k, v in b["found_by_position"].items())
    print(f"bridge top-1 somewhere, by position: {by_pos}")
    if "mrr_r1_by_stage" in b:
        per = ", ".join(f"{v:.3f}" for v in b["mrr_r1_by_stage"])
        print(f"bridge MRR at r1 per stage (Wang's measure): {per}; max over stages "
              f"{b['mrr_r1_max_over_stages']:.3f} ({b['best_stage_r1']})")


def cmd_trace(args) -> int:
    from groklab.analysis.io import load_at, output_paths, write_json
    from groklab.analysis.plots import heatmaps
    from groklab.analysis.queries import read_query_rows
    from groklab.analysis.tracing import prepare_counterfactuals, summarize_trace, trace_grid

    started = time.time()
    device = _setup(args)
    check_range("batch_size", args.batch_size, 1)
    model, dataset, step = load_at(args.run, args.step, device)
    _at_depth(model, args)
    comparison = dataset.task == "comparison"
    hops = None if comparison else _split_hops(dataset, args.split)
    rows = read_query_rows(args.queries, dataset, args.split) if args.queries else None
    if comparison:
        cf = _comparison_counterfactuals(args, model, dataset, rows)
    elif hops is not None and hops > 2:
        args.corrupt = args.corrupt or "r1"  # k-hop queries: any input token (analysis/khop.py)
        from groklab.analysis.khop import check_khop_rule, prepare_khop_counterfactuals

        check_khop_rule(args.cf_rule, hops, args.split)

        cf = prepare_khop_counterfactuals(model, dataset, args.split, args.corrupt, args.n,
                                          args.seed, require_correct=not args.include_wrong,
                                          rows=rows)
    else:
        args.corrupt = args.corrupt or "r1"
        if args.corrupt not in ("h", "r1", "r2"):
            raise GroklabError(f"corrupt={args.corrupt!r} is invalid (allowed: h, r1, r2 for the "
                               f"two-hop split {args.split})")
        cf = prepare_counterfactuals([model], dataset, args.split, args.corrupt, args.n, args.seed,
                                     require_correct=not args.include_wrong, rule=args.cf_rule,
                                     rows=rows)
    res = trace_grid(model, cf, reverse=args.reverse, batch_size=args.batch_size)
    s = summarize_trace(res)
    task = {"task": "comparison"} if comparison else {}
    s.update(task)
    answer = "label" if comparison else "t"
    name = f"trace_{args.split}_{args.corrupt}{'_reverse' if args.reverse else ''}_step{step}"
    json_path, png_path = output_paths(args.run, name, args.out)
    direction = "corrupted <- clean" if not args.reverse else "clean <- corrupted (Wang)"
    heatmaps([(f"restored (top-1 = {answer})", s["restored"]), ("changed (Wang)", s["changed"]),
              (f"p({answer})", s["prob_clean"])], s["stages"], s["positions"], png_path,
             title=f"{args.run}@{step} trace {direction}, corrupt {args.corrupt} (n={s['n']})")
    write_json(json_path, s, started, command="trace", run=str(args.run), step=step,
               n=args.n, seed=args.seed, queries=args.queries)
    if args.json:
        print(json.dumps({"run": str(args.run), "step": step, "split": args.split,
                          "corrupt": args.corrupt, **task, **{k: s[k] for k in TRACE_JSON_KEYS}}))
        print(f"wrote {json_path} and {png_path}", file=sys.stderr)
        return 0
    c = s["counterfactuals"]
    if comparison:
        print(f"{args.run}@{step} {args.split} (comparison), corrupt {args.corrupt}, "
              f"{s['direction']}: clean accuracy {c['clean_accuracy']:.3f} on the {c['queries']} "
              f"sampled queries (majority-class rate {c['majority']:.3f}); traced {s['n']} "
              f"({c['with_counterfactual']} with a counterfactual under the {c['rule']} rule"
              + (f" ({c['label_unchanged']} of them keep the label)" if c.get("label_unchanged")
                 else "")
              + f", {c['both_correct']} answered right clean and corrupted"
              f"{', all kept' if not c['require_correct'] else ''})")
    else:
        print(f"{args.run}@{step} {args.split}, corrupt {args.corrupt}, {s['direction']}: traced "
              f"{s['n']} of {c['queries']} queries ({c['with_counterfactual']} with a "
              f"counterfactual under the {c['rule']} rule, {c['both_correct']} answered right "
              f"clean and corrupted{', all kept' if not c['require_correct'] else ''}; "
              f"{c['undefined_answer']} counterfactuals without a defined answer)")
    restored_to = "the clean label" if comparison else "the clean one"
    for key, what in (("restored", f"share of answers restored to {restored_to}"),
                      ("changed", "share of answers changed (Wang's measure)")):
        print()
        print(format_grid(s[key], s["stages"], s["positions"], f"{key}: {what}"))
    print(f"wrote {json_path} and {png_path}")
    return 0


def _comparison_counterfactuals(args, model, dataset, rows):
    """A comparison run's counterfactuals: they flip the label (analysis/comparison.py)."""
    from groklab.analysis.comparison import CORRUPTIONS, prepare_comparison_counterfactuals
    from groklab.errors import bad_value

    args.corrupt = args.corrupt or "e1"
    if args.corrupt not in CORRUPTIONS:
        raise bad_value("corrupt", args.corrupt, ", ".join(CORRUPTIONS) + " for a comparison run")
    return prepare_comparison_counterfactuals(model, dataset, args.split, args.corrupt, args.n,
                                              args.seed, require_correct=not args.include_wrong,
                                              rows=rows, rule=args.cf_rule)


def cmd_evaluate(args) -> int:
    from groklab.analysis.depth import depth_table, format_probe_table, format_table, probe_table
    from groklab.analysis.io import load_at, output_paths, write_json
    from groklab.analysis.plots import heatmaps
    from groklab.models.depth import check_depth
    from groklab.train.depth import parse_depths

    started = time.time()
    device = _setup(args)
    model, dataset, step = load_at(args.run, args.step, device)
    field = "loops" if args.loops else "cycles"
    depths = [check_depth(model, d, field) for d in parse_depths(args.loops, args.cycles)]
    if dataset.task != "composition":  # no hop counts: every probe beside its majority rate
        t = probe_table(model, dataset, depths)
        json_path, _ = output_paths(args.run, f"evaluate_step{step}", args.out)
        write_json(json_path, t, started, command="evaluate", run=str(args.run), step=step)
        print(f"{args.run}@{step} ({model.cfg.family}, task {dataset.task})")
        print(format_probe_table(t))
        print(f"wrote {json_path}")
        return 0
    t = depth_table(model, dataset, depths)
    json_path, png_path = output_paths(args.run, f"evaluate_step{step}", args.out)
    rows = [f"{k}h{'*' if h else ''}" for k, h in zip(t["hops"], t["heldout"])]
    import numpy as np
    grid = lambda kind: np.array([[np.nan if v is None else v for v in r] for r in t[kind]])  # noqa: E731
    heatmaps([("ID accuracy", grid("iid")), ("OOD accuracy", grid("ood"))], rows, t["labels"],
             png_path, title=f"{args.run}@{step}: accuracy per hop count (* held out) x depth "
             f"(trained {t['trained']})")
    write_json(json_path, t, started, command="evaluate", run=str(args.run), step=step)
    print(f"{args.run}@{step} ({model.cfg.family}, trained depth {t['trained']})")
    print(format_table(t, "iid"))
    print(format_table(t, "ood"))
    for name, accs in t["atomic"].items():
        print(f"{name}: " + " ".join(f"{lab}={v:.3f}" for lab, v in zip(t["labels"], accs)))
    print(f"wrote {json_path} and {png_path}")
    return 0


TRACE_JSON_KEYS = ("direction", "n", "stages", "positions", "restored", "changed", "prob_clean",
                   "baseline", "counterfactuals")


def format_grid(grid, stages: list[str], positions: list[str], title: str) -> str:
    """A (stage x position) grid as a text table: latest stage on top (as the heatmap shows
    it), short stage labels (``blocks.1.hook_resid_post`` -> ``b1.post``), one column per
    input position."""
    from groklab.analysis.plots import short_stage

    labels = [short_stage(x) for x in stages]
    width = max([len(x) for x in labels] + [len("stage")])
    cols = [f"{p:>6}" for p in positions]
    lines = [title, f"{'stage':<{width}}  " + "  ".join(cols),
             "-" * width + "  " + "  ".join("-" * len(c) for c in cols)]
    for label, row in zip(reversed(labels), reversed(list(grid))):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{float(v):6.3f}" for v in row))
    return "\n".join(lines)


def cmd_compare(args) -> int:
    from groklab.analysis.compare import compare_models
    from groklab.analysis.io import load_at, output_paths, parse_run_spec, slug, write_json
    from groklab.analysis.plots import heatmaps

    started = time.time()
    device = _setup(args)
    check_range("boot", args.boot, 10, 100_000)
    path_a, step_a = parse_run_spec(args.run_a)
    path_b, step_b = parse_run_spec(args.run_b)
    model_a, data_a, step_a = load_at(path_a, step_a, device)
    model_b, data_b, step_b = load_at(path_b, step_b, device)
    result = compare_models(model_a, model_b, data_a, args.split, args.corrupt, args.n,
                            args.seed, args.boot, dataset_b=data_b,
                            require_correct=not args.include_wrong, rule=args.cf_rule)
    corrupt = result["trace"]["corrupt"]
    name = (f"compare_{args.split}_{corrupt}_step{step_a}_vs_"
            f"{slug(path_b.resolve().name)}_step{step_b}")
    json_path, png_path = output_paths(path_a, name, args.out)
    ta, tb = result["trace"]["a"], result["trace"]["b"]
    la, lb = result["lens"]["a"], result["lens"]["b"]
    khop = result.get("hops", 2) > 2
    if result["task"] == "comparison":
        lens_name, lens_a, lens_b = "v1 top value", la["all"]["v1"]["grid"], lb["all"]["v1"]["grid"]
    elif khop:  # the last bridge: the one a k-hop path resolves last
        last = result["lens"]["bridges"][-1]
        lens_name, lens_a, lens_b = (f"{last} MRR", la["bridge_mrr"][last],
                                     lb["bridge_mrr"][last])
    else:
        lens_name, lens_a, lens_b = "bridge MRR", la["bridge"]["mrr"], lb["bridge"]["mrr"]
    heatmaps([("A trace restored", ta["restored"]), ("B trace restored", tb["restored"]),
              (f"A {lens_name}", lens_a), (f"B {lens_name}", lens_b)],
             [ta["stages"], tb["stages"], la["stages"], lb["stages"]], ta["positions"], png_path,
             title=f"A={path_a.name}@{step_a}  B={path_b.name}@{step_b}  ({args.split})")
    write_json(json_path, result, started, command="compare",
               a={"run": str(path_a), "step": step_a}, b={"run": str(path_b), "step": step_b},
               n=args.n, seed=args.seed)
    kind = (f" (comparison), corrupt {corrupt}" if result["task"] == "comparison" else
            f" ({result['hops']} hops), corrupt {corrupt}" if khop else "")
    print(f"A={path_a}@{step_a}  B={path_b}@{step_b}  split {args.split}{kind}: "
          f"lens n={result['lens']['n']}, trace n={result['trace']['n']}"
          + ("  (stages aligned on normalised depth)" if result["depth_aligned"] else ""))
    print(f"trace restored corr  {_ci_text(result['trace']['restored_corr'])}")
    print(f"trace p(t) corr      {_ci_text(result['trace']['prob_corr'])}")
    if result["task"] == "comparison":
        _print_comparison_lens_similarity(result["lens"])
    elif khop:
        _print_khop_lens_similarity(result["lens"])
    else:
        _print_bridge_lens_similarity(result["lens"])
    print(f"wrote {json_path} and {png_path}")
    return 0


def _ci_text(block) -> str:
    v, (lo, hi) = block["value"], block["ci"]
    return "n/a (constant grid)" if v is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _first_found_text(ff) -> str:
    return (f"A {ff['found_a']:.3f}, B {ff['found_b']:.3f}, both {ff['found_both']}; mean "
            f"|depth A - depth B| {_ci_text(ff['mean_abs_depth_diff'])}"
            + (f"; same stage {ff['same_stage_rate']:.3f}" if ff["same_stage_rate"] is not None
               else ""))


def _print_bridge_lens_similarity(lens: dict) -> None:
    print(f"lens bridge MRR corr {_ci_text(lens['bridge_mrr_corr'])}")
    print(f"bridge first found: {_first_found_text(lens['first_found'])}")


def _print_khop_lens_similarity(lens: dict) -> None:
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for side in ("a", "b"):
        s = lens[side]
        print(f"{side.upper()}: accuracy {s['accuracy']:.3f}; found "
              + ", ".join(f"{b} {v:.3f}" for b, v in zip(s["bridges"], s["found"]))
              + f"; in order {fmt(s['in_order'])} (ties allowed {fmt(s['in_order_or_tied'])})")
    for b in lens["bridges"]:
        ff = lens["first_found"][b]
        print(f"lens {b} MRR corr {_ci_text(lens['mrr_corr'][b])}")
        print(f"{b} first found (at {','.join(ff['positions'])}): {_first_found_text(ff)}")


def _print_comparison_lens_similarity(lens: dict) -> None:
    print(f"lens v1 value MRR corr {_ci_text(lens['v1_mrr_corr'])}")
    print(f"lens v2 value MRR corr {_ci_text(lens['v2_mrr_corr'])}")
    print(f"lens label mass corr   {_ci_text(lens['label_mass_corr'])}")
    for key, where in (("v1", "e1"), ("v2", "e2")):
        print(f"{key} first top value at {where}: {_first_found_text(lens['first_found'][key])}")
