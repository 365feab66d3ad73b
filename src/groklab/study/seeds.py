"""``groklab reproduce --seeds N``: N single-seed studies and one report pooled over them.

Seed k's study lives in ``STUDY/seeds/<k>/`` (an ordinary single-seed study directory; its
runs use ``train.seed = k``). The graph is the scale's for every seed, its datasets shared in
``STUDY/data/``, unless ``--vary-graph`` gives seed k the graph seed k too. Stage by stage,
the training runs of all seeds go to one process pool first, so ``--jobs`` workers stay busy
across seeds; then each seed's stage runs on its finished runs, and ``STUDY/report.*`` pools
the seeds' evidence (:mod:`groklab.study.pooled`).

Running it again with a larger N grows the study: the existing seeds' stages and runs are
reused (each seed's study is independent of N), only the new seeds train, and the report is
pooled over all N. A smaller N is refused: it would drop seeds from the report.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from groklab import __version__
from groklab.errors import GroklabError
from groklab.fsutil import atomic_write_json
from groklab.study.layout import STAGE_NAMES, StudyLayout
from groklab.study.pipeline import Study, _sigterm_as_interrupt, check_study_dir
from groklab.study.scales import StudyScale


class SeededStudy:
    """A multi-seed study directory plus the plan that fills it."""

    def __init__(self, out: str | Path, scale: StudyScale, families: tuple[str, ...],
                 seeds: int, vary_graph: bool = False, device: str = "auto", jobs: int = 1,
                 log=print, stack: int = 1):
        if seeds < 2:
            raise GroklabError(f"seeds={seeds} is invalid here (allowed: >= 2; one seed is an "
                               "ordinary Study)")
        self.out = Path(out)
        self.layout = StudyLayout(out)
        self.scale, self.families, self.seeds = scale, tuple(families), seeds
        self.vary_graph, self.device, self.log = vary_graph, device, log
        shared = None if vary_graph else self.layout.data_root
        self.studies = [Study(self.layout.seed_dir(k), scale, families, device=device,
                              jobs=jobs, log=self._seed_log(k), seed=k, data_root=shared,
                              vary_graph=vary_graph, stack=stack) for k in range(seeds)]
        for s in self.studies:  # ensembles of the seeds' runs live at the top (layout.stack_dir)
            s.stack_layout = self.layout

    def _seed_log(self, k: int):
        return lambda msg: self.log(f"[seed {k}] {msg}")

    def _train_pooled(self, specs) -> None:
        """Every seed's runs of a stage in one pool, through seed 0's study (the pool and its
        reuse rules are the Study's), logged without a seed prefix: the lines name runs of every
        seed (``...-seed3``), so seed 0's prefix would mislabel them."""
        lead = self.studies[0]
        lead.log = self.log
        try:
            lead.train_all(specs)
        finally:
            lead.log = self._seed_log(0)

    def open(self) -> None:
        path = self.layout.study_json
        check_study_dir(self.out, path)
        want = {"scale": json.loads(json.dumps(self.scale.to_dict())), "seeds": self.seeds,
                "vary_graph": self.vary_graph}
        if path.exists():
            have = json.loads(path.read_text())
            had = int(have.get("seeds", 1))
            if "seed_dirs" not in have:
                raise GroklabError(
                    f"seeds={self.seeds} is invalid for out={str(self.out)!r}, a single-seed "
                    "study (allowed: run it without --seeds, or use a new --out)")
            if had > self.seeds:
                raise GroklabError(
                    f"seeds={self.seeds} is invalid for out={str(self.out)!r}, which holds "
                    f"{had} seeds (allowed: --seeds >= {had}; fewer would drop seeds from its "
                    "report; use a new --out for a smaller study)")
            if {k: have.get(k) for k in want if k != "seeds"} != \
                    {k: v for k, v in want.items() if k != "seeds"}:
                raise GroklabError(
                    f"out={str(self.out)!r} holds a study made with a different configuration "
                    f"(scale {have.get('scale', {}).get('name')!r}, seeds {have.get('seeds', 1)}, "
                    f"vary_graph {have.get('vary_graph', False)}); use a new --out or remove it")
            if had < self.seeds:
                new = str(had) if had == self.seeds - 1 else f"{had}-{self.seeds - 1}"
                self.log(f"growing the study from {had} to {self.seeds} seeds: seeds "
                         f"0-{had - 1} are reused, {new} train")
            fams = list(dict.fromkeys(list(have.get("families", [])) + list(self.families)))
        else:
            fams = list(self.families)
        self.families = tuple(fams)
        self.out.mkdir(parents=True, exist_ok=True)
        created = (json.loads(path.read_text()).get("created") if path.exists()
                   else time.strftime("%Y-%m-%d %H:%M:%S"))
        atomic_write_json(path, {**want, "families": fams, "device": self.device,
                                 "stack": self.studies[0].stack,
                                 "groklab": __version__, "python": sys.version.split()[0],
                                 "command": " ".join(sys.argv), "created": created,
                                 "seed_dirs": [str(s.out.relative_to(self.out))
                                               for s in self.studies]})
        for s in self.studies:
            s.families = self.families
            s.open()

    def run(self) -> dict:
        """Every stage for every seed, then the pooled report; returns {seed: {stage: marker}}."""
        from groklab.study.pooled import write_pooled_report

        self.open()
        t0 = time.perf_counter()
        done: dict[int, dict] = {s.seed: {} for s in self.studies}
        with _sigterm_as_interrupt():
            for i, stage in enumerate(STAGE_NAMES, 1):
                self.log(f"[stage {i}/{len(STAGE_NAMES)}] {stage}: {self.seeds} seeds")
                specs = [spec for s in self.studies for spec in s.stage_specs(stage)]
                if specs:
                    self._train_pooled(specs)
                for s in self.studies:
                    s._run_stages((stage,), done[s.seed])
            paths = write_pooled_report(self.out)
        self.log(f"study ({self.seeds} seeds) finished in {time.perf_counter() - t0:.1f} s: "
                 f"{paths[1]}")
        return done
