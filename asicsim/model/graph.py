"""ModelGraph: the ops of one forward pass, in order, with their dependencies.

:func:`build_graph` lowers every layer. A run's decode steps differ only in their context, and
equal blocks lower to the same ops but for their names' ``L<i>.`` and their layer, so
:func:`layer_layout` checks that once for a step's shape and :func:`renamed_graph` then lowers
one layer of each distinct block per step, renaming its ops for the other layers only when they
are asked for (the same ops, by value, as :func:`build_graph`'s).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter

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
    ops = [_embed(model, shape, num)]
    for i, block in enumerate(model.blocks):
        ops.extend(block.lower(i, model.hidden, shape, num))
    ops += _tail(model, shape, num)
    return ModelGraph(model.name, shape, tuple(ops), _chain(len(ops)))


def _embed(model: ModelSpec, shape: StepShape, num: Numerics) -> Op:
    m, h = shape.batch * shape.tokens, model.hidden
    return Op("embed", -1, OpKind.EMBED, weight_bytes=m * h * num.weight_bytes, act_bytes=m * h * num.act_bytes)


def _tail(model: ModelSpec, shape: StepShape, num: Numerics) -> list[Op]:
    m, h = shape.batch * shape.tokens, model.hidden
    rows = shape.batch * min(shape.logits, shape.tokens)
    return [_vector("final_norm", -1, m * h, RMSNORM_OPS, num, weight_elements=h),
            Op("lm_head", -1, OpKind.MATMUL, flops=2.0 * rows * h * model.vocab,
               weight_bytes=h * model.vocab * num.weight_bytes,
               act_bytes=(rows * h + rows * model.vocab) * num.act_bytes, m=rows, k=h, n=model.vocab)]


_CHAINS: dict[int, tuple] = {}


def _chain(n: int) -> tuple[tuple[int, ...], ...]:
    """Each op after the one before it."""
    if n not in _CHAINS:
        _CHAINS[n] = tuple(() if i == 0 else (i - 1,) for i in range(n))
    return _CHAINS[n]


_REST = attrgetter(*(f.name for f in fields(Op)[2:]))  # every field but name and layer


def renamed(op: Op, layer: int) -> Op:
    """``op`` (named ``L<j>.…``, of layer j) as layer ``layer``'s."""
    if op.layer == layer:
        return op
    return Op(f"L{layer}." + op.name[len(f"L{op.layer}."):], layer, *_REST(op))


@dataclass(frozen=True)
class LayerLayout:
    """For each layer: the first layer whose block equals its own, and how many ops it lowers to."""

    first: tuple[int, ...]
    lengths: tuple[int, ...]


def layer_layout(model: ModelSpec, graph: ModelGraph) -> LayerLayout | None:
    """The graph's layer layout, where each layer's ops are its first alike layer's renamed
    (names ``L<i>.…``, in one run a layer); None where some layer's are not."""
    seen: dict = {}
    first = tuple(seen.setdefault(block, i) for i, block in enumerate(model.blocks))
    per_layer: list[list[Op]] = [[] for _ in model.blocks]
    for op in graph.ops[1:-2]:
        if not 0 <= op.layer < len(per_layer) or not op.name.startswith(f"L{op.layer}."):
            return None
        per_layer[op.layer].append(op)
    if [op for ops in per_layer for op in ops] != list(graph.ops[1:-2]):  # layers in order, each in one run
        return None
    for i, ops in enumerate(per_layer):
        if first[i] != i and ops != [renamed(op, i) for op in per_layer[first[i]]]:
            return None
    return LayerLayout(first, tuple(len(ops) for ops in per_layer))


class RenamedOps:
    """A step's ops, made of one lowered layer per distinct block: op ``i`` is ``src[i]``
    renamed into layer ``layers[i]``, made when first asked for."""

    def __init__(self, src: list[Op], layers: list[int]):
        self.src, self.layers = src, layers
        self._made: dict[int, Op] = {}

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> Op:
        op = self.src[i]
        if op.layer == self.layers[i]:
            return op
        made = self._made.get(i)
        if made is None:
            made = self._made[i] = renamed(op, self.layers[i])
        return made

    def __iter__(self):
        return (self[i] for i in range(len(self.src)))


@dataclass(frozen=True)
class RenamedGraph:
    """A step's graph from :func:`renamed_graph`: ``ops`` as ModelGraph's, built lazily."""

    model: str
    shape: StepShape
    ops: RenamedOps
    deps: tuple[tuple[int, ...], ...]


def renamed_graph(model: ModelSpec, shape: StepShape, num: Numerics, layout: LayerLayout) -> RenamedGraph | None:
    """:func:`build_graph`'s graph for ``shape``, lowering only the first layer of each distinct
    block (``layout``, from :func:`layer_layout` on a graph of the same batch and tokens); None
    where a layer lowers to another number of ops than the layout's."""
    lowered = {r: model.blocks[r].lower(r, model.hidden, shape, num) for r in dict.fromkeys(layout.first)}
    src: list[Op] = [_embed(model, shape, num)]
    layers = [-1]
    for i, r in enumerate(layout.first):
        ops = lowered[r]
        if len(ops) != layout.lengths[i]:
            return None
        src += ops
        layers += [i] * len(ops)
    tail = _tail(model, shape, num)
    src += tail
    layers += [-1] * len(tail)
    return RenamedGraph(model.name, shape, RenamedOps(src, layers), _chain(len(src)))
