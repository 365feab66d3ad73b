"""The study directory's layout: the one owner of its paths and names.

```
STUDY/study.json                 scale (resolved), families, device, versions
STUDY/stages/<stage>.json        finished markers (a stage with a marker is reused)
STUDY/data/<source>/             one dataset per regime, + supervised (phi=max), + new_knowledge,
                                 + shuffled_compositions (claim 1's memoriser)
STUDY/runs/pretrain/<family>-<source>/   ordinary run directories (train_run); source
                                         shuffled_compositions: claim 1's memoriser
STUDY/runs/finetune/<family>-<source>/   finetune of a pretrained model, -scratch, or
                                         -both_full_saturated (claim 1's non-grokked model)
STUDY/analysis/*.json            claim 1-4 evidence
STUDY/logs/<kind>/<run>.log      output of each run trained by a --jobs N worker
STUDY/figures/*.png, report.md, report.html, report.json

--seeds N > 1: STUDY/study.json (scale, families, seeds), STUDY/data/ (shared unless
--vary-graph), STUDY/seeds/<k>/ (seed k's single-seed study, the layout above without data/
when the graph is shared), STUDY/report.* (pooled over the seeds), STUDY/logs/
--stack S: STUDY/stacks/<kind>/<family>-<source>-seeds<a>-<b>.../ ensemble directories
(config.yaml, ensemble.json) whose members are the seeds' ordinary run directories
```
"""

from __future__ import annotations

from pathlib import Path

STUDY_JSON = "study.json"
INJECTED = "new_knowledge"            # the new-knowledge dataset (injected into natural)
SCRATCH = "scratch"                   # finetune source: a model trained from scratch
SATURATED = "both_full_saturated"     # finetune source: both_full at training saturation
GROKKED = "natural"                   # the regime whose model groks (claims 1 and 4)
MEMORISER = "shuffled_compositions"   # claim 1's negative control: trained on the natural
                                      # dataset with its compositions' answers permuted
AUGMENTED = "both_full"               # fully exposed regime: claim 1's non-grokked model,
                                      # claim 4's augmented run
# stage order: claim 1 runs after claim 3, whose natural finetune its transfer measure reuses
STAGE_NAMES = ("data", "pretrain", "claim2", "claim3", "claim1", "compute", "report")
LOGS_DIR = "logs"                     # per-run logs of --jobs N workers
REPORT_FILES = ("report.json", "report.md", "report.html")


SEEDS_DIR = "seeds"                   # a multi-seed study: one single-seed study per seed
STACKS_DIR = "stacks"                 # --stack: ensembles of the seeds' runs (train/ensemble.py)


class StudyLayout:
    """Paths inside one study directory. ``data_root``: where its datasets live when not in
    its own ``data/`` (the seeds of a multi-seed study on one graph share the top one)."""

    def __init__(self, out: str | Path, data_root: str | Path | None = None):
        self.out = Path(out)
        self._data_root = Path(data_root) if data_root is not None else None

    @property
    def study_json(self) -> Path:
        return self.out / STUDY_JSON

    @property
    def data_root(self) -> Path:
        return self._data_root if self._data_root is not None else self.out / "data"

    def seed_dir(self, seed: int) -> Path:
        """``seeds/<seed>/``: seed ``seed``'s single-seed study inside a multi-seed study."""
        return self.out / SEEDS_DIR / str(seed)

    def data_dir(self, source: str) -> Path:
        return self.data_root / source

    def run_dir(self, kind: str, family: str, source: str) -> Path:
        return self.out / "runs" / kind / f"{family}-{source}"

    def stack_dir(self, kind: str, family: str, source: str, seeds) -> Path:
        """The ensemble directory of one run's seeds trained together (``--stack``)."""
        return (self.out / STACKS_DIR / kind
                / f"{family}-{source}-seeds{'-'.join(str(k) for k in seeds)}")

    @property
    def analysis_dir(self) -> Path:
        return self.out / "analysis"

    def analysis(self, name: str) -> Path:
        """``analysis/<name>.json`` (e.g. ``claim2``, ``claim1-recursive``)."""
        return self.analysis_dir / f"{name}.json"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def logs_dir(self) -> Path:
        return self.out / LOGS_DIR

    @property
    def stages_dir(self) -> Path:
        return self.out / "stages"

    def report(self, suffix: str) -> Path:
        """``report.<suffix>`` for suffix json, md or html."""
        return self.out / f"report.{suffix}"
