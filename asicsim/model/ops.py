"""The op: one node of a model's dataflow graph, with the work it does and the bytes it touches.

Ops know shapes, FLOPs and bytes, never chips. ``kind`` says what sort of work it is; the compiler
decides which hardware unit runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class OpKind(Enum):
    """What sort of work an op is."""

    MATMUL = "matmul"        # activations (m×k) times weights (k×n)
    ATTENTION = "attention"  # scores and values over a KV cache: matmul work plus softmax
    VECTOR = "vector"        # elementwise, reductions, norms, scans
    EMBED = "embed"          # a row gather from the embedding table


@dataclass(frozen=True, slots=True)
class Numerics:
    """Bytes per element of weights, KV cache and activations."""

    weight_bytes: float = 2.0
    kv_bytes: float = 2.0
    act_bytes: float = 2.0


@dataclass(frozen=True, slots=True)
class StepShape:
    """One forward pass: ``batch`` sequences, each adding ``tokens`` to ``context`` cached ones;
    ``logits`` positions per sequence go through the LM head (the last one when serving; every
    checked position when a speculative verifier scores drafted tokens)."""

    batch: int
    tokens: int
    context: int
    logits: int = 1


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a forward pass.

    For MATMUL, ``m × k`` activations meet ``k × n`` weights, ``groups`` times. For ATTENTION,
    ``groups`` independent (query-group × keys) products: ``m`` queries of width ``k`` against
    ``n`` keys (the mean span when the span differs per query). ``flops`` counts every multiply
    and add; ``vector_ops`` the elementwise work (softmax, norms, activations). Bytes are what the
    op reads or writes of each kind of data; activations stay on chip.

    ``ends_sublayer`` marks the op whose output is added back into the residual stream (the last
    op of a mixer or a feed-forward part): where a split layer's partial results must be summed.
    ``experts`` is how many routed experts a MoE op's weights come from (0 for other ops);
    ``held_weight_bytes`` the weights the op keeps resident when that is more than it reads in
    one step (all of a MoE's experts), ``None`` when it is ``weight_bytes``.
    """

    name: str
    layer: int
    kind: OpKind
    flops: float = 0.0
    vector_ops: float = 0.0
    weight_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    act_bytes: float = 0.0
    m: int = 0
    k: int = 0
    n: int = 0
    groups: int = 1
    ends_sublayer: bool = False
    experts: int = 0
    held_weight_bytes: float | None = None

    @property
    def resident_weight_bytes(self) -> float:
        """Weights this op keeps in memory (all experts, for a MoE op)."""
        return self.weight_bytes if self.held_weight_bytes is None else self.held_weight_bytes
