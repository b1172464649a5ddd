"""Softmax attention over a KV cache and the dense feed-forward block.

These are the classic transformer parts; newer mixers live in :mod:`asicsim.model.mla` and
:mod:`asicsim.model.recurrent`, expert FFNs in :mod:`asicsim.model.moe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.lowering import (RMSNORM_OPS, ROPE_OPS, SIGMOID_OPS, SOFTMAX_OPS, SWIGLU_OPS,
                                    _matmul, _vector, attended_keys)
from asicsim.model.ops import Numerics, Op, OpKind, StepShape


@dataclass(frozen=True)
class Attention:
    """Multi-head attention with grouped KV heads; ``window=None`` is full attention.

    Options beyond Llama's: ``sinks`` adds one learned logit per head to every softmax (gpt-oss);
    ``gated`` doubles the query projection and multiplies the output by a sigmoid gate
    (Qwen3-Next); ``qk_norm`` RMS-normalises queries and keys per head (Qwen3, Gemma-3, LFM2);
    ``rotary_dim`` is how many channels per head RoPE rotates (``None``: all of them).
    """

    heads: int
    kv_heads: int
    head_dim: int
    window: int | None = None
    qkv_bias: bool = False
    o_bias: bool = False
    sinks: bool = False
    gated: bool = False
    qk_norm: bool = False
    rotary_dim: int | None = None

    @property
    def kind(self) -> str:
        return "attention" if self.window is None else "sliding_attention"

    def _q_out(self) -> int:
        return self.heads * self.head_dim * (2 if self.gated else 1)

    def params(self, hidden: int) -> int:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        p = hidden * (self._q_out() + 2 * kv) + q * hidden
        if self.qkv_bias:
            p += self._q_out() + 2 * kv
        if self.o_bias:
            p += hidden
        if self.sinks:
            p += self.heads
        if self.qk_norm:
            p += 2 * self.head_dim
        return p

    def kv_bytes_per_token(self, num: Numerics) -> float:
        return 2 * self.kv_heads * self.head_dim * num.kv_bytes

    def cached_tokens(self, context: int) -> int:
        """Tokens of KV this layer keeps for a sequence of ``context`` tokens."""
        return context if self.window is None else min(context, self.window)

    def state_bytes(self, num: Numerics) -> float:
        """Fixed per-sequence state besides the KV cache: none."""
        return 0.0

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        m = s.batch * s.tokens
        keys = attended_keys(s.context, s.tokens, self.window)  # per sequence, summed over queries
        group = self.heads // self.kv_heads
        per_token = self.kv_bytes_per_token(num)
        # Past KV is read from the cache once per sequence; new tokens' K/V are made on chip.
        kv_read = s.batch * self.cached_tokens(s.context) * per_token
        mean_keys = max(1, round(keys / s.tokens))
        rotary = self.head_dim if self.rotary_dim is None else self.rotary_dim
        scores = s.batch * self.heads * (keys + (s.tokens if self.sinks else 0))
        ops = [_matmul(f"L{layer}.qkv", layer, s, hidden, self._q_out() + 2 * kv, num, bias=self.qkv_bias)]
        if self.qk_norm:
            ops.append(_vector(f"L{layer}.qk_norm", layer, m * (q + kv), RMSNORM_OPS, num,
                               weight_elements=2 * self.head_dim))
        ops += [
            _vector(f"L{layer}.rope", layer, m * (self.heads + self.kv_heads) * rotary, ROPE_OPS, num),
            Op(f"L{layer}.attn", layer, OpKind.ATTENTION,
               flops=4.0 * s.batch * self.heads * self.head_dim * keys,
               vector_ops=SOFTMAX_OPS * scores,
               weight_bytes=(self.heads if self.sinks else 0) * num.weight_bytes,
               kv_read_bytes=kv_read, kv_write_bytes=s.batch * s.tokens * per_token,
               act_bytes=2 * m * q * num.act_bytes,
               m=group * s.tokens, k=self.head_dim, n=mean_keys, groups=s.batch * self.kv_heads),
        ]
        if self.gated:
            ops.append(_vector(f"L{layer}.attn_gate", layer, m * q, SIGMOID_OPS + 1, num))
        ops.append(_matmul(f"L{layer}.o", layer, s, q, hidden, num, bias=self.o_bias))
        return ops


@dataclass(frozen=True)
class DenseMLP:
    """A gated (SwiGLU/GeGLU) or plain two-matrix feed-forward block."""

    intermediate: int
    gated: bool = True
    bias: bool = False

    @property
    def kind(self) -> str:
        return "mlp"

    def params(self, hidden: int) -> int:
        ins = 2 if self.gated else 1
        p = (ins + 1) * hidden * self.intermediate
        if self.bias:
            p += ins * self.intermediate + hidden
        return p

    def active_params(self, hidden: int) -> int:
        """Parameters one token uses: all of them."""
        return self.params(hidden)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics, prefix: str = "") -> list[Op]:
        ins = 2 if self.gated else 1
        m = s.batch * s.tokens
        return [
            _matmul(f"L{layer}.{prefix}gate_up", layer, s, hidden, ins * self.intermediate, num,
                    bias=self.bias),
            _vector(f"L{layer}.{prefix}act", layer, m * self.intermediate, SWIGLU_OPS, num),
            _matmul(f"L{layer}.{prefix}down", layer, s, self.intermediate, hidden, num, bias=self.bias),
        ]
