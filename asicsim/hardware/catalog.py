"""The shipped presets at a glance: each chip's key numbers and each system's chips and network."""

from __future__ import annotations

from asicsim.dtypes import DType
from asicsim.hardware.area import estimate_area
from asicsim.hardware.spec import MatmulSpec
from asicsim.hardware.system import load_system, preset_names


def catalog() -> list[dict]:
    """One row per preset (chip or system), JSON-ready."""
    rows = []
    for name in preset_names():
        system = load_system(name)
        chip, net = system.chip, system.network
        arrays = chip.blocks_of(MatmulSpec)
        est = estimate_area(chip)
        rows.append({
            "name": name, "kind": "system" if len(system.chips) > 1 else "chip", "chip": chip.name,
            "chips": len(system.chips), "mapping": chip.mapping.value,
            "bf16_tflops": sum(a.peak_flops(DType.BF16) * getattr(a, "count", 1) for a in arrays) / 1e12,
            "hbm_gb": chip.hbm.capacity_gb if chip.hbm else 0.0,
            "hbm_gbps": chip.hbm.channels * chip.hbm.bandwidth_gbps_per_channel if chip.hbm else 0.0,
            "sram_mb": sum(b.capacity_bytes for b in chip.blocks if b.kind == "sram") / 1e6,
            "hardwired": chip.rom.model if chip.rom else None,
            "process_node": chip.die.process_node if chip.die else None,
            "area_mm2_public": chip.area_mm2,
            "area_mm2_estimate": est.total_mm2 if est else None,
            "area_error": (est.total_mm2 / chip.area_mm2 - 1) if est and chip.area_mm2 else None,
            "network": None if net is None else {
                "topology": system.topology if len(system.chips) > 1 else net.topology.value,
                "link_gbps_each_way": net.bandwidth_gbps, "latency_ns": net.latency_ns,
                "in_switch_reduction": net.in_switch_reduction},
            "description": chip.description if len(system.chips) == 1 else _description(name),
        })
    return rows


def _description(name: str) -> str:
    from asicsim.hardware.system import PRESETS_DIR, _read_yaml

    return str(_read_yaml(PRESETS_DIR / f"{name}.yaml").get("description", ""))
