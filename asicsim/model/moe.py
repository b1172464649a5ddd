"""Mixture-of-experts feed-forward blocks and the routing distributions they lower under.

A step's expert weights are read once per *distinct* expert the batch touches, while FLOPs are
spent only on routed tokens (tokens × top_k). How many experts a batch touches depends on how
skewed routing is; :class:`UniformRouting` and :class:`ZipfRouting` give the expected union.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from asicsim.model.dense import DenseMLP
from asicsim.model.lowering import SOFTMAX_OPS, SWIGLU_OPS, _matmul, _vector
from asicsim.model.ops import Numerics, Op, OpKind, StepShape


def _expected_union(inclusion: list[float], tokens: int) -> float:
    """Expected count of experts picked at least once by ``tokens`` independent tokens."""
    return sum(1.0 - (1.0 - p) ** tokens for p in inclusion)


@dataclass(frozen=True)
class UniformRouting:
    """Every token picks ``top_k`` distinct experts uniformly at random (balanced routing)."""

    def inclusion(self, experts: int, top_k: int) -> list[float]:
        """Probability that one token picks each expert (they sum to ``top_k``)."""
        return [top_k / experts] * experts

    def distinct_experts(self, experts: int, top_k: int, tokens: int) -> float:
        return _expected_union(self.inclusion(experts, top_k), tokens)


@dataclass(frozen=True)
class ZipfRouting:
    """Skewed routing: expert ``i`` (0-based rank) is preferred with weight ``1 / (i + 1) ** s``.

    A token's chance of picking an expert is ``top_k`` times its share of the weight, capped at 1
    with the excess spread over the others in proportion (so the chances still sum to ``top_k``).
    ``s = 0`` is uniform; larger ``s`` concentrates tokens on fewer experts.
    """

    s: float = 1.0

    def inclusion(self, experts: int, top_k: int) -> list[float]:
        weights = [1.0 / (i + 1) ** self.s for i in range(experts)]
        chances = [0.0] * experts
        free, mass = list(range(experts)), float(top_k)
        while free:  # water-filling: the most popular experts saturate at probability 1
            total = sum(weights[i] for i in free)
            capped = [i for i in free if mass * weights[i] / total >= 1.0]
            if not capped:
                for i in free:
                    chances[i] = mass * weights[i] / total
                break
            for i in capped:
                chances[i] = 1.0
            mass -= len(capped)
            saturated = set(capped)
            free = [i for i in free if i not in saturated]
        return chances

    def distinct_experts(self, experts: int, top_k: int, tokens: int) -> float:
        return _expected_union(self.inclusion(experts, top_k), tokens)


Routing = UniformRouting | ZipfRouting


@dataclass(frozen=True)
class MoE:
    """A routed mixture of gated experts, plus optional always-on shared experts.

    ``experts`` routed experts of width ``expert_intermediate``, ``top_k`` per token; ``shared``
    shared experts of width ``shared_intermediate`` (default: the expert width) run on every token
    as one MLP. ``router_bias`` counts one bias per expert on the router (gpt-oss's router bias,
    DeepSeek-V3's score-correction bias); ``bias`` puts biases on the expert projections
    (gpt-oss); ``shared_gate`` scales the shared output by a learned sigmoid gate (Qwen3-Next).
    """

    experts: int
    top_k: int
    expert_intermediate: int
    shared: int = 0
    shared_intermediate: int | None = None
    router_bias: bool = False
    bias: bool = False
    shared_gate: bool = False
    routing: Routing = field(default_factory=UniformRouting)
    kind = "moe"

    def _expert_params(self, hidden: int) -> int:
        return DenseMLP(self.expert_intermediate, gated=True, bias=self.bias).params(hidden)

    def _shared_mlp(self) -> DenseMLP | None:
        width = self.shared_intermediate or self.expert_intermediate
        return DenseMLP(self.shared * width, gated=True) if self.shared else None

    def _dense_params(self, hidden: int) -> int:
        """Router, shared experts and shared gate: the parameters every token uses."""
        shared = self._shared_mlp()
        return (hidden * self.experts + (self.experts if self.router_bias else 0)
                + (shared.params(hidden) if shared else 0) + (hidden if self.shared_gate else 0))

    def params(self, hidden: int) -> int:
        return self._dense_params(hidden) + self.experts * self._expert_params(hidden)

    def active_params(self, hidden: int) -> int:
        """Parameters one token uses: router, shared experts and ``top_k`` routed experts."""
        return self._dense_params(hidden) + self.top_k * self._expert_params(hidden)

    def distinct_experts(self, tokens: int) -> float:
        """Expected number of routed experts a step of ``tokens`` tokens touches."""
        return self.routing.distinct_experts(self.experts, self.top_k, tokens)

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        m = s.batch * s.tokens
        routed, i = m * self.top_k, self.expert_intermediate
        touched = self.distinct_experts(m)
        groups = max(1, math.ceil(touched))
        rows = max(1, math.ceil(routed / groups))  # mean rows per touched expert
        ops = [_matmul(f"L{layer}.router", layer, s, hidden, self.experts, num, bias=self.router_bias),
               _vector(f"L{layer}.topk", layer, m * self.experts, SOFTMAX_OPS, num)]
        for name, k, n in (("experts_gate_up", hidden, 2 * i), ("experts_down", i, hidden)):
            per_expert = (k * n + (n if self.bias else 0)) * num.weight_bytes
            ops.append(Op(f"L{layer}.{name}", layer, OpKind.MATMUL, flops=2.0 * routed * k * n,
                          weight_bytes=touched * per_expert, act_bytes=routed * (k + n) * num.act_bytes,
                          m=rows, k=k, n=n, groups=groups, experts=self.experts,
                          held_weight_bytes=self.experts * per_expert))
            if name == "experts_gate_up":
                ops.append(_vector(f"L{layer}.experts_act", layer, routed * i, SWIGLU_OPS, num))
        ops.append(_vector(f"L{layer}.moe_combine", layer, routed * hidden, 2, num))
        shared = self._shared_mlp()
        if shared:
            ops += shared.lower(layer, hidden, s, num, prefix="shared_")
            if self.shared_gate:
                ops += [_matmul(f"L{layer}.shared_gate", layer, s, hidden, 1, num),
                        _vector(f"L{layer}.shared_scale", layer, m * hidden, 1, num)]
        return ops
