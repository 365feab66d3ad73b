"""``groklab reproduce``: the study's stages, resumable, with progress per stage.

Layout of a study directory::

    STUDY/study.json                 scale (resolved), families, device, versions
    STUDY/stages/<stage>.json        finished markers (a stage with a marker is reused)
    STUDY/data/<regime>/             one dataset per regime, + supervised (phi=max), + new_knowledge
    STUDY/runs/pretrain/<family>-<source>/   ordinary run directories (train_run)
    STUDY/runs/finetune/<family>-<source>/   finetune of a pretrained model, or -scratch
    STUDY/analysis/*.json            claim 1-4 evidence
    STUDY/figures/*.png, report.md, report.html, report.json
    STUDY/logs/<kind>/<family>-<source>.log|.json   a run's output and outcome (--jobs N > 1)

A run counts as finished when its ``summary.json`` says so (and its config matches); an
unfinished run directory is resumed with ``train_run(resume=True)`` from its latest good
checkpoint. ``--jobs N`` trains independent runs in N worker processes of the sweep's pool
(``groklab.study.runner``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from groklab import __version__
from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_json
from groklab.study import engine, stages as stage_impl
from groklab.study.layout import (GROKKED, INJECTED, MEMORISER, SATURATED, SCRATCH, STAGE_NAMES,
                                  StudyLayout)
from groklab.study.markers import read_marker, write_marker
from groklab.study.runner import (LOGS_DIR, StudyRunJob, StudyStackJob, stack_key, train_job,
                                  train_unit)
from groklab.study.scales import CONTROL, REGIMES, StudyScale
from groklab.sweep.local import run_local

# claim 1 runs after claim 3: its transfer measure compares the natural model's finetune (a
# claim-3 run) with the finetune of the both_full model stopped at training saturation
STAGES = STAGE_NAMES
HEARTBEAT_S = 30.0


def default_jobs(device: str) -> int:
    """--jobs auto: one run per CPU core (at most 4) on CPU, one at a time on a GPU."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


@dataclass
class RunSpec:
    """One training run of the study (picklable: sent to worker processes)."""

    kind: str          # "pretrain" | "finetune"
    family: str
    source: str        # regime, CONTROL, or SCRATCH
    run_dir: str
    config: dict       # RunConfig as a nested dict
    init_from: str | None = None    # pretrained run directory (finetune)
    lens_splits: tuple = ()
    lens_queries: int = 200
    seed: int = 0                   # the study seed it belongs to (names the run across seeds)
    log_dir: str | None = None      # its study's logs/ (None: the training study's)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.family}-{self.source}" + (f"-seed{self.seed}" if self.seed else "")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While the study runs, SIGTERM stops it like Ctrl-C (workers checkpoint and exit)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_study_dir(out: Path, study_json: Path) -> None:
    """``--out`` must be a new or empty directory, or an existing study (with study.json)."""
    if out.exists() and not out.is_dir():
        raise GroklabError(f"out={str(out)!r} is invalid (allowed: a directory; this is a file)")
    if out.is_dir() and not study_json.exists() and any(out.iterdir()):
        raise GroklabError(f"out={str(out)!r} is invalid (allowed: a new or empty "
                           "directory, or an existing study; this one has no study.json)")


