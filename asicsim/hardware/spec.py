"""Chip and system descriptions: YAML loaded into frozen, validated specs.

Each block kind has its own spec class; the ``kind`` field selects it. Every number that comes
from a datasheet or a measurement carries a ``source`` string beside it in the preset file.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from asicsim.dtypes import DType

Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]
MAX_BLOCK_COUNT = 16_384  # instances of one block on a chip (a stage per layer: models have at most 10,000)
BlockCount = Annotated[int, Field(ge=1, le=MAX_BLOCK_COUNT)]


def _takes_bool(annotation) -> bool:
    """Whether a field's type admits a bool (itself, Any, or a union or container holding one)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(a) for a in get_args(annotation))


class Spec(BaseModel):
    """Base for every spec: frozen, unknown fields are errors, and numbers must be finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_true_for_a_number(cls, data):
        """``replicas: true`` or ``units: false`` is a slip, not 1 or 0: a YAML boolean is refused
        where the field does not take one (pydantic would read it as a number)."""
        if isinstance(data, dict):
            for name, v in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(v, bool) and field is not None and not _takes_bool(field.annotation):
                    raise ValueError(f"field '{name}' is {str(v).lower()}, a yes/no value, where a number or "
                                     "name is expected")
        return data

    def with_(self, **changes):
        """A copy with fields changed by dotted path, validated like a file: a list of named
        things (a chip's blocks) is entered by name, e.g.
        ``chip.with_(**{"hbm.bandwidth_gbps_per_channel": 670, "network.bandwidth_gbps": 900})``.
        A path that names nothing, or a value the schema refuses, is an InputError."""
        from pydantic import ValidationError

        from asicsim.errors import InputError

        data = self.model_dump()
        for path, value in changes.items():
            node, parts = data, path.split(".")
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                if isinstance(node, (list, tuple)):
                    found = [x for x in node if isinstance(x, dict) and x.get("name") == part]
                    if not found:
                        names = {x.get("name"): None for x in node if isinstance(x, dict)}
                        raise InputError("with_", path, f"nothing named '{part}' here{_nearest(names, part)}")
                    node = found[0]
                    if last:
                        raise InputError("with_", path, "names a whole item; give one of its fields")
                elif isinstance(node, dict) and part not in node and not last and _named(node, part) is not None:
                    node = _named(node, part)  # a block by its name: "hbm.channels"
                elif isinstance(node, dict) and part in node:
                    if last:
                        node[part] = value
                    else:
                        node = node[part]
                        if node is None:
                            raise InputError("with_", path, f"'{part}' is not set on this {type(self).__name__}")
                else:
                    raise InputError("with_", path, f"no field '{part}' here{_nearest(node, part)}")
        if isinstance(data.get("network"), dict):  # changing a chip's network as a system file does
            whole = changes.get("network") if isinstance(changes.get("network"), dict) else {}
            data["network"] = dict(data["network"])  # a whole network given is the caller's dict: not edited
            drop_inherited_in_switch(data["network"], given={f for f in IN_SWITCH_FIELDS
                                                           if f"network.{f}" in changes or f in whole})
        try:
            return type(self).model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"] if not str(x).startswith("function-after"))
            raise InputError("with_", loc or None, first["msg"].removeprefix("Value error, ")) from None


def _nearest(node, part: str) -> str:
    """'; did you mean ...?' with the closest field (or block) names of ``node``, if any are close."""
    import difflib

    names = [str(k) for k in node] if isinstance(node, dict) else []
    if isinstance(node, dict):
        names += [x["name"] for v in node.values() if isinstance(v, (list, tuple))
                  for x in v if isinstance(x, dict) and isinstance(x.get("name"), str)]
    near = difflib.get_close_matches(part, names, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(near)}?" if near else ""


def _named(node: dict, name: str) -> dict | None:
    """The item called ``name`` in any list of named things (blocks, links) of ``node``."""
    for value in node.values():
        if isinstance(value, (list, tuple)):
            for x in value:
                if isinstance(x, dict) and x.get("name") == name:
                    return x
    return None


class GemmKernelSpec(Spec):
    """How a programmable chip's matmul library runs one GEMM (the kernel model of ``cost``).

    The output is cut into ``tiles`` (``tile_m × tile_n`` candidates; the library's heuristic
    takes whichever finishes first), each computed by one of ``cores`` cores (SMs, CUs) whose
    K loop steps ``tile_k`` deep (at 16-bit; an 8-bit operand steps twice as deep for the same
    bytes per stage). Tiles run in waves of ``cores``; with ``stream_k`` the K iterations of all
    tiles are dealt out evenly instead (a persistent kernel), so only the last iteration rounds.
    Without it, too few tiles are split over K (split-K), whose fp32 partial sums go out and
    back at ``reduce_gbps``. Each tile a core starts pays ``prologue_ns`` (its first operand
    stage arriving from memory). With ``epilogue_overlap`` false (a kernel that runs one tile per
    core at a time and stores it when its K loop ends, as CUTLASS 2.x's Ampere kernels do) each
    tile's 16-bit output store is not hidden under another tile's K loop: the padded output, all
    tiles together, costs its write at ``reduce_gbps`` on top of the K loops; a warp-specialised
    persistent kernel (Hopper's) overlaps it. ``efficiency`` overrides the array's
    in-loop efficiency per format. ``launch_ns`` is what one stand-alone call costs on top when
    calls are timed back to back (launch and library host work that the kernel does not hide);
    it applies to single-kernel benchmarks, not to ops inside a captured step.

    ``attention_tile`` (query rows × keys per block) and ``exp_per_cycle`` (a core's special-function
    exponentials per cycle) turn on a flash-attention model: Q blocks over the cores, K/V streamed
    block by block, each block's softmax exponentials on the special-function units, after the
    block's two products or, with ``softmax_overlap``, under them; a decode step with too few
    Q blocks splits the keys over cores (split-KV).
    """

    cores: Count
    tiles: tuple[tuple[Count, Count], ...]
    tile_k: Count
    stream_k: bool = False
    epilogue_overlap: bool = True
    prologue_ns: Annotated[float, Field(ge=0)] = 0.0
    reduce_gbps: Positive = 1000.0
    launch_ns: Annotated[float, Field(ge=0)] = 0.0
    efficiency: dict[DType, Fraction] = {}
    attention_tile: tuple[Count, Count] | None = None
    exp_per_cycle: Positive | None = None
    softmax_overlap: bool = False
    source: str = ""

    @model_validator(mode="after")
    def _has_tiles(self):
        if not self.tiles:
            raise ValueError("kernel.tiles needs at least one [tile_m, tile_n]")
        _no_weight_only_keys(self.efficiency, "kernel.efficiency")
        return self


def _no_weight_only_keys(formats, field: str) -> None:
    """A chip's per-format table describes what its arrays multiply in; weight-only int8 (w8a16)
    multiplies in bf16, so it takes bf16's entry and cannot have its own."""
    if DType.W8A16 in formats:
        raise ValueError(f"{field} lists w8a16, a weight-only format whose products run at bf16: "
                         "give the bf16 entry instead")


class MatmulSpec(Spec):
    """``units`` weight-stationary arrays of ``rows × cols`` MACs, run in lockstep as one block.

    ``dtype_rate`` multiplies the MACs per cycle by format (fp8 at 2 means twice the bf16 rate);
    a format missing from it runs at the rate of ``fallback_dtype`` (weights widened on the fly).
    A tile pass streams ``m`` rows (rounded up to ``m_quantum``) through the array. With the
    ``weight_stationary`` dataflow every pass first loads a ``rows × cols`` weight tile and drains
    its results (``rows + cols - 2`` cycles); with ``fixed_weights`` (weights hardwired beside the
    MACs) or ``streaming`` (both operands stream from adjacent SRAM each cycle) nothing is loaded
    and that pipeline depth is paid once per op. ``fill_cycles`` overrides
    the ``rows + cols - 2`` depth for arrays that overlap one pass's drain with the next's fill
    (a GPU tensor core issues back-to-back MMAs). ``preload_weights`` lets a weight-stationary array
    shift the next tile's weights in (``rows`` cycles) while the current pass runs, paying the
    drain once per op (a TPU MXU double-buffers its weights). ``efficiency`` is the achievable
    fraction of the resulting rate, measured on large GEMMs. A ``kernel`` replaces this tile-pass
    count by a model of the GEMM kernel a programmable chip's library runs (see GemmKernelSpec).
    ``mesh_hop_ns`` describes units laid out as a square two-dimensional mesh of cores, each
    talking only to its four neighbours (a wafer): every op on one instance of the block first
    broadcasts its input across the patch and then reduces partial results back over it, about
    ``2 × ⌈√units⌉`` hops of ``mesh_hop_ns`` each, paid once per op (see ``cost.mesh_ns``). On a
    spatial chip such a mesh is re-cut for each run into one stage per layer it holds (plus the
    LM head's), whatever ``count`` says.
    """

    kind: Literal["matmul"]
    name: str
    count: BlockCount = 1
    units: Count
    rows: Count
    cols: Count
    clock_ghz: Positive
    dtype_rate: dict[DType, Positive]
    fallback_dtype: DType = DType.BF16
    m_quantum: Count = 1
    dataflow: Literal["weight_stationary", "fixed_weights", "streaming"] = "weight_stationary"
    fill_cycles: Annotated[int, Field(ge=0)] | None = None
    preload_weights: bool = False
    efficiency: Fraction = 1.0
    kernel: GemmKernelSpec | None = None
    mesh_hop_ns: Annotated[float, Field(ge=0)] = 0.0
    source: str = ""

    @model_validator(mode="after")
    def _kernel_cores_hold_macs(self):
        macs = self.units * self.rows * self.cols
        if self.kernel is not None and self.kernel.cores > macs:
            raise ValueError(f"kernel.cores is {self.kernel.cores:,} but the block has {macs:,} MACs "
                             f"(units x rows x cols): each core of the kernel model needs at least one")
        _no_weight_only_keys(self.dtype_rate, "dtype_rate")
        _no_weight_only_keys((self.fallback_dtype,), "fallback_dtype")
        return self

    def peak_flops(self, dtype: DType) -> float:
        """Dense peak, FLOP/s (a MAC is two FLOPs), in the format the products run in."""
        return 2 * self.units * self.rows * self.cols * self.clock_ghz * 1e9 * self.rate(dtype)

    @property
    def depth_cycles(self) -> int:
        return self.rows + self.cols - 2 if self.fill_cycles is None else self.fill_cycles

    def rate(self, dtype: DType) -> float:
        """MACs per cycle relative to the base, for the format the products run in
        (``dtype.compute``: bf16 for weight-only int8)."""
        return self.dtype_rate.get(dtype.compute, self.dtype_rate.get(self.fallback_dtype, 1.0))


class VectorSpec(Spec):
    """``lanes`` elementwise ALUs; one operation per lane per cycle."""

    kind: Literal["vector"]
    name: str
    count: BlockCount = 1
    lanes: Count
    clock_ghz: Positive
    source: str = ""


class HBMSpec(Spec):
    """Off-chip DRAM: ``channels`` interleaved channels of ``bandwidth_gbps_per_channel`` each.

    Addresses interleave finely across channels, so every transfer is striped over all of them and
    the channels act as one server of their summed bandwidth times ``efficiency`` (the fraction a
    streaming copy achieves).
    """

    kind: Literal["hbm"]
    name: str
    channels: Count
    bandwidth_gbps_per_channel: Positive
    capacity_gb: Positive
    latency_ns: Annotated[float, Field(ge=0)] = 0.0
    efficiency: Fraction = 1.0
    source: str = ""

    @property
    def effective_gbps(self) -> float:
        return self.channels * self.bandwidth_gbps_per_channel * self.efficiency


class SRAMSpec(Spec):
    """On-chip SRAM: ``banks`` of ``capacity_mb_per_bank``, each moving ``bytes_per_cycle_per_bank``.

    Two tasks that use one bank serialize on it.
    """

    kind: Literal["sram"]
    name: str
    count: BlockCount = 1
    banks: Count
    capacity_mb_per_bank: Positive
    bytes_per_cycle_per_bank: Positive
    clock_ghz: Positive
    latency_ns: Annotated[float, Field(ge=0)] = 0.0
    holds: tuple[Literal["kv", "activations", "weights"], ...] = ("activations",)
    source: str = ""

    @property
    def capacity_bytes(self) -> float:
        return self.count * self.banks * self.capacity_mb_per_bank * 1e6

    @property
    def bank_gbps(self) -> float:
        return self.bytes_per_cycle_per_bank * self.clock_ghz


class ROMSpec(Spec):
    """A hardwired weight store: weights fixed at fabrication beside the arrays that use them.

    ``model`` names the shipped model it was built for, and only a model of that name (and shape)
    runs on it; ``weights_id`` declares which weights were burned in (a checkpoint name), shown in
    refusals; ``weight_bits`` the mean bits per weight. Reading it costs no transfer: the arrays
    see their weights in place.
    """

    kind: Literal["rom"]
    name: str
    model: str
    weights_id: str = ""
    weight_bits: Positive
    capacity_gbit: Positive
    source: str = ""


class DMASpec(Spec):
    """A copy engine: issues transfers between memories, one after another, pipelined."""

    kind: Literal["dma"]
    name: str
    count: BlockCount = 1
    source: str = ""


BlockSpec = Annotated[MatmulSpec | VectorSpec | HBMSpec | SRAMSpec | ROMSpec | DMASpec,
                      Field(discriminator="kind")]


class Mapping(str, Enum):
    """How the compiler places layers: reuse one set of arrays, or pin layers to their own."""

    TEMPORAL = "temporal"
    SPATIAL = "spatial"


class LinkSpec(Spec):
    """A link between two blocks (or two chips): bandwidth each way and latency."""

    a: str
    b: str
    bandwidth_gbps: Positive
    latency_ns: Annotated[float, Field(ge=0)] = 0.0
    source: str = ""


class EnergySpec(Spec):
    """Energy per action plus static power: pJ per MAC by format, pJ per byte moved at each
    memory level (``hbm``, ``sram``, ``rom``, ``link``), and watts drawn regardless of work."""

    pj_per_mac: dict[DType, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    pj_per_byte: dict[Literal["hbm", "sram", "rom", "link"], Annotated[float, Field(ge=0)]]
    static_w: Annotated[float, Field(ge=0)]
    source: str = ""

    @model_validator(mode="after")
    def _no_weight_only(self):
        _no_weight_only_keys(self.pj_per_mac, "pj_per_mac")
        return self

    def mac_pj(self, dtype: DType) -> float:
        """Energy of one MAC in the format the products run in (bf16 for weight-only int8)."""
        return self.pj_per_mac.get(dtype.compute, max(self.pj_per_mac.values()))


class DieSpec(Spec):
    """The silicon, for the area and cost models (``asicsim.hardware.area``, ``docs/area.md``).

    ``process_node`` names a row of ``asicsim.hardware.nodes.NODES``; ``area_mm2_public`` is the
    datasheet or disclosed die area (all ``dies`` together), where one is public, and ``area_source``
    cites it. ``area_class`` says what the blocks leave out: ``dataflow`` chips (arrays, scratchpad
    SRAM, little control) or ``simt_gpu`` chips, whose SMs carry schedulers, register files,
    FP64/integer/texture units and caches that the timing blocks do not describe. ``hbm_phys`` is the
    number of HBM interfaces on the silicon, used or not (the HBM block's ``channels`` is how the
    timing model stripes transfers, not a count of stacks). ``enabled_fraction`` is the share of the
    die's compute units (SMs) the product enables (132 of 144 on H100): the die carries all of
    them, so the area model prices the compute and SRAM blocks divided by it.
    """

    process_node: str
    dies: Count = 1
    area_mm2_public: Positive | None = None
    area_source: str = ""
    area_class: Literal["dataflow", "simt_gpu"] = "dataflow"
    hbm_phys: Annotated[int, Field(ge=0)] = 0
    enabled_fraction: Fraction = 1.0
    source: str = ""

    @model_validator(mode="after")
    def _known_node(self) -> DieSpec:
        from asicsim.hardware.nodes import NODES

        if self.process_node not in NODES:
            raise ValueError(f"the area model has no densities for process node '{self.process_node}'; "
                             f"known nodes: {', '.join(sorted(NODES))}")
        if self.area_mm2_public is not None and not self.area_source:
            raise ValueError("area_mm2_public needs an area_source")
        return self


class Topology(str, Enum):
    """How chips are joined: through one switch, each pair directly, in a ring, or on a torus."""

    SWITCH = "switch"                    # every chip has one port to a central switch (NVSwitch-like)
    FULLY_CONNECTED = "fully_connected"  # a direct link between every pair (Infinity Fabric, GroqNode)
    RING = "ring"                        # each chip linked to the next, the last to the first
    TORUS = "torus"                      # a 2D or 3D torus of ``dims`` (TPU slices); dimension-order routes
    CUSTOM = "custom"                    # exactly the ``edges`` given


class Collective(str, Enum):
    """The algorithm an all-reduce runs with; ``auto`` picks, for each message, the one whose
    uncontended time on this network is least (as collective libraries tune by size)."""

    AUTO = "auto"
    RING = "ring"
    TREE = "tree"            # recursive halving then doubling: 2 log2(n) rounds
    ONE_SHOT = "one_shot"    # every chip sends its whole buffer to every other and sums locally
    TWO_SHOT = "two_shot"    # a direct reduce-scatter (each chip sums one shard) then a direct all-gather
    IN_SWITCH = "in_switch"  # each chip sends once to the switch, which reduces and multicasts


class EdgeSpec(Spec):
    """One link of a ``custom`` network between two chips (``chip0``) or a chip and ``switch``;
    bandwidth and latency default to the network's."""

    a: str
    b: str
    bandwidth_gbps: Positive | None = None
    latency_ns: Annotated[float, Field(ge=0)] | None = None


# the network fields that only an in-switch reduction has, and what each is
IN_SWITCH_FIELDS = {"in_switch_startup_ns": "is the start-up", "in_switch_step_ns": "is the step cost",
                    "in_switch_channels": "are the channels"}
IN_SWITCH_DEFAULT_CHANNELS = 16  # NCCL's NVLS channels on Hopper (docs/sources.md C3)


def drop_inherited_in_switch(network: dict, given) -> None:
    """A chip's network changed (by a system file or ``with_``): the in-switch fields it had
    (:data:`IN_SWITCH_FIELDS`: start-up, step cost, channels) go with its in-switch reduction when
    the change turns that off, except those the change gives itself (``given``, a collection of
    field names: then the contradiction is refused)."""
    if not network.get("in_switch_reduction"):
        for field in IN_SWITCH_FIELDS:
            if field not in given:
                network.pop(field, None)


class NetworkSpec(Spec):
    """The network that joins chips: its topology and one link description, each way.

    ``bandwidth_gbps`` and ``latency_ns`` describe every link (a chip's port to the switch on a
    ``switch`` network, a neighbour link otherwise); ``switch_latency_ns`` is added per switch
    crossed. ``dims`` shapes a torus (their product is the chip count); ``wraparound: false``
    drops the links that close each ring (a mesh, as in a TPU slice smaller than its pod). ``in_switch_reduction``
    lets a switch reduce and multicast (NVLink SHARP). ``collective`` chooses the algorithm.
    ``efficiency`` is the fraction of the link rate a large copy achieves (from a measurement);
    ``collective_overhead_ns`` the fixed cost of starting a collective or a send on each chip (a
    communication kernel's launch and the handshake before data moves); ``in_switch_startup_ns``
    what an in-switch collective pays on top of it (setting up the switch's reduction and
    multicast: NCCL's NVLS algorithm starts slower than its ring), which is why small messages
    go round the chips instead. ``in_switch_step_ns`` is what each step of an in-switch
    all-reduce's pipeline costs beyond its bytes (the step's handshake across the chips), and
    ``in_switch_channels`` how many channels run that pipeline side by side (unset: 16, NCCL's NVLS
    on Hopper); the steps follow NCCL's chunk sizes (asicsim/compile/fabric.py).
    """

    topology: Topology = Topology.FULLY_CONNECTED
    bandwidth_gbps: Positive
    efficiency: Fraction = 1.0
    latency_ns: Annotated[float, Field(ge=0)] = 0.0
    switch_latency_ns: Annotated[float, Field(ge=0)] = 0.0
    collective_overhead_ns: Annotated[float, Field(ge=0)] = 0.0
    in_switch_startup_ns: Annotated[float, Field(ge=0)] = 0.0
    in_switch_step_ns: Annotated[float, Field(ge=0)] = 0.0
    in_switch_channels: Count | None = None
    dims: tuple[Count, ...] | None = None
    wraparound: bool = True
    in_switch_reduction: bool = False
    collective: Collective = Collective.AUTO
    edges: tuple[EdgeSpec, ...] = ()
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> NetworkSpec:
        if self.topology is Topology.TORUS and (self.dims is None or not 2 <= len(self.dims) <= 3):
            raise ValueError("a torus needs 'dims' with two or three sizes, e.g. [2, 4]")
        if self.topology is not Topology.TORUS and self.dims is not None:
            raise ValueError(f"'dims' shapes a torus; this network is {self.topology.value}")
        if self.topology is Topology.CUSTOM and not self.edges:
            raise ValueError("a custom network lists its 'edges'")
        if self.topology is not Topology.CUSTOM and self.edges:
            raise ValueError(f"'edges' describe a custom network; this one is {self.topology.value}")
        if self.in_switch_reduction and self.topology is not Topology.SWITCH:
            raise ValueError("in_switch_reduction needs a switch network")
        if self.collective is Collective.IN_SWITCH and not self.in_switch_reduction:
            raise ValueError("the in_switch collective needs in_switch_reduction: true")
        if not self.in_switch_reduction:
            for field, what in IN_SWITCH_FIELDS.items():
                if getattr(self, field):
                    raise ValueError(f"{field} {what} of an in-switch reduction; "
                                     "this network has in_switch_reduction: false")
        return self


class ChipSpec(Spec):
    """One chip: its blocks, the links between them, and per-op fixed costs.

    ``op_overhead_ns`` is paid once per op before its work starts (a kernel launch and sync on a
    GPU, a stage hand-off on a spatial chip); ``step_overhead_ns`` once per forward pass (launching
    the captured graph of a whole step). ``network`` is how several chips of this kind are
    joined when a run takes more than one (``--chips N``, or as many SRAM-only spatial chips as
    the weights need); a system file may give another. ``die`` describes the silicon (process node,
    public area) where that is public; ``process`` names the process in words where no node is modelled.
    """

    name: str
    description: str = ""
    mapping: Mapping
    blocks: tuple[BlockSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    op_overhead_ns: Annotated[float, Field(ge=0)] = 0.0
    op_overhead_source: str = ""
    step_overhead_ns: Annotated[float, Field(ge=0)] = 0.0
    network: NetworkSpec | None = None
    energy: EnergySpec | None = None
    die: DieSpec | None = None
    process: str = ""

    @model_validator(mode="after")
    def _check(self) -> ChipSpec:
        names = [b.name for b in self.blocks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"block names must be unique; repeated: {', '.join(dup)}")
        for kind in (MatmulSpec, VectorSpec):
            if not any(isinstance(b, kind) for b in self.blocks):
                raise ValueError(f"a chip needs at least one {kind.__name__.removesuffix('Spec').lower()} block")
        if self.hbm is None and self.rom is None and not any(
                isinstance(b, SRAMSpec) and "weights" in b.holds for b in self.blocks):
            raise ValueError("a chip needs somewhere to keep weights: an hbm block, a rom block, "
                             "or an sram block whose 'holds' includes weights")
        streams = self.rom is None and self.sram_for("weights") is None  # weights must come from HBM
        if streams and not self.blocks_of(DMASpec):
            raise ValueError("weights held in HBM are streamed in by a copy engine: the chip needs a dma block")
        if self.mapping is Mapping.SPATIAL and streams:
            raise ValueError("a spatial chip keeps weights beside its arrays: give it a rom block or an sram "
                             "block whose 'holds' includes weights")
        for link in self.links:
            for end in (link.a, link.b):
                if end not in names:
                    raise ValueError(f"link end '{end}' is not a block of this chip")
        if self.die is not None and self.rom is not None:
            from asicsim.hardware.area import rom_fits_die

            problem = rom_fits_die(self.rom, self.die)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def area_mm2(self) -> float | None:
        """The public die area (all dies), where one is given."""
        return self.die.area_mm2_public if self.die else None

    def blocks_of(self, kind: type) -> list:
        return [b for b in self.blocks if isinstance(b, kind)]

    @property
    def hbm(self) -> HBMSpec | None:
        found = self.blocks_of(HBMSpec)
        return found[0] if found else None

    @property
    def rom(self) -> ROMSpec | None:
        found = self.blocks_of(ROMSpec)
        return found[0] if found else None

    def sram_for(self, what: str) -> SRAMSpec | None:
        found = [b for b in self.blocks_of(SRAMSpec) if what in b.holds]
        return found[0] if found else None

    @property
    def memory_capacity_bytes(self) -> float:
        hbm = self.hbm
        return hbm.capacity_gb * 1e9 if hbm else 0.0


