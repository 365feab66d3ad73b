"""Accuracy per hop count x test-time depth (``groklab evaluate``).

Rows: the dataset's hop counts (data/khop.py ``hop_probes``; a two-hop dataset has one row),
ID and OOD probes apart, held-out hop counts marked. Columns: the depths evaluated (looped:
loops; recursive: H x L cycles; a decoder has only its own depth). The trained depth's column
equals the run's own metrics at that checkpoint exactly (same model, probes and batches).
"""

from __future__ import annotations

import numpy as np

from groklab.data.khop import hop_probes
from groklab.models.depth import depth_of
from groklab.train.depth import depth_label, evaluate_at


def depth_table(model, dataset, depths: list[tuple[int, ...]] | None = None,
                batch_size: int = 4096) -> dict:
    """{"hops", "depths", "labels", "trained", "iid": [[acc]], "ood": [[acc]], "atomic": [acc]}:
    rows by hop count, columns by depth (None or [] = the trained depth only)."""
    probes = hop_probes(dataset.manifest)
    trained = depth_of(model)
    depths = [tuple(d) for d in depths] if depths else [trained]
    hops = sorted(probes)
    names = [n for k in hops for n in (probes[k]["iid"], probes[k]["ood"])]
    atomic = [n for n in ("id_atomic", "ood_atomic") if n in dataset.probe_names]
    iid, ood, atom = [], [], []
    for depth in depths:
        accs = evaluate_at(model, dataset, depth if trained else None, names + atomic, batch_size)
        iid.append([accs[probes[k]["iid"]] for k in hops])
        ood.append([accs[probes[k]["ood"]] if len(dataset.split(probes[k]["ood"])) else None
                    for k in hops])
        atom.append([accs[n] for n in atomic])
    labels = [depth_label(model, d) if trained else "trained" for d in depths]
    sizes = {k: {"iid": len(dataset.split(probes[k]["iid"])),
                 "ood": len(dataset.split(probes[k]["ood"]))} for k in hops}
    return {"hops": hops, "heldout": [probes[k]["heldout"] for k in hops], "sizes": sizes,
            "depths": [list(d) for d in depths], "labels": labels,
            "trained": depth_label(model, trained) if trained else "trained",
            "iid": [list(r) for r in zip(*iid)], "ood": [list(r) for r in zip(*ood)],
            "atomic": dict(zip(atomic, [list(r) for r in zip(*atom)]))}


def majority_rate(split) -> float | None:
    """Accuracy of always answering the split's most common target (the comparison task's
    majority-class baseline: its three labels are far from balanced)."""
    if not len(split):
        return None
    return float(np.bincount(np.asarray(split.target)).max() / len(split))


def probe_table(model, dataset, depths=None, batch_size: int = 4096) -> dict:
    """Every probe's accuracy per depth beside its majority-class rate (any task)."""
    trained = depth_of(model)
    depths = [tuple(d) for d in depths] if depths else [trained]
    names = list(dataset.probe_names)
    accs = [evaluate_at(model, dataset, d if trained else None, names, batch_size) for d in depths]
    return {"labels": [depth_label(model, d) if trained else "trained" for d in depths],
            "probes": {n: {"accuracy": [a[n] for a in accs], "majority": majority_rate(dataset.split(n)),
                           "n": len(dataset.split(n))} for n in names}}


def format_probe_table(t: dict) -> str:
    width = max(len(n) for n in t["probes"]) + 2
    lines = [f"{'probe':<{width}}" + "".join(f"{x:>10}" for x in t["labels"]) + "  majority      n"]
    for name, p in t["probes"].items():
        maj = "-" if p["majority"] is None else f"{p['majority']:.3f}"
        lines.append(f"{name:<{width}}" + "".join(f"{v:>10.3f}" for v in p["accuracy"])
                     + f"  {maj:>8} {p['n']:>6}")
    return "\n".join(lines)


def format_table(t: dict, kind: str = "iid") -> str:
    """Plain-text table: one row per hop count, one column per depth."""
    width = max(8, *(len(x) for x in t["labels"]))
    head = f"{kind + ' hops':<12}" + "".join(f"{x:>{width + 1}}" for x in t["labels"])
    lines = [head]
    for k, held, row in zip(t["hops"], t["heldout"], t[kind]):
        name = f"{k}{' (held out)' if held else ''}"
        cells = "".join(f"{'-' if v is None else f'{v:.3f}':>{width + 1}}" for v in row)
        lines.append(f"{name:<12}{cells}  n={t['sizes'][k][kind]}")
    return "\n".join(lines)
