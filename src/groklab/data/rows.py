"""The split row layout (docs/architecture.md section 1): column names and indices, lengths.

A split file ``splits/NAME.npy`` is an int32 (N, 7) array; code indexes its columns by these
names, never by number. A k-hop dataset (docs/data.md, "k-hop composition") whose longest
query has M hops uses the wider layout :func:`columns` (M): ``in0..inM, length, target,
bridge, bridge2..bridge{M-1}, flags``; M = 2 is exactly the (N, 7) layout.
"""

COLUMNS = ("in0", "in1", "in2", "length", "target", "bridge", "flags")
IN0, IN1, IN2, LENGTH, TARGET, BRIDGE, FLAGS = range(len(COLUMNS))
N_COLUMNS = len(COLUMNS)
ATOMIC_LENGTH = 2    # "h r": an atomic fact (in2 is <pad>)
TWO_HOP_LENGTH = 3   # "h r1 r2": a two-hop query (or a comparison "a e1 e2")
MAX_HOPS = 8         # the flag bits (data/flags.py) name the OOD hops up to here


def columns(max_hops: int = 2) -> tuple[str, ...]:
    """Column names of a split whose longest query has ``max_hops`` hops."""
    if max_hops == 2:
        return COLUMNS
    return (*(f"in{i}" for i in range(max_hops + 1)), "length", "target", "bridge",
            *(f"bridge{i}" for i in range(2, max_hops)), "flags")


def width(max_hops: int = 2) -> int:
    """Columns of a split row: max_hops + 1 inputs, length, target, max_hops - 1 bridges, flags."""
    return 2 * max_hops + 3


def hops_of_width(n_columns: int) -> int:
    """Inverse of :func:`width` (ValueError when no layout has ``n_columns`` columns)."""
    if n_columns < N_COLUMNS or (n_columns - 3) % 2:
        raise ValueError(f"no split layout has {n_columns} columns")
    return (n_columns - 3) // 2
