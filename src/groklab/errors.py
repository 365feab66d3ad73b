"""User-facing errors: one line, naming the field, the value and the allowed range.

The CLI turns a :class:`GroklabError` into ``groklab: error: <message>`` on stderr and exit
code 2, without a traceback. Library code raises it for bad input of any kind (configs,
command-line values, malformed or corrupted files).
"""

from __future__ import annotations


class GroklabError(ValueError):
    """Bad input from the user: printed as one line, exit code 2."""


def bad_value(field: str, value, allowed: str) -> GroklabError:
    """Build the standard message: ``<field>=<value> is invalid (allowed: <allowed>)``."""
    return GroklabError(f"{field}={value!r} is invalid (allowed: {allowed})")


def check_range(field: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False):
    """Raise :func:`bad_value` unless ``lo <= value <= hi`` (open ends as flagged); return value."""
    ok = True
    if lo is not None:
        ok &= value > lo if lo_open else value >= lo
    if hi is not None:
        ok &= value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise bad_value(field, value, f"{left}{lo_s}, {hi_s}{right}")
    return value
