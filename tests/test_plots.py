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
    step_edges,
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


def test_step_bins_end_each_step_and_conserve_busy_time(runs):
    """The utilisation figure's bins are the steps: one edge at the end of each step's last
    task, the last at the end of the run, and binning by them still conserves busy time."""
    for r in runs:
        p, t = r.program, r.trace
        edges = step_edges(t)
        step_of = p.step_of_task()
        ends = sorted({float(t.end_ns[step_of == s].max()) for s in np.unique(step_of)})
        assert edges[0] == 0 and list(edges[1:]) == pytest.approx(ends) and edges[-1] == t.makespan_ns
        assert len(edges) == len(p.steps) + 1  # prefill and 3 decode steps, each its own bin
        edges, series = busy_over_time(t, edges=edges)
        for b_kind in {b.kind for b in p.blocks}:
            members = [i for i, b in enumerate(p.blocks) if b.kind == b_kind]
            busy = (p.fixed_ns + p.service_ns + t.wait_ns)[np.isin(p.block, members)].sum()
            assert (series[b_kind] * np.diff(edges)).sum() * len(members) == pytest.approx(busy, rel=1e-6)


def test_utilisation_figure_reads_in_percent_on_a_fixed_axis_with_the_legend_outside(runs):
    from asicsim.plots import utilisation_figure

    for r in runs:
        fig = utilisation_figure(r)
        ax = fig.axes[0]
        assert ax.get_ylim() == (0, 100) and "%" in ax.get_ylabel()
        legend = ax.get_legend()
        fig.canvas.draw()
        box = legend.get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1  # beside the plot, not over the data
        labels = [t.get_text() for t in legend.get_texts()]
        matmul = next(lb for lb in labels if lb.startswith("matmul:"))
        assert matmul.endswith(f", {r.metrics.utilisation['decode']['matmul']:.1%} decode") and "whole run" in matmul
        edges, series = busy_over_time(r.trace, edges=step_edges(r.trace))
        drawn = {p.get_label(): p.get_data().values for p in ax.patches if p.get_label().startswith("matmul:")}
        assert np.allclose(drawn[matmul], 100 * series["matmul"])  # percent, one value per step


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


def test_roofline_point_labels_do_not_collide(monkeypatch, llama8b, h100):
    """At prompt 512 the H100's prefill lm_head label and its decode label land on each other;
    the figure moves them apart (and without that step they would overlap)."""
    import asicsim.plots as plots

    r = run(llama8b, h100, Workload(batch=1, prompt=512, generate=2, dtype=DType.BF16))

    def labels(fig):
        return [t for t in fig.axes[0].texts if hasattr(t, "xyann")]

    fig = plots.roofline_figure(r)
    assert len(labels(fig)) >= 4 and plots.overlapping_labels(fig, labels(fig)) == 0
    monkeypatch.setattr(plots, "_separate", lambda fig, notes: None)
    fig = plots.roofline_figure(r)
    assert plots.overlapping_labels(fig, labels(fig)) > 0


def test_an_op_split_over_chips_is_drawn_under_their_roofs_together(llama8b):
    """On groq-lpu the LM head is split over several chips: its point exceeds one chip's roof,
    so the figure draws the roof of the chips it ran on, and every point sits under its own."""
    from asicsim.hardware import load_system
    from asicsim.plots import roofline_figure

    r = run(llama8b, load_system("groq-lpu"), Workload(batch=1, prompt=64, generate=3, dtype=DType.BF16))
    groups = op_groups(r.trace)
    roof = roofs(r.plan.chip, DType.BF16)
    peak = max(p for _, p in roof.compute)
    split = [g for g in groups if g.chips > 1]
    assert any(g.achieved_flops > peak for g in split)  # one chip's roof would be wrong for them
    for g in groups:
        assert g.achieved_flops <= g.chips * min(peak, roof.memory_bps * g.intensity) * (1 + 1e-9)
    labels = [line.get_label() for line in roofline_figure(r).axes[0].lines]
    for n in {g.chips for g in split}:
        assert any(label.startswith(f"{n} chips' roof") for label in labels)


def test_log_scale_bars_start_at_a_labelled_decade_below_the_smallest(runs):
    import math

    from asicsim.plots import comparison_figure

    fig = comparison_figure(runs)
    logged = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert logged  # TPOT and tokens/s differ by more than 20x between these chips
    for ax in logged:
        heights = [p.get_height() for p in ax.patches if p.get_height() > 0]
        bottom = ax.get_ylim()[0]
        assert bottom == 10.0 ** math.floor(math.log10(min(heights))) and min(heights) / 10 < bottom
        assert f"bars from {bottom:g}" in ax.get_title()
