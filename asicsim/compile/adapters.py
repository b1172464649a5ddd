"""LoRA-style adapters: a low-rank pair of matrices beside chosen weight matmuls.

A weight matmul ``y = x·W`` (``m×k`` by ``k×n``) with a rank-``r`` adapter computes
``y = x·W + (x·A)·B`` where ``A`` is ``k×r`` and ``B`` is ``r×n``. The compiler creates the two
adapter products itself, from the targeted op's ``m``, ``k`` and ``n`` (the model package knows
nothing of adapters): ``2·m·r·(k+n)`` FLOPs and ``r·(k+n)`` weights of ``ADAPTER_WEIGHT_BYTES``
each, per targeted op and group.

Where they run is placement's business: on a hardwired (ROM) chip, whose weight arrays cannot
change, on the programmable array with their weights in the KV SRAM; on every other chip like any
other weight matmul (streamed from HBM, or read in place from a weight SRAM).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from asicsim.errors import InputError
from asicsim.model.graph import build_graph
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import Numerics, Op, OpKind, StepShape

ADAPTER_WEIGHT_BYTES = 2.0  # adapters are trained and kept in 16 bits, whatever the base weights' format
DEFAULT_TARGETS = ("qkv", "o", "gate_up", "down")


@dataclass(frozen=True)
class Adapters:
    """Rank-``rank`` adapters on every weight matmul whose op name ends in one of ``targets``
    (``L3.qkv`` is targeted by ``"qkv"``; the default covers attention and MLP projections)."""

    rank: int
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))

    def check(self, source: str = "adapters") -> None:
        """Refuse a rank below 1 or an empty target list."""
        if self.rank < 1:
            raise InputError(source, "rank", f"must be at least 1, got {self.rank}")
        if not self.targets:
            raise InputError(source, "targets", "name at least one projection (e.g. qkv, o, gate_up, down)")

    def targets_op(self, op: Op) -> bool:
        """Whether ``op`` carries an adapter: a weight matmul named ``<prefix>.<target>``."""
        return op.kind is OpKind.MATMUL and op.name.rsplit(".", 1)[-1] in self.targets


def parse_lora(text: str, source: str = "--lora") -> Adapters:
    """``RANK`` or ``RANK:TARGET,TARGET`` (``16``, ``8:qkv,o``) as Adapters; an InputError naming
    the expected form otherwise."""
    rank_text, _, targets_text = str(text).partition(":")
    try:
        rank = int(rank_text)
    except ValueError:
        raise InputError(source, None, f"expected RANK or RANK:TARGET,TARGET (e.g. 16 or 8:qkv,o), got '{text}'") from None
    targets = tuple(t.strip() for t in targets_text.split(",") if t.strip()) if targets_text else DEFAULT_TARGETS
    adapters = Adapters(rank, targets)
    adapters.check(source)
    return adapters


def adapter_ops(op: Op, adapters: Adapters) -> tuple[Op, Op]:
    """The two adapter products of a targeted op: ``x·A`` (``m×k`` by ``k×r``), then ``(xA)·B``
    (``m×r`` by ``r×n``), in the op's layer, ``groups`` times like the op itself."""
    r, g = adapters.rank, op.groups
    down = Op(f"{op.name}.lora_a", op.layer, OpKind.MATMUL, flops=2.0 * op.m * op.k * r * g,
              weight_bytes=op.k * r * ADAPTER_WEIGHT_BYTES * g, act_bytes=op.m * r * 2.0 * g,
              m=op.m, k=op.k, n=r, groups=g)
    up = Op(f"{op.name}.lora_b", op.layer, OpKind.MATMUL, flops=2.0 * op.m * r * op.n * g,
            weight_bytes=r * op.n * ADAPTER_WEIGHT_BYTES * g, act_bytes=op.m * op.n * 2.0 * g,
            m=op.m, k=r, n=op.n, groups=g)
    return down, up


@lru_cache(maxsize=64)
def adapter_bytes(model: ModelSpec, adapters: Adapters, num: Numerics) -> float:
    """Bytes of every adapter weight of ``model`` (each targeted op once); refuses targets that
    match no op of the model, naming the ones it has."""
    ops = build_graph(model, StepShape(1, 1, 1), num).ops
    hit = [op for op in ops if adapters.targets_op(op)]
    if not hit:
        names = sorted({op.name.rsplit(".", 1)[-1] for op in ops if op.kind is OpKind.MATMUL})
        raise InputError("adapters", "targets", f"{', '.join(adapters.targets)} match no weight matmul of "
                         f"{model.name}; its matmuls are {', '.join(names)}")
    return float(sum(a.weight_bytes + b.weight_bytes for a, b in (adapter_ops(op, adapters) for op in hit)))
