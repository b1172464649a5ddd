"""Process nodes: the public densities and prices the area and cost models read, one row per node.

Each number is a foundry disclosure, a published measurement or an estimate from a named public
analysis; ``docs/sources.md`` rows A1..A15 give the citations and ``docs/area.md`` how they are used.
Logic densities are peak high-density-library figures: they serve as *ratios* between nodes (a block
that takes X mm² on one node takes X × ratio on another), not as the density real chips reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.errors import InputError


@dataclass(frozen=True)
class ProcessNode:
    """One manufacturing process: logic and SRAM density, and what a wafer of it costs.

    ``logic_mtr_per_mm2`` is the peak logic density (million transistors per mm²);
    ``sram_bitcell_um2`` the high-density 6T SRAM bit cell; ``wafer_usd`` the price of one processed
    300 mm wafer; ``defect_density_per_cm2`` the defects per cm² a mature process reaches.
    """

    name: str
    logic_mtr_per_mm2: float
    sram_bitcell_um2: float
    wafer_usd: float
    defect_density_per_cm2: float
    source: str


NODES: dict[str, ProcessNode] = {n.name: n for n in (
    ProcessNode("tsmc-28", 14.44, 0.127, 2891, 0.1,
                "logic: TSMC 16FF+ (28.88, A2) over TSMC's ~2x 28HPM-to-16FF+ density step (A2); "
                "bit cell 0.127 um2 (A3); wafer $2,891 (A5); D0 0.1/cm2 assumption for a mature node (A6)"),
    ProcessNode("tsmc-12", 28.88, 0.07, 3984, 0.1,
                "logic: taken at TSMC 16FF+'s 28.88 (A2): TSMC's 12 nm is a revision of its 16 nm process and "
                "publishes no density of its own (A15); bit cell 0.07 um2 (TSMC 16 nm FinFET HD cell, A3); wafer "
                "$3,984 (16/12 nm class, A5); D0 0.1 (A6)"),
    ProcessNode("gf-14lpp", 28.88, 0.064, 3984, 0.1,
                "logic: taken at TSMC 16FF+'s 28.88 (A2), the same 14/16 nm FinFET generation (GF publishes "
                "none); bit cell 0.064 um2 (14LPP HD cell, A3); wafer $3,984 (16/12 nm class, A5); D0 0.1 (A6)"),
    ProcessNode("tsmc-n7", 91.2, 0.027, 9346, 0.09,
                "logic 91.2 MTr/mm2 (A2); bit cell 0.027 um2 (A3); wafer $9,346 (A5); D0 0.09/cm2 (A6)"),
    ProcessNode("tsmc-n6", 107.6, 0.027, 9346, 0.09,
                "logic: N7 x 1.18, TSMC's '18% higher logic density than N7' (A2); bit cell as N7 (N6 keeps "
                "N7's design rules, A3); wafer taken at N7's (A5: no separate N6 figure); D0 as N7 (A6)"),
    ProcessNode("tsmc-n5", 167.8, 0.021, 16988, 0.1,
                "logic: N7 x 1.84, TSMC's N5 logic-density claim (A2); bit cell 0.021 um2 (A3); wafer "
                "$16,988 (A5); D0 0.1/cm2 (A6)"),
    ProcessNode("tsmc-n4", 177.9, 0.021, 16988, 0.1,
                "logic: N5 x 1.06, TSMC's '6% die-area reduction' for N4 (A2); NVIDIA's 4N and 4NP are "
                "custom N4-class processes, taken as N4. Bit cell as N5 (A3); wafer taken at N5's (A5); "
                "D0 as N5 (A6)"),
)}


def process_node(name: str, source: str = "process_node", field: str | None = None) -> ProcessNode:
    """The node called ``name``; an InputError listing the known nodes otherwise."""
    if name not in NODES:
        raise InputError(source, field, f"the area model has no densities for process node '{name}'; "
                         f"known nodes: {', '.join(sorted(NODES))}")
    return NODES[name]
