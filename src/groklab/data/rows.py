"""The split row layout (docs/architecture.md section 1): column names and indices, lengths.

A split file ``splits/NAME.npy`` is an int32 (N, 7) array; code indexes its columns by these
names, never by number.
"""

COLUMNS = ("in0", "in1", "in2", "length", "target", "bridge", "flags")
IN0, IN1, IN2, LENGTH, TARGET, BRIDGE, FLAGS = range(len(COLUMNS))
N_COLUMNS = len(COLUMNS)
ATOMIC_LENGTH = 2    # "h r": an atomic fact (in2 is <pad>)
TWO_HOP_LENGTH = 3   # "h r1 r2": a two-hop query (or a comparison "a e1 e2")
