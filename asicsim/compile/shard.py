"""Tensor and expert parallelism: one rank's share of an op, and of a model's bytes.

Tensor parallelism (Megatron-style) splits every weight matmul by output columns (QKV, gate/up)
or input rows (O, down) over ``tp`` ranks: either way each rank does ``1/tp`` of the FLOPs and
holds ``1/tp`` of the weights. Attention splits by heads; when a layer has fewer KV heads than
ranks, each rank keeps the one KV head its query heads use, so the cache is replicated
``tp / kv_heads`` times. A multi-head latent (MLA) cache has one head: every rank keeps all of it.
Expert parallelism spreads a MoE's routed experts over ``ep`` ranks: each holds ``experts / ep``
of them and computes the tokens routed to them. Elementwise work splits evenly (norms on the
residual stream are in fact repeated on every rank; they are a fraction of a percent of a step).
"""

from __future__ import annotations

import dataclasses
import math

from asicsim.model.dense import Attention
from asicsim.model.layers import ModelSpec
from asicsim.model.mla import MLA
from asicsim.model.moe import MoE
from asicsim.model.ops import Numerics, Op, OpKind

_SCALED = ("flops", "vector_ops", "weight_bytes", "kv_read_bytes", "kv_write_bytes", "act_bytes")


def _scale(op: Op, f: float, kv: float | None = None, **fields) -> Op:
    """``op`` with its work and bytes times ``f`` (KV bytes times ``kv`` where given)."""
    out = {name: getattr(op, name) * f for name in _SCALED}
    if kv is not None:
        out["kv_read_bytes"], out["kv_write_bytes"] = op.kv_read_bytes * kv, op.kv_write_bytes * kv
    if op.held_weight_bytes is not None:
        out["held_weight_bytes"] = op.held_weight_bytes * f
    return dataclasses.replace(op, **out, **fields)


def shard_op(op: Op, tp: int, ep: int, batch: int) -> Op:
    """One rank's part of ``op`` under ``tp``-way tensor and ``ep``-way expert parallelism;
    ``batch`` is the sequences in the step (attention's groups are batch × KV heads)."""
    if op.experts and ep > 1:  # this rank's experts, and the tokens routed to them
        return _scale(op, 1 / ep, groups=max(1, math.ceil(op.groups / ep)))
    if tp == 1:
        return op
    match op.kind:
        case OpKind.MATMUL if op.groups % tp == 0 and op.groups > 1:  # per-head products (MLA)
            return _scale(op, 1 / tp, groups=op.groups // tp)
        case OpKind.MATMUL:
            return _scale(op, 1 / tp, n=max(1, math.ceil(op.n / tp)))
        case OpKind.ATTENTION:
            kv_heads = max(1, op.groups // max(1, batch))
            if kv_heads % tp == 0:
                return _scale(op, 1 / tp, groups=op.groups // tp)
            # fewer KV heads than ranks: one KV head per rank, its query heads split among ranks
            per_rank = max(1, kv_heads // tp)
            return _scale(op, 1 / tp, kv=per_rank / kv_heads, groups=batch * per_rank,
                          m=max(1, op.m * kv_heads // tp // per_rank))
        case _:
            return _scale(op, 1 / tp)


def kv_share(mixer, tp: int) -> float:
    """The share of a layer's KV cache (or state) one of ``tp`` ranks keeps."""
    if isinstance(mixer, Attention):
        return 1 / tp if mixer.kv_heads % tp == 0 else 1 / min(mixer.kv_heads, tp)
    if isinstance(mixer, MLA):
        return 1.0
    return 1 / tp


def stage_of_layer(layer: int, n_layers: int, stages: int) -> int:
    """Pipeline stage of a layer: uniform slices in order (layer -1, the head, on the last)."""
    return stages - 1 if layer < 0 else layer * stages // n_layers


def rank_bytes(model: ModelSpec, batch: int, context: int, num: Numerics, tp: int, pp: int,
               ep: int) -> list[tuple[float, float]]:
    """Per pipeline stage, the (weight, KV-and-state) bytes one of its ranks holds."""
    out = [[0.0, 0.0] for _ in range(pp)]
    vocab = model.vocab * model.hidden * num.weight_bytes
    out[0][0] += vocab / tp
    out[-1][0] += (0.0 if model.tied_embeddings else vocab) / tp + model.hidden * num.weight_bytes
    for i, block in enumerate(model.blocks):
        s = stage_of_layer(i, model.n_layers, pp)
        ffn = block.ffn
        experts = 0.0
        if isinstance(ffn, MoE):
            experts = ffn.params(model.hidden) - ffn._dense_params(model.hidden)
        dense = block.params(model.hidden) - experts
        out[s][0] += (dense / tp + experts / (ep if ep > 1 else tp)) * num.weight_bytes
        kv = batch * (block.mixer.cached_tokens(context) * block.mixer.kv_bytes_per_token(num)
                      + block.mixer.state_bytes(num))
        out[s][1] += kv * kv_share(block.mixer, tp)
    return [(w, k) for w, k in out]
