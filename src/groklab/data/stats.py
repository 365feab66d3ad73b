"""Counts and statistics of a dataset directory (``groklab data stats``)."""

from __future__ import annotations

import numpy as np

from groklab.data import flags as F
from groklab.data.dataset import Dataset


def train_breakdown(ds: Dataset) -> dict[str, int]:
    """What the training split is made of, counted from its flags."""
    tr = ds.split("train")
    atomic = tr.length == 2
    fl = tr.flags
    aug = (fl & F.AUGMENTED) != 0
    return {
        "atomic_id": int(np.sum(atomic & ((fl & (F.HOP1_OOD | F.HOP1_NEW)) == 0))),
        "atomic_ood": int(np.sum(atomic & ((fl & F.HOP1_OOD) != 0))),
        "atomic_new": int(np.sum(atomic & ((fl & F.HOP1_NEW) != 0))),
        "inferred": int(np.sum(~atomic & ~aug)),
        "augmented_hop1": int(np.sum(aug & ((fl & F.HOP1_OOD) != 0))),
        "augmented_hop2": int(np.sum(aug & ((fl & F.HOP2_OOD) != 0))),
    }


def dataset_stats(ds: Dataset) -> dict:
    """JSON-ready summary: config, counts per split, train breakdown, generation statistics."""
    m = ds.manifest
    return {
        "path": str(ds.path), "task": ds.task, "kind": m.get("kind"), "seed": m.get("seed"),
        "config": m["config"], "vocab_size": ds.vocab_size, "counts": m["counts"],
        "train_breakdown": train_breakdown(ds), "stats": m.get("stats", {}),
        **({"source": m["source"]} if "source" in m else {}),
    }


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def format_stats(s: dict) -> str:
    """The human-readable table printed by ``groklab data stats``."""
    c = s["config"]
    keys = ("entities", "relations", "out_degree", "values", "ood_ratio", "phi", "regime")
    shown = [f"{k}={c[k]}" for k in keys if k in c and c[k] is not None
             and not (k == "out_degree" and s["task"] == "comparison")
             and not (k == "values" and s["task"] == "composition")]
    lines = [f"dataset {s['path']}  (task {s['task']}, {s['kind']}, seed {s['seed']}, "
             f"vocab {s['vocab_size']} tokens)", "config: " + " ".join(shown)]
    if "source" in s:
        lines.append("source: " + " ".join(f"{k}={v}" for k, v in s["source"].items()))
    b = s["train_breakdown"]
    width = max(len(k) for k in s["counts"]) + 2
    lines.append("")
    lines.append(f"{'split':<{width}}{'items':>10}")
    for name, n in s["counts"].items():
        note = ""
        if name == "train":
            parts = [f"atomic {b['atomic_id']:,} ID + {b['atomic_ood']:,} OOD"
                     + (f" + {b['atomic_new']:,} new" if b["atomic_new"] else ""),
                     f"inferred {b['inferred']:,}",
                     f"augmented hop1 {b['augmented_hop1']:,} + hop2 {b['augmented_hop2']:,}"]
            note = "   (" + ", ".join(parts) + ")"
        lines.append(f"{name:<{width}}{n:>10,}{note}")
    st = dict(s["stats"])
    if st:
        lines += ["", "generation statistics:"] + _described(st)
        lines += [f"  {k}: {_fmt(v) if not isinstance(v, dict) else _dict(v)}" for k, v in st.items()]
    return "\n".join(lines)


def _dict(d: dict) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in d.items())


def _described(st: dict) -> list[str]:
    """Sentences for the well-known statistics; they are removed from ``st``."""
    out = []

    def take(*keys):
        if all(k in st for k in keys):
            return [st.pop(k) for k in keys]
        return None

    if v := take("atomic_facts", "id_atomic_facts", "ood_atomic_facts"):
        out.append(f"  atomic facts {v[0]:,} ({v[1]:,} ID, {v[2]:,} OOD)")
    if v := take("chains", "pool", "id_test", "ood_test", "discarded_one_ood_hop"):
        out.append(f"  chains {v[0]:,}: pool (both hops ID) {v[1]:,}, of which ID test {v[2]:,}; "
                   f"OOD test (both OOD) {v[3]:,}; discarded (one OOD hop) {v[4]:,}")
    if v := take("phi_reached", "phi_max", "train_inferred"):
        out.append(f"  phi {v[0]:.4g} (max {v[1]:.4g}): {v[2]:,} train inferred")
    if v := take("per_hop"):
        for k, h in v[0].items():
            if h.get("heldout"):
                out.append(f"  {k} hops (held out, probes only): pool {h['pool']:,}, OOD {h['ood_test']:,}")
            else:
                out.append(f"  {k} hops ({h['mode']}): chains {h['chains']:,}, pool {h['pool']:,}, ID "
                           f"test {h['id_test']:,}, OOD test {h['ood_test']:,}, discarded "
                           f"{h['discarded']:,}; phi {h['phi_reached']:.4g} (max {h['phi_max']:.4g}): "
                           f"{h['train_inferred']:,} train inferred")
    keys = ("regime", "hop1_ratio", "hop1_k", "u1_facts", "hop1_exposed_facts", "added_hop1",
            "hop2_ratio", "hop2_k", "u2_facts", "hop2_exposed_facts", "added_hop2")
    if v := take(*keys):
        out.append(f"  regime {v[0]}: hop 1 ratio {v[1]:g}, k {v[2]}: {v[4]:,} of |U1| = {v[3]:,} "
                   f"OOD facts exposed, +{v[5]:,} queries")
        out.append(f"  {'':>{len(v[0]) + 8}}hop 2 ratio {v[6]:g}, k {v[7]}: {v[9]:,} of |U2| = "
                   f"{v[8]:,} OOD facts exposed, +{v[10]:,} queries")
    return out
