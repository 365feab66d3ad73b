"""Accuracy and loss curves of a run, as PNG files in ``RUN/plots/`` (matplotlib, Agg)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from groklab.fsutil import atomic_write_bytes
from groklab.train.rundir import PLOTS_DIR


def plot_run(run_dir: str | os.PathLike, rows: list[dict]) -> list[Path]:
    """Write ``accuracy.png`` (exact match per split, train_acc dashed) and ``loss.png``
    (training loss and per-split loss, log scale); return the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(run_dir) / PLOTS_DIR
    if not rows:
        return []
    steps = [r["step"] for r in rows]
    splits = sorted({k[4:] for r in rows for k in r if k.startswith("acc/")})
    log_x = steps[-1] >= 10_000
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in splits:
        ax.plot(steps, [r.get(f"acc/{s}") for r in rows], label=s, lw=1.4)
    ax.plot(steps, [r.get("train_acc") for r in rows], "k--", lw=1, label="train_acc")
    ax.set(xlabel="step", ylabel="exact match", ylim=(-0.02, 1.02), title=f"{Path(run_dir).name}: accuracy")
    _finish(ax, log_x)
    written.append(_save(fig, out / "accuracy.png"))

    fig, ax = plt.subplots(figsize=(7, 4.2))
    pts = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    if pts:
        ax.plot(*zip(*pts), "k-", lw=1.4, label="train (running)")
    for s in splits:
        ax.plot(steps, [r.get(f"loss/{s}") for r in rows], lw=1, label=s)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=f"{Path(run_dir).name}: loss")
    _finish(ax, log_x)
    written.append(_save(fig, out / "loss.png"))
    plt.close("all")
    return written


def _finish(ax, log_x: bool) -> None:
    if log_x:
        ax.set_xscale("symlog", linthresh=1000)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path
