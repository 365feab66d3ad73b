"""summary.csv rows from trial directories, and the exposure map's aggregation."""

import dataclasses

import pytest

from groklab.data import DataConfig, make_dataset
from groklab.sweep import load_sweep, parse_sweep, plot_sweep, read_summary_csv, summary_rows, write_summary_csv
from groklab.sweep.plots import BRIDGE_COL, OOD_COL, exposure_cells, plot_exposure_map
from groklab.sweep.trial import make_jobs
from groklab.train.config import SWEEP_DIR

EXPOSURE = SWEEP_DIR / "exposure.yaml"


def test_rows_read_the_trial_dataset_and_pending_trials(tmp_path):
    spec = parse_sweep({"base": "tiny", "grid": {"data.regime": ["both_full", "first_hop", "natural"]}})
    jobs = make_jobs(spec, tmp_path)
    for job, regime in zip(jobs[:2], ("both_full", "first_hop")):   # as if these trials had made their data
        make_dataset(DataConfig(entities=40, relations=8, out_degree=6, phi=2.0, regime=regime),
                     job.run_dir / "data")
    rows = summary_rows(jobs, [t.params for t in spec.trials()])
    write_summary_csv(tmp_path / "summary.csv", rows)
    back = read_summary_csv(tmp_path / "summary.csv")
    assert [(r["data.regime"], r["status"], r["phi"], r["hop1_ratio"], r["hop2_ratio"]) for r in back] == [
        ("both_full", "pending", 2.0, 1.0, 1.0), ("first_hop", "pending", 2.0, 1.0, 0.0),
        ("natural", "pending", None, None, None)]
    assert list(back[0])[-1] == "error"


def test_exposure_cells_average_over_seeds(tmp_path):
    rows = [
        {"hop1_ratio": 0.0, "hop2_ratio": 0.0, OOD_COL: 0.1, BRIDGE_COL: 0.2},
        {"hop1_ratio": 0.0, "hop2_ratio": 0.0, OOD_COL: 0.3, BRIDGE_COL: None},
        {"hop1_ratio": 1.0, "hop2_ratio": 0.0, OOD_COL: 0.9, BRIDGE_COL: 0.8},
        {"hop1_ratio": None, "hop2_ratio": None, OOD_COL: 0.5},           # no dataset: ignored
    ]
    ood = exposure_cells(rows, OOD_COL)
    assert list(ood) == [(0.0, 0.0), (1.0, 0.0)]
    assert ood[(0.0, 0.0)][0] == pytest.approx(0.2) and ood[(0.0, 0.0)][1] == 2
    assert exposure_cells(rows, BRIDGE_COL) == {(0.0, 0.0): (0.2, 1), (1.0, 0.0): (0.8, 1)}
    path = plot_exposure_map(tmp_path, rows)
    assert path.name == "exposure_map.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_exposure_sweep_is_a_3x3_map_of_the_custom_regime(tmp_path):
    spec = load_sweep(EXPOSURE)
    jobs = make_jobs(spec, tmp_path)
    assert len(jobs) == 18 and spec.lens["splits"] == ["test_inferred_ood"]
    cells = [(j.config().data.regime, j.config().data.exposure()) for j in jobs]
    ratios = (0.0, 0.5, 1.0)
    assert sorted(cells) == sorted(("custom", (r1, 18, r2, 18)) for r1 in ratios for r2 in ratios
                                   for _ in range(2))
    assert {j.config().model.family for j in jobs} == {"recursive"}


def test_summary_and_map_of_custom_cells(tmp_path):
    """The exposure sweep's trials as if run: small custom datasets, fabricated final metrics."""
    spec = load_sweep(EXPOSURE)
    jobs = make_jobs(spec, tmp_path)
    params = [t.params for t in spec.trials()]
    for job in jobs:
        data = dataclasses.replace(job.config().data, entities=40, relations=8, out_degree=6, phi=2.0)
        make_dataset(data, job.run_dir / "data")
    rows = summary_rows(jobs, params)
    write_summary_csv(tmp_path / "summary.csv", rows)
    rows = read_summary_csv(tmp_path / "summary.csv")
    for r in rows:
        assert (r["hop1_ratio"], r["hop2_ratio"]) == (r["data.hop1_ratio"], r["data.hop2_ratio"])
        assert (r["hop1_k"], r["hop2_k"]) == (18, 18)
        r.update({"status": "done", OOD_COL: (r["hop1_ratio"] + r["hop2_ratio"]) / 2 + 0.01 * r["train.seed"],
                  BRIDGE_COL: r["hop1_ratio"]})
    cells = exposure_cells(rows, OOD_COL)
    assert len(cells) == 9 and {n for _, n in cells.values()} == {2}
    assert cells[(0.5, 1.0)][0] == pytest.approx(0.755)
    assert exposure_cells(rows, BRIDGE_COL)[(1.0, 0.5)] == (1.0, 2)
    paths = plot_sweep(tmp_path, rows)                      # phi is the same everywhere: map only
    assert [p.name for p in paths] == ["exposure_map.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"
