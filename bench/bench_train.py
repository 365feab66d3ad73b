"""Kept for old commands: the training-throughput benchmark is ``bench/bench_throughput.py``.

``python bench/bench_train.py ARGS`` runs ``bench_throughput.py`` with the rows this script
used to print (groklab, hf-reference, hf-task-vocab) unless ``--rows`` is given; every other
argument is passed through (see ``bench_throughput.py --help``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_throughput  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--rows" or a.startswith("--rows=") for a in argv):
        argv += ["--rows", "groklab,hf-reference,hf-task-vocab"]
    sys.exit(bench_throughput.main(argv))
