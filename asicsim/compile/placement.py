"""Placement: where weights and the KV cache live on a chip, and whether they fit.

A temporal chip streams weights and KV from HBM through its copy engine. A spatial chip keeps
weights in place (hardwired ROM, or SRAM) beside per-stage arrays and its KV cache in SRAM.
Every refusal is an InputError naming the chip file, the field, and the numbers that clash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asicsim.compile.adapters import Adapters, adapter_bytes
from asicsim.compile.plan import Parallel, check_fits_split
from asicsim.program import Level
from asicsim.dtypes import DType, default_kv_dtype, kv_dtype_problem
from asicsim.errors import InputError
from asicsim.hardware.runtime import BARE, RuntimeSpec
from asicsim.hardware.spec import ChipSpec, Mapping, MatmulSpec, SRAMSpec
from asicsim.hardware.system import MAX_CHIPS, System
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import Numerics


MAX_BATCH = 2**20       # sequences decoded together
MAX_TOKENS = 2**24      # prompt + generated tokens per sequence: 16.8 million, past every model's context


@dataclass(frozen=True)
class Workload:
    """What to run: ``batch`` sequences of ``prompt`` tokens, each generating ``generate`` tokens,
    optionally with LoRA-style ``adapters`` beside chosen weight matmuls. ``tp``, ``pp``, ``ep``,
    ``dp`` and ``micro_batches`` ask for a parallel layout on several temporal chips (``None``:
    tensor parallel over all of them, one stage, no expert or data parallelism). ``fast``
    simulates the prefill and sampled decode steps and interpolates the rest (see
    ``compile.sampling``); the default simulates every step."""

    batch: int = 1
    prompt: int = 512
    generate: int = 128
    dtype: DType = DType.BF16
    adapters: Adapters | None = None
    mapping: Mapping | None = None  # None: the chip's own
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    dp: int | None = None
    micro_batches: int | None = None
    fast: bool = False  # fast-forward decode: simulate sampled steps, interpolate the rest
    tokens_per_step: int = 1  # tokens each decode step adds per sequence (k + 1 for a speculative verifier)
    runtime: RuntimeSpec = BARE  # the serving stack's per-request and per-step costs (hardware.runtime)
    # the KV cache's format (None: dtypes.default_kv_dtype(dtype)); last, so positional calls keep their meaning
    kv_dtype: DType | None = None

    def check(self, source: str = "workload") -> None:
        for name in ("batch", "prompt", "generate"):
            if getattr(self, name) < 1:
                raise InputError(source, name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("tp", "pp", "ep", "dp", "micro_batches"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(source, name, f"must be at least 1, got {getattr(self, name)}")
            if getattr(self, name) is not None and getattr(self, name) > MAX_CHIPS:
                raise InputError(source, name, f"is {getattr(self, name):,}; a system has at most {MAX_CHIPS:,} chips")
        if self.batch > MAX_BATCH:
            raise InputError(source, "batch", f"is {self.batch:,}; at most {MAX_BATCH:,} sequences are simulated")
        if self.prompt + self.generate > MAX_TOKENS:
            field = "prompt" if self.prompt > self.generate else "generate"
            raise InputError(source, field, f"prompt + generate is {self.prompt + self.generate:,} tokens; at most "
                             f"{MAX_TOKENS:,} (far beyond any model's context) are simulated")
        if self.kv_dtype is not None and (problem := kv_dtype_problem(self.kv_dtype)):
            raise InputError(source, "kv_dtype", problem)
        if self.adapters is not None:
            self.adapters.check(f"{source}.adapters")
        if self.tokens_per_step < 1:
            raise InputError(source, "tokens_per_step", f"must be at least 1, got {self.tokens_per_step}")
        if self.tokens_per_step > 1 and self.fast:
            raise InputError(source, "fast", "fast-forward samples one-token decode steps; a verifier run "
                             f"({self.tokens_per_step} tokens per step) needs exact mode")

    @property
    def kv_format(self) -> DType:
        """The KV cache's format: the one asked for, else the dtype's default."""
        return self.kv_dtype if self.kv_dtype is not None else default_kv_dtype(self.dtype)

    @property
    def max_context(self) -> int:
        return self.prompt + 1 + (self.generate - 1) * self.tokens_per_step


def numerics_for(workload: Workload, chip: ChipSpec) -> Numerics:
    """Bytes per weight, KV element and activation for this run on this chip.

    Weights take the requested dtype, except on a hardwired chip, whose weights are fixed at its
    fabricated quantisation; int4 weights carry their group's scale and zero point
    (``cost.weight_bytes_per_element``). The KV cache takes ``workload.kv_dtype`` if given, else
    8 bits for the 8-bit W8A8/fp8 runs and 16 otherwise (weight-only int8 and int4 included).
    """
    from asicsim.cost import weight_bytes_per_element

    rom = chip.rom
    weight = rom.weight_bits / 8 if rom else weight_bytes_per_element(workload.dtype)
    return Numerics(weight_bytes=weight, kv_bytes=workload.kv_format.bytes, act_bytes=2.0)


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def structural_difference(built: ModelSpec, asked: ModelSpec) -> list[str]:
    """Human-readable differences between two models' shapes (empty when they match)."""
    diffs = []
    for field in ("hidden", "vocab", "n_layers", "tied_embeddings"):
        a, b = getattr(built, field), getattr(asked, field)
        if a != b:
            diffs.append(f"{field} {b} (chip has {a})")
    for i, (x, y) in enumerate(zip(built.blocks, asked.blocks)):
        if x != y:
            diffs.append(f"layer {i} is {y} (chip has {x})")
            break
    return diffs


