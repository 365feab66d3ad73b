"""``groklab data make|inject|stats|import|export``: build, inspect and convert datasets."""

from __future__ import annotations

import argparse
import json
import time

from groklab.data import (DATA_PRESETS, REGIME_NAMES, TASKS, data_config, dataset_stats, export_reference,
                          format_stats, import_reference, inject_dataset, load_dataset,
                          make_dataset, parse_phi)
from groklab.data.config import OOD_RULES, parse_hops
from groklab.data.formats import FORMATS
from groklab.errors import GroklabError


def _phi(text: str):
    try:
        return parse_phi(text)
    except GroklabError as exc:  # argparse shows ArgumentTypeError messages verbatim
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hops(field: str):
    def parse(text: str):
        try:
            return parse_hops(field, text)
        except GroklabError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _summary(ds, seconds: float) -> str:
    counts = ", ".join(f"{k} {v:,}" for k, v in ds.manifest["counts"].items())
    return f"wrote {ds.path} in {seconds:.1f}s: {counts}"


def _make(args) -> int:
    cfg = data_config(args.preset, task=args.task, entities=args.entities, relations=args.relations,
                      out_degree=args.out_degree, ood_ratio=args.ood_ratio, phi=args.phi,
                      regime=args.regime, seed=args.seed, values=args.values,
                      id_test_ratio=args.id_test_ratio, probe_cap=args.probe_cap,
                      hop1_ratio=args.hop1_ratio, hop1_k=args.hop1_k, hop2_ratio=args.hop2_ratio,
                      hop2_k=args.hop2_k, hops=args.hops, test_hops=args.test_hops,
                      ood_rule=args.ood_rule)
    t0 = time.perf_counter()
    ds = make_dataset(cfg, args.out, force=args.force)
    print(_summary(ds, time.perf_counter() - t0))
    return 0


def _inject(args) -> int:
    t0 = time.perf_counter()
    ds = inject_dataset(args.src, args.out, new_facts=args.new_facts, replay=args.replay,
                        seed=args.seed, chain_fraction=args.chain_fraction, force=args.force)
    print(_summary(ds, time.perf_counter() - t0))
    return 0


def _stats(args) -> int:
    s = dataset_stats(load_dataset(args.dir, verify=True))
    print(json.dumps(s, indent=2) if args.json else format_stats(s))
    return 0


def _import(args) -> int:
    t0 = time.perf_counter()
    ds = import_reference(args.src, args.out, force=args.force)
    print(_summary(ds, time.perf_counter() - t0))
    return 0


