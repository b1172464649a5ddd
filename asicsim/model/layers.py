"""Typed layer specs and the model they make up.

A model is an ordered tuple of :class:`Block` (one decoder layer: a token mixer and a
feed-forward part) between an embedding and an LM head. Each spec counts its parameters and
lowers itself, for one :class:`StepShape`, to a list of :class:`Op`. Dispatch is by type: a new
layer kind is a new class with ``params`` and ``lower``, nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.ops import Numerics, Op, OpKind, StepShape

# Elementwise operations per element, counted the same way everywhere (a documented convention,
# not a measurement): RMSNorm squares, sums, scales and multiplies by its weight; SwiGLU's SiLU
# is an exp, an add, a divide and a multiply, then the gate multiply; RoPE a rotate of pairs;
# softmax an exp, a max, a sum and a divide per score; a residual add one op.
RMSNORM_OPS = 4
SWIGLU_OPS = 5
ROPE_OPS = 3
SOFTMAX_OPS = 4
RESIDUAL_OPS = 1


def _matmul(name: str, layer: int, shape: StepShape, k: int, n: int, num: Numerics,
            bias: bool = False) -> Op:
    m = shape.batch * shape.tokens
    weights = k * n + (n if bias else 0)
    return Op(name, layer, OpKind.MATMUL, flops=2.0 * m * k * n, weight_bytes=weights * num.weight_bytes,
              act_bytes=(m * k + m * n) * num.act_bytes, m=m, k=k, n=n)


def _vector(name: str, layer: int, elements: float, ops_per_element: float, num: Numerics,
            weight_elements: int = 0) -> Op:
    return Op(name, layer, OpKind.VECTOR, vector_ops=elements * ops_per_element,
              weight_bytes=weight_elements * num.weight_bytes, act_bytes=2 * elements * num.act_bytes)


def attended_keys(context: int, tokens: int, window: int | None) -> int:
    """Sum over the ``tokens`` new queries of how many keys each attends to (causal, windowed)."""
    total = 0
    if window is None:
        # query i (0-based) sees context + i + 1 keys
        return tokens * context + tokens * (tokens + 1) // 2
    for i in range(tokens):
        total += min(context + i + 1, window)
    return total


@dataclass(frozen=True)
class Attention:
    """Multi-head attention with grouped KV heads; ``window=None`` is full attention."""

    heads: int
    kv_heads: int
    head_dim: int
    window: int | None = None
    qkv_bias: bool = False
    o_bias: bool = False

    def params(self, hidden: int) -> int:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        p = hidden * (q + 2 * kv) + q * hidden
        if self.qkv_bias:
            p += q + 2 * kv
        if self.o_bias:
            p += hidden
        return p

    def kv_bytes_per_token(self, num: Numerics) -> float:
        return 2 * self.kv_heads * self.head_dim * num.kv_bytes

    def cached_tokens(self, context: int) -> int:
        """Tokens of KV this layer keeps for a sequence of ``context`` tokens."""
        return context if self.window is None else min(context, self.window)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        m = s.batch * s.tokens
        keys = attended_keys(s.context, s.tokens, self.window)  # per sequence, summed over queries
        group = self.heads // self.kv_heads
        per_token = self.kv_bytes_per_token(num)
        # Past KV is read from the cache once per sequence; new tokens' K/V are made on chip.
        kv_read = s.batch * self.cached_tokens(s.context) * per_token
        mean_keys = max(1, round(keys / s.tokens))
        return [
            _matmul(f"L{layer}.qkv", layer, s, hidden, q + 2 * kv, num, bias=self.qkv_bias),
            _vector(f"L{layer}.rope", layer, m * (q + kv), ROPE_OPS, num),
            Op(f"L{layer}.attn", layer, OpKind.ATTENTION,
               flops=4.0 * s.batch * self.heads * self.head_dim * keys,
               vector_ops=SOFTMAX_OPS * s.batch * self.heads * keys,
               kv_read_bytes=kv_read, kv_write_bytes=s.batch * s.tokens * per_token,
               act_bytes=2 * m * q * num.act_bytes,
               m=group * s.tokens, k=self.head_dim, n=mean_keys, groups=s.batch * self.kv_heads),
            _matmul(f"L{layer}.o", layer, s, q, hidden, num, bias=self.o_bias),
        ]


@dataclass(frozen=True)
class DenseMLP:
    """A gated (SwiGLU/GeGLU) or plain two-matrix feed-forward block."""

    intermediate: int
    gated: bool = True
    bias: bool = False

    def params(self, hidden: int) -> int:
        ins = 2 if self.gated else 1
        p = (ins + 1) * hidden * self.intermediate
        if self.bias:
            p += ins * self.intermediate + hidden
        return p

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        ins = 2 if self.gated else 1
        m = s.batch * s.tokens
        return [
            _matmul(f"L{layer}.gate_up", layer, s, hidden, ins * self.intermediate, num, bias=self.bias),
            _vector(f"L{layer}.act", layer, m * self.intermediate, SWIGLU_OPS, num),
            _matmul(f"L{layer}.down", layer, s, self.intermediate, hidden, num, bias=self.bias),
        ]


Mixer = Attention
FeedForward = DenseMLP


@dataclass(frozen=True)
class Block:
    """One decoder layer: norm → mixer → residual add, norm → feed-forward → residual add."""

    mixer: Mixer
    ffn: FeedForward

    def params(self, hidden: int) -> int:
        return self.mixer.params(hidden) + self.ffn.params(hidden) + 2 * hidden  # two RMSNorm weights

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        m = s.batch * s.tokens
        norm = RMSNORM_OPS + RESIDUAL_OPS  # the residual add is fused into the next norm
        return [
            _vector(f"L{layer}.norm1", layer, m * hidden, norm, num, weight_elements=hidden),
            *self.mixer.lower(layer, hidden, s, num),
            _vector(f"L{layer}.norm2", layer, m * hidden, norm, num, weight_elements=hidden),
            *self.ffn.lower(layer, hidden, s, num),
        ]


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only language model: embedding, ``blocks`` in order, final norm, LM head.

    ``name`` is the file stem users type (``llama-3.1-8b``); ``source`` the file it came from.
    """

    name: str
    source: str
    model_type: str
    hidden: int
    vocab: int
    blocks: tuple[Block, ...]
    tied_embeddings: bool = False
    max_context: int | None = None

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def params(self) -> int:
        """Every parameter once (a tied LM head counts once)."""
        embed = self.vocab * self.hidden
        head = 0 if self.tied_embeddings else self.vocab * self.hidden
        return embed + head + self.hidden + sum(b.params(self.hidden) for b in self.blocks)

    def kv_bytes_per_token(self, num: Numerics) -> float:
        """KV cache bytes one more token adds to one sequence, summed over layers (no window cap)."""
        return sum(b.mixer.kv_bytes_per_token(num) for b in self.blocks)

    def kv_bytes(self, batch: int, context: int, num: Numerics) -> float:
        """KV cache bytes held for ``batch`` sequences of ``context`` tokens (windows applied)."""
        return batch * sum(b.mixer.cached_tokens(context) * b.mixer.kv_bytes_per_token(num)
                           for b in self.blocks)