class Study:
    """A study directory plus the plan that fills it."""

    def __init__(self, out: str | Path, scale: StudyScale, families: tuple[str, ...],
                 device: str = "auto", jobs: int = 1, log=print, seed: int = 0,
                 data_root: str | Path | None = None, vary_graph: bool = False, stack: int = 1):
        self.out = Path(out)
        self.layout = StudyLayout(out, data_root)
        self.stack = stack            # --stack: seeds' runs trained together, up to this many
        self.stack_layout = self.layout  # where stack directories go (a multi-seed study's top)
        self.scale = scale
        self.families = tuple(families)
        self.device = device
        self.jobs = jobs
        self.log = log
        self.seed = seed              # train.seed of every run (model init, batch order)
        self.vary_graph = vary_graph  # the graph's seed is the study seed too

    # ------------------------------------------------------------------ paths
    def data_dir(self, name: str) -> Path:
        return self.layout.data_dir(name)

    def run_dir(self, kind: str, family: str, source: str) -> Path:
        return self.layout.run_dir(kind, family, source)

    @property
    def analysis_dir(self) -> Path:
        return self.layout.analysis_dir

    # ------------------------------------------------------------------ study.json
    def open(self) -> None:
        """Create ``study.json`` or check that an existing study used the same scale."""
        path = self.layout.study_json
        check_study_dir(self.out, path)
        self.out.mkdir(parents=True, exist_ok=True)
        want = {"scale": self.scale.to_dict()}
        if self.seed:
            want["seed"] = self.seed
        if self.vary_graph:
            want["vary_graph"] = True
        if path.exists():
            have = json.loads(path.read_text())
            if (have.get("scale") != json.loads(json.dumps(want["scale"]))
                    or have.get("seed", 0) != self.seed
                    or have.get("vary_graph", False) != self.vary_graph):
                raise GroklabError(
                    f"out={str(self.out)!r} holds a study made with a different configuration "
                    f"(scale {have.get('scale', {}).get('name')!r}); use a new --out or remove it")
            fams = list(dict.fromkeys(list(have.get("families", [])) + list(self.families)))
        else:
            fams = list(self.families)
        self.families = tuple(fams)  # a study covers every family it was ever run with
        info = {**want, "families": fams, "device": self.device, "groklab": __version__,
                "python": sys.version.split()[0], "torch": engine.torch_version(),
                "command": " ".join(sys.argv)}
        if path.exists():
            info["created"] = json.loads(path.read_text()).get("created")
        info.setdefault("created", time.strftime("%Y-%m-%d %H:%M:%S"))
        atomic_write_json(path, info)

    # ------------------------------------------------------------------ plan
    @property
    def graph_seed(self) -> int:
        return self.seed if self.vary_graph else self.scale.data.get("seed", 0)

    def data_config(self, source: str) -> dict:
        cfg = dict(self.scale.data, regime=GROKKED if source == CONTROL else source,
                   seed=self.graph_seed)
        if source == CONTROL:
            cfg["phi"] = "max"
        return cfg

    def _config(self, family: str, source: str, finetune: bool = False,
                steps: int | None = None) -> dict:
        data = INJECTED if finetune else source
        if steps is None:
            steps = (self.scale.finetune_steps if finetune
                     else self.scale.steps_for(family, source))
        every = self.scale.finetune_eval_every if finetune else self.scale.eval_every[family]
        return engine.run_config(self.scale, family, data_path=self.data_dir(data), steps=steps,
                                 eval_every=every, device=self.device, finetune=finetune,
                                 seed=self.seed, data=dict(self.scale.data, seed=self.graph_seed))

    def _spec(self, kind: str, family: str, source: str, cfg: dict, **kw) -> RunSpec:
        return RunSpec(kind, family, source, str(self.run_dir(kind, family, source)), cfg,
                       lens_queries=self.scale.lens_queries, seed=self.seed,
                       log_dir=str(self.out / LOGS_DIR), **kw)

    def pretrain_specs(self) -> list[RunSpec]:
        return [self._spec("pretrain", fam, source, self._config(fam, source),
                           lens_splits=("test_inferred_ood", "test_inferred_iid"))
                for fam in self.families for source in REGIMES + (CONTROL,)]

    def finetune_specs(self) -> list[RunSpec]:
        return [self._spec("finetune", fam, source, self._config(fam, source, finetune=True),
                           init_from=None if source == SCRATCH else
                           str(self.run_dir("pretrain", fam, source)),
                           lens_splits=("new_old", "old_new", "new_new"))
                for fam in self.families for source in REGIMES + (SCRATCH,)]

    def saturation_steps(self) -> dict[str, int | None]:
        """Claim 1's non-grokked model: both_full's first checkpoint after it fit, per family."""
        from groklab.study.claims import FIT
        return {fam: engine.saturation_checkpoint(self.run_dir("pretrain", fam, "both_full"), FIT)
                for fam in self.families}

    def saturated_finetune_spec(self, family: str, step: int) -> RunSpec:
        """Finetune of the both_full run from its checkpoint at training saturation."""
        init = f"{self.run_dir('pretrain', family, 'both_full')}@{step}"
        return self._spec("finetune", family, SATURATED,
                          self._config(family, SATURATED, finetune=True), init_from=init,
                          lens_splits=("new_old", "old_new", "new_new"))

    def memoriser_specs(self) -> list[RunSpec]:
        """Claim 1's negative control per family: the family's recipe on the natural dataset
        with its compositions' answers permuted (groklab.data.memorise), for at most the
        natural run's budget (or the scale's ``source_steps`` for it), stopped once it fits
        them. Its dataset is made here, not in the data stage, so that studies whose data
        stage finished before the control existed get it too."""
        from groklab.study.claims import FIT
        engine.make_shuffled(self.data_dir(GROKKED), self.data_dir(MEMORISER), self.graph_seed)
        specs = []
        for fam in self.families:
            cfg = self._config(fam, MEMORISER, steps=self.scale.memoriser_steps(fam))
            cfg["train"] = dict(cfg["train"], stop_at=[f"train_inferred>={FIT}"])
            specs.append(self._spec("pretrain", fam, MEMORISER, cfg))
        return specs

    def stage_specs(self, stage: str) -> list[RunSpec]:
        """The training runs a stage needs (a multi-seed study trains all seeds' at once)."""
        if stage == "pretrain":
            return self.pretrain_specs()
        if stage == "claim3":
            return self.finetune_specs()
        if stage == "claim1":
            return [self.saturated_finetune_spec(f, s) for f, s in self.saturation_steps().items()
                    if s is not None] + self.memoriser_specs()
        return []

    # ------------------------------------------------------------------ running
    def run(self, stages: tuple[str, ...] = STAGES) -> dict:
        """Run (or reuse) each stage in order; return {stage: marker}."""
        self.open()
        done = {}
        t_all = time.perf_counter()
        with _sigterm_as_interrupt():
            self._run_stages(stages, done)
        self.log(f"study finished in {time.perf_counter() - t_all:.1f} s; report: "
                 f"{self.out / 'report.md'} and {self.out / 'report.html'}")
        return done

    def _run_stages(self, stages: tuple[str, ...], done: dict) -> None:
        for i, name in enumerate(stages, 1):
            key = {"families": list(self.families)}
            marker = read_marker(self.out, name, key)
            if marker is not None and name != "report":
                self.log(f"[stage {i}/{len(stages)}] {name}: reused (finished {marker['finished_at']})")
                done[name] = marker
                continue
            self.log(f"[stage {i}/{len(stages)}] {name}: running")
            t0 = time.perf_counter()
            info = stage_impl.STAGE_TABLE[name](self) or {}
            wall = time.perf_counter() - t0
            done[name] = write_marker(self.out, name, key, wall, **info)
            self.log(f"[stage {i}/{len(stages)}] {name}: done in {wall:.1f} s")

    def train_all(self, specs: list[RunSpec]) -> dict[str, dict]:
        """Train (or reuse, or resume) every run; ``jobs`` > 1 runs them in parallel processes."""
        results, todo = {}, []
        for spec in specs:
            summary = engine.finished_summary(spec.run_dir, spec.config)
            if summary is not None:
                results[spec.name] = summary
                self.log(f"  {spec.name}: reused (finished run)")
            else:
                todo.append(spec)
        n = len(todo)
        if not n:
            return results
        # longest budgets first (stable among equals): with a pool of workers the long natural
        # runs no longer start last and leave the other cores idle at the end of the stage
        todo.sort(key=lambda s: -int(s.config["train"]["steps"]))
        resumed = sum(engine.has_checkpoint(s.run_dir) for s in todo)
        self.log(f"  {n} run(s) to train ({resumed} resumed from a checkpoint), jobs={self.jobs}")
        t0 = time.perf_counter()
        if self.jobs <= 1 and self.stack <= 1:
            show_bar = sys.stderr.isatty()
            for k, spec in enumerate(todo, 1):
                self.log(f"  [{k}/{n}] {spec.name} ...")
                results[spec.name] = engine.train_spec(asdict(spec), quiet=not show_bar)
                self._report_run(k, n, spec, results[spec.name], t0)
        else:
            self._train_parallel(todo, results, t0)
        return results

    def _train_parallel(self, todo: list[RunSpec], results: dict, t0: float) -> None:
        """``jobs`` worker processes of the sweep's pool (one run at a time, one torch thread; logs
        in STUDY/logs, see study.runner). On Ctrl-C every worker saves a checkpoint of its run
        and exits, so the next ``reproduce`` resumes each run from it. A failed run is reported
        at the end; the other runs go on."""
        jobs = self._pool_jobs(todo)
        members = {j.name: ([RunSpec(**d) for d in j.specs] if isinstance(j, StudyStackJob)
                            else [next(s for s in todo if s.name == j.name)]) for j in jobs}
        n, failed = len(todo), []

        def on_done(job, record):
            for spec in members[job.name]:
                summary = engine.finished_summary(spec.run_dir, spec.config)
                if summary is None:
                    failed.append(f"{spec.name} ({record.get('error') or 'unfinished'}; log "
                                  f"{job.log_path})")
                    continue
                results[spec.name] = summary
                self._report_run(len(results) - done_before, n, spec, summary, t0)

        done_before = len(results)
        run_local(jobs, trial_fn=train_unit if self.stack > 1 else train_job, n_jobs=self.jobs,
                  on_done=on_done,
                  on_wait=lambda running: self._heartbeat(
                      [s for j in running for s in members[j.name]], len(results) - done_before,
                      n, t0),
                  wait_s=HEARTBEAT_S)
        if failed:
            raise GroklabError("training failed: " + "; ".join(failed) + "; rerun the same "
                               "command to retry (finished runs are kept)")

    def _pool_jobs(self, todo: list[RunSpec]) -> list:
        """One pool job per run; with ``stack`` > 1, the fresh runs that differ only in their
        seed in ensembles of up to ``stack`` (runner.stack_key), in the order of their first run."""
        log_dir = lambda s: s.log_dir or str(self.out / LOGS_DIR)  # noqa: E731
        units, open_groups = [], {}
        for spec in todo:
            key = stack_key(asdict(spec)) if self.stack > 1 else None
            group = open_groups.get(key) if key is not None else None
            if key is not None and (group is None or len(group) >= self.stack):
                group = open_groups[key] = []
                units.append(group)
            if group is None:
                units.append(spec)
            else:
                group.append(spec)
        jobs = []
        for u in units:
            if isinstance(u, RunSpec) or len(u) == 1:
                s = u if isinstance(u, RunSpec) else u[0]
                jobs.append(StudyRunJob(s.name, asdict(s), log_dir(s)))
                continue
            seeds = [s.seed for s in u]
            first = u[0]
            stack = self.stack_layout.stack_dir(first.kind, first.family, first.source, seeds)
            name = f"stack/{first.kind}/{first.family}-{first.source}-seeds" + "-".join(map(str, seeds))
            jobs.append(StudyStackJob(name, tuple(asdict(s) for s in u),
                                      str(self.stack_layout.logs_dir), str(stack)))
        if any(isinstance(j, StudyStackJob) for j in jobs):
            k = sum(len(j.specs) for j in jobs if isinstance(j, StudyStackJob))
            self.log(f"  stacking {k} runs into {sum(isinstance(j, StudyStackJob) for j in jobs)} "
                     f"ensemble(s) of up to {self.stack} seeds")
        return jobs

    def _heartbeat(self, running: list[RunSpec], k: int, n: int, t0: float) -> None:
        """One line: finished count and the step each started run has logged."""
        bits = []
        for spec in running:
            rows = engine.metrics(spec.run_dir) if engine.started(spec.run_dir) else []
            if rows:
                bits.append(f"{spec.name.split('/', 1)[1]} step {rows[-1]['step']}/"
                            f"{spec.config['train']['steps']}")
        self.log(f"  ... {k}/{n} done, {time.perf_counter() - t0:.0f} s; "
                 + (", ".join(bits) or "starting"))

    def _report_run(self, k: int, n: int, spec: RunSpec, summary: dict, t0: float) -> None:
        final = summary.get("final", {})
        accs = ", ".join(f"{s.split('/')[-1]} {v:.2f}" for s, v in final.items()
                         if s.startswith("acc/") and isinstance(v, (int, float)))
        self.log(f"  [{k}/{n}] {spec.name}: {summary.get('steps')} steps; {accs} "
                 f"({time.perf_counter() - t0:.0f} s elapsed)")
