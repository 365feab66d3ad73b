"""Files of ``groklab forecast --evaluate``: evaluation.json, evaluation.md (the held-out
table), and per target a reliability diagram and a saved-compute / wrongly-killed curve (PNG)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from groklab.fsutil import atomic_write_text


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def _ci(c):
    return "" if not c else f" [{c[0]:.2f}, {c[1]:.2f}]"


def table(result: dict) -> str:
    """The held-out table as markdown (one block per target)."""
    lines = [f"Leave-one-sweep-out over {len(result['sweeps'])} sweeps, {result['n_runs']} runs "
             f"({', '.join(f'{k} {v}' for k, v in result['sweeps'].items())}).", ""]
    for t in result["targets"]:
        lines += [f"### {t['target']}: {t['n_reach']} of {t['n_runs']} runs reach it within the budget", "",
                  "| at | pending (reach) | AUROC model [95% CI] | extrapolate | always / never | "
                  "Brier | ECE | step error n | model | extrapolate | corpus median | "
                  f"stop p<{t['stop_below']:g}: compute saved | grok runs killed | extrapolate-stop: saved / killed |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for f, r in t["fractions"].items():
            if not r.get("n_pending"):
                lines.append(f"| {float(f):.0%} | 0 | - | - | - | - | - | - | - | - | - | - | - | - |")
                continue
            a, e, s = r["auroc"], r["step_error"], r["stop"]
            m, x = s["model"], s["extrapolate"]
            lines.append(
                f"| {float(f):.0%} | {r['n_pending']} ({r['n_reach']}) | {_f(a['model'])}{_ci(a['model_ci95'])} | "
                f"{_f(a['extrapolate'])} | {_f(a['always'])} / {_f(a['never'])} | "
                f"{r['calibration']['brier']:.3f} | {r['calibration']['ece']:.3f} | {e['n']} | "
                f"{_f(e['model'], '{:.0%}')} | {_f(e['extrapolate'], '{:.0%}')} | {_f(e['corpus_median'], '{:.0%}')} | "
                f"{m['saved_share']:.0%} ({m['stopped']} runs) | {m['grok_killed']} of {m['grok_runs']} | "
                f"{x['saved_share']:.0%} / {x['grok_killed']} |")
        lines.append("")
    return "\n".join(lines)


def _slug(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", target.replace(">=", "_ge_"))


def plot_reliability(t: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    for f, r in t["fractions"].items():
        bins = r.get("calibration", {}).get("bins", [])
        if not bins:
            continue
        xs, ys, ns = [b["mean_p"] for b in bins], [b["rate"] for b in bins], [b["n"] for b in bins]
        ax.plot(xs, ys, marker="o", label=f"at {float(f):.0%} of the budget (n={sum(ns)}, "
                                           f"ECE {r['calibration']['ece']:.3f})")
        for x, y, n in zip(xs, ys, ns):
            ax.annotate(str(n), (x, y), fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability (held-out sweeps)")
    ax.set_ylabel("observed rate of reaching the target")
    ax.set_title(f"reliability: {t['target']}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(t: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for f, r in t["fractions"].items():
        pts = r.get("tradeoff")
        if not pts or not t["n_reach"]:
            continue
        line, = ax.plot([p["grok_killed_share"] for p in pts], [p["saved_share"] for p in pts],
                        marker="o", label=f"model at {float(f):.0%}")
        x = r["stop"]["extrapolate"]
        ax.scatter([x["grok_killed_share"]], [x["saved_share"]], marker="x", color=line.get_color(),
                   label=f"extrapolate at {float(f):.0%}")
    ax.set_xlabel("share of target-reaching runs wrongly stopped")
    ax.set_ylabel("share of the sweep's compute saved")
    ax.set_title(f"forecast-stopped sweep: {t['target']}\n(points: stop below p = .01 .02 .05 .1 .2 .3 .5)",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_evaluation(result: dict, out_dir) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "evaluation.json", out / "evaluation.md"]
    atomic_write_text(paths[0], json.dumps(result, indent=1) + "\n")
    atomic_write_text(paths[1], table(result) + "\n")
    for t in result["targets"]:
        rel, trade = out / f"reliability_{_slug(t['target'])}.png", out / f"stopping_{_slug(t['target'])}.png"
        plot_reliability(t, rel)
        plot_tradeoff(t, trade)
        paths += [rel, trade]
    return paths
