"""The answer first: a few sentences computed from a results document (ratios between systems,
what bounds each phase, the winner per metric), which the HTML report puts at the top.

Every number here is read from the document; nothing is fixed per scenario. A kind without its
own sentences gets none (the report then opens with its tables).
"""

from __future__ import annotations

from collections.abc import Callable

CLOSE = 1.05  # within 5 %: "about as fast"


def num(x: float) -> str:
    """Three significant figures, thousands separated: 10.4, 5.61, 0.0913, 10,939."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def times(r: float) -> str:
    """A ratio ≥ 1 as "61×" or "3.0×"."""
    return f"{r:,.0f}×" if r >= 10 else f"{r:.1f}×"


def pipeline_fill(s: dict) -> tuple[int, int] | None:
    """On a spatial pipeline with more stages than sequences in flight: (the most stages that can
    work at once, the stages). A stage works on one sequence at a time, so with B sequences over S
    stages at most B/S of the blocks are busy while each busy one may be compute-bound: the bound
    row (a share of op time) and the utilisation rows (a share of all time) then differ by that
    much. None for temporal runs and for pipelines the batch fills."""
    plan = s.get("plan") or {}
    stages, in_flight = plan.get("stages", 1), plan.get("micro_batches", 1)
    if plan.get("mapping") != "spatial" or not stages or stages <= in_flight:
        return None
    return in_flight, stages


def headlines(doc: dict) -> list[str]:
    """The sentences that sum up ``doc`` (a results.json document), most important first."""
    scenario = doc.get("scenario")
    kind = scenario.get("kind", "compare") if isinstance(scenario, dict) else "compare"
    fn = KINDS.get(kind) if isinstance(kind, str) else None
    try:
        return fn(doc) if fn else []
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        return []  # a document this version cannot read: the tables below still show what it can


def _compare(doc: dict) -> list[str]:
    runs = doc["results"]
    out = []
    base = runs[0]
    for other in runs[1:]:
        out.append(_versus(other, base))
    if len(runs) == 1:
        r = runs[0]
        tpot = (f", then {num(r['tpot_ms'])} ms per token ({num(r['tokens_per_s_per_user'])} tokens/s per user)"
                if r["tpot_ms"] else "")
        out.append(f"{r['system']}: first token in {num(r['ttft_ms'])} ms{tpot}.")
    for phase in ("decode", "prefill"):
        bounds = [(r["system"], r["dominant_bound"][phase], r["bound_share"][phase][r["dominant_bound"][phase]])
                  for r in runs if phase in r["dominant_bound"]]
        if bounds:
            parts = [f"{b}-bound on {s} ({share:.0%}{' of op time' if not i else ''})"
                     for i, (s, b, share) in enumerate(bounds)]
            out.append(f"{phase.capitalize()} is " + _join(parts) + ".")
    for r in runs:
        fill = pipeline_fill(r)
        if fill is not None and "decode" in r["utilisation"]:
            busy = r["utilisation"]["decode"].get("matmul")
            out.append(f"On {r['system']}, {fill[0]:,} sequence{'s' if fill[0] != 1 else ''} in flight over "
                       f"{fill[1]:,} pipeline stages {'keeps' if fill[0] == 1 else 'keep'} at most {fill[0] / fill[1]:.0%} of the stages busy at once"
                       + (f" (matmul arrays busy {busy:.1%} of decode)" if busy is not None else "")
                       + ": its bound is what limits a stage while it works, not the whole chip.")
    if len(runs) > 1:
        out.append("Best per metric: " + "; ".join(_winners(runs)) + ".")
    return out


def _versus(a: dict, b: dict) -> str:
    """How ``a`` compares with ``b``: decode speed per user, then time to first token."""
    parts = []
    if a["tpot_ms"] and b["tpot_ms"]:
        r = b["tpot_ms"] / a["tpot_ms"]
        how = ("decodes about as fast per user as" if max(r, 1 / r) < CLOSE else
               f"decodes {times(r)} faster per user than" if r > 1 else f"decodes {times(1 / r)} slower per user than")
        parts.append(f"{a['system']} {how} {b['system']} (TPOT {num(a['tpot_ms'])} ms against "
                     f"{num(b['tpot_ms'])} ms)")
    r = a["ttft_ms"] / b["ttft_ms"]
    when = ("about as soon" if max(r, 1 / r) < CLOSE else f"{times(r)} later" if r > 1 else f"{times(1 / r)} sooner")
    subject = "its" if parts else f"{a['system']}'s"
    parts.append(f"{subject} first token comes {when} (TTFT {num(a['ttft_ms'])} ms against {num(b['ttft_ms'])} ms)")
    return "; ".join(parts) + "."


def _winners(runs: list[dict]) -> list[str]:
    metrics: list[tuple[str, Callable[[dict], float | None], bool, str]] = [
        ("lowest TTFT", lambda r: r["ttft_ms"], False, " ms"),
        ("lowest TPOT", lambda r: r["tpot_ms"], False, " ms"),
        ("most tokens/s (all users)", lambda r: r["tokens_per_s"], True, ""),
        ("least energy per token", lambda r: ((r.get("energy") or {}).get("decode") or {}).get("j_per_token"),
         False, " J"),
    ]
    out = []
    for label, get, high, unit in metrics:
        have = [(get(r), r["system"]) for r in runs if get(r) is not None]
        if len(have) < 2:
            continue
        value, system = max(have) if high else min(have)
        out.append(f"{label} {system} ({num(value)}{unit})")
    return out


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _best(rows: list[dict], key: str, high: bool = True) -> tuple[dict, dict | None]:
    """The best row by ``key`` and the runner-up (None when there is one row)."""
    have = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r[key], reverse=high)
    return have[0], (have[1] if len(have) > 1 else None)


def _open_closed(doc: dict) -> list[str]:
    rows = doc["systems"]
    life = f"{doc['economics']['model_lifetime_months']:g}"
    out = []
    top, second = _best(rows, "tokens_per_s_per_user")
    s = f"{top['system']} serves one user fastest: {num(top['tokens_per_s_per_user'])} tokens/s"
    if second:
        s += (f", {times(top['tokens_per_s_per_user'] / second['tokens_per_s_per_user'])} the next, "
              f"{second['system']} ({num(second['tokens_per_s_per_user'])})")
    out.append(s + ".")
    top, second = _best(rows, "tokens_per_s")
    capped = [r["system"] for r in rows if r["batch_capped"]]
    out.append(f"Most tokens/s in all: {top['system']}, {num(top['tokens_per_s'])} at batch "
               f"{top['largest_batch']:,} on {top['chips']:,} chip{'s' if top['chips'] != 1 else ''}"
               + (f" ({_join(capped)} stopped at max_batch, so {'its' if len(capped) == 1 else 'their'} "
                  "figure is a lower bound)." if capped else "."))
    top, second = _best(rows, "usd_per_mtok", high=False)
    full, _ = _best(rows, "usd_per_mtok_full_life", high=False)
    s = (f"Cheapest per million tokens when the model is superseded after {life} months: {top['system']} at "
         f"${num(top['usd_per_mtok'])}")
    if second:
        s += f" (next: {second['system']} at ${num(second['usd_per_mtok'])})"
    s += f"; over the full service life: {full['system']} at ${num(full['usd_per_mtok_full_life'])}."
    out.append(s)
    n_zoo = len(rows[0]["zoo_runs"]) + len(rows[0]["zoo_cannot"])
    widest = max(len(r["zoo_runs"]) for r in rows)
    narrowest = min(rows, key=lambda r: len(r["zoo_runs"]))
    out.append(f"Reach over the {n_zoo}-model zoo: up to {widest} models "
               f"({_join([r['system'] for r in rows if len(r['zoo_runs']) == widest])}); "
               f"{narrowest['system']} runs {len(narrowest['zoo_runs'])}.")
    return out


def _scale_out(doc: dict) -> list[str]:
    ok = [r for r in doc["rows"] if r["fits"]]
    out = []
    if ok:
        top, second = _best(ok, "tpot_ms", high=False)
        s = f"Fastest decode: {top['setup']} on {top['chips']} chips, TPOT {num(top['tpot_ms'])} ms"
        if second:
            s += f", {times(second['tpot_ms'] / top['tpot_ms'])} faster than {second['setup']}"
        out.append(s + ".")
        top, _ = _best(ok, "tokens_per_s_per_chip")
        out.append(f"Most tokens/s per chip: {top['setup']} ({num(top['tokens_per_s_per_chip'])}).")
    refused = [r["setup"] for r in doc["rows"] if not r["fits"]]
    if refused:
        out.append(f"Refused (does not fit): {', '.join(refused)}.")
    sweep = [r for r in doc.get("link_sweep") or [] if r["fits"]]
    if len(sweep) > 1:
        best = min(sweep, key=lambda r: r["tpot_ms"])
        slow = min(sweep, key=lambda r: r["bandwidth_gbps"])
        def vs_best(r: float) -> str:
            return f"within {100 * (r - 1):.0f} % of the best" if r < CLOSE else f"{times(r)} the best"

        out.append(f"Link sweep: at {slow['bandwidth_gbps']:g} GB/s, TTFT is "
                   f"{vs_best(slow['ttft_ms'] / min(r['ttft_ms'] for r in sweep))} and TPOT "
                   f"{vs_best(slow['tpot_ms'] / best['tpot_ms'])} (best at {best['bandwidth_gbps']:g} GB/s).")
    return out


def _context_scaling(doc: dict) -> list[str]:
    rows = doc["rows"]
    growth = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ok = [r for r in rows if r["model"] == model and r["tpot_ms"]]
        if len(ok) > 1:
            first, last = min(ok, key=lambda r: r["context"]), max(ok, key=lambda r: r["context"])
            growth.append((last["tpot_ms"] / first["tpot_ms"], model, first, last))
    out = []
    if growth:
        growth.sort(key=lambda g: g[0])
        hi = growth[-1]
        out.append(f"On {doc['system']}, decode TPOT of {hi[1]} grows {times(hi[0])} from context "
                   f"{hi[2]['context']:,} to {hi[3]['context']:,} ({num(hi[2]['tpot_ms'])} to {num(hi[3]['tpot_ms'])} ms).")
        if len(growth) > 1:
            lo = growth[0]
            how = times(lo[0]) if lo[0] >= CLOSE else f"within {100 * abs(lo[0] - 1):.0f} %"
            out.append(f"Least growth: {lo[1]}, {how} ({num(lo[2]['tpot_ms'])} to {num(lo[3]['tpot_ms'])} ms).")
    big = max(rows, key=lambda r: r["kv_bytes"] + r["state_bytes"])
    out.append(f"Largest cache: {big['model']} at context {big['context']:,}, "
               f"{num((big['kv_bytes'] + big['state_bytes']) / 1e9)} GB of KV cache and state.")
    refused = sum(1 for r in rows if not r["tpot_ms"])
    if refused:
        out.append(f"{refused} of {len(rows)} model/context pairs do not fit.")
    return out


def _sweep(doc: dict) -> list[str]:
    rows = doc["rows"]
    ok = [r for r in rows if r["ok"] and r.get("tpot_ms")]
    out = [f"{len([r for r in rows if r['ok']])} of {len(rows)} points ran ({doc['model']} on {doc['system']})."]
    if ok:
        lo = min(ok, key=lambda r: r["tpot_ms"])
        hi = max(ok, key=lambda r: r["tpot_ms"])

        def where(r: dict) -> str:
            return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in r["point"].items())

        out.append(f"Fastest decode: TPOT {num(lo['tpot_ms'])} ms at {where(lo)}; slowest "
                   f"{num(hi['tpot_ms'])} ms at {where(hi)} ({times(hi['tpot_ms'] / lo['tpot_ms'])}).")
    return out


def _serving(doc: dict) -> list[str]:
    best = doc["best"]
    carried = {s: r for s, r in best.items() if r}
    out = []
    if carried:
        top = max(carried, key=carried.get)
        out.append(f"Highest load with every request within the SLO: {top} at {carried[top]:g} requests/s "
                   f"({doc['model']}, {doc['scheduler']} batching).")
    for s, r in best.items():
        if not r:
            out.append(f"{s}: no load tried kept every request within the SLO.")
    return out


KINDS: dict[str, Callable[[dict], list[str]]] = {
    "compare": _compare, "open-vs-closed": _open_closed, "scale-out": _scale_out,
    "context-scaling": _context_scaling, "sweep": _sweep, "serving": _serving,
}

# The figure that answers the question, shown under the headline (the first PNG whose name
# starts with one of these; else the first PNG).
KEY_FIGURE = {
    "compare": "compare", "open-vs-closed": "open-vs-closed.usd_per_mtok_vs_model_lifetime",
    "scale-out": "scale-out", "context-scaling": "context-scaling", "serving": "serving",
}
