"""Figures of a study: a roofline, utilisation over time and a latency breakdown per run, and
bars comparing the runs, each written as PNG and SVG.

Matplotlib draws without pyplot (no display, no global backend or figure state). The
numbers come from :mod:`asicsim.plotdata`; this module only draws them. Outputs are
deterministic: SVG ids are salted with a constant and no date is written.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import re
import sys
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

import numpy as np

from asicsim.api import Result
from asicsim.dtypes import formats_text
from asicsim.metrics import Bound
from asicsim.plotdata import OpGroup, busy_over_time, op_groups, roofs, step_edges
from asicsim.scenario import StudyOutput

FORMATS = ("png", "svg")
BOUND_COLOURS = {Bound.COMPUTE: "#3b6fb6", Bound.MEMORY: "#e08a2c", Bound.LINK: "#4a9a5b",
                 Bound.OVERHEAD: "#9a9a9a", Bound.DEPENDENCY: "#b9a3d6"}
PHASE_STYLE = {"prefill": ("o", "#6a3d9a"), "decode": ("^", "#d62728")}
_RC = {"svg.hashsalt": "asicsim", "svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10}


def write_plots(output: StudyOutput, folder: Path) -> list[Path]:
    """Write every figure of ``output`` into ``folder``; returns the files written, in order.

    Per run: ``<system>.roofline``, ``<system>.utilisation`` and ``<system>.latency``; with more
    than one run also ``compare``. Each as ``.png`` and ``.svg``. A study's own figures (listed
    under ``output.doc["figures"]``) are its business and are left alone.

    Drawing dominates the time, so on Linux the figures are drawn by forked worker processes,
    one per core (each figure's files depend only on its data, so the bytes do not change).
    """
    global _OUTPUT
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(output.results)
    # The slowest figures first, so that workers finish together.
    jobs = [("latency", i, folder) for i in range(n)] + ([("compare", -1, folder)] if n > 1 else [])
    jobs += [(kind, i, folder) for kind in ("roofline", "utilisation") for i in range(n)]
    workers = min(len(jobs), os.cpu_count() or 1)
    _OUTPUT = output
    try:
        if workers > 1 and sys.platform == "linux":
            gc.freeze()  # the children's collector then skips the inherited heap: no copy-on-write
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    done = pool.map(_draw, jobs, chunksize=1)
            finally:
                gc.unfreeze()
        else:
            done = [_draw(job) for job in jobs]
    finally:
        _OUTPUT = None
    return [p for paths in done for p in paths]


_OUTPUT: StudyOutput | None = None  # what forked workers draw from, set only inside write_plots


def _draw(job: tuple[str, int, Path]) -> list[Path]:
    """Draw and save one figure of ``_OUTPUT``: a kind, the run it shows, the folder."""
    kind, i, folder = job
    results = _OUTPUT.results
    with matplotlib.rc_context(_RC):
        if kind == "compare":
            return _save(comparison_figure(results), folder / "compare")
        r, stem = results[i], file_stems(results)[i]
        fig = {"roofline": roofline_figure, "utilisation": utilisation_figure, "latency": latency_figure}[kind](r)
        return _save(fig, folder / f"{stem}.{kind}")


def file_stems(results: list[Result]) -> list[str]:
    """One file-name stem per run: its system name made file-safe, numbered if repeated."""
    slugs = [re.sub(r"[^A-Za-z0-9._-]+", "-", r.system.name).strip("-") or "system" for r in results]
    out = []
    for i, s in enumerate(slugs):
        out.append(s if slugs.count(s) == 1 else f"{s}-{slugs[:i + 1].count(s)}")
    return out


def _save(fig: Figure, stem: Path) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=100, metadata=meta)
        paths.append(path)
    return paths


def _plain_log(axis) -> None:
    """Decades only, labelled as plain numbers: cheaper to draw than mathtext and minor ticks."""
    axis.set_major_locator(LogLocator(base=10, numticks=12))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _short(v: float) -> str:
    """A bar's value: three significant figures, thousands separated, never in e-notation."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) >= 0.001 else f"{v:.2e}"


def _title(r: Result, what: str) -> str:
    w = r.workload
    return (f"{what}: {r.model.name} on {r.system.name} (batch {w.batch}, prompt {w.prompt}, "
            f"generate {w.generate}, {formats_text(w.dtype, w.kv_format)})")


def roofline_figure(r: Result, groups: list[OpGroup] | None = None) -> Figure:
    """Each op pattern's achieved FLOP/s against its FLOPs per streamed byte, under the roofs.

    Points are summed over the layers of the prefill and of one decode step. Ops that stream
    nothing (weights read in place from ROM, say) sit at the right edge as ``>`` markers.
    """
    groups = [g for g in (groups or op_groups(r.trace)) if g.flops > 0]
    roof = roofs(r.plan.chip, r.workload.dtype)  # the chip as run (remapped, say), not as asked
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    finite = [g.intensity for g in groups if g.intensity != float("inf")]
    ridges = [peak / roof.memory_bps for _, peak in roof.compute]
    lo = min(finite + ridges) / 4
    hi = max(finite + ridges) * 8
    xs = [lo * (hi / lo) ** (i / 100) for i in range(101)]
    for i, (name, peak) in enumerate(roof.compute):
        ax.plot(xs, [min(peak, roof.memory_bps * x) / 1e12 for x in xs], color="black",
                linestyle=("-", "--", ":", "-.")[i % 4], linewidth=1.2,
                label=f"{name}: {peak / 1e12:,.0f} TFLOP/s peak")
    ax.plot([], [], " ", label=f"{roof.memory_name}: {roof.memory_bps / 1e12:,.2f} TB/s")
    # An op split over several chips runs under their roofs together: one line per such placement.
    for n in sorted({g.chips for g in groups if g.chips > 1}):
        names = ", ".join(dict.fromkeys(g.name for g in groups if g.chips == n))
        peak = max(p for _, p in roof.compute)
        ax.plot(xs, [n * min(peak, roof.memory_bps * x) / 1e12 for x in xs], color="grey", linestyle=":",
                linewidth=1.0, label=f"{n} chips' roof ({names}: split over {n} chips)")
    for (phase, inplace), points in _clusters(groups, hi / 1.5).items():
        marker, colour = PHASE_STYLE[phase]
        xs_, ys_ = [p[0] for p in points], [p[1] for p in points]
        ax.scatter(xs_, ys_, marker=">" if inplace else marker, color=colour, s=36, zorder=3)
    notes = []
    for (x, y, colour), names in _labels(groups, hi / 1.5).items():
        below = colour == PHASE_STYLE["decode"][1]  # decode names under their points, prefill above
        notes.append(ax.annotate(", ".join(names), (x, y), textcoords="offset points",
                                 xytext=(5, -10 if below else 3), fontsize=7, color=colour,
                                 ha="right" if x >= hi / 2 else "left"))
    for phase, (marker, colour) in PHASE_STYLE.items():
        ax.scatter([], [], marker=marker, color=colour, label=f"{phase} ops")
    if any(g.intensity == float("inf") for g in groups):
        ax.scatter([], [], marker=">", color="grey", label="no bytes streamed (weights in place)")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), title=_title(r, "Roofline"),
           xlabel="arithmetic intensity (FLOPs per byte streamed from HBM or SRAM)",
           ylabel="achieved TFLOP/s (FLOPs / summed op span)")
    ax.grid(True, which="major", alpha=0.3)
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    ax.legend(loc="lower right", fontsize=7)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.1, top=0.93)
    _separate(fig, notes)
    return fig


