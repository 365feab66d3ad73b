"""The Ray engine (extra groklab[ray]): a 2-trial sweep on CPU with the same trial function."""

import pytest

from groklab.sweep import parse_sweep, read_summary_csv, run_sweep

pytest.importorskip("ray.tune")   # before the session fixture runs the local micro sweep


@pytest.mark.slow
def test_two_trial_ray_sweep_matches_the_local_engine(tmp_path, micro_spec, micro_local):
    raw = micro_spec.to_dict()
    raw["grid"] = {"data.phi": [2.0, 99.0]}
    spec = parse_sweep(raw, micro_spec.path)
    result = run_sweep(spec, tmp_path / "ray-sweep", engine="ray", n_jobs=2, quiet=True)
    rows = {r["data.phi"]: r for r in read_summary_csv(tmp_path / "ray-sweep" / "summary.csv")}
    assert [r["trial"] for r in result.rows] == [t.name for t in spec.trials()]
    assert rows[2.0]["status"] == "done" and rows[2.0]["steps"] == 300
    assert rows[99.0]["status"] == "failed" and "phi=99.0 is invalid" in rows[99.0]["error"]
    assert (tmp_path / "ray-sweep" / "ray").is_dir()            # Tune's own experiment files
    # same trial function, same config and seed on CPU -> the same numbers as the local engine
    local = {r["data.phi"]: r for r in read_summary_csv(micro_local[0] / "summary.csv")}
    assert rows[2.0]["trial"] == local[2.0]["trial"]
    for key in ("final/train_acc", "final/acc/id_atomic", "final/loss", "first_step/train_acc>=0.99"):
        assert rows[2.0][key] == local[2.0][key], key
