"""The terminal table of the ``open-vs-closed`` study, drawn from its results document."""

from __future__ import annotations

SHOWN_LIFETIMES_MONTHS = (3, 6, 12, 24, 36)


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _usd(x: float) -> str:
    """Dollars with enough significant figures to compare cents and thousandths of a cent."""
    return f"{x:,.2f}" if x >= 1 else f"{x:.4f}"


def text_table(doc: dict) -> str:
    """One row per system: speed, capacity, energy, reach over the zoo and $/Mtok; then $/Mtok by
    model lifetime, and which models the narrowest chips can run."""
    rows = doc["systems"]
    w = _width(rows)
    econ = doc["economics"]
    n_zoo = len(rows[0]["zoo_runs"]) + len(rows[0]["zoo_cannot"]) if rows else 0
    life = f"{econ['model_lifetime_months']:g}"
    lora = doc["adapters"]
    title = f"open vs closed: {doc['model']}, prompt {doc['prompt']}, generate {doc['generate']}, {doc['dtype']}"
    if lora:
        title += f", LoRA rank {lora['rank']} on {'/'.join(lora['targets'])}"
    lines = [title, ""]
    head = (f"{'system':<{w}}{'chips':>6}{'tok/s/user':>12}{'max batch':>11}{'tok/s total':>13}"
            f"{'J/tok b=1':>11}{'J/tok max':>11}{'zoo':>8}{'$/Mtok':>10}{f'@{life}mo':>10}")
    lines += [head, "-" * len(head)]
    for r in rows:
        batch = f"{r['largest_batch']:,}" + ("+" if r["batch_capped"] else "")
        lines.append(
            f"{_label(r):<{w}}{r['chips']:>6,}{r['tokens_per_s_per_user']:>12,.0f}{batch:>11}"
            f"{r['tokens_per_s']:>13,.0f}{_num(r['j_per_token'], '.4f'):>11}"
            f"{_num(r['j_per_token_at_largest_batch'], '.4f'):>11}{len(r['zoo_runs']):>4}/{n_zoo:<3}"
            f"{_usd(r['usd_per_mtok_full_life']):>10}{_usd(r['usd_per_mtok']):>10}")
    lines += ["", (f"$/Mtok by model lifetime (months; service life {econ['service_life_months']:g}, "
                   f"utilisation {econ['utilisation']:.0%}, electricity ${econ['electricity_usd_per_kwh']:g}/kWh)")]
    shown = [m for m in SHOWN_LIFETIMES_MONTHS if f"{m:g}" in (rows[0]["usd_per_mtok_by_lifetime"] if rows else {})]
    lines.append(f"{'system':<{w}}" + "".join(f"{m:>10}" for m in shown))
    for r in rows:
        curve = r["usd_per_mtok_by_lifetime"]
        lines.append(f"{_label(r):<{w}}" + "".join(f"{_usd(curve[f'{m:g}']):>10}" for m in shown))
    lines += _silicon_lines(rows, w)
    narrow = [r for r in rows if len(r["zoo_runs"]) <= 3]
    if narrow:
        lines.append("")
        lines += [f"{_label(r)} runs only: {', '.join(r['zoo_runs']) or 'none'}" for r in narrow]
    lines += ["", "tok/s/user: batch 1. tok/s total: at the largest batch that fits ('+': capped at max_batch).",
              "J/tok: decode energy per generated token, '-' where the chip has no energy spec.",
              (f"$/Mtok: over the full service life; @{life}mo: the model superseded after {life} months "
               "(a hardwired chip's capex then spans only that)."),
              *doc["notes"][:1]]
    return "\n".join(lines)


def _label(row: dict) -> str:
    """A system's name in the tables: a path given in the scenario shows as its file's stem."""
    name = row["system"]
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if name.endswith((".yaml", ".yml")) else name


def _width(rows: list[dict]) -> int:
    return max([15] + [len(_label(r)) + 2 for r in rows])


def _silicon_lines(rows: list[dict], w: int) -> list[str]:
    """Die area (estimated and public) and, where the scenario prices silicon, the build cost."""
    if not any(r.get("area_mm2_estimate") for r in rows):
        return []
    head = (f"{'system':<{w}}{'node':>10}{'mm² est':>9}{'mm² pub':>9}{'dies/wafer':>11}{'yield':>7}"
            f"{'$/die':>9}{'$/chip built':>13}{'$/Mtok @build':>14}")
    lines = ["", "silicon (docs/area.md): die area estimated from the blocks beside the public one; build cost", head]
    for r in rows:
        built = r.get("build_usd") is not None
        per_wafer = format(r["dies_per_wafer"], ",") if built else "-"
        yld = format(r["yield"], ".0%") if built else "-"
        at_build = _usd(r["usd_per_mtok_at_build_cost"]) if built else "-"
        lines.append(
            f"{_label(r):<{w}}{r.get('process_node') or '-':>10}{_num(r.get('area_mm2_estimate'), ',.0f'):>9}"
            f"{_num(r.get('area_mm2_public'), ',.0f'):>9}{per_wafer:>11}{yld:>7}"
            f"{_num(r.get('die_usd'), ',.0f'):>9}{_num(r.get('build_usd'), ',.0f'):>13}{at_build:>14}")
    return lines
