"""Typed layer specs and the model they make up.

A model is an ordered tuple of :class:`Block` (one decoder layer: a token mixer and an optional
feed-forward part) between an embedding and an LM head. Each spec counts its parameters and
lowers itself, for one :class:`StepShape`, to a list of :class:`Op`. Dispatch is by type: a new
layer kind is a new class with ``params`` and ``lower``, nothing else changes.

Mixers (:data:`Mixer`) also say what they keep per sequence: ``kv_bytes_per_token`` and
``cached_tokens(context)`` for a KV cache, ``state_bytes`` for a fixed recurrent/conv state.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from asicsim.model.dense import Attention, DenseMLP
from asicsim.model.lowering import (CONV_TAP_OPS, RESIDUAL_OPS, RMSNORM_OPS, ROPE_OPS, SIGMOID_OPS,
                                    SILU_OPS, SOFTMAX_OPS, SWIGLU_OPS, _matmul, _vector, attended_keys)
from asicsim.model.mla import MLA
from asicsim.model.moe import MoE, Routing, UniformRouting, ZipfRouting
from asicsim.model.ops import Numerics, Op, StepShape
from asicsim.model.recurrent import RGLRU, GatedDeltaNet, ShortConv
from asicsim.model.ssm import Mamba, Mamba2

__all__ = ["Attention", "Block", "CONV_TAP_OPS", "DenseMLP", "FeedForward", "GatedDeltaNet", "MLA",
           "Mamba", "Mamba2", "Mixer", "MoE", "ModelSpec", "RESIDUAL_OPS", "RGLRU", "RMSNORM_OPS",
           "ROPE_OPS", "Routing", "SIGMOID_OPS", "SILU_OPS", "SOFTMAX_OPS", "SWIGLU_OPS", "ShortConv",
           "UniformRouting", "ZipfRouting", "_matmul", "_vector", "attended_keys"]

Mixer = Attention | MLA | Mamba | Mamba2 | RGLRU | GatedDeltaNet | ShortConv
FeedForward = DenseMLP | MoE


@dataclass(frozen=True)
class Block:
    """One decoder layer: norm → mixer → residual add, norm → feed-forward → residual add.

    ``ffn=None`` is a mixer-only layer (Mamba-2) with a single norm. ``post_norms`` adds the
    Gemma-2/3 sandwich norms on the mixer's and the feed-forward's outputs (four norms a layer).
    """

    mixer: Mixer
    ffn: FeedForward | None
    post_norms: bool = False

    @property
    def norms(self) -> int:
        """RMSNorm weight vectors in this layer."""
        return (2 if self.ffn is not None else 1) * (2 if self.post_norms else 1)

    def params(self, hidden: int) -> int:
        ffn = self.ffn.params(hidden) if self.ffn is not None else 0
        return self.mixer.params(hidden) + ffn + self.norms * hidden

    def active_params(self, hidden: int) -> int:
        """Parameters one token uses (a MoE counts only its ``top_k`` routed experts)."""
        ffn = self.ffn.active_params(hidden) if self.ffn is not None else 0
        return self.mixer.params(hidden) + ffn + self.norms * hidden

    def lower(self, layer: int, hidden: int, s: StepShape, num: Numerics) -> list[Op]:
        m = s.batch * s.tokens
        norm = RMSNORM_OPS + RESIDUAL_OPS  # the residual add is fused into the next norm
        ops = [_vector(f"L{layer}.norm1", layer, m * hidden, norm, num, weight_elements=hidden),
               *_ending(self.mixer.lower(layer, hidden, s, num))]
        if self.post_norms:
            ops.append(_vector(f"L{layer}.post_mixer_norm", layer, m * hidden, RMSNORM_OPS, num,
                               weight_elements=hidden))
        if self.ffn is not None:
            ops += [_vector(f"L{layer}.norm2", layer, m * hidden, norm, num, weight_elements=hidden),
                    *_ending(self.ffn.lower(layer, hidden, s, num))]
            if self.post_norms:
                ops.append(_vector(f"L{layer}.post_ffn_norm", layer, m * hidden, RMSNORM_OPS, num,
                                   weight_elements=hidden))
        return ops


def _ending(ops: list[Op]) -> list[Op]:
    """``ops`` with the last marked as ending its sublayer (its output joins the residual)."""
    return ops[:-1] + [dataclasses.replace(ops[-1], ends_sublayer=True)]


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only language model: embedding, ``blocks`` in order, final norm, LM head.

    ``name`` is the file stem users type (``llama-3.1-8b``); ``source`` the file it came from.
    """

    name: str
    source: str
    model_type: str
    hidden: int
    vocab: int
    blocks: tuple[Block, ...]
    tied_embeddings: bool = False
    max_context: int | None = None

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def _vocab_params(self) -> int:
        embed = self.vocab * self.hidden
        head = 0 if self.tied_embeddings else self.vocab * self.hidden
        return embed + head + self.hidden  # plus the final norm

    def params(self) -> int:
        """Every parameter once (a tied LM head counts once)."""
        return self._vocab_params() + sum(b.params(self.hidden) for b in self.blocks)

    def active_params(self) -> int:
        """Parameters one token uses: the total less the routed experts top-k does not pick.

        The embedding table and LM head count in full (the "incl. embed+head" convention).
        """
        return self._vocab_params() + sum(b.active_params(self.hidden) for b in self.blocks)

    def layer_mix(self) -> dict[str, int]:
        """How many layers use each mixer kind, e.g. ``{"attention": 24, "sliding_attention": 24}``."""
        return dict(sorted(Counter(b.mixer.kind for b in self.blocks).items()))

    def kv_bytes_per_token(self, num: Numerics) -> float:
        """KV cache bytes one more token adds to one sequence, summed over layers (no window cap)."""
        return sum(b.mixer.kv_bytes_per_token(num) for b in self.blocks)

    def kv_bytes(self, batch: int, context: int, num: Numerics) -> float:
        """KV cache bytes held for ``batch`` sequences of ``context`` tokens (windows applied)."""
        return batch * sum(b.mixer.cached_tokens(context) * b.mixer.kv_bytes_per_token(num)
                           for b in self.blocks)

    def state_bytes(self, batch: int, num: Numerics) -> float:
        """Fixed recurrent/conv state held for ``batch`` sequences, whatever their length."""
        return batch * sum(b.mixer.state_bytes(num) for b in self.blocks)

    def with_routing(self, routing: Routing) -> ModelSpec:
        """The same model with every MoE layer routing by ``routing``."""
        blocks = tuple(dataclasses.replace(b, ffn=dataclasses.replace(b.ffn, routing=routing))
                       if isinstance(b.ffn, MoE) else b for b in self.blocks)
        return dataclasses.replace(self, blocks=blocks)
