"""The numbers behind the figures, from a Trace with numpy: no plotting here.

- :func:`op_groups`: ops summed by name pattern (``L7.qkv`` → ``qkv``) over the prefill and one
  representative decode step (the last, as in the metrics): FLOPs, bytes, span, span per bound.
- :func:`busy_over_time`: the busy fraction of each block kind, and of each kind of server, in
  equal time bins over the whole run, or in one bin per step (:func:`step_edges`).
- :func:`roofs`: the compute and memory ceilings one op meets on a chip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from asicsim.program import Level
from asicsim.dtypes import DType
from asicsim.engine import Trace
from asicsim.hardware.spec import ChipSpec, MatmulSpec, SRAMSpec
from asicsim.metrics import Bound, op_bounds

_LAYER = re.compile(r"^L\d+\.")
# Levels whose bytes pass through a store with a bandwidth (a roof). ROM is read in place by the
# arrays beside it and costs no transfer, so its bytes are counted apart.
_STREAMED = (Level.HBM_READ, Level.HBM_WRITE, Level.SRAM_READ, Level.SRAM_WRITE)


@dataclass(frozen=True)
class OpGroup:
    """All ops of one name pattern in one phase: summed work, bytes and time."""

    phase: str
    name: str
    kind: str
    count: int
    flops: float
    streamed_bytes: float      # HBM and SRAM reads and writes
    rom_bytes: float           # weights read in place from ROM
    span_ns: float             # summed op spans (ops of a group may overlap in time)
    span_by_bound_ns: tuple[float, ...]  # in the order of ``Bound``
    chips: int = 1             # the most chips one of its ops computed on (an op split over chips)

    @property
    def intensity(self) -> float:
        """FLOPs per streamed byte; infinite when nothing was streamed."""
        return self.flops / self.streamed_bytes if self.streamed_bytes else float("inf")

    @property
    def achieved_flops(self) -> float:
        """FLOP/s while its ops ran: FLOPs over summed span."""
        return self.flops / self.span_ns * 1e9 if self.span_ns else 0.0


def pattern(op_name: str) -> str:
    """An op's name without its layer prefix: ``L12.gate_up`` → ``gate_up``."""
    return _LAYER.sub("", op_name)


def representative_steps(trace: Trace) -> dict[str, list[int]]:
    """Steps each phase is drawn from: every prefill step, and the last decode step."""
    steps = trace.program.steps
    prefill = [i for i, s in enumerate(steps) if s.phase == "prefill"]
    decode = [i for i, s in enumerate(steps) if s.phase == "decode"]
    out = {"prefill": prefill}
    if decode:
        out["decode"] = decode[-1:]
    return out


