"""Token vocabulary: specials, then entities, then relations (then task-specific tokens).

Composition task: ``0 <pad>``, ``1 <mask>``, ``2 </a>``, ``<e_0>..<e_{E-1}>`` (entity i has id
``3+i``), ``<r_0>..<r_{R-1}>`` (relation j has id ``3+E+j``). The comparison task appends
``<v_0>..<v_{V-1}>`` (ordinal values) and ``<lt> <eq> <gt>``.
"""

from __future__ import annotations

PAD, MASK, END = 0, 1, 2
SPECIALS = ["<pad>", "<mask>", "</a>"]
N_SPECIAL = len(SPECIALS)
COMPARISON_LABELS = ["<lt>", "<eq>", "<gt>"]


def entity_token(i: int) -> str:
    return f"<e_{i}>"


def relation_token(j: int) -> str:
    return f"<r_{j}>"


def value_token(v: int) -> str:
    return f"<v_{v}>"


def entity_offset() -> int:
    """Token id of entity 0."""
    return N_SPECIAL


def relation_offset(entities: int) -> int:
    """Token id of relation 0."""
    return N_SPECIAL + entities


def value_offset(entities: int, relations: int) -> int:
    """Token id of value 0 (comparison task)."""
    return N_SPECIAL + entities + relations


def label_offset(entities: int, relations: int, values: int) -> int:
    """Token id of ``<lt>`` (comparison task); ``<eq>``, ``<gt>`` follow."""
    return N_SPECIAL + entities + relations + values


def composition_vocab(entities: int, relations: int) -> list[str]:
    """Vocabulary of the composition task."""
    return (SPECIALS + [entity_token(i) for i in range(entities)]
            + [relation_token(j) for j in range(relations)])


def comparison_vocab(entities: int, attributes: int, values: int) -> list[str]:
    """Vocabulary of the comparison task (attributes reuse the relation tokens)."""
    return (composition_vocab(entities, attributes)
            + [value_token(v) for v in range(values)] + COMPARISON_LABELS)
