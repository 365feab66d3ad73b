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
}


def describe(flags: int) -> str:
    """Human-readable flag set, e.g. ``'HOP1_OOD|INFERRED|AUGMENTED'`` (``'-'`` when none)."""
    names = [name for name, bit in NAMES.items() if int(flags) & bit]
    return "|".join(names) or "-"

