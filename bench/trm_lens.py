"""What the study's lens sees in a tiny TRM: train one run, then the study rule per stage.

    python bench/trm_lens.py OUT [--preset tiny_recursive] [--set KEY=VALUE ...]

Trains ``--preset`` (with the overrides) into OUT with the lens callback at every evaluation,
then prints one JSON object: the final accuracies, the first steps past each target and, for
the ID and OOD test sets, the study rule's numbers (bridge found over all and over the
correctly answered queries, target found, chance controls) and bridge found per stage. The
measurements of docs/study.md ("The tiny TRM in the study's format") came from this script.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from groklab.analysis.lens import lens_callback, lens_ranks, study_rule_summary
from groklab.analysis.queries import two_hop_queries
from groklab.train import load_model, train_run
from groklab.train.config import load_config

KEYS = ("n", "n_correct", "accuracy", "bridge_found", "bridge_found_correct", "target_found",
        "chance", "chance_correct")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--preset", default="tiny_recursive")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.preset, args.set)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train_run(cfg, args.out, quiet=True, callbacks=[lens_callback(n=200)])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model, ds = load_model(args.out)
    lens = {}
    for split in ("test_inferred_iid", "test_inferred_ood"):
        s = study_rule_summary(lens_ranks(model, two_hop_queries(ds, split, model.layout)))
        lens[split] = {k: s[k] for k in KEYS}
        lens[split]["by_stage"] = {k.replace(".hook_resid_post", ""): round(v, 3)
                                   for k, v in s["bridge_found_by_stage"].items()}
    print(json.dumps({"preset": args.preset, "set": args.set, "wall_s": round(wall, 1),
                      "cpu_s": round(cpu, 1), "first_step": summary["first_step"],
                      "final": {k: round(v, 3) for k, v in summary["final"].items()
                                if k.startswith("acc/")}, "lens": lens}, indent=1))


if __name__ == "__main__":
    main()
