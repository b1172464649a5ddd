"""The numbers behind the figures, and the figures' files.

Binning must conserve busy time (what the utilisation plot shows integrates back to what the
trace says), op groups must conserve FLOPs, the roofs must be the chip's own numbers, and the
same runs must give byte-identical PNG and SVG files.
"""

from __future__ import annotations

import numpy as np
import pytest

from asicsim.api import run
from asicsim.compile import Workload
from asicsim.dtypes import DType
from asicsim.plotdata import (
    busy_over_time,
    op_groups,
    pattern,
    representative_steps,
    roofs,
)
from asicsim.scenario import StudyOutput


@pytest.fixture(scope="module")
def runs(llama8b, h100, hc1):
    wl = Workload(batch=1, prompt=64, generate=4, dtype=DType.BF16)
    return [run(llama8b, h100, wl), run(llama8b, hc1, wl)]


def test_busy_time_is_conserved_by_the_bins(runs):
    for r in runs:
        p, t = r.program, r.trace
        edges, series = busy_over_time(t, bins=50)
        width = np.diff(edges)
        for b_kind in {b.kind for b in p.blocks}:
            members = [i for i, b in enumerate(p.blocks) if b.kind == b_kind]
            sel = np.isin(p.block, members)
            busy = (p.fixed_ns + p.service_ns + t.wait_ns)[sel].sum()
            assert (series[b_kind] * width).sum() * len(members) == pytest.approx(busy, rel=1e-6)
            assert series[b_kind].max() <= 1 + 1e-9
        for s_kind in {s.kind for s in p.servers}:
            members = [i for i, s in enumerate(p.servers) if s.kind == s_kind]
            held = p.srv_hold_ns[np.isin(p.srv_idx, members)].sum()
            assert (series[f"{s_kind} (server)"] * width).sum() * len(members) == pytest.approx(held, rel=1e-6)


def test_op_groups_conserve_flops_of_the_steps_they_stand_for(runs):
    for r in runs:
        p = r.program
        groups = op_groups(r.trace)
        step_of = p.step_of_task()
        for phase, steps in representative_steps(r.trace).items():
            mine = [g for g in groups if g.phase == phase]
            assert sum(g.flops for g in mine) == pytest.approx(p.flops[np.isin(step_of, steps)].sum())
            assert sum(g.count for g in mine) == sum(1 for o in p.ops if o.step in steps)
            for g in mine:
                assert sum(g.span_by_bound_ns) == pytest.approx(g.span_ns)
    assert pattern("L31.gate_up") == "gate_up" and pattern("lm_head") == "lm_head"


def test_decode_on_the_gpu_streams_its_weights_and_the_hardwired_chip_does_not(runs):
    gpu, hc1 = ({(g.phase, g.name): g for g in op_groups(r.trace)} for r in runs)
    assert gpu["decode", "gate_up"].intensity == pytest.approx(1.0, rel=0.01)  # 2 FLOPs per 2-byte weight
    assert hc1["decode", "gate_up"].intensity == float("inf")
    assert hc1["decode", "gate_up"].rom_bytes > 0


def test_roofs_are_the_chips_own_numbers(runs):
    gpu, hc1 = runs
    r = roofs(gpu.system.chip, DType.BF16)
    assert r.memory_name == "HBM" and r.memory_bps == gpu.system.chip.hbm.effective_gbps * 1e9
    assert dict(r.compute)["tensor"] == pytest.approx(989e12, rel=0.01)
    r = roofs(hc1.system.chip, DType.BF16)
    assert "per stage" in r.memory_name and r.memory_bps == pytest.approx(16 * 256 * 1e9)


def test_figures_are_byte_identical_across_writes(runs, tmp_path):
    from asicsim.plots import write_plots

    output = StudyOutput("", {}, runs)
    first = write_plots(output, tmp_path / "a")
    second = write_plots(output, tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert len(first) == 14
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
