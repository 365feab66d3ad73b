"""Training compute: FLOPs per step, and steps/examples/FLOPs to reach a target accuracy.

Formula (stated in the report): a training step costs

    FLOPs/step = tokens/step x N x (2 x A_fwd + 4 x A_bwd)

where N is the number of parameters (all of them; the tied unembedding is a real matmul),
tokens/step = batch size x input length (including the answer slot of the recursive model),
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


def applications(model: dict) -> tuple[int, int]:
    """(forward, backward) applications of the parameter stack per training step."""
    family = model.get("family", "decoder")
    if family == "looped":
        n = int(model.get("n_loops", 1))
        return n, n
    if family == "recursive":
        per_cycle = int(model.get("l_cycles", 1)) + 1
        return int(model.get("h_cycles", 1)) * per_cycle, per_cycle
    return 1, 1


def input_length(model: dict) -> int:
    """Tokens per two-hop example as the model sees them (answer slot for recursive)."""
    return 4 if model.get("family") == "recursive" else 3


def flops_per_step(n_params: int, model: dict, batch_size: int) -> float:
    fwd, bwd = applications(model)
    tokens = batch_size * input_length(model)
    return float(tokens) * n_params * (2 * fwd + 4 * bwd)


def to_target(rows: list[dict], key: str, target: float) -> int | None:
    """First logged step whose ``row[key] >= target``; None if never."""
    for r in rows:
        v = r.get(key)
        if v is not None and v >= target:
            return int(r["step"])
    return None
