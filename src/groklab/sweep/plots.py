"""Figures of a finished sweep, from summary.csv rows and the trials' metrics.jsonl.

- ``phi_grok.png`` (Wang et al. 2024, fig. 2a): left, ID test accuracy against the step for
  each trial, coloured by phi; right, the grok step (first evaluation with
  ``test_inferred_iid >= 0.9``) and the train-fit step (``train_acc >= 0.99``) against phi.
  A trial that never grokked is drawn as an open triangle at its last step (a lower bound).
- ``exposure_map.png`` (the study's future work): hop-1 exposure ratio x hop-2 exposure ratio
  -> final OOD accuracy and final bridge-found rate on the OOD test (logit lens, the sweep's
  ``lens:`` option), averaged over the trials (seeds) of each cell.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

from groklab.fsutil import atomic_write_bytes
from groklab.sweep.trial import TRIALS_DIR
from groklab.train import rundir

PLOTS_DIR = "plots"
ID_ACC, OOD_ACC = "acc/test_inferred_iid", "acc/test_inferred_ood"
GROK_COL = "first_step/test_inferred_iid>=0.9"
FIT_COL = "first_step/train_acc>=0.99"
OOD_COL = "final/acc/test_inferred_ood"
BRIDGE_COL = "final/lens/test_inferred_ood/bridge_found"


def plot_sweep(sweep_dir: str | Path, rows: list[dict]) -> list[Path]:
    """Draw every figure the sweep supports (phi varies; exposure ratios vary); return paths."""
    done = [r for r in rows if r.get("status") == "done"]
    out = []
    if len({r["phi"] for r in done if _number(r.get("phi"))}) >= 2:
        out.append(plot_phi_grok(sweep_dir, done))
    if len({(r.get("hop1_ratio"), r.get("hop2_ratio")) for r in done if r.get("hop1_ratio") is not None}) >= 2:
        out.append(plot_exposure_map(sweep_dir, done))
    return out


def plot_phi_grok(sweep_dir: str | Path, rows: list[dict]) -> Path:
    """phi vs grok step (and ID test accuracy curves coloured by phi)."""
    plt = _pyplot()
    sweep_dir = Path(sweep_dir)
    rows = [r for r in rows if _number(r.get("phi"))]
    phis = sorted({float(r["phi"]) for r in rows})
    cmap = plt.get_cmap("viridis")
    color = {p: cmap(i / max(1, len(phis) - 1)) for i, p in enumerate(phis)}
    fig, (ax_c, ax_g) = plt.subplots(1, 2, figsize=(11, 4.2))

    labelled, last_step = set(), 0
    for r in sorted(rows, key=lambda r: float(r["phi"])):
        curve = _metric_curve(rundir.metrics_path(sweep_dir / TRIALS_DIR / r["trial"]), ID_ACC)
        if not curve:
            continue
        p = float(r["phi"])
        last_step = max(last_step, curve[-1][0])
        ax_c.plot(*zip(*curve), color=color[p], lw=1.2, label=None if p in labelled else f"phi={p:g}")
        labelled.add(p)
    ax_c.set(xlabel="optimization step", ylabel="ID test accuracy (test_inferred_iid)",
             ylim=(-0.02, 1.02), title="ID generalization during training")
    if last_step >= 10_000:
        ax_c.set_xscale("symlog", linthresh=1000)
    ax_c.grid(alpha=0.3)
    ax_c.legend(fontsize=8)

    for col, name, c in ((GROK_COL, "grok step (ID test >= 0.9)", "C3"), (FIT_COL, "train fit (>= 0.99)", "0.5")):
        by_phi = defaultdict(list)
        for r in rows:
            step = r.get(col)
            if step is None:
                ax_g.scatter(float(r["phi"]), r.get("steps") or 0, marker="^", facecolors="none", edgecolors=c, s=40)
            else:
                by_phi[float(r["phi"])].append(float(step))
                ax_g.scatter(float(r["phi"]), float(step), color=c, s=18, alpha=0.7)
        xs = sorted(by_phi)
        ax_g.plot(xs, [sum(by_phi[x]) / len(by_phi[x]) for x in xs], "o-", color=c, lw=1.5, ms=3,
                  label=f"{name}, mean over seeds")
    ax_g.scatter([], [], marker="^", facecolors="none", edgecolors="k", label="not reached by the last step")
    ax_g.set(xlabel="phi (inferred / atomic facts)", ylabel="step", title="phi vs grok step")
    ax_g.set_yscale("log")
    ax_g.set_xticks(phis)
    ax_g.grid(alpha=0.3, which="both")
    ax_g.legend(fontsize=8)
    return _save(fig, sweep_dir / PLOTS_DIR / "phi_grok.png")


def exposure_cells(rows: list[dict], column: str) -> dict[tuple[float, float], tuple[float, int]]:
    """{(hop1_ratio, hop2_ratio): (mean of column, n trials)} over rows with a value."""
    cells = defaultdict(list)
    for r in rows:
        if r.get("hop1_ratio") is None or r.get(column) is None:
            continue
        cells[(float(r["hop1_ratio"]), float(r["hop2_ratio"]))].append(float(r[column]))
    return {k: (sum(v) / len(v), len(v)) for k, v in sorted(cells.items())}


def plot_exposure_map(sweep_dir: str | Path, rows: list[dict]) -> Path:
    """Exposure map: (hop-1 ratio, hop-2 ratio) -> final OOD accuracy and bridge-found rate."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    panels = ((OOD_COL, "final OOD accuracy (test_inferred_ood)"),
              (BRIDGE_COL, "bridge found on OOD test (logit lens)"))
    for ax, (col, title) in zip(axes, panels):
        cells = exposure_cells(rows, col)
        if cells:
            xs, ys = zip(*cells)
            vals = [v for v, _ in cells.values()]
            sc = ax.scatter(xs, ys, c=vals, cmap="magma", vmin=0, vmax=1, s=900, marker="s")
            for (x, y), (v, n) in cells.items():
                ax.annotate(f"{v:.2f}\nn={n}", (x, y), ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 else "black")
            fig.colorbar(sc, ax=ax, fraction=0.046)
        else:
            ax.text(0.5, 0.5, f"no '{col}' values\n(add `lens:` to the sweep for bridge-found)",
                    ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set(xlabel="hop-1 exposure ratio", ylabel="hop-2 exposure ratio", title=title,
               xlim=(-0.2, 1.2), ylim=(-0.2, 1.2))
        ax.grid(alpha=0.3)
    return _save(fig, Path(sweep_dir) / PLOTS_DIR / "exposure_map.png")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _metric_curve(path: Path, key: str) -> list[tuple[int, float]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get(key) is not None:
            out.append((row["step"], row[key]))
    return out


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
