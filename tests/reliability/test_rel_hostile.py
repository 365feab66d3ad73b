"""Family 5: integrity and hostile files. manifest.json is checksummed, `files` entries must
stay inside the dataset, a symlinked lock is refused, a symlinked --out keeps its link, sweep
--out refuses a dataset or run directory, a vanished metrics.jsonl stops the run, and orphaned
sweep workers exit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from groklab.data import load_dataset
from groklab.errors import GroklabError
from relkit import TRAIN_ARGS, cli, one_line_error


def _hostile(dataset, tmp_path, edit):
    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest = edit(manifest, ds)
    (ds / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return ds


def _outside(manifest, ds):
    victim = ds.parent / "victim.npy"
    shutil.copy(ds / "atomic.npy", victim)
    manifest["files"][str(victim)] = manifest["files"].pop("atomic.npy")
    return manifest


def _dotdot(manifest, ds):
    manifest["files"]["../ds/atomic.npy"] = manifest["files"]["atomic.npy"]
    return manifest


def _counts(manifest, ds):
    manifest["counts"]["train"] += 1
    return manifest


def _split_list(manifest, ds):
    manifest["splits"] = manifest["splits"][:-1]  # drop a probe: fewer things to evaluate
    return manifest


def _split_name(manifest, ds):
    manifest["splits"].append("../../etc/x")
    return manifest


@pytest.mark.parametrize("edit,expect", [
    (_outside, "relative path inside the dataset"),
    (_dotdot, "relative path inside the dataset"),
    (_counts, "manifest.json"),
    (_split_list, "manifest.json"),
    (_split_name, "split"),
    (lambda m, ds: [m], "manifest.json"),
])
def test_hostile_manifest_is_refused(tmp_path, dataset, edit, expect):
    ds = _hostile(dataset, tmp_path, edit)
    with pytest.raises(GroklabError, match=expect):
        load_dataset(ds, verify=True)
    line = one_line_error(*cli(["data", "stats", ds])[::2])
    assert expect in line


def test_legacy_manifest_without_digest_loads_with_a_warning(tmp_path, dataset):
    """Datasets written before manifest_sha256 stay usable (their files are still verified),
    with a warning that the manifest itself is not."""
    from groklab.data.dataset import LegacyManifestWarning

    def legacy(manifest, ds):
        del manifest["manifest_sha256"]
        return manifest

    ds = _hostile(dataset, tmp_path, legacy)
    with pytest.warns(LegacyManifestWarning, match="make the dataset again"):
        assert load_dataset(ds, verify=True).manifest["counts"]["train"] > 0
    (ds / "atomic.npy").write_bytes((ds / "atomic.npy").read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.warns(LegacyManifestWarning), pytest.raises(GroklabError, match="atomic.npy"):
        load_dataset(ds, verify=True)


def test_untouched_dataset_still_verifies(dataset):
    ds = load_dataset(dataset, verify=True)
    assert ds.split("train").tokens.shape[1] == 3


def test_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(victim)
    line = one_line_error(*cli(["train", "--resume", "--steps", "12", "--quiet", "--out", run])[::2])
    assert ".lock" in line
    assert victim.read_text() == "precious\n"


def test_symlinked_out_keeps_its_link(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    code, _, err = cli(["data", "make", "--entities", "24", "--relations", "8", "--out-degree", "6",
                        "--phi", "2", "--out", link])
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert load_dataset(link, verify=True).manifest["counts"]["train"] > 0
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


@pytest.mark.parametrize("what", ["dataset", "run"])
def test_sweep_out_refuses_a_dataset_or_run(tmp_path, dataset, run_dir, sweep_file, what):
    src = dataset if what == "dataset" else run_dir
    out = tmp_path / what
    shutil.copytree(src, out)
    before = sorted(p.name for p in out.rglob("*"))
    line = one_line_error(*cli(["sweep", sweep_file, "--out", out, "--quiet"])[::2])
    assert what in line
    assert sorted(p.name for p in out.rglob("*")) == before


def test_metrics_deleted_mid_run_stops_it_and_resume_recovers(tmp_path, dataset):
    from groklab.train import train_run
    from trainkit_rel import micro_run_config

    cfg = micro_run_config(dataset, steps=20)
    ref = train_run(cfg, tmp_path / "ref", quiet=True)

    def delete_at_10(step, model, ds, row):
        if step == 10:
            (tmp_path / "run" / "metrics.jsonl").unlink()

    with pytest.raises(GroklabError, match="metrics.jsonl"):
        train_run(cfg, tmp_path / "run", quiet=True, callbacks=[delete_at_10])
    summary = train_run(None, tmp_path / "run", resume=True, quiet=True)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    from groklab.train.metrics import read_metrics
    assert drop(read_metrics(tmp_path / "run" / "metrics.jsonl")) == \
        drop(read_metrics(tmp_path / "ref" / "metrics.jsonl"))
    assert summary["first_step"] == ref["first_step"] and summary["steps"] == 20


def test_metrics_deleted_mid_run_is_a_nonzero_exit(tmp_path, dataset):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import groklab.train.metrics as mx
        real = mx.MetricsWriter.append
        def append(self, row):
            if row["step"] == 5:
                Path(self.path).unlink()
            real(self, row)
        mx.MetricsWriter.append = append
        from groklab.cli import main
        sys.exit(main({["train", *map(str, TRAIN_ARGS), "--data", str(dataset), "--steps", "10",
                        "--out", str(tmp_path / "run")]!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "metrics.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_orphaned_sweep_worker_exits_when_the_sweep_dies(tmp_path, sigint):
    """kill -9 of the sweep process: its worker (a trial that never ends) exits by itself, also
    where the sweep was started with SIGINT ignored (as a shell starts a background job)."""
    here = Path(__file__).parent
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(here)!r})
        from groklab.sweep.local import start_worker
        from groklab.sweep.trial import TrialJob
        import relkit
        job = TrialJob(name="t", sweep_dir={str(tmp_path)!r}, base="tiny", overrides=())
        worker = start_worker(job, "relkit:sleeping_trial")
        print(worker.pid, flush=True)
        time.sleep(600)
    """)
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              preexec_fn=ignore)
    worker = int(parent.stdout.readline())
    time.sleep(1.0)
    assert _alive(worker)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 15
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    alive = _alive(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the orphaned worker kept running"
