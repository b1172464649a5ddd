"""ModelGraph: the ops of one forward pass, in order, with their dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.model.layers import RMSNORM_OPS, ModelSpec, _vector
from asicsim.model.ops import Numerics, Op, OpKind, StepShape


@dataclass(frozen=True)
class ModelGraph:
    """The op DAG of one step. ``deps[i]`` lists the ops that must finish before op ``i`` starts."""

    model: str
    shape: StepShape
    ops: tuple[Op, ...]
    deps: tuple[tuple[int, ...], ...]

    def total(self, field: str) -> float:
        """Sum of one Op field (``flops``, ``weight_bytes``, ...) over the graph."""
        return float(sum(getattr(op, field) for op in self.ops))


def build_graph(model: ModelSpec, shape: StepShape, num: Numerics) -> ModelGraph:
    """Lower ``model`` for one step of ``shape``: embed, every block, final norm, LM head.

    Logits are computed for the last ``shape.logits`` positions of each sequence (the last one
    only, as serving engines do, unless a speculative verifier scores several).
    """
    m = shape.batch * shape.tokens
    h = model.hidden
    ops: list[Op] = [Op("embed", -1, OpKind.EMBED, weight_bytes=m * h * num.weight_bytes,
                        act_bytes=m * h * num.act_bytes)]
    for i, block in enumerate(model.blocks):
        ops.extend(block.lower(i, h, shape, num))
    ops.append(_vector("final_norm", -1, m * h, RMSNORM_OPS, num, weight_elements=h))
    rows = shape.batch * min(shape.logits, shape.tokens)
    ops.append(Op("lm_head", -1, OpKind.MATMUL, flops=2.0 * rows * h * model.vocab,
                  weight_bytes=h * model.vocab * num.weight_bytes,
                  act_bytes=(rows * h + rows * model.vocab) * num.act_bytes, m=rows, k=h, n=model.vocab))
    deps = tuple(() if i == 0 else (i - 1,) for i in range(len(ops)))
    return ModelGraph(model.name, shape, tuple(ops), deps)
