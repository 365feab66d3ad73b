"""A slow, independent reading of a dataset: plain-Python dicts built from atomic.npy.

Tests use it to re-derive hops, bridges and OOD/new status without the vectorised code.
"""

from __future__ import annotations

from groklab.data import flags as F


class Oracle:
    def __init__(self, ds):
        self.ds = ds
        self.tail: dict[tuple[int, int], int] = {}
        self.ood: set[tuple[int, int]] = set()
        self.new: set[tuple[int, int]] = set()
        for h, r, t, fl in ds.atomic.tolist():
            assert (h, r) not in self.tail, "atomic.npy repeats an (h, r) pair"
            self.tail[(h, r)] = t
            if fl & F.HOP1_OOD:
                self.ood.add((h, r))
            if fl & F.HOP1_NEW:
                self.new.add((h, r))

    def items(self, split: str):
        """(tokens tuple, target, bridge, flags, hop1, hop2 or None) per item."""
        s = self.ds.split(split)
        for tok, n, t, b, fl in zip(s.tokens.tolist(), s.length.tolist(), s.target.tolist(),
                                     s.bridge.tolist(), s.flags.tolist()):
            hop1 = (tok[0], tok[1])
            hop2 = (self.tail[hop1], tok[2]) if n == 3 else None
            yield tuple(tok[:n]), t, b, fl, hop1, hop2

    def queries(self, split: str) -> set[tuple]:
        return {q for q, *_ in self.items(split)}

    def chains(self):
        """Every chain as (query, target, bridge, hop1, hop2), by brute force."""
        by_head: dict[int, list[int]] = {}
        for h, r in self.tail:
            by_head.setdefault(h, []).append(r)
        for (h, r1), b in self.tail.items():
            for r2 in by_head.get(b, []):
                yield (h, r1, r2), self.tail[(b, r2)], b, (h, r1), (b, r2)
