"""Shared arithmetic for lowering layer specs to ops: op-count conventions and op builders.

Every layer module builds its ops with these helpers, so a MATMUL or VECTOR op means the same
thing (FLOPs, weight bytes, activation bytes) whichever layer made it.
"""

from __future__ import annotations

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
# A sigmoid is a negated exp, an add and a divide; SiLU multiplies it by its input.
SIGMOID_OPS = 3
SILU_OPS = 4
# A depthwise causal convolution does one multiply-add (2 ops) per tap per channel per token.
CONV_TAP_OPS = 2


def _matmul(name: str, layer: int, shape: StepShape, k: int, n: int, num: Numerics,
            bias: bool = False) -> Op:
    m = shape.batch * shape.tokens
    weights = k * n + (n if bias else 0)
    return Op(name, layer, OpKind.MATMUL, flops=2.0 * m * k * n, weight_bytes=weights * num.weight_bytes,
              act_bytes=(m * k + m * n) * num.act_bytes, m=m, k=k, n=n)


def matmul_rows(name: str, layer: int, rows: int, k: int, n: int, num: Numerics,
                groups: int = 1, bias: bool = False) -> Op:
    """A MATMUL of ``rows`` activation rows against ``groups`` independent ``k × n`` weights."""
    weights = groups * (k * n + (n if bias else 0))
    return Op(name, layer, OpKind.MATMUL, flops=2.0 * rows * k * n * groups,
              weight_bytes=weights * num.weight_bytes,
              act_bytes=groups * (rows * k + rows * n) * num.act_bytes, m=rows, k=k, n=n, groups=groups)


def _vector(name: str, layer: int, elements: float, ops_per_element: float, num: Numerics,
            weight_elements: int = 0) -> Op:
    return Op(name, layer, OpKind.VECTOR, vector_ops=elements * ops_per_element,
              weight_bytes=weight_elements * num.weight_bytes, act_bytes=2 * elements * num.act_bytes)


def recurrence(name: str, layer: int, s: StepShape, state_elements: int, ops_per_state_element: int,
               state_bytes: float, num: Numerics, act_elements: int = 0, weight_elements: int = 0) -> Op:
    """The VECTOR op of a recurrence: ``ops_per_state_element`` per state element per token.

    Prefill runs it as a chunked scan (named ``scan``), decode as one step per token (``step``);
    the arithmetic is the same, regrouped. The state is read once per sequence at the start of
    the step (only if the sequence has history) and written back once at the end: it travels as
    cache traffic, like KV. ``act_elements`` per token are read and written as activations;
    ``weight_elements`` are the recurrence's own parameters (decays, skips).
    """
    m = s.batch * s.tokens
    kind = "scan" if s.tokens > 1 else "step"
    return Op(f"{name}_{kind}", layer, OpKind.VECTOR,
              vector_ops=m * state_elements * ops_per_state_element,
              kv_read_bytes=s.batch * state_bytes if s.context > 0 else 0.0,
              kv_write_bytes=s.batch * state_bytes, act_bytes=m * act_elements * num.act_bytes,
              weight_bytes=weight_elements * num.weight_bytes)


def causal_conv(name: str, layer: int, s: StepShape, channels: int, width: int, bias: bool,
                num: Numerics, post_ops: int = 0) -> Op:
    """A depthwise causal conv1d of ``width`` taps over ``channels``; its state is the last
    ``width - 1`` inputs per channel, read (if the sequence has history) and written per step.
    ``post_ops`` adds elementwise work fused after it (an activation, a gate)."""
    m = s.batch * s.tokens
    state = channels * (width - 1) * num.kv_bytes
    return Op(name, layer, OpKind.VECTOR, vector_ops=m * channels * (CONV_TAP_OPS * width + post_ops),
              weight_bytes=(channels * width + (channels if bias else 0)) * num.weight_bytes,
              kv_read_bytes=s.batch * state if s.context > 0 else 0.0, kv_write_bytes=s.batch * state,
              act_bytes=2 * m * channels * num.act_bytes)


def attended_keys(context: int, tokens: int, window: int | None) -> int:
    """Sum over the ``tokens`` new queries of how many keys each attends to (causal, windowed)."""
    # query i (0-based) sees context + i + 1 keys, at most ``window`` of them
    full = tokens * context + tokens * (tokens + 1) // 2
    if window is None or context + tokens <= window:
        return full
    capped = max(0, context + tokens - max(context, window))  # queries whose span hits the cap
    first = max(context + 1, window + 1)  # span before capping of the first capped query
    excess = capped * (first - window) + capped * (capped - 1) // 2
    return full - excess
