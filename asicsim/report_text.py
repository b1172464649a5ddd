"""Terminal tables: runs side by side, one column per system."""

from __future__ import annotations

from asicsim.api import Result

KINDS = ("matmul", "vector", "dma", "hbm", "sram")
LEVELS = ("hbm_read", "hbm_write", "sram_read", "sram_write", "rom_read", "link")


def _num(x: float | None, fmt: str = "{:,.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _bytes(x: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if x >= scale:
            return f"{x / scale:,.2f} {unit}"
    return f"{x:,.0f} B"


def rows_for(r: Result) -> list[tuple[str, str]]:
    m = r.metrics
    rows = [("TTFT (ms)", _num(m.ttft_ms)), ("TPOT (ms)", _num(m.tpot_ms, "{:,.3f}")),
            ("tokens/s per user", _num(m.tokens_per_s_per_user, "{:,.0f}")),
            ("tokens/s (all users)", _num(m.tokens_per_s, "{:,.0f}"))]
    for phase in ("prefill", "decode"):
        if phase in m.dominant_bound:
            b = m.dominant_bound[phase]
            rows.append((f"{phase} bound", f"{b} ({m.bound_share[phase][b]:.0%})"))
    for kind in KINDS:
        u = m.utilisation.get("decode", m.utilisation.get("prefill", {})).get(kind)
        rows.append((f"decode util: {kind}", "-" if u is None else f"{u:.1%}"))
    per_step = m.bytes_per_decode_step
    for level in LEVELS:
        if per_step.get(level):
            rows.append((f"{level} per decode step", _bytes(per_step[level])))
    energy = r.energy or {}
    if "decode" in energy:
        rows.append(("J/token (decode)", f"{energy['decode']['j_per_token']:.3f}"))
        rows.append(("power while decoding (W)", f"{energy['decode']['watts']:,.0f}"))
    chips = r.program.meta.get("chips", 1)
    if chips > 1:
        rows.append(("chips", f"{chips}"))
    rows.append(("tasks simulated", f"{r.program.n_tasks:,}"))
    return rows


def comparison_table(results: list[Result]) -> str:
    """One row per metric, one column per system."""
    columns = [dict(rows_for(r)) for r in results]
    labels: list[str] = []
    for r in results:
        for label, _ in rows_for(r):
            if label not in labels:
                labels.append(label)
    labels.sort(key=lambda label: label == "tasks simulated")  # stable: keeps the rest in order
    header = [""] + [r.system.name for r in results]
    body = [[label] + [c.get(label, "-") for c in columns] for label in labels]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    fmt = lambda row: "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)  # noqa: E731
                                for i, (cell, w) in enumerate(zip(row, widths)))
    lines = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in body]
    w = results[0].workload
    title = (f"{results[0].model.name}: batch {w.batch}, prompt {w.prompt}, generate {w.generate}, "
             f"{w.dtype.value}")
    return "\n".join([title, ""] + lines)
