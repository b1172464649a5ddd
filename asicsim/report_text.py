"""The comparison table: runs side by side, one column per system (terminal and report)."""

from __future__ import annotations

from asicsim.api import Result
from asicsim.dtypes import formats_text
from asicsim.headlines import pipeline_fill
from asicsim.tables import Table, render_text

KINDS = ("matmul", "vector", "dma", "hbm", "sram")
LEVELS = ("hbm_read", "hbm_write", "sram_read", "sram_write", "rom_read", "link")


def _num(x: float | None, fmt: str = "{:,.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _bytes(x: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if x >= scale:
            return f"{x / scale:,.2f} {unit}"
    return f"{x:,.0f} B"


def summary_rows(s: dict) -> list[tuple[str, str]]:
    """The table rows of one run, from its summary (``Result.summary()`` or a results.json entry)."""
    rows = [("TTFT (ms)", _num(s["ttft_ms"])), ("TPOT (ms)", _num(s["tpot_ms"], "{:,.3f}")),
            ("tokens/s per user", _num(s["tokens_per_s_per_user"], "{:,.0f}")),
            ("tokens/s (all users)", _num(s["tokens_per_s"], "{:,.0f}"))]
    for phase in ("prefill", "decode"):
        if phase in s["dominant_bound"]:
            b = s["dominant_bound"][phase]
            rows.append((f"{phase} bound (op time)", f"{b} ({s['bound_share'][phase][b]:.0%})"))
    fill = pipeline_fill(s)
    if fill is not None:
        rows.append(("decode stages busy, most", f"{fill[0]:,} of {fill[1]:,} ({fill[0] / fill[1]:.0%})"))
    util = s["utilisation"]
    for kind in KINDS:
        u = util.get("decode", util.get("prefill", {})).get(kind)
        rows.append((f"decode util: {kind}", "-" if u is None else f"{u:.1%}"))
    per_step = s["bytes_per_decode_step"]
    for level in LEVELS:
        if per_step.get(level):
            rows.append((f"{level} per decode step", _bytes(per_step[level])))
    energy = s.get("energy") or {}
    if "decode" in energy:
        rows.append(("J/token (decode)", f"{energy['decode']['j_per_token']:.3f}"))
        rows.append(("power while decoding (W)", f"{energy['decode']['watts']:,.0f}"))
    chips = s.get("chips", 1)
    if chips > 1:
        rows.append(("chips", f"{chips}"))
        plan = s.get("plan") or {}
        if plan.get("mapping") == "temporal":
            layout = " × ".join(f"{k} {plan[k]}" for k in ("tp", "pp", "ep", "dp") if plan.get(k, 1) > 1)
            rows.append(("parallel layout", f"{layout or 'one chip'} ({plan['topology']})"))
        links = (s.get("link_utilisation") or {}).get("decode") or {}
        if links:
            rows.append(("busiest link, decode", f"{max(links.values()):.1%}"))
    if s.get("fast") and s.get("decode_steps_simulated") is not None:
        rows.append(("decode steps simulated", f"{s['decode_steps_simulated']:,} of {s['decode_steps']:,} (fast)"))
    rows.append(("tasks simulated", f"{s['tasks']:,}"))
    return rows


def rows_for(r: Result) -> list[tuple[str, str]]:
    """The table rows of one run."""
    return summary_rows(r.summary())


def comparison_grid(summaries: list[dict]) -> tuple[str, list[str], list[list[str]]]:
    """Runs side by side from their summaries: a title, the header (a blank cell, then one
    system per column) and the body (a metric label, then one value per run). The text table
    and the HTML report both draw this grid."""
    columns = [dict(summary_rows(s)) for s in summaries]
    labels = list(dict.fromkeys(label for c in columns for label in c))
    labels.sort(key=lambda label: label == "tasks simulated")  # stable: keeps the rest in order
    header = [""] + [s["system"] for s in summaries]
    body = [[label] + [c.get(label, "-") for c in columns] for label in labels]
    s = summaries[0]
    title = (f"{s['model']}: batch {s['batch']}, prompt {s['prompt']}, generate {s['generate']}, "
             f"{formats_text(s['dtype'], s.get('kv_dtype'))}")
    return title, header, body


def comparison_tables(summaries: list[dict]) -> list[Table]:
    """The comparison grid of ``summaries`` as a table (what ``compare`` prints and reports)."""
    title, header, body = comparison_grid(summaries)
    return [Table(title, header, body)]


def comparison_table(results: list[Result]) -> str:
    """One row per metric, one column per system, as text."""
    return render_text(comparison_tables([r.summary() for r in results]))
