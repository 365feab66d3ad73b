"""Test-time depth: run a parameter-sharing model with more or fewer iterations than it was
trained with (looped: ``n_loops``; recursive: ``h_cycles`` x ``l_cycles``), weights untouched.

A depth is a tuple of the family's ``depth_fields`` values: ``(N,)`` loops or ``(H, L)``
cycles. ``at_depth(model, depth)`` sets it for a ``with`` block and restores the trained one.
"""

from __future__ import annotations

import contextlib

from groklab.errors import bad_value


def depth_of(model) -> tuple[int, ...]:
    """The model's current depth: its ``depth_fields`` values (() for a decoder)."""
    return tuple(getattr(model.cfg, f) for f in model.depth_fields)


def check_depth(model, depth: tuple[int, ...], field: str) -> tuple[int, ...]:
    """``depth`` valid for ``model``'s family: the right arity, every value >= 1."""
    return check_depth_for(model.cfg, depth, field)


def check_depth_for(cfg, depth: tuple[int, ...], field: str) -> tuple[int, ...]:
    """``depth`` valid for a model of config ``cfg`` (checked before a run starts)."""
    from groklab.models.registry import MODEL_CLASSES

    fields = MODEL_CLASSES[cfg.family].depth_fields
    if not fields:
        raise bad_value(field, ",".join(map(str, depth)), f"unset for family {cfg.family} "
                        "(test-time depth needs a looped or recursive model)")
    if fields == ("n_loops",) and cfg.step_embedding and len(depth) == 1 and depth[0] > cfg.n_loops:
        raise bad_value(field, depth[0], f"[1, {cfg.n_loops}] (a step embedding has one row per "
                        "trained iteration)")
    if len(depth) != len(fields) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                        for v in depth):
        want = "N >= 1 loops" if len(fields) == 1 else "H,L cycles, each >= 1"
        raise bad_value(field, ",".join(map(str, depth)), want)
    return tuple(depth)


@contextlib.contextmanager
def at_depth(model, depth: tuple[int, ...] | None, field: str = "depth"):
    """Run ``model`` at ``depth`` inside the block (None: as it is); restored afterwards."""
    if depth is None or tuple(depth) == depth_of(model):
        yield model
        return
    trained = depth_of(model)
    model.set_depth(*check_depth(model, tuple(depth), field))
    try:
        yield model
    finally:
        model.set_depth(*trained)


def parse_depth(field: str, text: str) -> tuple[int, ...]:
    """``"4"`` -> (4,), ``"2,6"`` -> (2, 6); values >= 1 (the family's arity is checked later)."""
    try:
        depth = tuple(int(x) for x in str(text).split(","))
    except ValueError:
        raise bad_value(field, text, "integers >= 1, e.g. 4 (loops) or 2,6 (cycles H,L)") from None
    if not depth or any(v < 1 for v in depth):
        raise bad_value(field, text, "integers >= 1, e.g. 4 (loops) or 2,6 (cycles H,L)")
    return depth
