"""Energy of a run: per-action energy (MACs, bytes at each memory level) plus static power.

Like metrics, computed after the fact from the Trace; the chip's ``energy`` spec supplies the
prices. MACs are counted from the matmul work (FLOPs / 2); elementwise work on vector units is
not charged (it is a small share of an inference step and its per-op energy is rarely public).
"""

from __future__ import annotations

import numpy as np

from asicsim.program import Level
from asicsim.dtypes import DType
from asicsim.engine import Trace
from asicsim.hardware.spec import ChipSpec
from asicsim.metrics import decode_sample, step_ends

_LEVEL_KIND = {Level.HBM_READ: "hbm", Level.HBM_WRITE: "hbm", Level.SRAM_READ: "sram",
               Level.SRAM_WRITE: "sram", Level.ROM_READ: "rom", Level.LINK: "link"}


def energy_report(trace: Trace, chip: ChipSpec, dtype: DType, chips: int = 1) -> dict | None:
    """Joules per phase by component, and joules per generated token, for ``chips`` chips (the
    simulated ones; identical tensor-parallel ranks count through their blocks' ``copies``);
    None without an energy spec."""
    spec = chip.energy
    if spec is None:
        return None
    p = trace.program
    phases = np.array([s.phase for s in p.steps])
    task_phase = phases[p.step_of_task()]
    copies = p.task_copies()
    out: dict = {"static_w": spec.static_w * chips}
    # Static power is charged over each phase's wall time as the metrics measure it: the prefill
    # until its last step ends, the decode from there to the end. On a spatial pipeline one
    # sequence's decode overlaps another's prefill, so spans of tasks would count that time twice.
    ends = step_ends(trace)
    sample = decode_sample(trace, ends)
    task_step = p.step_of_task()
    prefill_end = float(ends[phases == "prefill"].max())
    decode_ns = float(ends.max()) - prefill_end if sample.exact else sample.decode_ns
    window_ns = {"prefill": prefill_end - float(trace.start_ns.min()), "decode": decode_ns}
    for phase in ("prefill", "decode"):
        sel = task_phase == phase
        if not sel.any():
            continue
        # a fast-forwarded decode sums each measured step's work times the steps it stands for
        weight = sample.weights[task_step] if phase == "decode" and not sample.exact else sel.astype(float)
        w = copies * weight
        seconds = window_ns[phase] / 1e9
        parts = {"mac": float((p.flops * w)[sel].sum()) / 2 * spec.mac_pj(dtype) * 1e-12}
        for level, kind in _LEVEL_KIND.items():
            moved = float((p.nbytes * w)[sel & (p.level == level)].sum())
            parts[kind] = parts.get(kind, 0.0) + moved * spec.pj_per_byte.get(kind, 0.0) * 1e-12
        parts["static"] = spec.static_w * chips * seconds
        total = sum(parts.values())
        steps = sample.total if phase == "decode" else int((phases == phase).sum())
        tokens = p.steps[0].batch * steps
        out[phase] = {"joules": total, "by_component_j": parts, "watts": total / seconds if seconds else 0.0,
                      "j_per_token": total / tokens}
    return out
