"""Shuffled mini-batches of row indices, drawn on the training device.

Each epoch is a fresh permutation from a seeded ``torch.Generator`` on the device; a batch
that runs past the end of an epoch continues into the next permutation, so every example is
seen equally often and no host round-trip is needed. ``state`` / ``load_state`` capture the
generator, the unread rest of the permutation and the epoch counter for exact resumption.
"""

from __future__ import annotations

import torch


class BatchSampler:
    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if n < 1:
            raise ValueError("cannot sample batches from an empty split")
        self.n, self.batch_size = n, batch_size
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        self.pending = torch.empty(0, dtype=torch.int64, device=self.device)
        self.epoch = 0

    def next(self) -> torch.Tensor:
        """Indices of the next batch, an int64 tensor of ``batch_size`` on the device."""
        while self.pending.numel() < self.batch_size:
            perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            self.pending = torch.cat([self.pending, perm])
            self.epoch += 1
        idx, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size:]
        return idx

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, json-able meta) for a checkpoint."""
        tensors = {"gen_state": self.gen.get_state(), "pending": self.pending.clone()}
        return tensors, {"epoch": self.epoch, "n": self.n, "batch_size": self.batch_size}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if meta["n"] != self.n:
            raise ValueError(f"checkpoint sampler covers {meta['n']} rows, the split has {self.n}")
        self.gen.set_state(tensors["gen_state"].cpu())
        self.pending = tensors["pending"].to(self.device, torch.int64)
        self.epoch = int(meta["epoch"])