def op_groups(trace: Trace) -> list[OpGroup]:
    """Ops summed by phase and name pattern, in order of first appearance."""
    p = trace.program
    n_ops = len(p.ops)
    flops = np.bincount(p.op, weights=p.flops, minlength=n_ops)
    streamed = np.isin(p.level, [int(lv) for lv in _STREAMED])
    sbytes = np.bincount(p.op[streamed], weights=p.nbytes[streamed], minlength=n_ops)
    rom = p.level == int(Level.ROM_READ)
    rbytes = np.bincount(p.op[rom], weights=p.nbytes[rom], minlength=n_ops)
    span, bound = op_bounds(trace)
    op_step = np.array([o.step for o in p.ops], dtype=np.int64)
    chip_of_block = np.array([b.chip for b in p.blocks], dtype=np.int64)
    computing = p.flops > 0
    pairs = np.unique(p.op[computing] * (int(chip_of_block.max()) + 1) + chip_of_block[p.block[computing]])
    chips = np.bincount(pairs // (int(chip_of_block.max()) + 1), minlength=n_ops)
    groups = []
    for phase, steps in representative_steps(trace).items():
        chosen = np.flatnonzero(np.isin(op_step, steps))
        keys: dict[str, list[int]] = {}
        for i in chosen.tolist():
            keys.setdefault(pattern(p.ops[i].name), []).append(i)
        for name, idx in keys.items():
            by_bound = np.bincount(bound[idx], weights=span[idx], minlength=len(Bound))
            groups.append(OpGroup(phase, name, p.ops[idx[0]].kind, len(idx), float(flops[idx].sum()),
                                  float(sbytes[idx].sum()), float(rbytes[idx].sum()), float(span[idx].sum()),
                                  tuple(float(x) for x in by_bound), max(1, int(chips[idx].max()))))
    return groups


@dataclass(frozen=True)
class Roofs:
    """Ceilings for one op on one chip: each matmul block's peak FLOP/s and the memory's B/s."""

    compute: tuple[tuple[str, float], ...]
    memory_name: str
    memory_bps: float


def roofs(chip: ChipSpec, dtype: DType) -> Roofs:
    """An op runs on one matmul block (one stage of a spatial chip) and streams from one memory:
    the HBM's effective bandwidth, or else the SRAM that holds weights (or KV), per instance."""
    compute = tuple((m.name, m.peak_flops(dtype)) for m in chip.blocks_of(MatmulSpec))
    if chip.hbm is not None:
        return Roofs(compute, "HBM", chip.hbm.effective_gbps * 1e9)
    sram = chip.sram_for("weights") or chip.sram_for("kv") or chip.blocks_of(SRAMSpec)[0]
    per = " per stage" if sram.count > 1 else ""
    return Roofs(compute, f"SRAM {sram.name}{per}", sram.banks * sram.bank_gbps * 1e9)


def _covered(starts: np.ndarray, ends: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each time in ``t``: the summed length of intervals [start, end) that lies before it.

    ``sum_i clip(t - s_i, 0, e_i - s_i) = sum_{s_i < t} (t - s_i) - sum_{e_i < t} (t - e_i)``,
    each a prefix sum over sorted ends: O(n log n) for any number of bins.
    """
    out = np.zeros_like(t, dtype=float)
    for values, sign in ((np.sort(starts), 1.0), (np.sort(ends), -1.0)):
        prefix = np.concatenate([[0.0], np.cumsum(values)])
        k = np.searchsorted(values, t, side="left")
        out += sign * (k * t - prefix[k])
    return out


def step_edges(trace: Trace) -> np.ndarray:
    """Time bins one per step: 0, then the end of each step's last task, in time order (ns).
    Busy fractions over these are smoothed per step: a spatial chip's stages taking turns within
    a step read as the step's mean, not as a sawtooth."""
    p = trace.program
    step_of = p.step_of_task()
    ends = np.full(len(p.steps), -np.inf)
    np.maximum.at(ends, step_of, trace.end_ns)
    ends = np.unique(ends[np.isfinite(ends) & (ends > 0)])
    ends[-1] = max(ends[-1], trace.makespan_ns) if len(ends) else trace.makespan_ns
    return np.concatenate([[0.0], ends]) if len(ends) else np.array([0.0, max(trace.makespan_ns, 1.0)])


def busy_over_time(trace: Trace, bins: int = 200,
                   edges: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bin edges (ns) and, per block kind and per server kind, the mean busy fraction in each bin
    (``bins`` equal bins over the run, or the given ``edges``, e.g. :func:`step_edges`).

    A block is busy from a task's start for its fixed, service and queueing time (as in the
    metrics); a server from when its holder starts using it, for the hold time. Server kinds are
    labelled ``hbm (server)``-style apart from blocks of the same name.
    """
    p = trace.program
    if edges is None:
        edges = np.linspace(0.0, max(trace.makespan_ns, 1.0), bins + 1)
    width = np.diff(edges)
    out: dict[str, np.ndarray] = {}
    busy_end = trace.start_ns + p.fixed_ns + p.service_ns + trace.wait_ns
    kinds = np.array([b.kind for b in p.blocks])
    for kind in dict.fromkeys(kinds.tolist()):
        members = np.flatnonzero(kinds == kind)
        sel = np.isin(p.block, members)
        covered = np.diff(_covered(trace.start_ns[sel], busy_end[sel], edges))
        out[kind] = covered / (width * len(members))
    owner = p.holding_task()
    begin = trace.start_ns[owner] + p.fixed_ns[owner] + trace.wait_ns[owner]
    skinds = np.array([s.kind for s in p.servers])
    for kind in dict.fromkeys(skinds.tolist()):
        members = np.flatnonzero(skinds == kind)
        sel = np.isin(p.srv_idx, members)
        covered = np.diff(_covered(begin[sel], begin[sel] + p.srv_hold_ns[sel], edges))
        out[f"{kind} (server)"] = covered / (width * len(members))
    return edges, out
