"""groklab.data: two-hop composition (and comparison) datasets, seeded and checked.

See docs/architecture.md section 1 for the directory format and docs/data.md for usage.
"""

from groklab.data import flags
from groklab.data.comparison import build_comparison
from groklab.data.config import (CUSTOM, DATA_PRESETS, EXPOSURE_FIELDS, REGIME_NAMES, REGIMES,
                                 TASKS, DataConfig, data_config, parse_phi)
from groklab.data.dataset import (COLUMNS, FORMAT_VERSION, Dataset, Split, check_generation_memory,
                                  load_dataset, make_dataset, write_dataset)
from groklab.data.formats import export_reference, import_reference
from groklab.data.injection import INJECT_PROBES, inject_dataset
from groklab.data.splits import PROBES, build_composition
from groklab.data.stats import dataset_stats, format_stats
from groklab.data.vocab import END, MASK, PAD

__all__ = [
    "COLUMNS", "CUSTOM", "DATA_PRESETS", "END", "EXPOSURE_FIELDS", "FORMAT_VERSION",
    "INJECT_PROBES", "MASK", "PAD", "PROBES", "REGIME_NAMES", "REGIMES", "TASKS", "DataConfig",
    "Dataset", "Split", "build_comparison", "check_generation_memory", "build_composition", "data_config", "dataset_stats",
    "export_reference", "flags", "format_stats", "import_reference", "inject_dataset",
    "load_dataset", "make_dataset", "parse_phi", "write_dataset",
]
