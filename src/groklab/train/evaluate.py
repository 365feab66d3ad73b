"""Exact-match accuracy and loss of a model on whole splits, in large batches."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from groklab.models.layout import make_inputs, make_labels


@dataclass
class Batchable:
    """A split turned into model inputs, resident on one device."""

    input_ids: torch.Tensor   # (N, T) int64
    answer_pos: torch.Tensor  # (N,) int64
    target: torch.Tensor      # (N,) int64
    labels: torch.Tensor | None = None  # (N, T) per-position labels (study layout), else None

    def __len__(self) -> int:
        return self.target.shape[0]


def to_batchable(split, layout, device: torch.device | str = "cpu",
                 labels: bool = False) -> Batchable:
    """Inputs, answer positions and targets of a :class:`groklab.data.Split` on ``device``;
    ``labels=True`` adds the per-position labels of layouts that have them (training data)."""
    tokens = torch.as_tensor(split.tokens, dtype=torch.int64)
    length = torch.as_tensor(split.length, dtype=torch.int64)
    input_ids, answer_pos = make_inputs(tokens, length, layout)
    target = torch.as_tensor(split.target, dtype=torch.int64)
    per_position = make_labels(tokens, length, target, layout) if labels else None
    return Batchable(
        input_ids=torch.as_tensor(input_ids, dtype=torch.int64).to(device),
        answer_pos=torch.as_tensor(answer_pos, dtype=torch.int64).to(device),
        target=target.to(device),
        labels=per_position.to(device) if per_position is not None else None,
    )


# On a CPU, forwards of a few hundred rows evaluate faster than one of thousands, most of all
# for the study-format TRM (docs/performance.md, "Evaluation chunks on a CPU", has the sizes
# measured). Accuracy is unchanged; a mean loss may differ in its last digits (summation order).
CPU_EVAL_ROWS = 512


def eval_rows(batch_size: int, device: torch.device | str) -> int:
    """Rows per evaluation forward: ``batch_size``, at most :data:`CPU_EVAL_ROWS` on a CPU."""
    return min(batch_size, CPU_EVAL_ROWS) if torch.device(device).type == "cpu" else batch_size


@torch.no_grad()
def evaluate_batchables(model, probes: dict[str, Batchable], batch_size: int = 4096,
                        autocast=None) -> dict[str, tuple[float, float]]:
    """{name: (accuracy, mean loss)}; one host sync for all splits. ``batch_size`` rows per
    forward at most (:func:`eval_rows`: fewer on a CPU)."""
    was_training = model.training
    model.eval()
    sums = []
    for probe in probes.values():
        batch_size = eval_rows(batch_size, probe.target.device)
        correct = torch.zeros((), dtype=torch.float64, device=probe.target.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=probe.target.device)
        for lo in range(0, len(probe), batch_size):
            ids = probe.input_ids[lo:lo + batch_size]
            tgt = probe.target[lo:lo + batch_size]
            with autocast() if autocast is not None else contextlib.nullcontext():
                logits = model.answer_forward(ids, probe.answer_pos[lo:lo + batch_size]).float()
            correct += (logits.argmax(-1) == tgt).sum()
            loss_sum += model.loss(logits, tgt).double() * tgt.shape[0]
        sums.append(torch.stack([correct, loss_sum]))
    model.train(was_training)
    if not sums:
        return {}
    values = torch.stack(sums).cpu().tolist()
    return {name: (correct / max(1, len(p)), loss / max(1, len(p)))
            for (name, p), (correct, loss) in zip(probes.items(), values)}


def evaluate(model, dataset, splits=None, batch_size: int = 4096) -> dict[str, float]:
    """Exact-match accuracy of ``model`` on each split (default: every probe of ``dataset``)."""
    device = next(model.parameters()).device
    names = list(splits) if splits is not None else list(dataset.probe_names)
    probes = {n: to_batchable(dataset.split(n), model.layout, device) for n in names}
    return {n: acc for n, (acc, _) in evaluate_batchables(model, probes, batch_size).items()}
