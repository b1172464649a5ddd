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
    """One forward pass: ``batch`` sequences, each adding ``tokens`` to ``context`` cached ones."""

    batch: int
    tokens: int
    context: int


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a forward pass.

    For MATMUL, ``m × k`` activations meet ``k × n`` weights, ``groups`` times. For ATTENTION,
    ``groups`` independent (query-group × keys) products: ``m`` queries of width ``k`` against
    ``n`` keys (the mean span when the span differs per query). ``flops`` counts every multiply
    and add; ``vector_ops`` the elementwise work (softmax, norms, activations). Bytes are what the
    op reads or writes of each kind of data; activations stay on chip.
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
