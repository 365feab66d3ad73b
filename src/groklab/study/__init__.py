"""groklab.study: the paper's pipeline (``groklab reproduce``) and its report; docs/study.md.

Public API: :class:`Study` (``Study(out, get_scale("tiny"), ("decoder", "recursive")).run()``),
:data:`STAGES`, :data:`SCALES` / :func:`get_scale`, :func:`write_report` (rebuild
report.md / report.html / report.json of an existing study directory).
"""

from groklab.study.pipeline import STAGES, Study
from groklab.study.scales import SCALES, get_scale


def write_report(study_dir):
    """Rewrite the report of a study directory from its run directories; return the paths."""
    from groklab.study.report import write_report as _write

    return _write(study_dir)


__all__ = ["STAGES", "SCALES", "Study", "get_scale", "write_report"]
