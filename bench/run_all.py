"""Run every benchmark in sequence (``make bench``), quick settings by default.

Each bench runs in its own process with the same Python; its output streams through, and a
failing bench is reported at the end (exit 1) without stopping the others.

Usage: python bench/run_all.py [--full] [--only NAME[,NAME]] [--device auto|cpu|cuda]
  --full    each bench's default (longer) settings instead of --quick ones
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, quick arguments, full arguments)
BENCHES = {
    "data": ("bench_data.py", ["--quick"], []),
    "tracing": ("bench_tracing.py", ["--n", "100", "--loop-n", "20"], []),
    "throughput": ("bench_throughput.py", ["--quick"], []),
    "grok": ("bench_grok.py", ["--quick"], []),
    "levers": ("bench_levers.py", ["--target", "tiny", "--seeds", "0", "--recipes", "preset,best"], []),
    "ensemble": ("bench_ensemble.py", ["--steps", "200"], []),
    "overheads": ("bench_overheads.py", ["--repeats", "3", "--trials", "6"], []),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the benches' default (longer) settings")
    ap.add_argument("--only", default=None, help="comma-separated subset of: " + ", ".join(BENCHES))
    ap.add_argument("--device", default=None, help="passed to the benches that take --device")
    args = ap.parse_args(argv)
    names = list(BENCHES) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"--only: unknown bench {', '.join(unknown)} (allowed: {', '.join(BENCHES)})")
    failed = []
    for name in names:
        script, quick, full = BENCHES[name]
        cmd = [sys.executable, str(HERE / script), *(full if args.full else quick)]
        if args.device and name in ("tracing", "throughput"):
            cmd += ["--device", args.device]
        print(f"\n==== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"==== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
