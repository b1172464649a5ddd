"""Die area from a chip's blocks and its process node: pure functions of a ChipSpec.

Every block is priced in mm² on the chip's node, then the sum is scaled by its ``area_class``
(what the blocks leave out), and the HBM interfaces are added:

- matmul: MACs × int8-MAC-equivalents per MAC × one int8 MAC's area. A MAC is worth, in int8 MACs,
  the most over its formats of ``rate × bits / 8`` (a bf16 MAC at rate 1 is two int8 MACs; an
  array that runs int8 at twice its bf16 rate is priced the same). The int8 MAC is the TPU v1's:
  24 % of its ≤331 mm² 28 nm die for 65,536 MACs, 1,212 µm² (docs/sources.md A4), scaled to
  the node by the ratio of logic densities (A2);
- vector: lanes × one FP32 lane, 28.4 int8 MACs (an FP32 multiplier plus adder against an 8-bit
  multiplier plus 32-bit adder, Horowitz ISSCC 2014, A7);
- sram: bits × the node's bit cell ÷ 0.668, the fraction of a high-density macro that is bit
  cells (31.8 Mb/mm² for TSMC N5 macros over its 0.021 µm² cell, A8);
- hbm: ``die.hbm_phys`` interfaces of 10 mm² each (assumption, A9), outside the class factor;
- every block is divided by ``die.enabled_fraction``: the die carries the units a product disables;
- a chip with a rom (weights in mask ROM) is priced as a whole by the HC1's density: its ROM bits
  per mm² of die, arrays, KV SRAM and all (33 Gbit in 815 mm² on N6, A1 and S13), scaled to the
  node by logic density. The HC1's own arrays and SRAM are not public (its preset's are
  assumptions), so they are not priced one by one.

The class factors are calibrations, each from one chip (a chip that sets a factor is not a check
of it; docs/area.md has the table): ``dataflow`` from the Cerebras WSE-2, a chip that is not a
preset (described below as a ``ReferenceDie`` and priced by the same functions), ``simt_gpu`` from
the A100. ``area_table`` prints the calibration-and-check table that docs/area.md carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from asicsim.hardware.nodes import NODES, ProcessNode
from asicsim.hardware.spec import ChipSpec, DieSpec, HBMSpec, MatmulSpec, ROMSpec, SRAMSpec, VectorSpec

REFERENCE_NODE = "tsmc-28"
INT8_MAC_UM2_REFERENCE = 0.24 * 331e6 / 65536  # TPU v1 (A4): 1,212 µm² per int8 MAC at 28 nm
LANE_INT8_MACS = (7700 + 4184) / (282 + 137)   # Horowitz 45 nm (A7): fp32 mult + add over int8 mult + int32 add
SRAM_MACRO_EFFICIENCY = 31.8 * 0.021           # A8: TSMC N5 macro 31.8 Mb/mm² × 0.021 µm² bit cell = 0.668
HBM_PHY_MM2 = 10.0                             # A9: assumption, per HBM interface
HARDWIRED_NODE = "tsmc-n6"
HARDWIRED_GBIT_PER_MM2 = 33.0 / 815.0          # HC1 (A1, S13): 33 Gbit of ROM in an 815 mm² N6 die


def int8_mac_um2(node: ProcessNode) -> float:
    """One int8 MAC, with its share of array wiring, on ``node``."""
    return INT8_MAC_UM2_REFERENCE * NODES[REFERENCE_NODE].logic_mtr_per_mm2 / node.logic_mtr_per_mm2


def hardwired_gbit_per_mm2(node: ProcessNode) -> float:
    """Weight bits per mm² of a hardwired die on ``node``, at the HC1's density."""
    return HARDWIRED_GBIT_PER_MM2 * node.logic_mtr_per_mm2 / NODES[HARDWIRED_NODE].logic_mtr_per_mm2


def mac_int8_equivalents(array: MatmulSpec) -> float:
    """What one MAC of ``array`` is worth in int8 MACs: the most over its formats of rate × bits / 8."""
    return max(rate * dtype.bits / 8 for dtype, rate in array.dtype_rate.items())