def _separate(fig: Figure, notes: list, gap_px: float = 1.0, rounds: int = 30) -> None:
    """Move point labels apart vertically until no two overlap: each overlapping pair pushes the
    lower one down and the upper one up by half the overlap (in points), a few rounds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if len(notes) < 2:
        return
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    to_pt = 72.0 / fig.dpi
    for _ in range(rounds):
        boxes = [n.get_window_extent(renderer) for n in notes]
        moved = False
        for i in range(len(notes)):
            for j in range(i + 1, len(notes)):
                a, b = boxes[i], boxes[j]
                if a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 + gap_px <= b.y0 or b.y1 + gap_px <= a.y0:
                    continue
                over = (min(a.y1, b.y1) - max(a.y0, b.y0) + gap_px) / 2 * to_pt
                up, down = (i, j) if (a.y0 + a.y1) >= (b.y0 + b.y1) else (j, i)
                for k, dy in ((up, over), (down, -over)):
                    x, y = notes[k].xyann
                    notes[k].xyann = (x, y + dy)
                moved = True
        if not moved:
            return


def overlapping_labels(fig: Figure, notes: list) -> int:
    """How many pairs of ``notes`` overlap on the drawn figure (0 after :func:`_separate`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [n.get_window_extent(renderer) for n in notes]
    return sum(1 for i in range(len(boxes)) for j in range(i + 1, len(boxes))
               if boxes[i].overlaps(boxes[j]))


def _point(g: OpGroup, edge: float) -> tuple[float, float]:
    """Where an op group sits on the roofline plot (TFLOP/s); in-place ops at the right edge."""
    x = g.intensity if g.intensity != float("inf") else edge
    return x, g.achieved_flops / 1e12


def _clusters(groups: list[OpGroup], edge: float) -> dict[tuple[str, bool], list[tuple[float, float]]]:
    """Points by phase and by whether they stream nothing (drawn with one marker each)."""
    out: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for g in groups:
        out.setdefault((g.phase, g.intensity == float("inf")), []).append(_point(g, edge))
    return out


def _labels(groups: list[OpGroup], edge: float) -> dict[tuple[float, float, str], list[str]]:
    """One label per cluster of nearby points of a phase (within ~25 % on both axes), so names
    of ops that sit on top of each other are listed once, comma-separated."""
    out: dict[tuple[float, float, str], list[str]] = {}
    anchors: list[tuple[float, float, str]] = []
    for g in groups:
        x, y = _point(g, edge)
        colour = PHASE_STYLE[g.phase][1]
        key = next((a for a in anchors if a[2] == colour and abs(math.log10(a[0] / x)) < 0.1
                    and abs(math.log10(a[1] / y)) < 0.1), None) if y > 0 else None
        if key is None:
            key = (x, y, colour)
            anchors.append(key)
        out.setdefault(key, []).append(g.name)
    return out


def utilisation_figure(r: Result, bins: int = 200) -> Figure:
    """Busy % of each block kind and of each kind of server over the run, as the mean over each
    step (prefill, then every decode step: :func:`asicsim.plotdata.step_edges`), on a fixed
    0-100 % axis. Each legend entry gives the decode (steady-state) figure beside the whole run's;
    the legend sits beside the plot, off the data. ``bins`` is used only for a run without steps.
    """
    edges = step_edges(r.trace)
    if len(edges) < 3:
        edges = None
    edges, series = busy_over_time(r.trace, bins, edges)
    whole = {name: float(np.sum(frac * np.diff(edges)) / edges[-1]) for name, frac in series.items()}
    decode = (r.metrics.utilisation or {}).get("decode") or {}
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    ttft = r.metrics.ttft_ms
    ax.axvspan(0, ttft, color="#eeeeee", zorder=0)
    ax.text(ttft, 1.01, "prefill | decode", fontsize=7, ha="center", va="bottom",
            transform=ax.get_xaxis_transform())
    for name, frac in series.items():
        kind = name.removesuffix(" (server)")
        steady = decode.get(kind) if "server" not in name or kind not in (b.kind for b in r.program.blocks) \
            else None
        label = f"{name}: {whole[name]:.1%} whole run" + (f", {steady:.1%} decode" if steady is not None else "")
        ax.stairs(100 * frac, edges / 1e6, linewidth=1.3, linestyle="--" if "server" in name else "-",
                  label=label, baseline=None)
    ax.set_ylim(0, 100)
    ax.set(xlim=(0, edges[-1] / 1e6), xlabel="time (ms)", ylabel="busy (%), mean over each step")
    ax.set_title(_title(r, "Utilisation"), pad=14)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.grid(True, alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.66, bottom=0.13, top=0.88)
    return fig


def latency_figure(r: Result, groups: list[OpGroup] | None = None) -> Figure:
    """Where the time went: summed op spans by op pattern and bound in the prefill and in one
    decode step (one shared row per pattern), and the share of op time each bound took (the
    metrics' ``bound_share``)."""
    groups = groups or op_groups(r.trace)
    phases = [p for p in ("prefill", "decode") if any(g.phase == p for g in groups)]
    names = list(dict.fromkeys(g.name for g in groups))[::-1]
    fig = Figure(figsize=(12, 5))
    axes = fig.subplots(1, len(phases) + 1, gridspec_kw={"width_ratios": [3] * len(phases) + [2]})
    for i, (ax, phase) in enumerate(zip(axes, phases)):
        row = {g.name: g for g in groups if g.phase == phase}
        unit, scale = ("ms", 1e6) if phase == "prefill" else ("µs", 1e3)
        left = [0.0] * len(names)
        for b_i, bound in enumerate(Bound):
            widths = [row[n].span_by_bound_ns[b_i] / scale if n in row else 0.0 for n in names]
            drawn = [y for y, w in enumerate(widths) if w > 0]  # a zero-width bar would pin the x limit
            if drawn:
                ax.barh(drawn, [widths[y] for y in drawn], left=[left[y] for y in drawn], color=BOUND_COLOURS[bound])
            left = [a + b for a, b in zip(left, widths)]
        counts = {g.name: g.count for g in groups}
        ax.set_yticks(range(len(names)), [f"{n} ×{counts[n]}" for n in names] if i == 0 else [], fontsize=7)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.margins(x=0.04)
        ax.set_xlabel(f"summed op span ({unit}); ops may overlap")
        ax.set_title("prefill" if phase == "prefill" else "one decode step")
    ax = axes[-1]
    shares = r.metrics.bound_share
    for y, phase in enumerate(phases):
        left = 0.0
        for bound in Bound:
            share = shares.get(phase, {}).get(bound.value, 0.0)
            if share:
                ax.barh([y], [share], left=left, color=BOUND_COLOURS[bound])
            if share > 0.08:
                ax.text(left + share / 2, y, f"{share:.0%}", ha="center", va="center", fontsize=7, color="white")
            left += share
    ax.set_yticks(range(len(phases)), phases)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of op time")
    ax.set_title("bound share per phase")
    handles = [Patch(color=BOUND_COLOURS[b], label=b.value) for b in Bound]
    fig.legend(handles=handles, loc="lower center", ncol=len(Bound), fontsize=7)
    fig.suptitle(_title(r, "Latency by op and binding resource"), fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.16, top=0.88, wspace=0.25)
    return fig


def comparison_figure(results: list[Result]) -> Figure:
    """Bars per run: TTFT, TPOT, tokens/s per user and, where energy is known, J/token."""
    labels = file_stems(results)
    panels = [("TTFT (ms)", [r.metrics.ttft_ms for r in results]),
              ("TPOT (ms)", [r.metrics.tpot_ms for r in results]),
              ("tokens/s per user", [r.metrics.tokens_per_s_per_user for r in results])]
    if any(r.energy and "decode" in r.energy for r in results):
        panels.append(("J/token (decode)", [r.energy["decode"]["j_per_token"] if r.energy and "decode" in
                                            r.energy else None for r in results]))
    fig = Figure(figsize=(3.2 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels))
    colours = [f"C{i % 10}" for i in range(len(results))]
    for ax, (name, values) in zip(axes, panels):
        shown = [v if v is not None else 0.0 for v in values]
        ax.bar(range(len(results)), shown, color=colours)
        positive = [v for v in shown if v > 0]
        log = bool(positive) and max(positive) / min(positive) > 20
        if log:
            ax.set_yscale("log")
        for i, v in enumerate(values):
            text = "-" if v is None else _short(v)
            ax.text(i, max(0, shown[i]), text, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(results)), labels, rotation=20, ha="right", fontsize=7)
        ax.margins(y=0.15)
        if log:  # bars start at the decade below the smallest value, a labelled tick, and say so
            floor = 10.0 ** math.floor(math.log10(min(positive)))
            ax.set_ylim(floor, 10.0 ** (math.log10(max(positive)) + 0.3))
            _plain_log(ax.yaxis)
        ax.set_title(f"{name}\nlog scale, bars from {floor:g}" if log else name, fontsize=9)
    w = results[0].workload
    fig.suptitle(f"{results[0].model.name}: batch {w.batch}, prompt {w.prompt}, generate {w.generate}, "
                 f"{formats_text(w.dtype, w.kv_format)}", fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.82, wspace=0.35)
    return fig