def model_fingerprint(model: ModelSpec) -> str:
    """A short hash of a model's shape (width, vocabulary, tied embeddings and every block's spec),
    the same for two configs that differ only in name: a fine-tune has its base's fingerprint."""
    import hashlib

    shape = repr((model.hidden, model.vocab, model.tied_embeddings, model.blocks))
    return hashlib.sha256(shape.encode()).hexdigest()[:12]


def adapter_weight_bytes(model: ModelSpec, workload: Workload, num: Numerics) -> float:
    """Bytes of the workload's adapter weights (zero without adapters)."""
    return adapter_bytes(model, workload.adapters, num) if workload.adapters is not None else 0.0


def check_fits(model: ModelSpec, system: System, workload: Workload, num: Numerics,
               n_chips: int | None = None, par: Parallel | None = None) -> tuple[float, float] | None:
    """Refuse, with a clear reason, a model the chip cannot hold or was not built for. ``n_chips``
    (default: the system's) lets a caller ask about a scaled-out system without building it;
    ``par`` is the split of a model over temporal chips (each chip then holds its share).
    Returns one temporal chip's (weight, KV) bytes.

    Adapter weights count against the memory that holds them: HBM on a temporal chip, the KV SRAM
    on a hardwired chip, the weight SRAM otherwise."""
    chip, src = system.chip, system.source
    n_chips = len(system.chips) if n_chips is None else n_chips
    lora = adapter_weight_bytes(model, workload, num)
    weights = model.params() * num.weight_bytes + (0.0 if chip.rom else lora)
    kv = (model.kv_bytes(workload.batch, workload.max_context, num) + model.state_bytes(workload.batch, num)
          + (lora if chip.rom else 0.0))
    rom = chip.rom
    if rom is not None:
        from asicsim.model.hf import load_model

        built = load_model(rom.model)
        diffs = structural_difference(built, model)
        if diffs:
            raise InputError(src, f"blocks.{rom.name}.model",
                             f"this chip hardwires {rom.model}; {model.name} differs: " + "; ".join(diffs))
        if model.name != rom.model:
            held = f"{rom.model} (weights {rom.weights_id}; " if rom.weights_id else f"{rom.model} ("
            raise InputError(src, f"blocks.{rom.name}.model",
                             f"this chip hardwires {held}fingerprint {model_fingerprint(built)}); {model.name} has "
                             "the same shape and fingerprint but is another model, a fine-tune perhaps, and a "
                             "hardwired chip's weights cannot change: run the fine-tune as adapters on the "
                             f"hardwired base ({rom.model} with --lora RANK[:TARGETS], or adapters in a scenario)")
        if model.params() * rom.weight_bits > rom.capacity_gbit * 1e9 * n_chips:
            raise InputError(src, f"blocks.{rom.name}.capacity_gbit",
                             f"{model.name} needs {model.params() * rom.weight_bits / 1e9:.1f} Gbit of ROM; "
                             f"{n_chips} chip(s) hold {rom.capacity_gbit * n_chips:g} Gbit")
    hbm = chip.hbm
    if hbm is not None and chip.mapping is Mapping.TEMPORAL:
        return check_fits_split(model, system, workload.batch, workload.max_context, num,
                                par or Parallel(), lora)
    kv_sram = chip.sram_for("kv")
    if kv_sram is None:
        raise InputError(src, "blocks", "a spatial chip needs an sram block whose 'holds' includes kv")
    if rom is None and chip.sram_for("weights") is kv_sram:  # one SRAM holds both, on every chip
        if weights + kv > n_chips * kv_sram.capacity_bytes:
            raise InputError(src, f"blocks.{kv_sram.name}",
                             f"{model.name} needs {_gb(weights + kv)} of SRAM (weights {_gb(weights)}, "
                             f"KV cache {_gb(kv)}) but {n_chips} chip(s) hold {_gb(n_chips * kv_sram.capacity_bytes)}")
        return
    if kv > n_chips * kv_sram.capacity_bytes:
        with_lora = f" (with {lora / 1e6:.1f} MB of adapters)" if lora and chip.rom else ""
        raise InputError(src, f"blocks.{kv_sram.name}",
                         f"the KV cache for batch {workload.batch} × {workload.max_context} tokens of "
                         f"{model.name}{with_lora} needs {kv / 1e6:.1f} MB but the chip's KV SRAM holds "
                         f"{kv_sram.capacity_bytes / 1e6:.1f} MB; lower the batch or the context"
                         + (" or the adapter rank" if with_lora else ""))
    if rom is None:
        w_sram = chip.sram_for("weights")
        if w_sram is None or weights > n_chips * w_sram.capacity_bytes:
            have = n_chips * w_sram.capacity_bytes if w_sram else 0.0
            raise InputError(src, "blocks", f"{model.name}'s weights ({_gb(weights)}) do not fit in this "
                             f"chip's weight SRAM ({_gb(have)})")