@dataclass(frozen=True)
class ReferenceDie:
    """A chip that is not a preset, described by what the area model prices: MACs (and what each is
    worth in int8 MACs), FP32-class vector lanes and SRAM bits, all on the die (enabled or not)."""

    name: str
    node: str
    area_mm2_public: float
    macs: float
    mac_int8: float
    lanes: float
    sram_bits: float
    hbm_phys: int
    area_class: str
    source: str

    def blocks_mm2(self) -> float:
        node = NODES[self.node]
        return (self.macs * self.mac_int8 * int8_mac_um2(node) + self.lanes * LANE_INT8_MACS * int8_mac_um2(node)
                + self.sram_bits * node.sram_bitcell_um2 / SRAM_MACRO_EFFICIENCY) / 1e6

    def estimate_mm2(self) -> float:
        return self.blocks_mm2() * CLASS_FACTOR[self.area_class] + self.hbm_phys * HBM_PHY_MM2


# Cerebras WSE-2 (docs/sources.md S11, A14): 850,000 cores on a 46,225 mm² TSMC N7 wafer-scale die,
# 40 GB of SRAM, a four-wide FP16 SIMD per core. Described as the cerebras-wse3 preset describes its
# cores (the SIMD both as 4 MACs and as 4 lanes per core), so the factor it sets carries the same
# convention to the WSE-3.
WSE2 = ReferenceDie("cerebras-wse2", "tsmc-n7", 46225.0, macs=850_000 * 4, mac_int8=2.0, lanes=850_000 * 4,
                    sram_bits=40e9 * 8, hbm_phys=0, area_class="dataflow", source="docs/sources.md S11, A14")
# NVIDIA V100's GV100 die (A15): 815 mm² on TSMC 12FFN, 84 SMs on the die (80 enabled), each with 8
# tensor cores of 64 fp16 MACs, 64 FP32 lanes and 128 KB of L1/shared memory; 4 HBM2 sites. Not a
# preset and set no constant: a cross-check of the `simt_gpu` factor on an older GPU generation.
V100 = ReferenceDie("nvidia-v100", "tsmc-12", 815.0, macs=84 * 8 * 64, mac_int8=2.0, lanes=84 * 64,
                    sram_bits=84 * 128 * 1024 * 8, hbm_phys=4, area_class="simt_gpu", source="docs/sources.md A15")
# Calibrations (docs/area.md): the factor that makes the named chip's blocks reproduce its public area.
CLASS_FACTOR = {
    "dataflow": WSE2.area_mm2_public / WSE2.blocks_mm2(),   # 1.4114: WSE-2, not a preset
    "simt_gpu": 7.4474,   # a100-sxm-80gb: (826 - 6 HBM PHYs x 10 mm²) over its full-die blocks' 102.85 mm²
}
CALIBRATED_ON = {"dataflow": WSE2.name, "simt_gpu": "a100-sxm-80gb", "rom": "taalas-hc1"}
CHECK_TOLERANCE = 0.25   # issue 15: a check passes within 25 % of the public area


def block_mm2(block, node: ProcessNode) -> float:
    """The area of one block (all ``count`` copies) on ``node``, before the class factor; 0 for a
    copy engine (its logic is in the class factor)."""
    count = getattr(block, "count", 1)
    if isinstance(block, MatmulSpec):
        macs = block.units * block.rows * block.cols
        return count * macs * mac_int8_equivalents(block) * int8_mac_um2(node) / 1e6
    if isinstance(block, VectorSpec):
        return count * block.lanes * LANE_INT8_MACS * int8_mac_um2(node) / 1e6
    if isinstance(block, SRAMSpec):
        bits = block.capacity_bytes * 8
        return bits * node.sram_bitcell_um2 / SRAM_MACRO_EFFICIENCY / 1e6
    if isinstance(block, ROMSpec):
        return block.capacity_gbit / hardwired_gbit_per_mm2(node)
    return 0.0


@dataclass(frozen=True)
class AreaEstimate:
    """A chip's estimated silicon: ``total_mm2`` over all its dies, and how it was built up."""

    node: str
    area_class: str
    dies: int
    total_mm2: float
    blocks_mm2: dict[str, float] = field(default_factory=dict)
    factor: float = 1.0
    io_mm2: float = 0.0
    note: str = ""

    @property
    def per_die_mm2(self) -> float:
        return self.total_mm2 / self.dies


