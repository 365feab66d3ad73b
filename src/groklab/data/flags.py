"""Per-item flag bits (column ``flags`` of every split array).

For a two-hop item, HOP1_* / HOP2_* describe its first / second atomic fact; for an atomic
item, the HOP1_* bits describe the fact itself.
"""

from __future__ import annotations

HOP1_OOD = 1
HOP2_OOD = 2
HOP1_NEW = 4
HOP2_NEW = 8
INFERRED = 16
AUGMENTED = 32

NAMES = {
    "HOP1_OOD": HOP1_OOD,
    "HOP2_OOD": HOP2_OOD,
    "HOP1_NEW": HOP1_NEW,
    "HOP2_NEW": HOP2_NEW,
    "INFERRED": INFERRED,
    "AUGMENTED": AUGMENTED,
    **{f"HOP{i}_OOD": 64 << (i - 3) for i in range(3, 9)},  # k-hop queries (hop_ood)
}


def describe(flags: int) -> str:
    """Human-readable flag set, e.g. ``'HOP1_OOD|INFERRED|AUGMENTED'`` (``'-'`` when none)."""
    names = [name for name, bit in NAMES.items() if int(flags) & bit]
    return "|".join(names) or "-"



def hop_ood(i: int) -> int:
    """The OOD bit of hop ``i`` (1-based) of a k-hop query: HOP1_OOD, HOP2_OOD, then bits 64,
    128, ... for hops 3..8 (the two-hop bits are unchanged)."""
    if i == 1:
        return HOP1_OOD
    if i == 2:
        return HOP2_OOD
    return 64 << (i - 3)


def ood_hops_mask(k: int) -> int:
    """All OOD bits of a k-hop query."""
    bits = 0
    for i in range(1, k + 1):
        bits |= hop_ood(i)
    return bits