def weight_matmul(chip: ChipSpec) -> MatmulSpec:
    """The array that multiplies by weights: hardwired arrays on a ROM chip, else the first."""
    arrays = chip.blocks_of(MatmulSpec)
    if chip.rom is not None:
        fixed = [a for a in arrays if a.dataflow == "fixed_weights"]
        if fixed:
            return fixed[0]
    return arrays[0]


def attention_matmul(chip: ChipSpec) -> MatmulSpec:
    """The array that runs attention's products: a programmable one (not hardwired)."""
    arrays = [a for a in chip.blocks_of(MatmulSpec) if a.dataflow != "fixed_weights"]
    if not arrays:
        raise InputError(chip.name, "blocks", "attention needs a programmable matmul block "
                         "(dataflow weight_stationary or streaming)")
    return arrays[0]


def weight_level(chip: ChipSpec) -> tuple[Level, SRAMSpec | None]:
    """How weights are read on a spatial chip: from ROM, or from a weight SRAM (a server)."""
    if chip.rom is not None:
        return Level.ROM_READ, None
    return Level.SRAM_READ, chip.sram_for("weights")


def chips_needed(model: ModelSpec, chip: ChipSpec, workload: Workload, num: Numerics) -> int:
    """How many chips of this kind a model needs: more than one only for a spatial chip that keeps
    weights in SRAM and has too little of it (Groq-like), or a hardwired chip whose ROM holds a
    slice of its model (each chip its share of the layers); every other chip holds it alone or not."""
    if chip.rom is not None:
        from asicsim.model.hf import load_model

        if structural_difference(load_model(chip.rom.model), model):
            return 1  # not the model the ROM holds: check_fits refuses it, naming the difference
        return max(1, math.ceil(model.params() * chip.rom.weight_bits / (chip.rom.capacity_gbit * 1e9)))
    if chip.mapping is not Mapping.SPATIAL:
        return 1
    w_sram, kv_sram = chip.sram_for("weights"), chip.sram_for("kv")
    if w_sram is None:
        return 1
    if packs_by_op(chip) and kv_sram is w_sram:  # each chip one stage: lay ops over chips
        from asicsim.compile.packing import pack

        return pack(model, workload, num, w_sram.capacity_bytes).chips
    need = model.params() * num.weight_bytes + adapter_weight_bytes(model, workload, num)
    if kv_sram is w_sram:
        need += model.kv_bytes(workload.batch, workload.max_context, num) + model.state_bytes(workload.batch, num)
    if need / w_sram.capacity_bytes > MAX_CHIPS:  # may be too large for an int: refused anyway
        return MAX_CHIPS + 1
    return max(1, int(-(-need // w_sram.capacity_bytes)))


def packs_by_op(chip: ChipSpec) -> bool:
    """A spatial chip that is a single stage and keeps weights in SRAM takes a slice of a model:
    ops are packed over as many such chips as they need (see ``packing``)."""
    return (chip.mapping is Mapping.SPATIAL and chip.rom is None and chip.sram_for("weights") is not None
            and getattr(weight_matmul(chip), "count", 1) == 1)


def with_mapping(chip: ChipSpec, mapping: Mapping, source: str) -> ChipSpec:
    """``chip`` run with another mapping, or an InputError saying why it cannot be.

    Temporal on a spatial chip gangs every block's instances into one set of arrays that all
    layers reuse in turn (a wafer's cores all working on each layer); weights stay where they
    are. A hardwired chip cannot: its weights sit beside the arrays of their own layer. Spatial
    on a temporal chip has nothing to pin layers to (one set of arrays, weights in HBM).
    """
    if mapping is chip.mapping:
        return chip
    if mapping is Mapping.SPATIAL:
        raise InputError(source, "mapping", f"{chip.name} has one set of arrays and streams weights from HBM: "
                         "a spatial mapping needs per-layer arrays (blocks with count > 1) or weights held on chip")
    if chip.rom is not None:
        raise InputError(source, "mapping", f"{chip.name} hardwires its weights beside each layer's own arrays: "
                         "it can only run spatially")
    scaled = {"matmul": "units", "vector": "lanes", "sram": "banks"}
    blocks = []
    for block in chip.blocks:
        count = getattr(block, "count", 1)
        if count > 1 and block.kind in scaled:
            field = scaled[block.kind]
            block = block.model_copy(update={"count": 1, field: getattr(block, field) * count})
        blocks.append(block)
    return chip.model_copy(update={"mapping": Mapping.TEMPORAL, "blocks": tuple(blocks)})


def with_stages(chip: ChipSpec, stages: int) -> ChipSpec:
    """A spatial chip whose per-layer blocks (``count`` > 1: a wafer's cores split into stages)
    are re-cut into ``stages`` equal stages: the same cores, lanes and SRAM banks in all, as many
    to a stage as the stages leave. A wafer gives each layer it holds its own patch, so a model
    with fewer layers per wafer gets larger patches (and a longer mesh to cross per op)."""
    scaled = {"matmul": "units", "vector": "lanes", "sram": "banks"}
    blocks = []
    for block in chip.blocks:
        count = getattr(block, "count", 1)
        if count > 1 and block.kind in scaled and count != stages:
            field = scaled[block.kind]
            block = block.model_copy(update={"count": stages,
                                             field: max(1, getattr(block, field) * count // stages)})
        blocks.append(block)
    return chip.model_copy(update={"blocks": tuple(blocks)})


def stages_per_chip(model: ModelSpec, chip: ChipSpec, n_chips: int) -> int | None:
    """How many stages each chip of a layer-per-stage spatial system takes for ``model``: its
    share of the layers plus the LM head's stage, or None where the chip's stages are fixed: one
    chip one stage, a hardwired chip whose arrays sit beside their own layer's weights, or arrays
    that are not a uniform mesh of cores (no ``mesh_hop_ns``), which cannot be re-partitioned."""
    mm = weight_matmul(chip)
    if (chip.mapping is not Mapping.SPATIAL or chip.rom is not None or chip.sram_for("weights") is None
            or mm.count == 1 or mm.mesh_hop_ns <= 0):
        return None
    return max(1, math.ceil((model.n_layers + 1) / n_chips))
