"""summary.csv rows from trial directories, and the exposure map's aggregation."""

import pytest

from groklab.data import DataConfig, make_dataset
from groklab.sweep import parse_sweep, read_summary_csv, summary_rows, write_summary_csv
from groklab.sweep.plots import BRIDGE_COL, OOD_COL, exposure_cells, plot_exposure_map
from groklab.sweep.trial import make_jobs


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
