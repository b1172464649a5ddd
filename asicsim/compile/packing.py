"""Packing a model onto SRAM-only chips that each hold only a slice of it (Groq-like).

Ops are laid on chips in graph order by the bytes they keep resident (weights, the KV cache or
state they own at the longest context, their adapters): an op goes on the current chip if it
fits, else on the next; an op larger than a whole chip is split by output columns (or attention
heads) over as many fresh chips as it needs, and its parts run in parallel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from asicsim.compile.adapters import adapter_ops
from asicsim.compile.lower import even, split
from asicsim.compile.placement import Workload
from asicsim.hardware.system import MAX_BLOCKS, MAX_CHIPS
from asicsim.model.graph import build_graph
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import Numerics, Op, OpKind, StepShape


MAX_PAIRS = MAX_BLOCKS  # counting chip pairs stops past this: such a run is refused anyway


@dataclass(frozen=True)
class Packing:
    """How many chips the model takes, the chips each op's parts sit on (by op name), and how many
    ordered pairs of chips exchange activations in a step (each part of an op receives from every
    part of the ops it depends on; the last op feeds the next step's first)."""

    chips: int
    where: dict[str, tuple[int, ...]]
    pairs: int = 0


def resident_bytes(op: Op, model: ModelSpec, num: Numerics, workload: Workload) -> float:
    """Bytes an op keeps on its chip: weights (the whole table for the embedding, every expert of
    a MoE op, not only those one batch touches), the KV cache or
    state it reads at the longest context, and its adapters' weights."""
    if op.kind is OpKind.EMBED:
        held = 0.0 if model.tied_embeddings else model.vocab * model.hidden * num.weight_bytes
    else:
        held = op.resident_weight_bytes + op.kv_read_bytes + op.kv_write_bytes
    if workload.adapters is not None and workload.adapters.targets_op(op):
        held += sum(a.weight_bytes for a in adapter_ops(op, workload.adapters))
    return held


def pack(model: ModelSpec, workload: Workload, num: Numerics, capacity_bytes: float) -> Packing:
    """Lay the decode graph at the longest context over chips of ``capacity_bytes`` each. Past
    ``MAX_CHIPS`` it stops and says ``MAX_CHIPS + 1``: a system that large is refused anyway."""
    graph = build_graph(model, StepShape(workload.batch, 1, workload.max_context - 1), num)
    where: dict[str, tuple[int, ...]] = {}
    chip, used = 0, 0.0
    for op in graph.ops:
        need = resident_bytes(op, model, num, workload)
        if need <= capacity_bytes - used:
            where[op.name], used = (chip,), used + need
        elif need <= capacity_bytes:
            chip, used = chip + 1, need
            where[op.name] = (chip,)
        else:
            first = chip + 1 if used > 0 else chip
            if need / capacity_bytes > MAX_CHIPS - first:  # refused by the caller; listing parts would not end
                return Packing(MAX_CHIPS + 1, where)
            parts = int(-(-need // capacity_bytes))
            where[op.name] = tuple(range(first, first + parts))
            chip, used = first + parts - 1, need / parts
    return Packing(chip + 1, where, _pairs(graph.ops, graph.deps, where))


def _pairs(ops, deps, where: dict[str, tuple[int, ...]], most: int = MAX_PAIRS) -> int:
    """Ordered (sender, receiver) chip pairs that activations cross in a step, counted up to
    ``most + 1``. A model packed over many tiny chips sends from every part of an op to every part
    of the next: the pairs grow as the square of the chips."""
    pairs: set[tuple[int, int]] = set()
    feeds = [(d, i) for i in range(len(ops)) for d in deps[i]] + ([(len(ops) - 1, 0)] if ops else [])
    for d, i in feeds:
        for here in where[ops[i].name]:
            pairs.update((c, here) for c in where[ops[d].name] if c != here)
            if len(pairs) > most:
                return most + 1
    return len(pairs)


def split_op(op: Op, parts: int) -> list[Op]:
    """``op`` cut into ``parts`` that together do exactly its work: a matmul by output columns,
    attention by head groups, elementwise work evenly."""
    if parts == 1:
        return [op]
    width = op.groups if op.kind is OpKind.ATTENTION else (op.n if op.kind is OpKind.MATMUL else parts)
    shares = even(max(width, parts), parts)
    cols = {name: split(getattr(op, name), shares) for name in
            ("flops", "vector_ops", "weight_bytes", "kv_read_bytes", "kv_write_bytes", "act_bytes")}
    out = []
    for j, share in enumerate(shares):
        fields = {name: values[j] for name, values in cols.items()}
        if op.kind is OpKind.MATMUL:
            fields["n"] = share
        elif op.kind is OpKind.ATTENTION:
            fields["groups"] = share
        out.append(dataclasses.replace(op, **fields))
    return out
