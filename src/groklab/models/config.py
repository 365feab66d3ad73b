"""ModelConfig: one dataclass for the three model families, validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from groklab.errors import GroklabError, bad_value, check_range

FAMILIES = ("decoder", "looped", "recursive")
MIXERS = ("attn", "mlp_t")
LOSSES = ("ce", "stablemax")
FORMATS = ("answer_slot", "study")   # recursive input/loss formats (models/layout.py)
MIXER_NORMS = ("feature", "token")


@dataclass
class ModelConfig:
    """Architecture of a model. Fields that a family does not use are ignored by it.

    Shared: ``n_layers`` (decoder depth; looped: distinct blocks per loop; recursive: blocks of
    the one net), ``d_model``, ``n_heads``, ``d_mlp`` (MLP hidden width, None = 4*d_model; for
    the recursive model the SwiGLU inner width), ``dropout``, ``max_len`` (longest input),
    ``init_std`` (GPT-2 style normal init of decoder/looped weights; the recursive model uses
    TRM's fan-in init instead), ``tie_embeddings`` (None = tied for decoder/looped, untied for
    recursive as in TRM), ``loss`` ("ce" or "stablemax").
    Looped: ``n_loops``, ``step_embedding``. Recursive: ``h_cycles``, ``l_cycles``, ``mixer``,
    ``mlp_t_hidden`` (token-mixer hidden width, None = 4 x the positions it mixes),
    ``format`` ("answer_slot": ``<mask>`` slot, answer-only loss; "study": He et al.'s format,
    prompt reproduced and every position in the loss, see models/layout.py), ``prefix_len``
    (learned constant prefix slots before the sequence, the study's 16 puzzle-embedding slots;
    0 = none), ``mixer_norm`` (the post-norm after the ``mlp_t`` mixer over the "feature" axis,
    or over the "token" axis as TRM's mlp_t does).
    """

    family: str = "decoder"
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int | None = None
    dropout: float = 0.0
    max_len: int = 8
    n_loops: int = 2
    step_embedding: bool = False
    h_cycles: int = 2
    l_cycles: int = 6
    mixer: str = "mlp_t"
    mlp_t_hidden: int | None = None
    init_std: float = 0.02
    tie_embeddings: bool | None = None
    loss: str = "ce"
    format: str = "answer_slot"
    prefix_len: int = 0
    mixer_norm: str = "feature"

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def mlp_width(self) -> int:
        return self.d_mlp if self.d_mlp is not None else 4 * self.d_model

    @property
    def mixer_positions(self) -> int:
        """Positions the recursive net sees: the constant prefix, then the input."""
        return self.prefix_len + self.max_len

    @property
    def mixer_width(self) -> int:
        return self.mlp_t_hidden if self.mlp_t_hidden is not None else 4 * self.mixer_positions

    @property
    def tied(self) -> bool:
        if self.tie_embeddings is not None:
            return self.tie_embeddings
        return self.family != "recursive"

    @property
    def uses_attention(self) -> bool:
        return self.family != "recursive" or self.mixer == "attn"

    # ------------------------------------------------------------------ validation / io
    def validate(self) -> "ModelConfig":
        """Raise GroklabError naming the first bad field."""
        if self.family not in FAMILIES:
            raise bad_value("model.family", self.family, " | ".join(FAMILIES))
        if self.mixer not in MIXERS:
            raise bad_value("model.mixer", self.mixer, " | ".join(MIXERS))
        if self.loss not in LOSSES:
            raise bad_value("model.loss", self.loss, " | ".join(LOSSES))
        if self.format not in FORMATS:
            raise bad_value("model.format", self.format, " | ".join(FORMATS))
        if self.mixer_norm not in MIXER_NORMS:
            raise bad_value("model.mixer_norm", self.mixer_norm, " | ".join(MIXER_NORMS))
        _check_int("prefix_len", self.prefix_len, 0)
        for name in ("n_layers", "d_model", "n_heads", "max_len", "n_loops", "h_cycles",
                     "l_cycles"):
            _check_int(name, getattr(self, name), 1)
        for name in ("d_mlp", "mlp_t_hidden"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        for name in ("step_embedding",):
            if not isinstance(getattr(self, name), bool):
                raise bad_value(f"model.{name}", getattr(self, name), "true | false")
        if self.tie_embeddings is not None and not isinstance(self.tie_embeddings, bool):
            raise bad_value("model.tie_embeddings", self.tie_embeddings, "true | false | null")
        _check_float("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        _check_float("init_std", self.init_std, 0.0, None, lo_open=True)
        if self.uses_attention and self.d_model % self.n_heads:
            raise bad_value("model.d_model", self.d_model,
                            f"a multiple of model.n_heads={self.n_heads}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build from a mapping; unknown keys are a GroklabError."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise bad_value("model." + str(key), d[key], "one of " + ", ".join(sorted(known)))
        return cls(**d)


def _check_int(name: str, value, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_value(f"model.{name}", value, f"an integer >= {lo}")
    check_range(f"model.{name}", value, lo)


def _check_float(name: str, value, lo, hi, **kw) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_value(f"model.{name}", value, "a number")
    check_range(f"model.{name}", float(value), lo, hi, **kw)


__all__ = ["ModelConfig", "FAMILIES", "MIXERS", "LOSSES", "FORMATS", "MIXER_NORMS", "GroklabError"]
