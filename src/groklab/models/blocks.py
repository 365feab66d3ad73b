"""Building blocks: attention, MLPs, norms and the two block types (pre-LN and post-norm)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from groklab.models.config import ModelConfig
from groklab.models.hooks import HookPoint


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without weights over the feature axis, computed in float32."""
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


class ResidHooks(nn.Module):
    """The three residual-stream hook points around one block application."""

    def __init__(self):
        super().__init__()
        self.hook_resid_pre = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_resid_post = HookPoint()


# On a CPU, attention over this few positions is faster as explicit matmuls than through the
# fused F.scaled_dot_product_attention kernels (bf16 and many heads most of all); the task's
# inputs have 2-4 positions. On CUDA (measured on an H200: the paper decoder ran 86 steps/s with
# the fused kernel, 71 with explicit matmuls) and for longer inputs the fused kernels are used.
SHORT_SEQ_CPU = 16


class SelfAttention(nn.Module):
    """Multi-head self-attention (``F.scaled_dot_product_attention``, or explicit matmuls for
    short inputs on a CPU)."""

    def __init__(self, cfg: ModelConfig, causal: bool, bias: bool = True):
        super().__init__()
        self.n_heads, self.causal, self.dropout = cfg.n_heads, causal, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        y = self.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               visible: torch.Tensor | None = None) -> torch.Tensor:
        """``softmax(q k^T / sqrt(dh)) v`` over (B, H, T, dh) tensors, masked to ``visible``
        (bool, broadcastable to (B, H, Tq, Tk)) if given, else causal if the layer is."""
        p = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and k.shape[-2] <= SHORT_SEQ_CPU:
            if visible is None and self.causal:
                visible = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
            att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            if visible is not None:
                att = att.masked_fill(~visible, float("-inf"))
            return F.dropout(att.softmax(-1), p, self.training) @ v
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, dropout_p=p,
                                              is_causal=self.causal and visible is None)

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Causal attention output for one query position per row: (B, T, d), (B,) -> (B, d).

        Keys and values come from every position ``<= pos``; equals ``forward(x)[rows, pos]``.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        q = q[torch.arange(b, device=x.device), pos].unsqueeze(2)           # (B, H, 1, dh)
        visible = torch.arange(t, device=x.device) <= pos.unsqueeze(1)      # (B, T)
        y = self.attend(q, k.transpose(1, 2), v.transpose(1, 2), visible[:, None, None, :])
        return self.proj(y.reshape(b, d))


class GeluMLP(nn.Module):
    """GPT-2 MLP: d -> d_mlp -> GELU (tanh) -> d."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_width)
        self.proj = nn.Linear(cfg.mlp_width, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class SwiGLU(nn.Module):
    """SwiGLU MLP without biases: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, d_in: int, d_hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d_in, 2 * d_hidden, bias=False)
        self.down = nn.Linear(d_hidden, d_in, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class TokenMixer(SwiGLU):
    """TRM's ``mlp_t``: a SwiGLU across the sequence axis (attention-free token mixing).

    Weights are sized for ``cfg.mixer_positions`` (prefix + ``max_len``) positions; an input of
    fewer positions uses the first rows/columns, i.e. absent positions count as zeros.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg.mixer_positions, cfg.mixer_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, d)
        b, t, d = x.shape
        if x.device.type == "cpu":
            # the same sums as position-major matmuls on (T, B*d): contiguous gate/up halves
            # (the strided halves of the form below make silu and its backward ~7x slower on a
            # CPU; tiny TRM training step 42 -> 32 ms). CUDA keeps the form below (unmeasured).
            xs = x.transpose(0, 1).reshape(t, b * d)
            gate, up = (self.gate_up.weight[:, :t] @ xs).chunk(2, dim=0)
            out = self.down.weight[:t] @ (F.silu(gate) * up)
            return out.view(t, b, d).transpose(0, 1)
        xt = x.transpose(1, 2)  # (B, d, T)
        gate, up = F.linear(xt, self.gate_up.weight[:, :t]).chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, self.down.weight[:t]).transpose(1, 2)


class PreLNBlock(nn.Module):
    """GPT-2 block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``, with residual hook points.

    ``hooked=True`` gives the block its own hook points (decoder); a shared block (looped) is
    built with ``hooked=False`` and receives the hook points of the current iteration.
    """

    def __init__(self, cfg: ModelConfig, hooked: bool = True):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg, causal=True)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = GeluMLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        if hooked:
            self.hook_resid_pre = HookPoint()
            self.hook_resid_mid = HookPoint()
            self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor, hooks: nn.Module | None = None) -> torch.Tensor:
        h = hooks if hooks is not None else self
        x = h.hook_resid_pre(x)
        x = h.hook_resid_mid(x + self.drop(self.attn(self.ln_1(x))))
        return h.hook_resid_post(x + self.drop(self.mlp(self.ln_2(x))))

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The block's output at one position per row, (B, T, d), (B,) -> (B, d), computing
        only what that position needs (no hooks fire)."""
        rows = torch.arange(x.shape[0], device=x.device)
        x_at = x[rows, pos] + self.drop(self.attn.forward_at(self.ln_1(x), pos))
        return x_at + self.drop(self.mlp(self.ln_2(x_at)))


def rms_norm_tokens(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without weights over the token axis of (B, T, d), in float32 (TRM's mlp_t)."""
    y = F.rms_norm(x.float().transpose(1, 2), (x.shape[1],), eps=eps)
    return y.transpose(1, 2).to(x.dtype)


class PostNormBlock(nn.Module):
    """TRM block: ``x = rms(x + mix(x))`` then ``x = rms(x + swiglu(x))``; non-causal.

    With ``mixer_norm="token"`` the norm after the ``mlp_t`` mixer runs over the token axis, as
    in TRM, where the mixer works on the transposed state.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.mixer == "attn":
            self.mixer = SelfAttention(cfg, causal=False, bias=False)
        else:
            self.mixer = TokenMixer(cfg)
        self.mlp = SwiGLU(cfg.d_model, cfg.mlp_width)
        self.drop = nn.Dropout(cfg.dropout)
        self.mixer_norm = rms_norm_tokens if cfg.mixer_norm == "token" else rms_norm

    def forward(self, x: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) -> (B, T, d); with ``at`` (B,) the MLP half runs only at one position per
        row -> (B, d) (the recursive model's answer-slot forward)."""
        x = self.mixer_norm(x + self.drop(self.mixer(x)))
        if at is not None:
            x = x[torch.arange(x.shape[0], device=x.device), at]
        return rms_norm(x + self.drop(self.mlp(x)))


def gpt2_init(module: nn.Module, std: float, n_residual_layers: int) -> None:
    """GPT-2 init: N(0, std) matrices and embeddings, zero biases, LayerNorm gains 1, and the
    output projections of attention and MLP scaled by 1/sqrt(2 * n_residual_layers)."""
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            scaled = name.endswith(("attn.proj.weight", "mlp.proj.weight"))
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_residual_layers) if scaled else std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
        else:
            nn.init.ones_(p)


def fan_in_init(module: nn.Module) -> None:
    """TRM-style init of Linear weights: truncated normal with std 1/sqrt(fan_in)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            std = 1.0 / math.sqrt(m.weight.shape[1])
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