def _export(args) -> int:
    out = export_reference(args.dir, args.out, force=args.force)
    print(f"wrote {out} (reference format: train.json, valid.json = the OOD test set, test.json "
          "with probe types, vocab.json, and atomic.json = every atomic fact, typed)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="make, inject, inspect, import and export datasets",
                              description="Build the two-hop datasets of the study and convert them.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    m = sub.add_parser("make", help="generate a dataset from a preset (+ overrides)",
                       description="Generate a seeded dataset into a new directory (written atomically).")
    m.add_argument("--preset", choices=list(DATA_PRESETS), default="tiny",
                   help="size preset: tiny = 100 entities / 20 relations, small = 500 / 50, "
                        "paper = 2000 / 200; out_degree 20, OOD ratio 0.05, phi 18 (default: tiny)")
    m.add_argument("--task", choices=TASKS, help="composition (two-hop queries, default) or "
                   "comparison (attribute comparisons, see docs/data.md)")
    m.add_argument("--regime", choices=list(REGIME_NAMES),
                   help="augmentation regime: which OOD facts are exposed in training "
                        "compositions (default natural = none; custom = the four --hop* options)")
    m.add_argument("--hop1-ratio", type=float, help="regime custom: fraction of the OOD facts "
                   "used as hop 1 by OOD test queries that are exposed, in [0, 1] (default 0)")
    m.add_argument("--hop1-k", type=int, help="regime custom: training compositions added per "
                   "exposed hop-1 fact, >= 0 (default 18)")
    m.add_argument("--hop2-ratio", type=float, help="regime custom: the same for hop 2, in [0, 1] "
                   "(default 0)")
    m.add_argument("--hop2-k", type=int, help="regime custom: compositions per exposed hop-2 "
                   "fact, >= 0 (default 18)")
    m.add_argument("--hops", type=_hops("hops"), help="hop counts of the training queries: K "
                   "(2..8) or a list 2,3,4 (default 2: the two-hop task; docs/data.md)")
    m.add_argument("--test-hops", type=_hops("test_hops"), help="held-out hop counts, above "
                   "every trained one: probes heldout_iid_hK / heldout_ood_hK, never trained")
    m.add_argument("--ood-rule", choices=OOD_RULES, help="k hops: a query is OOD when all its "
                   "facts are OOD (default, the two-hop rule) or when any is")
    m.add_argument("--phi", type=_phi, help="train inferred / ID atomic facts (a number, or "
                   "'max' = the whole pool: the fully supervised control); default 18")
    m.add_argument("--entities", type=int, help="number of entities (>= 2)")
    m.add_argument("--relations", type=int, help="number of relations (attributes for comparison)")
    m.add_argument("--out-degree", type=int, help="relations per entity (1..relations)")
    m.add_argument("--ood-ratio", type=float, help="fraction of atomic facts held OOD (comparison: "
                   "fraction of OOD entities per attribute), in [0, 1)")
    m.add_argument("--seed", type=int, help="random seed (>= 0, default 0)")
    m.add_argument("--values", type=int, help="comparison task: ordinal values per attribute (default 20)")
    m.add_argument("--id-test-ratio", type=float, help="fraction of the pool held out as ID test "
                   "(default 0.005)")
    m.add_argument("--probe-cap", type=int, help="maximum items per probe split (default 3000)")
    m.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    m.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    m.set_defaults(func=_make)

    i = sub.add_parser("inject", help="new-knowledge finetune set from a dataset",
                       description="New atomic facts on unused (h, r) pairs of SRC's graph "
                       "(same vocabulary), plus a replay subset of SRC's training data.")
    i.add_argument("src", help="source composition dataset directory")
    i.add_argument("--new-facts", type=int, default=2000, help="number of new atomic facts (default 2000)")
    i.add_argument("--replay", type=int, default=8000, help="replay budget in items: atomic facts "
                   "with all training compositions using them (default 8000)")
    i.add_argument("--chain-fraction", type=float, default=0.5, help="fraction of new facts whose "
                   "tail heads another new fact, so new+new queries exist (default 0.5)")
    i.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    i.add_argument("--out", required=True, help="output directory")
    i.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    i.set_defaults(func=_inject)

    s = sub.add_parser("stats", help="counts per split and generation statistics",
                       description="Print counts per split, the training mix and regime additions.")
    s.add_argument("dir", help="dataset directory")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=_stats)

    im = sub.add_parser("import", help="convert a reference-format directory",
                        description="Read train.json / valid.json / test.json / vocab.json in the "
                        "format of Wang et al.'s code and write a groklab dataset.")
    im.add_argument("src", help="reference directory")
    im.add_argument("--out", required=True, help="output dataset directory")
    im.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    im.set_defaults(func=_import)

    ex = sub.add_parser("export", help="write a dataset in another format",
                        description="Write a dataset in the reference format (train.json, "
                        "valid.json = OOD test as in the reference, test.json with types, vocab.json), "
                        "plus atomic.json (all atomic facts, typed) so that import is exact.")
    ex.add_argument("dir", help="dataset directory")
    ex.add_argument("--format", choices=FORMATS, default="reference", help="output format (default reference)")
    ex.add_argument("--out", required=True, help="output directory")
    ex.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    ex.set_defaults(func=_export)
