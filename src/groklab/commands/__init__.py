"""Command-line subcommands. Each module exposes ``register(subparsers)``.

Every subparser sets ``func=callable(args) -> int``. Modules here may import any layer of
groklab; no library module imports these.
"""
