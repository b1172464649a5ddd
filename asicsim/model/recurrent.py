"""Linear-recurrent and convolutional mixers: RG-LRU (RecurrentGemma), gated DeltaNet
(Qwen3-Next) and LFM2's short convolution.

Each keeps a fixed state per sequence and no KV cache. Projections with weights are MATMULs;
recurrences, gates and convs are VECTOR work.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.lowering import (RMSNORM_OPS, SILU_OPS, SWIGLU_OPS, _matmul, _vector,
                                    causal_conv, matmul_rows, recurrence)
from asicsim.model.ops import Numerics, Op, StepShape
from asicsim.model.ssm import _Recurrent

# RG-LRU, per channel per token: two sigmoid gates (6), log a = -8·r·softplus(Λ) (2), a = exp (1),
# sqrt(1 - a²) (3), gate and scale the input (2), h = a·h + x (2).
RGLRU_STEP_OPS = 16
# Gated delta rule, per state element per token: decay (1), read kᵀS (2), rank-one update
# S += k·δᵀ (2), read out qᵀS (2).
DELTA_RULE_OPS = 7


@dataclass(frozen=True)
class RGLRU(_Recurrent):
    """RecurrentGemma's recurrent block: two input branches (x, y), a causal conv1d of
    ``conv_width`` on x, the RG-LRU (block-diagonal input and recurrence gates in ``heads``
    blocks, a diagonal recurrence of ``lru_width``), gated by GeLU(y), then an output projection.
    Every linear layer and the conv carry biases."""

    lru_width: int
    heads: int
    conv_width: int = 4
    kind = "rglru"

    @property
    def _block(self) -> int:
        return self.lru_width // self.heads

    def params(self, hidden: int) -> int:
        w = self.lru_width
        gates = 2 * (self.heads * self._block * self._block + w)
        return 2 * (hidden * w + w) + w * self.conv_width + w + gates + w + w * hidden + hidden

    def state_elements(self) -> int:
        return self.lru_width + self.lru_width * (self.conv_width - 1)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        w, b, m = self.lru_width, self._block, s.batch * s.tokens
        return [
            _matmul(f"L{layer}.in_xy", layer, s, hidden, 2 * w, num, bias=True),
            causal_conv(f"L{layer}.conv", layer, s, w, self.conv_width, True, num),
            matmul_rows(f"L{layer}.lru_gates", layer, m, b, 2 * b, num, groups=self.heads, bias=True),
            recurrence(f"L{layer}.rglru", layer, s, w, RGLRU_STEP_OPS, w * num.kv_bytes, num,
                       act_elements=4 * w, weight_elements=w),
            _vector(f"L{layer}.out_gate", layer, m * w, SWIGLU_OPS, num),
            _matmul(f"L{layer}.out", layer, s, w, hidden, num, bias=True),
        ]


@dataclass(frozen=True)
class GatedDeltaNet(_Recurrent):
    """Qwen3-Next's linear attention: gated delta rule with a ``key_head_dim × value_head_dim``
    state per value head. Queries and keys have ``key_heads`` heads shared across
    ``value_heads`` value heads; q, k, v pass a causal conv of ``conv_width`` first; the output
    goes through a SiLU-gated RMSNorm (one ``value_head_dim`` weight) and a projection."""

    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_width: int = 4
    conv_bias: bool = False
    kind = "gated_deltanet"

    @property
    def _key_dim(self) -> int:
        return self.key_heads * self.key_head_dim

    @property
    def _value_dim(self) -> int:
        return self.value_heads * self.value_head_dim

    @property
    def conv_dim(self) -> int:
        return 2 * self._key_dim + self._value_dim

    def params(self, hidden: int) -> int:
        kd, vd, nv = self._key_dim, self._value_dim, self.value_heads
        conv = self.conv_dim * self.conv_width + (self.conv_dim if self.conv_bias else 0)
        return hidden * (2 * kd + 2 * vd) + hidden * 2 * nv + conv + 2 * nv + self.value_head_dim + vd * hidden

    def _state_matrix(self) -> int:
        return self.value_heads * self.key_head_dim * self.value_head_dim

    def state_elements(self) -> int:
        return self._state_matrix() + self.conv_dim * (self.conv_width - 1)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        kd, vd, nv, m = self._key_dim, self._value_dim, self.value_heads, s.batch * s.tokens
        state = self._state_matrix()
        return [
            _matmul(f"L{layer}.in_qkvz", layer, s, hidden, 2 * kd + 2 * vd, num),
            _matmul(f"L{layer}.in_ba", layer, s, hidden, 2 * nv, num),
            causal_conv(f"L{layer}.conv", layer, s, self.conv_dim, self.conv_width, self.conv_bias, num,
                        SILU_OPS),
            _vector(f"L{layer}.qk_l2norm", layer, m * 2 * kd, RMSNORM_OPS, num),
            recurrence(f"L{layer}.delta", layer, s, state, DELTA_RULE_OPS, state * num.kv_bytes, num,
                       act_elements=2 * kd + 2 * vd, weight_elements=2 * nv),
            _vector(f"L{layer}.out_norm", layer, m * vd, RMSNORM_OPS + SWIGLU_OPS, num,
                    weight_elements=self.value_head_dim),
            _matmul(f"L{layer}.out", layer, s, vd, hidden, num),
        ]


@dataclass(frozen=True)
class ShortConv(_Recurrent):
    """LFM2's gated short convolution over ``channels`` (the hidden size): project to (B, C, x),
    conv1d of ``conv_width`` taps over B·x, multiply by C, project out. Its only state is the
    conv's last ``conv_width - 1`` inputs per channel."""

    channels: int
    conv_width: int = 3
    bias: bool = False
    kind = "short_conv"

    def params(self, hidden: int) -> int:
        c = self.channels
        p = 3 * hidden * c + c * self.conv_width + c * hidden
        return p + (3 * c + c + hidden if self.bias else 0)  # biases: in_proj, conv, out_proj

    def state_elements(self) -> int:
        return self.channels * (self.conv_width - 1)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        c = self.channels
        return [
            _matmul(f"L{layer}.in_proj", layer, s, hidden, 3 * c, num, bias=self.bias),
            causal_conv(f"L{layer}.conv", layer, s, c, self.conv_width, self.bias, num, post_ops=2),
            _matmul(f"L{layer}.out_proj", layer, s, c, hidden, num, bias=self.bias),
        ]
