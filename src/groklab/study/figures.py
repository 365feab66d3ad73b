"""The report's figures, drawn with matplotlib (Agg) from plain numbers into PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from groklab.analysis.plots import short_stage  # noqa: E402  (the tick labels `compare` uses)
from groklab.fsutil import atomic_write_bytes  # noqa: E402

_DPI = 90
ANNOTATE_MAX_CELLS = 120   # heatmap panels up to this many cells get their values written in


def _save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def curves(path: Path, title: str, panels: dict[str, dict[str, tuple[list, list]]],
           ylabel: str = "accuracy / rate") -> Path:
    """One subplot per panel (e.g. regime); each panel maps a label to (steps, values).
    ``ylabel`` is written on the first panel of each row (the y axis is shared)."""
    n = len(panels)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False,
                             sharey=True)
    for ax, (name, series) in zip(axes.flat, panels.items()):
        for label, (xs, ys) in series.items():
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if pts:
                ax.plot(*zip(*pts), label=label, lw=1.4,
                        ls="--" if label.startswith("bridge") else "-")
        ax.set_title(name, fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
                   bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _save(fig, path)


def grid(path: Path, title: str, rows: list[str], cols: list[str], values: list[list],
         vmin: float = 0.0, vmax: float = 1.0) -> Path:
    """Annotated heatmap (e.g. transfer EM: pretraining regime x probe category)."""
    arr = np.array([[np.nan if v is None else v for v in r] for r in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.2, 0.45 * len(rows) + 1.4))
    im = ax.imshow(arr, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            if not np.isnan(arr[i, j]):
                ax.text(j, i, f"{arr[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if arr[i, j] < (vmin + vmax) / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def heatmaps(path: Path, title: str, maps: dict[str, tuple[np.ndarray, list[str], list[str]]],
             vmin: float | None = None, vmax: float | None = None) -> Path:
    """Side-by-side heatmaps sharing a colour scale: name -> (array, row labels, col labels).

    Drawn as ``groklab compare`` draws its grids: stages on the y axis with the earliest at
    the bottom and short labels (``blocks.1.hook_resid_post`` -> ``b1.post``), and each cell's
    value written in it while a panel has at most ANNOTATE_MAX_CELLS cells."""
    n = len(maps)
    arrays = [np.asarray(a, dtype=float) for a, _, _ in maps.values()]
    n_rows = max((a.shape[0] for a in arrays), default=1)
    n_cols = max((a.shape[1] for a in arrays if a.ndim == 2), default=1)
    fig, axes = plt.subplots(1, n, figsize=(max(3.4, 0.42 * n_cols + 1.4) * n + 0.8,
                                            max(3.0, 0.3 * n_rows + 1.2)),
                             squeeze=False, layout="constrained")
    lo = vmin if vmin is not None else min(float(np.nanmin(a)) for a in arrays)
    hi = vmax if vmax is not None else max(float(np.nanmax(a)) for a in arrays)
    mid = (lo + hi) / 2
    im = None
    for ax, arr, (name, (_, rlab, clab)) in zip(axes.flat, arrays, maps.items()):
        im = ax.imshow(arr, vmin=lo, vmax=hi, cmap="magma", aspect="auto", origin="lower")
        ax.set_title(name, fontsize=9)
        ax.set_yticks(range(len(rlab)), [short_stage(str(r)) for r in rlab], fontsize=7)
        ax.set_xticks(range(len(clab)), [str(c) for c in clab], fontsize=7)
        ax.set_xlabel("position", fontsize=8)
        if arr.size <= ANNOTATE_MAX_CELLS:
            for (i, j), v in np.ndenumerate(arr):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if v < mid else "black")
    axes[0, 0].set_ylabel("stage (earliest at the bottom)", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=list(axes.flat), fraction=0.03)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def bars(path: Path, title: str, labels: list[str], values: list[float | None], ylabel: str,
         censored: list[bool] | None = None) -> Path:
    """Bar chart; a censored bar (target never reached: budget as lower bound) is hatched."""
    censored = censored or [False] * len(values)
    fig, ax = plt.subplots(figsize=(0.9 * len(labels) + 2, 3.2))
    xs = np.arange(len(labels))
    for x, v, c in zip(xs, values, censored):
        if v is not None:
            ax.bar(x, v, color="#bbb" if c else "#4477aa", hatch="//" if c else None,
                   edgecolor="#333")
    ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title + ("  (hatched: not reached, budget shown)" if any(censored) else ""),
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
