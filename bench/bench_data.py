"""Benchmark: paper-scale data generation (2000 entities, 200 relations, 800k chains).

Times `make_dataset` (generation + writing + sha256) for all five regimes and prints a table.
Usage: python bench/bench_data.py [--quick] [--preset paper] [--repeats 1]
(--quick uses the small preset). Target: all five regimes under 30 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    from groklab.data import REGIMES, data_config, inject_dataset, make_dataset
except ModuleNotFoundError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from groklab.data import REGIMES, data_config, inject_dataset, make_dataset


def run(preset: str, repeats: int = 1) -> list[dict]:
    """Best-of-``repeats`` wall time per regime (seconds) and the resulting counts."""
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    try:
        for regime in REGIMES:
            best = float("inf")
            for rep in range(repeats):
                out = tmp / f"{regime}-{rep}"
                t0 = time.perf_counter()
                ds = make_dataset(data_config(preset, regime=regime), out)
                best = min(best, time.perf_counter() - t0)
                shutil.rmtree(out)
            s = ds.manifest["stats"]
            rows.append({"regime": regime, "seconds": best, "chains": s["chains"],
                         "train": ds.manifest["counts"]["train"], "added_hop1": s["added_hop1"],
                         "added_hop2": s["added_hop2"]})
        src = make_dataset(data_config(preset), tmp / "src")
        t0 = time.perf_counter()
        inj = inject_dataset(src.path, tmp / "inj", new_facts=2000 if preset == "paper" else 500,
                             replay=8000 if preset == "paper" else 2000)
        rows.append({"regime": "inject", "seconds": time.perf_counter() - t0, "chains": 0,
                     "train": inj.manifest["counts"]["train"], "added_hop1": 0, "added_hop2": 0})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="use the small preset (a few seconds)")
    p.add_argument("--preset", default="paper", help="preset to time (default paper)")
    p.add_argument("--repeats", type=int, default=1, help="repeats per regime; best time is shown")
    args = p.parse_args(argv)
    preset = "small" if args.quick else args.preset
    t0 = time.perf_counter()
    rows = run(preset, args.repeats)
    total = time.perf_counter() - t0
    print(f"data generation, preset {preset} (make_dataset incl. writing and sha256; best of {args.repeats})")
    print(f"{'regime':<12}{'seconds':>9}{'chains':>10}{'train':>10}{'+hop1':>8}{'+hop2':>8}")
    for r in rows:
        if r["regime"] == "inject":
            print(f"{'inject':<12}{r['seconds']:>9.2f}{'':>10}{r['train']:>10,}   (new-knowledge set)")
            continue
        print(f"{r['regime']:<12}{r['seconds']:>9.2f}{r['chains']:>10,}{r['train']:>10,}"
              f"{r['added_hop1']:>8,}{r['added_hop2']:>8,}")
    five = sum(r["seconds"] for r in rows if r["regime"] in REGIMES)
    print(f"{'all five':<12}{five:>9.2f}   (target < 30 s; whole benchmark {total:.2f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
