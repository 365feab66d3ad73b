"""Evaluation at a test-time depth (models/depth.py): accuracy of a looped / recursive model run
with more or fewer iterations than it was trained with, per probe, and the training callback
behind ``groklab train --eval-loops / --eval-cycles``."""

from __future__ import annotations

from groklab.errors import bad_value
from groklab.models.depth import at_depth, check_depth, depth_of, parse_depth
from groklab.train.evaluate import evaluate


def depth_label(model, depth: tuple[int, ...]) -> str:
    """``loops4`` / ``cycles2x6``: the metrics-key form of a depth."""
    if model.depth_fields == ("n_loops",):
        return f"loops{depth[0]}"
    return "cycles" + "x".join(map(str, depth))


def parse_depths(loops: list[str] | None = None, cycles: list[str] | None = None) -> list[tuple[int, ...]]:
    """Depths from ``--eval-loops 1,2,4`` (one loop count per item) and ``--eval-cycles H,L``
    (repeatable); bad text is a one-line error naming the option."""
    depths = []
    for text in loops or ():
        for item in str(text).split(","):
            depths.append(parse_depth("eval_loops", item.strip()))
    for text in cycles or ():
        depth = parse_depth("eval_cycles", text)
        if len(depth) != 2:
            raise bad_value("eval_cycles", text, "H,L: two integers >= 1")
        depths.append(depth)
    return depths


def check_depths(model, depths, field: str) -> list[tuple[int, ...]]:
    """Each depth valid for the model's family (loops need one value, cycles two)."""
    return [check_depth(model, tuple(d), field) for d in depths]


def evaluate_at(model, dataset, depth: tuple[int, ...] | None, splits=None,
                batch_size: int = 4096) -> dict[str, float]:
    """``evaluate`` with the model run at ``depth`` (None = its trained depth)."""
    with at_depth(model, depth):
        return evaluate(model, dataset, splits, batch_size)


class DepthEvalCallback:
    """At every evaluation, accuracy of every probe at each extra depth: metrics keys
    ``acc@loops4/<split>`` (``acc@cycles2x6/<split>``). At the trained depth they equal
    ``acc/<split>`` exactly (same model, same batches)."""

    def __init__(self, depths: list[tuple[int, ...]], splits=None, batch_size: int = 4096):
        self.depths, self.splits, self.batch_size = list(depths), splits, batch_size

    def __call__(self, step, model, dataset, row) -> dict:
        out = {}
        for depth in self.depths:
            label = depth_label(model, depth)
            for name, acc in evaluate_at(model, dataset, depth, self.splits, self.batch_size).items():
                out[f"acc@{label}/{name}"] = acc
        return out


__all__ = ["DepthEvalCallback", "check_depths", "depth_label", "depth_of", "evaluate_at",
           "parse_depths"]
