"""User-facing errors: one line, naming the field, the value and the allowed range.

The CLI turns a :class:`GroklabError` into ``groklab: error: <message>`` on stderr and exit
code 2, without a traceback. Library code raises it for bad input of any kind (configs,
command-line values, malformed or corrupted files, requests too large for the machine).
:class:`GroklabFailure` is the same one line with exit code 1: the work failed for a reason
outside the input (a run's metrics file vanished under it). :func:`describe_exception` maps
the exceptions that reach the CLI from the OS and the parsers to the same one-line form.
See docs/guarantees.md for the exit codes.
"""

from __future__ import annotations

import errno
import math

EXIT_FAILED = 1      # the work failed for a reason outside the input (disk full, I/O, a bug)
EXIT_BAD_INPUT = 2   # the input: a value, a file's content, a path that cannot be used
# errnos caused by the path the user gave (not by the machine): exit 2
_PATH_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
                errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP, errno.EXDEV,
                errno.ENOTEMPTY}


class GroklabError(ValueError):
    """Bad input from the user: printed as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class GroklabFailure(GroklabError):
    """The work failed although the input was fine: printed as one line, exit code 1."""

    exit_code = EXIT_FAILED


def bad_value(field: str, value, allowed: str) -> GroklabError:
    """Build the standard message: ``<field>=<value> is invalid (allowed: <allowed>)``."""
    return GroklabError(f"{field}={value!r} is invalid (allowed: {allowed})")


def check_range(field: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False):
    """Raise :func:`bad_value` unless ``lo <= value <= hi`` (open ends as flagged); return value.

    A non-finite float (inf, nan) is never in range: every groklab number is finite."""
    ok = not (isinstance(value, float) and not math.isfinite(value))
    if lo is not None:
        ok &= value > lo if lo_open else value >= lo
    if hi is not None:
        ok &= value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        finite = ", a finite number" if isinstance(value, float) and not math.isfinite(value) else ""
        raise bad_value(field, value, f"{left}{lo_s}, {hi_s}{right}{finite}")
    return value


def describe_exception(exc: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit code) for an exception the CLI reports without a traceback,
    or None for one it does not know (a bug: the CLI says so and points to --debug)."""
    if isinstance(exc, GroklabError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        if exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        reason = exc.strerror or str(exc)
        code = EXIT_BAD_INPUT if exc.errno in _PATH_ERRNOS else EXIT_FAILED
        return (f"{where}: {reason}" if where else reason), code
    if isinstance(exc, UnicodeDecodeError):
        return f"input is not UTF-8 text ({exc.reason} at byte {exc.start})", EXIT_BAD_INPUT
    if isinstance(exc, RecursionError):
        return "input nested too deeply to read (a JSON/YAML value nested thousands of levels)", \
            EXIT_BAD_INPUT
    if isinstance(exc, OverflowError):
        return f"a number is out of range ({exc})", EXIT_BAD_INPUT
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller request; see docs/guarantees.md)", EXIT_FAILED
    try:
        import yaml
    except ImportError:  # pragma: no cover
        yaml = None
    if yaml is not None and isinstance(exc, yaml.YAMLError):
        return f"not valid YAML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", \
            EXIT_BAD_INPUT
    return None
