"""groklab.sweep: grid and random sweeps over run configs, on a local process pool or Ray Tune.

See docs/sweeps.md. ``load_sweep(path)`` parses and validates a sweep file; ``run_sweep(spec,
out, engine="local"|"ray")`` runs the trials that are not complete yet and writes
``out/summary.csv``; ``plot_sweep`` draws the phi-vs-grok-step figure and the exposure map.
"""

from groklab.sweep.plots import plot_exposure_map, plot_phi_grok, plot_sweep
from groklab.sweep.run import ENGINES, SweepResult, default_jobs, run_sweep
from groklab.sweep.spec import SweepSpec, Trial, load_sweep, parse_asha, parse_sweep
from groklab.sweep.summary import SUMMARY_NAME, read_summary_csv, summary_rows, write_summary_csv
from groklab.sweep.trial import TrialJob, execute_trial, make_jobs, train_trial

__all__ = [
    "ENGINES", "SUMMARY_NAME", "SweepResult", "SweepSpec", "Trial", "TrialJob", "default_jobs",
    "execute_trial", "load_sweep", "make_jobs", "parse_asha", "parse_sweep", "plot_exposure_map",
    "plot_phi_grok", "plot_sweep", "read_summary_csv", "run_sweep", "summary_rows", "train_trial",
    "write_summary_csv",
]
