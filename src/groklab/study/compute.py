"""Training compute: FLOPs per step, and steps/examples/FLOPs to reach a target accuracy.

Formula (stated in the report): a training step costs

    FLOPs/step = tokens/step x N x (2 x A_fwd + 4 x A_bwd)

where N is the number of parameters (all of them; the tied unembedding is a real matmul),
tokens/step = batch size x positions per query (the recursive model's answer slot, its study
format's end slot and its constant prefix included),
A_fwd the number of times the network is applied in the forward pass and A_bwd the number of
those applications that are back-propagated. For a standard decoder A_fwd = A_bwd = 1, which
is the usual 6 x N x tokens; a looped model applies its stack n_loops times; the recursive
(TRM) model applies its net h_cycles x (l_cycles + 1) times, of which only the last cycle's
l_cycles + 1 get gradients.
"""

from __future__ import annotations

FORMULA = ("FLOPs/step = tokens/step x N x (2 x A_fwd + 4 x A_bwd); tokens/step = batch x input "
           "length; N = all parameters; A = network applications per forward (decoder 1, looped "
           "n_loops, recursive h_cycles x (l_cycles+1) forward of which l_cycles+1 backward). "
           "For a decoder this is the usual 6 x N x tokens.")


def _family(model: dict):
    from groklab.models import ModelConfig
    from groklab.models.registry import MODEL_CLASSES

    cfg = ModelConfig.from_dict(model)
    return MODEL_CLASSES[cfg.family], cfg


def applications(model: dict) -> tuple[int, int]:
    """(forward, backward) applications of the parameter stack per training step."""
    cls, cfg = _family(model)
    return cls.applications(cfg)


def input_length(model: dict) -> int:
    """Positions per two-hop example as the model processes them (answer slot, the study
    format's end slot and the recursive model's constant prefix included)."""
    cls, cfg = _family(model)
    return cls.positions_per_query(cfg)


def flops_per_step(n_params: int, model: dict, batch_size: int) -> float:
    fwd, bwd = applications(model)
    tokens = batch_size * input_length(model)
    return float(tokens) * n_params * (2 * fwd + 4 * bwd)
