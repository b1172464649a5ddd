"""The Plan: every decision compile makes before it emits a task, as one frozen value.

Which system actually runs (remapped, or grown to as many SRAM-only chips as the weights need),
how a model is split over its chips (tensor, pipeline, expert and data parallel degrees), the
numerics, where weights and the KV cache live, the stages and micro-batches, and the collective
algorithm. ``Result`` carries it, so figures and reports read the chip as run, not as asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.compile.shard import rank_bytes
from asicsim.errors import InputError
from asicsim.hardware.spec import ChipSpec, Collective, Mapping
from asicsim.hardware.system import System
from asicsim.model.dense import Attention
from asicsim.model.layers import ModelSpec
from asicsim.model.mla import MLA
from asicsim.model.moe import MoE
from asicsim.model.ops import Numerics


@dataclass(frozen=True)
class Parallel:
    """How a model is split over chips: ``tp`` ranks share each layer, ``pp`` stages hold
    consecutive layers, ``ep`` ranks share a MoE's experts (within the tensor-parallel group),
    ``dp`` independent replicas serve more users; ``micro_batches`` flow through the stages."""

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    micro_batches: int = 1

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp


@dataclass(frozen=True)
class Plan:
    """What will run. ``system`` is the system as run; ``weights_in``/``kv_in`` name the memory
    ('hbm', 'sram' or 'rom'); bytes are what one chip of the busiest stage holds."""

    model: str
    system: System
    parallel: Parallel
    numerics: Numerics
    weights_in: str
    kv_in: str
    stages: int
    micro_batches: int
    collective: Collective
    weight_bytes_per_chip: float
    kv_bytes_per_chip: float

    @property
    def chip(self) -> ChipSpec:
        return self.system.chip

    @property
    def chips(self) -> int:
        return len(self.system.chips)

    @property
    def mapping(self) -> Mapping:
        return self.chip.mapping

    def to_dict(self) -> dict:
        """The JSON-ready record of the plan (in ``predict --json`` and ``results.json``)."""
        p = self.parallel
        return {"system": self.system.name, "chip": self.chip.name, "chips": self.chips,
                "topology": self.system.topology, "mapping": self.mapping.value,
                "tp": p.tp, "pp": p.pp, "ep": p.ep, "dp": p.dp, "micro_batches": self.micro_batches,
                "stages": self.stages, "collective": self.collective.value if self.chips > 1 else None,
                "weights_in": self.weights_in, "kv_in": self.kv_in,
                "weight_bytes_per_param": self.numerics.weight_bytes,
                "kv_bytes_per_element": self.numerics.kv_bytes,
                "weight_bytes_per_chip": self.weight_bytes_per_chip, "kv_bytes_per_chip": self.kv_bytes_per_chip}


def resolve_parallel(model: ModelSpec, system: System, batch: int, tp: int | None, pp: int | None,
                     ep: int | None, dp: int | None, micro_batches: int | None, source: str) -> Parallel:
    """Fill in the degrees not given (tp takes the chips the others leave) and refuse a layout
    that does not divide the chips, the heads, the layers, the experts or the batch."""
    n = len(system.chips)
    pp, dp, ep = pp or 1, dp or 1, ep or 1
    if tp is None:
        if n % (pp * dp):
            raise InputError(source, "pp", f"pp {pp} × dp {dp} does not divide the {n} chips of {system.name}")
        tp = n // (pp * dp)
    if tp * pp * dp != n:
        raise InputError(source, "tp", f"tp {tp} × pp {pp} × dp {dp} = {tp * pp * dp}, but {system.name} "
                         f"has {n} chips; the product must equal the chip count")
    if model.n_layers % pp:
        raise InputError(source, "pp", f"{model.name} has {model.n_layers} layers, which {pp} pipeline "
                         "stages do not divide")
    for i, block in enumerate(model.blocks):
        mixer = block.mixer
        if isinstance(mixer, (Attention, MLA)) and mixer.heads % tp:
            raise InputError(source, "tp", f"{model.name} layer {i} has {mixer.heads} attention heads, "
                             f"which tp {tp} does not divide")
        if isinstance(mixer, Attention) and mixer.kv_heads % tp and tp % mixer.kv_heads:
            raise InputError(source, "tp", f"{model.name} layer {i} has {mixer.kv_heads} KV heads: tp {tp} "
                             "must divide them or be a multiple of them")
        if isinstance(block.ffn, MoE) and ep > 1 and block.ffn.experts % ep:
            raise InputError(source, "ep", f"{model.name} has {block.ffn.experts} experts per layer, "
                             f"which ep {ep} does not divide")
    if ep > 1 and ep != tp:
        raise InputError(source, "ep", f"expert parallelism spreads experts over the tensor-parallel group: "
                         f"ep must be 1 or equal tp ({tp}), got {ep}")
    if ep > 1 and not any(isinstance(b.ffn, MoE) for b in model.blocks):
        raise InputError(source, "ep", f"{model.name} has no mixture-of-experts layers to spread")
    micro = micro_batches or min(batch, pp)
    if batch % micro:
        raise InputError(source, "micro_batches", f"{micro} micro-batches do not divide batch {batch}")
    return Parallel(tp, pp, ep, dp, micro)


def check_fits_split(model: ModelSpec, system: System, batch: int, context: int, num: Numerics,
                     par: Parallel, extra_bytes: float = 0.0) -> tuple[float, float]:
    """Refuse a split whose busiest chip holds more than its HBM; returns that chip's (weight,
    KV) bytes. ``extra_bytes`` (adapter weights) are spread like the weights."""
    chip = system.chip
    hbm = chip.hbm
    per_stage = rank_bytes(model, batch, context, num, par.tp, par.pp, par.ep)
    w, kv = max(per_stage, key=lambda x: x[0] + x[1])
    w += extra_bytes / (par.tp * par.pp)
    cap = hbm.capacity_gb * 1e9
    if w + kv > cap:
        total = sum(a + b for a, b in per_stage) * par.tp + extra_bytes
        least = int(-(-total // cap))
        split = (f" split tp {par.tp} × pp {par.pp} over {par.tp * par.pp} chips"
                 if par.tp * par.pp > 1 else "")
        hint = (f"; it needs at least {least} chips of this kind (more chips: --chips, a system preset, "
                "or a smaller dtype)" if least > 1 else "")
        raise InputError(system.source, f"blocks.{hbm.name}.capacity_gb",
                         f"{model.name} does not fit{split}: the busiest chip needs {(w + kv) / 1e9:.2f} GB "
                         f"(weights {w / 1e9:.2f} GB, KV cache and state {kv / 1e9:.2f} GB for batch {batch} × "
                         f"{context} tokens) but the chip holds {hbm.capacity_gb:g} GB{hint}")
    return w, kv
