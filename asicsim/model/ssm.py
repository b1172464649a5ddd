"""Selective state-space mixers: Mamba (v1, as in Jamba) and Mamba-2 (SSD).

Projections are MATMULs; the causal conv and the selective scan are VECTOR work. The scan
keeps a fixed state per sequence (``d_inner × d_state`` plus the conv's last inputs), so these
mixers cache no KV at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.lowering import (RMSNORM_OPS, SILU_OPS, SWIGLU_OPS, _matmul, _vector,
                                    causal_conv, recurrence)
from asicsim.model.ops import Numerics, Op, StepShape

# Ops per state element per token. Mamba-1 discretises per element: exp(dt·A) (2), dt·B·x (2),
# decay-and-add (2), C·h multiply-add (2). Mamba-2's decay is one scalar per head, so per element
# only the decay multiply, the B·x multiply, the add and C·h's multiply-add remain.
MAMBA1_SCAN_OPS = 8
SSD_SCAN_OPS = 5
# The output's D·x skip connection: a multiply and an add per channel.
SKIP_OPS = 2


class _Recurrent:
    """Cache accounting shared by mixers whose memory is a fixed state, not a KV cache."""

    def kv_bytes_per_token(self, num: Numerics) -> float:
        return 0.0

    def cached_tokens(self, context: int) -> int:
        """Tokens of KV kept: none, whatever the context."""
        return 0

    def state_bytes(self, num: Numerics) -> float:
        """Fixed per-sequence state (recurrent state plus conv window), stored at KV width."""
        return self.state_elements() * num.kv_bytes

    def state_elements(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Mamba(_Recurrent):
    """Mamba-1 selective SSM block (Jamba's mixer): per-channel diagonal state of ``d_state``.

    ``inner_norms`` adds Jamba's RMSNorms on the dt, B and C projections.
    """

    d_inner: int
    d_state: int
    d_conv: int
    dt_rank: int
    conv_bias: bool = True
    proj_bias: bool = False
    inner_norms: bool = False
    kind = "mamba"

    def params(self, hidden: int) -> int:
        di, n, r = self.d_inner, self.d_state, self.dt_rank
        p = hidden * 2 * di + di * self.d_conv + di * (r + 2 * n) + r * di + di + di * n + di + di * hidden
        if self.conv_bias:
            p += di
        if self.proj_bias:
            p += 2 * di + hidden
        if self.inner_norms:
            p += r + 2 * n
        return p

    def state_elements(self) -> int:
        return self.d_inner * self.d_state + self.d_inner * (self.d_conv - 1)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        di, n, r, m = self.d_inner, self.d_state, self.dt_rank, s.batch * s.tokens
        ops = [_matmul(f"L{layer}.in_proj", layer, s, hidden, 2 * di, num, bias=self.proj_bias),
               causal_conv(f"L{layer}.conv", layer, s, di, self.d_conv, self.conv_bias, num, SILU_OPS),
               _matmul(f"L{layer}.x_proj", layer, s, di, r + 2 * n, num)]
        if self.inner_norms:
            ops.append(_vector(f"L{layer}.dt_bc_norm", layer, m * (r + 2 * n), RMSNORM_OPS, num,
                               weight_elements=r + 2 * n))
        ops += [_matmul(f"L{layer}.dt_proj", layer, s, r, di, num, bias=True),
                recurrence(f"L{layer}.ssm", layer, s, di * n, MAMBA1_SCAN_OPS, di * n * num.kv_bytes, num,
                           act_elements=3 * di + 2 * n, weight_elements=di * n + di),
                _vector(f"L{layer}.out_gate", layer, m * di, SWIGLU_OPS + SKIP_OPS, num),
                _matmul(f"L{layer}.out_proj", layer, s, di, hidden, num, bias=self.proj_bias)]
        return ops


@dataclass(frozen=True)
class Mamba2(_Recurrent):
    """Mamba-2 (SSD) block: ``d_inner / headdim`` heads, each a ``headdim × d_state`` state with a
    scalar decay; B and C shared within ``ngroups`` groups; a gated RMSNorm before the output."""

    d_inner: int
    d_state: int
    headdim: int
    ngroups: int = 1
    d_conv: int = 4
    conv_bias: bool = True
    proj_bias: bool = False
    norm: bool = True
    kind = "mamba2"

    @property
    def nheads(self) -> int:
        return self.d_inner // self.headdim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.ngroups * self.d_state

    def params(self, hidden: int) -> int:
        di, proj = self.d_inner, 2 * self.d_inner + 2 * self.ngroups * self.d_state + self.nheads
        p = hidden * proj + self.conv_dim * self.d_conv + 3 * self.nheads + di * hidden
        if self.conv_bias:
            p += self.conv_dim
        if self.proj_bias:
            p += proj + hidden
        if self.norm:
            p += di
        return p

    def state_elements(self) -> int:
        return self.d_inner * self.d_state + self.conv_dim * (self.d_conv - 1)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        di, n, m = self.d_inner, self.d_state, s.batch * s.tokens
        proj = 2 * di + 2 * self.ngroups * n + self.nheads
        gate_ops = SWIGLU_OPS + SKIP_OPS + (RMSNORM_OPS if self.norm else 0)
        return [
            _matmul(f"L{layer}.in_proj", layer, s, hidden, proj, num, bias=self.proj_bias),
            causal_conv(f"L{layer}.conv", layer, s, self.conv_dim, self.d_conv, self.conv_bias, num, SILU_OPS),
            recurrence(f"L{layer}.ssd", layer, s, di * n, SSD_SCAN_OPS, di * n * num.kv_bytes, num,
                       act_elements=self.conv_dim + di, weight_elements=3 * self.nheads),
            _vector(f"L{layer}.out_gate", layer, m * di, gate_ops, num,
                    weight_elements=di if self.norm else 0),
            _matmul(f"L{layer}.out_proj", layer, s, di, hidden, num, bias=self.proj_bias),
        ]