def estimate_area(chip: ChipSpec) -> AreaEstimate | None:
    """The estimated area of ``chip``'s silicon, or None where its process node is not given."""
    die = chip.die
    if die is None:
        return None
    node = NODES[die.process_node]
    io = die.hbm_phys * HBM_PHY_MM2 if chip.blocks_of(HBMSpec) else 0.0
    rom = chip.rom
    if rom is not None:
        core = block_mm2(rom, node)
        return AreaEstimate(node.name, "hardwired", die.dies, core + io, {rom.name: core}, 1.0, io,
                            "hardwired: the whole die at the HC1's weight bits per mm² (arrays and SRAM included)")
    blocks = {b.name: block_mm2(b, node) / die.enabled_fraction for b in chip.blocks}
    factor = CLASS_FACTOR[die.area_class]
    return AreaEstimate(node.name, die.area_class, die.dies, sum(blocks.values()) * factor + io, blocks, factor, io)


def rom_fits_die(rom: ROMSpec, die: DieSpec) -> str | None:
    """Why ``rom`` cannot be on ``die`` (more bits than its public area holds at the HC1's density),
    or None when it fits or the die's area is not given."""
    if die.area_mm2_public is None:
        return None
    density = hardwired_gbit_per_mm2(NODES[die.process_node])
    most = density * die.area_mm2_public / die.dies
    per_die = rom.capacity_gbit / die.dies
    if per_die <= most * (1 + 1e-9):
        return None
    need = math.ceil(rom.capacity_gbit / most)
    return (f"rom '{rom.name}' holds {rom.capacity_gbit:g} Gbit ({rom.model}), but a {die.area_mm2_public / die.dies:g} "
            f"mm² die on {die.process_node} holds at most {most:.1f} Gbit at the HC1's "
            f"{density * 1000:.1f} Mbit/mm² (docs/area.md): that model needs {need} such dies; "
            "describe a system of several chips, each with its share of the layers")


def hardwired_dies(params: float, weight_bits: float, node_name: str, die_mm2: float) -> int:
    """How many hardwired dies of ``die_mm2`` on ``node_name`` hold ``params`` weights of
    ``weight_bits`` mean bits, at the HC1's density."""
    node = NODES[node_name]
    per_die_gbit = hardwired_gbit_per_mm2(node) * die_mm2
    return max(1, math.ceil(params * weight_bits / 1e9 / per_die_gbit))


def area_rows() -> list[dict]:
    """One row per preset with a process node, plus the reference dies that set a constant: the
    estimate, the public area, the error and the row's role (calibration, check, or none where no
    area is public). docs/area.md carries these rows (``area_table``)."""
    from asicsim.hardware import load_chip
    from asicsim.hardware.system import chip_preset_names

    rows = [{"name": WSE2.name, "node": WSE2.node, "estimate": WSE2.estimate_mm2(), "public": WSE2.area_mm2_public,
             "dies": 1, "role": "calibration (`dataflow`), not a preset"},
            {"name": V100.name, "node": V100.node, "estimate": V100.estimate_mm2(), "public": V100.area_mm2_public,
             "dies": 1, "role": "cross-check of `simt_gpu`, not a preset"}]
    calibrations = set(CALIBRATED_ON.values())
    for name in chip_preset_names():
        chip = load_chip(name)
        est = estimate_area(chip)
        if est is None:
            continue
        if name in calibrations:
            what = next(k for k, v in CALIBRATED_ON.items() if v == name)
            role = f"calibration (`{what}`)" if what != "rom" else "calibration (hardwired density)"
        elif chip.area_mm2 is None:
            role = "–"
        elif abs(est.total_mm2 / chip.area_mm2 - 1) < CHECK_TOLERANCE:
            role = "check"
        else:
            role = "check, outside 25 %"
        rows.append({"name": name, "node": est.node, "estimate": est.total_mm2, "public": chip.area_mm2,
                     "dies": est.dies, "role": role})
    return rows


def area_table() -> str:
    """The calibration-and-check table of docs/area.md, as markdown."""
    out = ["| chip | node | estimate mm² | public mm² | error | role |", "|---|---|---:|---:|---:|---|"]
    for r in area_rows():
        est = f"{r['estimate']:,.0f}" + (f" ({r['dies']} dies)" if r["dies"] > 1 else "")
        pub = "not public" if r["public"] is None else f"{r['public']:,.0f}"
        err = "–" if r["public"] is None else f"{100 * (r['estimate'] / r['public'] - 1) + 0.0:+.1f} %"
        err = err.replace("-0.0", "0.0").replace("+0.0", "0.0")
        out.append(f"| {r['name']} | {r['node']} | {est} | {pub} | {err} | {r['role']} |")
    return "\n".join(out)
