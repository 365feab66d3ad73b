"""The ``groklab`` command: a thin dispatcher over :mod:`groklab.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from groklab import __version__
from groklab.errors import EXIT_FAILED, describe_exception

DEBUG_ENV = "GROKLAB_DEBUG"  # =1: show the traceback of any error (same as --debug)

# Subcommand modules, registered in this order in ``groklab --help``.
COMMAND_MODULES = ["data", "train", "analysis", "study", "sweep", "export", "forecast"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="groklab",
        description="Generate two-hop knowledge-graph data, train standard and parameter-sharing "
        "transformers until they grok, look inside them (logit lens, causal tracing), test "
        "transfer to new facts, and reproduce 'Is Grokking Worthwhile?'.",
    )
    parser.add_argument("--version", action="version", version=f"groklab {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (or set {DEBUG_ENV}=1); by "
                             "default an error is one line on stderr (exit codes: "
                             "docs/guarantees.md)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"groklab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"groklab.commands.{name}":
                continue  # not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("groklab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line (or the traceback with --debug); see errors.py
        known = describe_exception(exc)
        if debug:
            import traceback
            traceback.print_exc()
        if known is None:
            print(f"groklab: internal error: {type(exc).__name__}: {exc} (a bug: please report "
                  f"it with the traceback that --debug shows)".replace("\n", " "), file=sys.stderr)
            return EXIT_FAILED
        message, code = known
        print(f"groklab: error: {message}".replace("\n", " "), file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
