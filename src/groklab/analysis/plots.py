"""Heatmaps of (stage x position) grids and curves over training steps (matplotlib, Agg)."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from groklab.fsutil import atomic_write_bytes  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def short_stage(name: str) -> str:
    """Compact label: ``blocks.1.hook_resid_post`` -> ``b1.post``,
    ``loops.1.blocks.0.hook_resid_post`` -> ``L1.b0.post``, ``cycles.0.z.3...`` -> ``c0.z3``."""
    parts = name.replace("hook_resid_", "").replace("hook_", "").split(".")
    out, i = [], 0
    while i < len(parts):
        p = parts[i]
        if p in ("blocks", "loops", "cycles", "z") and i + 1 < len(parts) and parts[i + 1].isdigit():
            out.append({"blocks": "b", "loops": "L", "cycles": "c", "z": "z"}[p] + parts[i + 1])
            i += 2
        else:
            out.append(p)
            i += 1
    return ".".join(out)


def heatmaps(panels: list[tuple[str, np.ndarray]], stages: list[list[str]] | list[str],
             positions: list[str], path: str | os.PathLike, title: str = "",
             vmin: float = 0.0, vmax: float = 1.0) -> None:
    """Side-by-side heatmaps, stages on the y axis (earliest at the bottom), positions on x.

    ``stages`` is one label list shared by all panels, or one list per panel.
    """
    per_panel = stages if stages and isinstance(stages[0], list) else [stages] * len(panels)
    height = max(2.5, 0.35 * max(len(s) for s in per_panel) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1.0, height),
                             squeeze=False, layout="constrained")
    for ax, (name, grid), labels in zip(axes[0], panels, per_panel):
        grid = np.asarray(grid, dtype=float)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(len(positions)), positions)
        ax.set_yticks(range(len(labels)), [short_stage(s) for s in labels], fontsize=7)
        ax.set_title(name, fontsize=9)
        for (i, j), v in np.ndenumerate(grid):
            if grid.size <= 80:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < (vmin + vmax) / 2 else "black")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def curves(steps: list[int], series: dict[str, list[float]], path: str | os.PathLike,
           title: str = "", ylabel: str = "value") -> None:
    """Lines over training steps (log x axis when steps span more than two decades)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, ys in series.items():
        ys = [np.nan if y is None else y for y in ys]
        ax.plot(steps, ys, marker=".", label=label)
    if steps and min(steps) > 0 and max(steps) / max(1, min(steps)) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)
