"""The tables of the ``open-vs-closed`` study, drawn from its results document (the terminal and
the report show the same)."""

from __future__ import annotations

from asicsim.tables import Table

SHOWN_LIFETIMES_MONTHS = (3, 6, 12, 24, 36)


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _usd(x: float) -> str:
    """Dollars with enough significant figures to compare cents and thousandths of a cent."""
    return f"{x:,.2f}" if x >= 1 else f"{x:.4f}"


def tables(doc: dict, scenario: dict | None = None) -> list[Table]:
    """One row per system: speed, capacity, energy, reach over the zoo and $/Mtok; then $/Mtok by
    model lifetime, and which models the narrowest chips can run."""
    rows = doc["systems"]
    econ = doc["economics"]
    n_zoo = len(rows[0]["zoo_runs"]) + len(rows[0]["zoo_cannot"]) if rows else 0
    life = f"{econ['model_lifetime_months']:g}"
    lora = doc["adapters"]
    title = f"open vs closed: {doc['model']}, prompt {doc['prompt']}, generate {doc['generate']}, {doc['dtype']}"
    if lora:
        title += f", LoRA rank {lora['rank']} on {'/'.join(lora['targets'])}"
    header = ["system", "chips", "tok/s/user", "max batch", "tok/s total", "J/tok b=1", "J/tok max", "zoo",
              "$/Mtok", f"@{life}mo"]
    body = []
    for r in rows:
        batch = f"{r['largest_batch']:,}" + ("+" if r["batch_capped"] else "")
        body.append([_label(r), f"{r['chips']:,}", f"{r['tokens_per_s_per_user']:,.0f}", batch,
                     f"{r['tokens_per_s']:,.0f}", _num(r["j_per_token"], ".4f"),
                     _num(r["j_per_token_at_largest_batch"], ".4f"), f"{len(r['zoo_runs'])}/{n_zoo}",
                     _usd(r["usd_per_mtok_full_life"]), _usd(r["usd_per_mtok"])])
    narrow = [r for r in rows if len(r["zoo_runs"]) <= 3]
    notes = [f"{_label(r)} runs only: {', '.join(r['zoo_runs']) or 'none'}" for r in narrow]
    notes += ["tok/s/user: batch 1. tok/s total: at the largest batch that fits ('+': capped at max_batch).",
              "J/tok: decode energy per generated token, '-' where the chip has no energy spec.",
              (f"$/Mtok: over the full service life; @{life}mo: the model superseded after {life} months "
               "(a hardwired chip's capex then spans only that)."),
              *doc["notes"][:1]]
    main = Table(title, header, body, notes)
    curve_keys = rows[0]["usd_per_mtok_by_lifetime"] if rows else {}
    shown = [m for m in SHOWN_LIFETIMES_MONTHS if f"{m:g}" in curve_keys]
    by_life = Table(
        (f"$/Mtok by model lifetime (months; service life {econ['service_life_months']:g}, "
         f"utilisation {econ['utilisation']:.0%}, electricity ${econ['electricity_usd_per_kwh']:g}/kWh)"),
        ["system"] + [f"{m} mo" for m in shown],
        [[_label(r)] + [_usd(r["usd_per_mtok_by_lifetime"][f"{m:g}"]) for m in shown] for r in rows])
    silicon = _silicon(rows)
    return [main, by_life] + ([silicon] if silicon else [])


def _label(row: dict) -> str:
    """A system's name in the tables: a path given in the scenario shows as its file's stem."""
    name = row["system"]
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if name.endswith((".yaml", ".yml")) else name


def _silicon(rows: list[dict]) -> Table | None:
    """Die area (estimated and public) and, where the scenario prices silicon, the build cost."""
    if not any(r.get("area_mm2_estimate") for r in rows):
        return None
    body = []
    for r in rows:
        built = r.get("build_usd") is not None
        body.append([_label(r), r.get("process_node") or "-", _num(r.get("area_mm2_estimate"), ",.0f"),
                     _num(r.get("area_mm2_public"), ",.0f"), format(r["dies_per_wafer"], ",") if built else "-",
                     format(r["yield"], ".0%") if built else "-", _num(r.get("die_usd"), ",.0f"),
                     _num(r.get("build_usd"), ",.0f"), _usd(r["usd_per_mtok_at_build_cost"]) if built else "-"])
    return Table("silicon (docs/area.md): die area estimated from the blocks beside the public one; build cost",
                 ["system", "node", "mm² est", "mm² pub", "dies/wafer", "yield", "$/die", "$/chip built",
                  "$/Mtok @build"], body)
