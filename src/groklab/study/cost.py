"""What a study costs before it starts: runs, steps, FLOPs, GPU-hours and disk.

GPU time is estimated from FLOPs (``groklab.study.compute``) at an *effective* throughput
calibrated on the study's own anchor (study.md section 7: ~50 H100-hours for a 1.6M-step TRM
run of the paper's size). Small models at batch 512 are far from a GPU's peak; the anchor
implies roughly 7 TFLOP/s effective, and we use that figure for every family, with a floor of
a few milliseconds per step for kernel launches. It is an estimate, not a measurement: the
printed table says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from groklab.study.compute import flops_per_step
from groklab.study.layout import SATURATED, SCRATCH
from groklab.study.scales import CONTROL, REGIMES, SCALES, StudyScale

ANCHOR_HOURS = 50.0          # study.md section 7: TRM pretraining, paper size, H100
ANCHOR_STEPS = 1_600_000
STEP_FLOOR_S = 0.004         # per-step launch/latency floor on a GPU
# effective FLOP/s of one CPU core for a study run, evaluations and lens included: the median
# of the cpu-scale runs measured on a 2-core CPU (docs/study.md, "What a study costs")
CPU_CORE_FLOPS = 30e9
BYTES_PER_PARAM_CKPT = 16    # fp32 weights + EMA + two AdamW moments
DATA_BYTES_PER_ITEM = 28     # int32 x 7 columns per split row
FINETUNE_SOURCES = (*REGIMES, SCRATCH, SATURATED)   # claim 3's finetunes + claim 1's


@dataclass
class RunCost:
    kind: str          # "pretrain" | "memoriser" (claim 1's control: a ceiling) | "finetune"
    family: str
    runs: int
    steps: int         # per run
    flops: float       # per run
    gpu_hours: float   # per run
    disk_bytes: float  # per run

    @property
    def cpu_hours(self) -> float:
        """One CPU core's hours for one run, at CPU_CORE_FLOPS."""
        return self.flops / CPU_CORE_FLOPS / 3600.0


def n_checkpoints(schedule, steps: int) -> int:
    """Checkpoints a run of ``steps`` steps writes under ``[[until, every], ...]`` (all kept),
    plus the final one."""
    if isinstance(schedule, int):
        schedule = [[None, schedule]]
    count, lo = 0, 0
    for until, every in schedule:
        hi = steps if until is None else min(until, steps)
        if hi > lo:
            count += hi // every - lo // every
        if until is None or until >= steps:
            break
        lo = until
    return count + 1


def effective_flops(anchor_flops_per_step: float) -> float:
    """FLOP/s implied by the study's anchor for a run costing ``anchor_flops_per_step``."""
    return anchor_flops_per_step * ANCHOR_STEPS / (ANCHOR_HOURS * 3600.0)


def estimate(scale: StudyScale, families: tuple[str, ...], n_params: dict[str, int],
             anchor_params: int, seeds: int = 1) -> list[RunCost]:
    """Cost per run kind and family, for ``seeds`` replicas of the study. ``anchor_params``:
    parameters of the paper TRM.

    Every run the pipeline trains is counted: the regimes' and the control's pretraining, claim
    1's memoriser (at its ceiling: it stops at its fit) and the finetunes (claim 3's per regime
    and from scratch, claim 1's from both_full at saturation)."""
    batch = int(scale.train.get("batch_size", 512))
    anchor_model = SCALES["paper"].models["recursive"]   # the study's TRM, study.md s. 9
    rate = effective_flops(flops_per_step(anchor_params, anchor_model, 512))
    rows = []
    for fam in families:
        model = scale.models[fam]
        per_step = flops_per_step(n_params[fam], model, batch)
        seconds_per_step = max(per_step / rate, STEP_FLOOR_S)
        schedule = scale.train.get("checkpoint_every", [[None, 1000]])
        # a scale may give some sources their own budget (e.g. a longer natural run): one row
        # per distinct budget, so the totals are the runs the study will actually train
        budgets: dict[int, int] = {}
        for source in (*REGIMES, CONTROL):
            steps = scale.steps_for(fam, source)
            budgets[steps] = budgets.get(steps, 0) + 1
        kinds = [("pretrain", runs, steps) for steps, runs in sorted(budgets.items())]
        kinds.append(("memoriser", 1, scale.memoriser_steps(fam)))
        kinds.append(("finetune", len(FINETUNE_SOURCES), scale.finetune_steps))
        for kind, runs, steps in kinds:
            ckpt = n_params[fam] * BYTES_PER_PARAM_CKPT * n_checkpoints(schedule, steps)
            rows.append(RunCost(kind, fam, runs * seeds, steps, per_step * steps,
                                seconds_per_step * steps / 3600.0, ckpt))
    return rows


def totals(rows: list[RunCost]) -> dict:
    return {
        "runs": sum(r.runs for r in rows),
        "steps": sum(r.runs * r.steps for r in rows),
        "flops": sum(r.runs * r.flops for r in rows),
        "gpu_hours": sum(r.runs * r.gpu_hours for r in rows),
        "cpu_hours": sum(r.runs * r.cpu_hours for r in rows),
        "disk_gb": sum(r.runs * r.disk_bytes for r in rows) / 1e9,
    }


def format_estimate(scale: StudyScale, rows: list[RunCost], data_items: int = 0,
                    seeds: int = 1, jobs: int = 2) -> str:
    """A table for the terminal, ending with the totals and how they were estimated; the CPU
    wall figure assumes ``jobs`` parallel training processes on as many idle cores."""
    over = f", {seeds} seeds" if seeds > 1 else ""
    lines = [f"Cost estimate for --scale {scale.name}{over} (an estimate, not a measurement):",
             f"  {'kind':9} {'family':10} {'runs':>4} {'steps/run':>11} {'PFLOP/run':>10} "
             f"{'GPU-h/run':>10} {'CPU-h/run':>10} {'disk/run':>9}"]
    for r in rows:
        lines.append(f"  {r.kind:9} {r.family:10} {r.runs:>4} {r.steps:>11,} {r.flops / 1e15:>10.3g} "
                     f"{r.gpu_hours:>10.3g} {r.cpu_hours:>10.3g} {r.disk_bytes / 1e9:>7.2f}GB")
    t = totals(rows)
    disk = t["disk_gb"] + data_items * DATA_BYTES_PER_ITEM / 1e9
    cpu = ("" if scale.gpu_job else f"~{t['cpu_hours']:,.1f} CPU core-hours (~{t['cpu_hours'] / jobs:,.1f} "
           f"h wall with --jobs {jobs} on {jobs} idle core{'s' if jobs > 1 else ''}), ")
    lines.append(f"  total: {t['runs']} runs, {t['steps']:,} steps, {t['flops'] / 1e15:,.3g} PFLOP, "
                 f"~{t['gpu_hours']:,.3g} GPU-hours (H100 class, one run per GPU), {cpu}"
                 f"~{disk:.1f} GB disk")
    lines.append(f"  GPU-hours assume the effective throughput implied by the study's anchor "
                 f"({ANCHOR_HOURS:.0f} H100-hours per {ANCHOR_STEPS:,}-step TRM run), floor "
                 f"{STEP_FLOOR_S * 1000:.0f} ms/step; CPU-hours assume {CPU_CORE_FLOPS / 1e9:.0f} "
                 f"GFLOP/s per core (measured on the cpu scales: 16-60); disk assumes {BYTES_PER_PARAM_CKPT} bytes per "
                 f"parameter per checkpoint; the memoriser's steps are its ceiling (it stops "
                 f"once it fits).")
    return "\n".join(lines)
