"""Multi-head latent attention (DeepSeek-V2/V3): a low-rank KV cache shared by all heads."""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.lowering import (RMSNORM_OPS, ROPE_OPS, SOFTMAX_OPS, _matmul, _vector,
                                    attended_keys, matmul_rows)
from asicsim.model.ops import Numerics, Op, OpKind, StepShape


@dataclass(frozen=True)
class MLA:
    """DeepSeek multi-head latent attention.

    Queries go through a rank-``q_lora_rank`` bottleneck (``None``: one direct projection); keys
    and values are cached as one ``kv_lora_rank`` latent plus a ``qk_rope_head_dim`` shared
    rotary key per token, and expanded per head by ``kv_b`` (to ``qk_nope_head_dim`` key and
    ``v_head_dim`` value channels). Lowering follows serving engines: prefill (``tokens > 1``)
    expands the cached latents and runs ordinary multi-head attention; decode absorbs ``kv_b``
    into the query and output sides and attends in latent space, one shared KV head of width
    ``kv_lora_rank + qk_rope_head_dim``.
    """

    heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    kind = "mla"

    @property
    def _qk_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def params(self, hidden: int) -> int:
        h, r = self.heads, self.q_lora_rank
        q = hidden * h * self._qk_dim if r is None else hidden * r + r + r * h * self._qk_dim
        kv_a = hidden * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
        kv_b = self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
        return q + kv_a + kv_b + h * self.v_head_dim * hidden

    def kv_bytes_per_token(self, num: Numerics) -> float:
        return (self.kv_lora_rank + self.qk_rope_head_dim) * num.kv_bytes

    def cached_tokens(self, context: int) -> int:
        """Tokens of latent KV kept for a sequence of ``context`` tokens: all of them."""
        return context

    def state_bytes(self, num: Numerics) -> float:
        """Fixed per-sequence state besides the KV cache: none."""
        return 0.0

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        h, m, r, c = self.heads, s.batch * s.tokens, self.q_lora_rank, self.kv_lora_rank
        rope = self.qk_rope_head_dim
        ops = []
        if r is None:
            ops.append(_matmul(f"L{layer}.q", layer, s, hidden, h * self._qk_dim, num))
        else:
            ops += [_matmul(f"L{layer}.q_a", layer, s, hidden, r, num),
                    _vector(f"L{layer}.q_a_norm", layer, m * r, RMSNORM_OPS, num, weight_elements=r),
                    _matmul(f"L{layer}.q_b", layer, s, r, h * self._qk_dim, num)]
        ops += [_matmul(f"L{layer}.kv_a", layer, s, hidden, c + rope, num),
                _vector(f"L{layer}.kv_a_norm", layer, m * c, RMSNORM_OPS, num, weight_elements=c),
                _vector(f"L{layer}.rope", layer, m * (h + 1) * rope, ROPE_OPS, num)]
        ops += self._expanded(layer, s, num) if s.tokens > 1 else self._absorbed(layer, s, num)
        ops.append(_matmul(f"L{layer}.o", layer, s, h * self.v_head_dim, hidden, num))
        return ops

    def _attention(self, layer: int, s: StepShape, num: Numerics, qk: int, v: int, kv_groups: int,
                   queries_per_group: int) -> Op:
        keys = attended_keys(s.context, s.tokens, None)
        per_token = self.kv_bytes_per_token(num)
        return Op(f"L{layer}.attn", layer, OpKind.ATTENTION,
                  flops=2.0 * s.batch * self.heads * keys * (qk + v),
                  vector_ops=SOFTMAX_OPS * s.batch * self.heads * keys,
                  kv_read_bytes=s.batch * s.context * per_token,
                  kv_write_bytes=s.batch * s.tokens * per_token,
                  act_bytes=s.batch * s.tokens * self.heads * (qk + v) * num.act_bytes,
                  m=queries_per_group * s.tokens, k=qk, n=max(1, round(keys / s.tokens)),
                  groups=s.batch * kv_groups)

    def _expanded(self, layer: int, s: StepShape, num: Numerics) -> list[Op]:
        """Prefill: expand every cached and new latent to per-head K and V, then plain MHA."""
        h, rows = self.heads, s.batch * (s.context + s.tokens)
        return [matmul_rows(f"L{layer}.kv_b", layer, rows, self.kv_lora_rank,
                            h * (self.qk_nope_head_dim + self.v_head_dim), num),
                self._attention(layer, s, num, self._qk_dim, self.v_head_dim, h, 1)]

    def _absorbed(self, layer: int, s: StepShape, num: Numerics) -> list[Op]:
        """Decode: fold kv_b's key half into the query and its value half after attention."""
        h, m, c = self.heads, s.batch * s.tokens, self.kv_lora_rank
        return [matmul_rows(f"L{layer}.q_absorb", layer, m, self.qk_nope_head_dim, c, num, groups=h),
                self._attention(layer, s, num, c + self.qk_rope_head_dim, c, 1, h),
                matmul_rows(f"L{layer}.v_up", layer, m, c, self.v_head_dim, num, groups=h)]
