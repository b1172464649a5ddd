"""Study ``serving``: one model served on several systems over a range of offered loads.

At each load (Poisson arrivals at ``rates`` requests per second; the same seeded request stream
shape at every rate) each system serves ``requests`` requests with the chosen scheduler
(:mod:`asicsim.serving`); the table gives throughput, tail latencies and goodput under the SLO,
the figure the throughput-latency curve, and the headline the highest load each system carries
with every request within the SLO. Step costs are simulated once per shape and shared across
loads. A ``systems`` entry may be a disaggregated pair (``prefill``/``decode``: prefill on one
system, decode on another, the KV cache moved over a link). With an ``economics`` section (the
fields of ``open-vs-closed``'s), a second table prices a million tokens at the highest load
within the SLO (:mod:`asicsim.studies.economics`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, Tag

from asicsim import serving
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.scenario import KVFormat, StudyOutput, resolve_model, resolve_system, study
from asicsim.studies.economics import amortisation_months, cost_per_mtok
from asicsim.studies.open_closed import EconomicsSpec
from asicsim.tables import Table, render_text


class SLOSpec(Spec):
    ttft_ms: float = Field(serving.SLO_TTFT_MS, gt=0, description="Time to first token limit (ms).")
    tpot_ms: float = Field(serving.SLO_TPOT_MS, gt=0, description="Time per output token limit (ms).")
    within: Literal["every request", "p99"] = Field(
        "every request", description="When a load counts as within the SLO: every request meets both limits, "
                                     "or (MLPerf Inference's server rule) the 99th percentiles of TTFT and of TPOT "
                                     "are each within their limit.")


class GroupSpec(Spec):
    """One replica's chips and split: ``chips`` of ``system``'s kind on its network, split ``tp`` x
    ``pp`` (``ep`` for MoE layers) as ``serve --chips/--tp/--pp/--ep`` split them."""

    system: str = Field(description="Preset name or chip/system YAML path.")
    chips: int | None = Field(None, ge=1, description="Chips of the system's kind (default: the system's own).")
    tp: int | None = Field(None, ge=1, description="Tensor-parallel ranks (default: the chips the others leave).")
    pp: int | None = Field(None, ge=1, description="Pipeline stages (default 1).")
    ep: int | None = Field(None, ge=1, description="Expert-parallel ranks: 1 or equal to tp (default 1).")

    def layout(self) -> dict:
        return {k: v for k, v in (("chips", self.chips), ("tp", self.tp), ("pp", self.pp), ("ep", self.ep))
                if v is not None}

    @property
    def label(self) -> str:
        split = "".join(f" {k}{v}" for k, v in (("tp", self.tp), ("pp", self.pp), ("ep", self.ep)) if v)
        chips = f" x{self.chips}" if self.chips and not split else ""
        return f"{self.system}{chips}{split}"


class ReplicasSpec(GroupSpec):
    """``replicas`` copies of one replica (``system`` split over ``chips``) behind one queue, each
    request dispatched to the copy with the fewest outstanding requests (serve --replicas)."""

    replicas: int = Field(1, ge=1, description="Copies of the replica behind one queue.")
    name: str | None = Field(None, description="The name in tables (default: system, split and 'xN replicas').")

    @property
    def label(self) -> str:
        return self.name or GroupSpec.label.fget(self) + (f" x{self.replicas} replicas" if self.replicas > 1 else "")


class PairSpec(Spec):
    """Disaggregated serving: ``prefill`` on one system, ``decode`` on another, each with its own
    queue and KV budget, each request's KV cache moved between them over a link."""

    prefill: str | GroupSpec = Field(description="Preset name or chip/system YAML path that prefills, or "
                                     "{system, chips, tp, pp, ep}.")
    decode: str | GroupSpec = Field(description="Preset name or chip/system YAML path that decodes, or "
                                    "{system, chips, tp, pp, ep}.")
    name: str | None = Field(None, description="The name in tables (default: 'P prefill + D decode').")
    link_gbps: float = Field(serving.KV_LINK_GBPS, gt=0, description="The KV link's GB/s one way (default "
                             "PCIe Gen5 x16 at peak, docs/sources.md K1).")
    link_latency_us: float = Field(serving.KV_LINK_LATENCY_NS / 1e3, ge=0,
                                   description="The KV link's latency per transfer (default an assumption, K1).")
    replicas: int = Field(1, ge=1, description="Copies of the pair behind one queue, each request to the pair "
                          "with the fewest outstanding.")

    @property
    def label(self) -> str:
        return self.name or (f"{_label(self.prefill)} prefill + {_label(self.decode)} decode"
                             + (f" x{self.replicas} pairs" if self.replicas > 1 else ""))

    def groups(self) -> list[tuple[GroupSpec, str]]:
        return [(_group(self.prefill), "prefill"), (_group(self.decode), "decode")]


def _group(entry: str | GroupSpec) -> GroupSpec:
    return GroupSpec(system=entry) if isinstance(entry, str) else entry


def _label(entry) -> str:
    return entry if isinstance(entry, str) else entry.label


def _groups(entry) -> list[tuple[GroupSpec, str | None]]:
    """An entry's groups and the field naming each (None: the entry is a plain string)."""
    if isinstance(entry, PairSpec):
        return entry.groups()
    return [(_group(entry), None)]


def _entry_kind(v) -> str:
    """Which form a ``systems`` entry takes, so a bad entry is reported against that form alone."""
    if isinstance(v, str):
        return "name"
    keys = set(v) if isinstance(v, dict) else set(type(v).model_fields) if isinstance(v, Spec) else set()
    return "pair" if isinstance(v, PairSpec) or keys & {"prefill", "decode"} else "replicas"


SystemEntry = Annotated[Union[Annotated[str, Tag("name")], Annotated[ReplicasSpec, Tag("replicas")],
                              Annotated[PairSpec, Tag("pair")]], Discriminator(_entry_kind)]


class ServingSpec(Spec):
    """``model`` served on each of ``systems`` at each offered load of ``rates``."""

    kind: Literal["serving"]
    name: str
    description: str = ""
    model: str = Field(description="A shipped model name or a config.json path.")
    systems: list[SystemEntry] = Field(
        min_length=1, description="Preset names or chip/system YAML paths; {system, chips, tp, pp, ep, replicas, "
        "name} for a split and copies behind one queue; or disaggregated pairs {prefill: P, decode: D} (each a name "
        "or {system, chips, tp, pp, ep}).")
    rates: list[float] = Field(min_length=1, description="Offered loads, requests per second (Poisson).")
    requests: int = Field(200, ge=1, le=100_000, description="Requests served at each load.")
    prompt: int | tuple[int, int] = Field(512, description="Prompt tokens, or [low, high] drawn uniformly.")
    output: int | tuple[int, int] = Field(128, description="Output tokens, or [low, high] drawn uniformly.")
    lengths: Literal["openorca", "sharegpt", "fixed-128-128", "fixed-1000-1000", "fixed-2048-2048"] | None = Field(
        None, description="Draw prompt and output lengths from a public benchmark's statistics instead "
                          "(serve --lengths; docs/serving.md).")
    dtype: DType = Field(DType.BF16, description="Number format of weights and compute (w8a16: weight-only int8), "
                                                 "as serve --dtype.")
    kv_dtype: KVFormat = Field(None, description="Number format of the KV cache: bf16, fp16, fp8 or int8 (null: "
                                                 "8-bit for fp8 and int8, else 16-bit), as serve --kv-dtype.")
    scheduler: Literal["static", "continuous", "chunked"] = Field(
        "continuous", description="For single systems; a pair decodes continuously and prefills in batches "
                                  "(static, continuous) or in chunks of `chunk` tokens (chunked).")
    chunk: int = Field(serving.DEFAULT_CHUNK, ge=1, description="chunked: tokens per iteration (a pair's prefill "
                                                                "group: prompt tokens per step).")
    kv_cache: Literal["reserved", "paged"] = Field("reserved", description="The KV reserved in full at admission, "
                                                   "or paged (preempting when full); a pair's decode group's.")
    page_tokens: int = Field(serving.DEFAULT_PAGE_TOKENS, ge=1, description="paged: tokens per KV page.")
    preemption: Literal["recompute", "swap"] = Field(
        "recompute", description="paged, single systems: a preempted request's KV recomputed, or swapped to host "
                                 "memory and back over host_link_gbps (a pair's decode group recomputes).")
    host_link_gbps: float = Field(serving.KV_LINK_GBPS, gt=0, description="swap: each chip's host link, GB/s one "
                                  "way (default PCIe Gen5 x16 at peak, docs/sources.md K1).")
    max_batch: int | None = Field(None, ge=1, description="Sequences in a batch at most (null: what fits, <= 256).")
    bucket: int = Field(serving.DEFAULT_BUCKET, ge=1, description="Contexts rounded up to this many tokens.")
    slo: SLOSpec = SLOSpec()
    burstiness: float = Field(1.0, gt=0, le=100, description="Coefficient of variation of the gaps between "
                                                            "arrivals: 1 is Poisson, above 1 gamma bursts.")
    seed: int = 0
    step_costs: Literal["simulated", "interpolated"] = Field(
        "simulated", description="simulated: every step shape (batch, context bucket) is a predict run; "
                                 "interpolated: predict runs at a few (batch, context) corners, interpolated "
                                 "linearly between them, as the request-load validation rows are "
                                 "(asicsim/serving.py GridCosts): far fewer runs for big batches.")
    steady_state: bool = Field(False, description="Also report each run's steady-state tokens/s, from a quarter of "
                               "the way to the last admission until it (after the warm-up, before the drain; "
                               "asicsim/serving.py steady_throughput).")
    economics: EconomicsSpec | None = Field(None, description="Prices, power and lifetimes (as in open-vs-closed; "
                                            "chips keyed by each system or pair part's name): adds $/Mtoken at "
                                            "the SLO.")


@study("serving", ServingSpec)
def run_serving(spec: ServingSpec, path: Path, progress) -> StudyOutput:
    model = resolve_model(path, spec.model)
    for i, rate in enumerate(spec.rates):
        if not rate > 0:
            raise InputError(str(path), f"rates.{i}", f"a load must be a positive rate, got {rate}")
    pairs = None
    if spec.lengths is not None:
        from asicsim.serving_lengths import preset

        pairs = preset(spec.lengths).draw(spec.requests, spec.seed)
    if spec.preemption == "swap" and spec.kv_cache != "paged":
        raise InputError(str(path), "preemption", "swap needs kv_cache: paged (a reserved cache holds every admitted "
                         "request's whole KV, so nothing is ever preempted)")
    labels = [_label(e) for e in spec.systems]
    if spec.economics is not None:
        _check_prices(spec, path)
    if len(set(labels)) != len(labels):
        raise InputError(str(path), "systems", "two entries have the same name; give a pair a distinct 'name'")
    rows, parts, occupancy = [], {}, {}
    host_link = serving.KVLink(spec.host_link_gbps)
    for i, entry in enumerate(spec.systems):
        label = _label(entry)
        replicas = entry.replicas if isinstance(entry, (ReplicasSpec, PairSpec)) else 1
        groups = []
        try:
            for g, role in _groups(entry):
                fld = f"systems.{i}" + (f".{role}" if role else "")
                plain = isinstance(entry, str) or (role and isinstance(getattr(entry, role), str))
                system = resolve_system(path, g.system, fld if plain else f"{fld}.system")
                try:
                    costs, budget = serving.group(model, system, bucket=spec.bucket, dtype=spec.dtype.value,
                                                  kv_dtype=spec.kv_dtype.value if spec.kv_dtype else None,
                                                  costs=_grid(spec, model, system, g, pairs), **g.layout())
                except InputError as e:
                    if e.source.startswith("--") or e.source == "parallel layout":  # an impossible split
                        raise InputError(str(path), fld, e.reason) from None
                    raise
                groups.append((g.system, costs.system, costs, budget))
        except InputError as e:
            if e.source == str(path):  # the scenario names no such system, or an impossible split
                raise
            rows.append({"system": label, "rate": None, "fits": False, "reason": e.reason})
            continue
        parts[label] = [(name, system, budget.chips * replicas) for name, system, _, budget in groups]
        for rate in spec.rates:
            progress(f"{label} at {rate:g} req/s")
            wl = serving.poisson(rate, spec.requests, prompt=spec.prompt, output=spec.output, seed=spec.seed,
                                 burstiness=spec.burstiness, lengths=pairs)
            if not isinstance(entry, PairSpec):
                (_, _, costs, budget), = groups
                r = serving.simulate(wl, costs, budget, scheduler=spec.scheduler, max_batch=spec.max_batch,
                                     slo_ttft_ms=spec.slo.ttft_ms, slo_tpot_ms=spec.slo.tpot_ms, chunk=spec.chunk,
                                     kv_cache=spec.kv_cache, page_tokens=spec.page_tokens, replicas=replicas,
                                     preemption=spec.preemption, host_link=host_link)
            else:
                link = serving.KVLink(entry.link_gbps, entry.link_latency_us * 1e3)
                r = serving.simulate_disaggregated(wl, groups[0][2:], groups[1][2:], link, max_batch=spec.max_batch,
                                                   slo_ttft_ms=spec.slo.ttft_ms, slo_tpot_ms=spec.slo.tpot_ms,
                                                   kv_cache=spec.kv_cache, page_tokens=spec.page_tokens,
                                                   prefill_chunk=spec.chunk if spec.scheduler == "chunked" else None,
                                                   replicas=replicas)
            rows.append({"system": label, "rate": rate, "fits": True, **r.metrics})
            if not isinstance(entry, PairSpec):
                rows[-1].update({"chips": budget.chips, **budget.split})
            if spec.steady_state:

                rows[-1]["steady_tokens_per_s"] = serving.steady_throughput(r)
            if rate == max(spec.rates):
                occupancy[label] = over_time(r, rate)
    best = best_loads(rows, spec.slo.within)
    doc = {"model": model.name, "scheduler": spec.scheduler, "slo": spec.slo.model_dump(), "rows": rows,
           **({"step_costs": "interpolated"} if spec.step_costs == "interpolated" else {}),
           "best": best, "highest_rate": max(spec.rates), "occupancy": occupancy}
    if spec.economics is not None:
        doc["costs"] = slo_costs(spec, path, rows, best, parts)
    return StudyOutput(render_text(tables(doc)), doc)


def _grid(spec: ServingSpec, model, system, g: GroupSpec, pairs) -> serving.StepCosts | None:
    """With ``step_costs: interpolated``, the validation rows' interpolated step costs for one group:
    corners at batch 1 and the batch cap, contexts 64 to 2,048 tokens and the longest request."""
    if spec.step_costs != "interpolated":
        return None
    from asicsim.api import system as load_system

    layout = {k: v for k, v in g.layout().items() if k != "chips"}
    grid = serving.GridCosts(model, load_system(system, g.chips), dtype=spec.dtype.value, layout=layout,
                             kv_dtype=spec.kv_dtype.value if spec.kv_dtype else None)
    grid.batches.add(spec.max_batch or serving.MAX_BATCH_CAP)
    if pairs is not None:
        longest = max(p + o for p, o in pairs)
    else:
        top = [v[1] if isinstance(v, (tuple, list)) else v for v in (spec.prompt, spec.output)]
        longest = top[0] + top[1]
    grid.contexts.update({*serving.VARIABLE_CONTEXTS, longest})
    return grid


def _check_prices(spec: ServingSpec, path: Path) -> None:
    """Every system and pair part priced, with a power (a serving run does not simulate energy)."""
    for entry in spec.systems:
        for name in [g.system for g, _ in _groups(entry)]:
            price = spec.economics.chips.get(name)
            if price is None:
                raise InputError(str(path), "economics.chips", f"prices no '{name}' (used by {_label(entry)}); give "
                                 "chip_price_usd, power_w and their sources for every system and pair part")
            if price.power_w is None:
                raise InputError(str(path), f"economics.chips.{name}.power_w",
                                 "is needed here: a serving study does not simulate power; give the chip's "
                                 "board power and its source")


def slo_costs(spec: ServingSpec, path: Path, rows: list[dict], best: dict, parts: dict) -> list[dict]:
    """Per system (or pair), what a million tokens cost at the highest load it carried with every
    request within the SLO: each part's chips priced and powered as ``economics`` says, the capex
    of a hardwired part spread over the model's lifetime (:mod:`asicsim.studies.economics`)."""
    econ = spec.economics
    out = []
    for label, ps in parts.items():
        rate = best.get(label)
        row = next((r for r in rows if r["system"] == label and r["rate"] == rate), None) if rate else None
        item = {"system": label, "rate": rate, "chips": [[n, c] for n, _, c in ps],
                "capex_usd": sum(econ.chips[n].chip_price_usd * c for n, _, c in ps),
                "power_w": sum(econ.chips[n].power_w * c for n, _, c in ps),
                "tokens_per_s": row["throughput_tokens_per_s"] if row else None,
                "usd_per_mtok": None, "capex_usd_per_mtok": None, "energy_usd_per_mtok": None}
        if row:
            capex = energy = 0.0
            for name, system, chips in ps:
                price = econ.chips[name]
                months = amortisation_months(system.chip.rom is not None, econ.service_life_months,
                                             econ.model_lifetime_months)
                c = cost_per_mtok(price.chip_price_usd * chips, months, price.power_w * chips,
                                  item["tokens_per_s"], econ.electricity_usd_per_kwh, econ.utilisation)
                capex += c.capex_usd_per_mtok
                energy += c.energy_usd_per_mtok
            item.update({"usd_per_mtok": capex + energy, "capex_usd_per_mtok": capex, "energy_usd_per_mtok": energy})
        out.append(item)
    return out


def over_time(r: serving.ServeResult, rate: float, points: int = 200) -> dict:
    """The KV cache held (as a share of the budget) and the requests admitted over a run, in
    ``points`` even bins, each the most held or admitted in it (a short burst still shows); a
    pair's are its decode group's."""
    import numpy as np

    log = np.array(r.kv_log, dtype=float)
    t = log[:, 0]
    edges = np.linspace(0.0, t[-1], points + 1)
    kv, n = np.zeros(points), np.zeros(points)
    start = np.clip(np.searchsorted(t, edges[:-1], side="right") - 1, 0, None)  # in force at each bin's start
    kv[:], n[:] = log[start, 1], log[start, 2]
    inside = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, points - 1)  # each sample's bin
    np.maximum.at(kv, inside, log[:, 1])

    np.maximum.at(n, inside, log[:, 2])
    cap = r.metrics["kv_capacity_gb"] * 1e9 * r.metrics.get("replicas", 1)  # the log sums the replicas'
    return {"rate": rate, "t_s": (edges[:-1] / 1e9).round(6).tolist(),
            "kv_share": (kv / cap).round(6).tolist(), "admitted": n.astype(int).tolist()}


def best_loads(rows: list[dict], within: str = "every request") -> dict[str, float | None]:
    """Per system, the highest offered load within the SLO (None: none was): every request met it, or
    with ``within="p99"`` the p99 TTFT and p99 TPOT were each within their limit."""
    out: dict[str, float | None] = {}
    for r in rows:
        out.setdefault(r["system"], None)
        if not r["fits"]:
            continue
        if within == "p99":
            ok = r["ttft_p99_ms"] <= r["slo_ttft_ms"] and (r["tpot_p99_ms"] or 0.0) <= r["slo_tpot_ms"]
        else:
            ok = r["slo_attainment"] == 1.0
        if ok and (out[r["system"]] is None or r["rate"] > out[r["system"]]):
            out[r["system"]] = r["rate"]
    return out


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def tables(doc: dict, scenario: dict | None = None) -> list[Table]:
    slo = doc["slo"]
    body, notes = [], []
    for r in doc["rows"]:
        if not r["fits"]:
            notes.append(f"{r['system']} cannot serve {doc['model']}: {r['reason'][:160]}")
            continue
        steady = "steady_tokens_per_s" in r
        body.append([r["system"], f"{r['rate']:g}", f"{r['request_rate_per_s']:.2f}",
                     f"{r['throughput_tokens_per_s']:,.0f}",
                     *([f"{r['steady_tokens_per_s']:,.0f}"] if steady else []),
                     _ms(r["ttft_p50_ms"]), _ms(r["ttft_p99_ms"]),
                     _ms(r["tpot_p50_ms"]), _ms(r["tpot_p99_ms"]), f"{100 * r['slo_attainment']:.0f}%",
                     f"{r['goodput_tokens_per_s']:,.0f}", f"{r['mean_batch']:.1f}" if r["mean_batch"] else "-"])
    p99 = slo.get("within") == "p99"
    within = "p99 TTFT and p99 TPOT within the SLO" if p99 else "every request within the SLO"
    for system, rate in doc["best"].items():
        notes.append(f"{system}: " + (f"{within} up to {rate:g} req/s offered" if rate
                                      else f"no load tried kept {within}"))
    how = ("interpolated between simulated (batch, context) corners (asicsim/serving.py GridCosts)"
           if doc.get("step_costs") == "interpolated" else "simulated per shape (contexts bucketed)")
    notes.append(f"SLO: TTFT <= {slo['ttft_ms']:g} ms and TPOT <= {slo['tpot_ms']:g} ms; goodput counts the "
                 f"tokens of requests that meet it. Step costs are {how}; "
                 "see docs/serving.md for what is approximated.")
    if any("steady_tokens_per_s" in r for r in doc["rows"]):
        notes.append("steady tok/s: output tokens per second from a quarter of the way to the last admission until "
                     "it, after the warm-up from an empty system and before the drain "
                     "(asicsim/serving.py steady_throughput); tok/s counts the whole run, drain included.")
    steady = any("steady_tokens_per_s" in r for r in doc["rows"])
    header = ["system", "offered/s", "served/s", "tok/s", *(["steady tok/s"] if steady else []), "TTFT p50",
              "TTFT p99", "TPOT p50", "TPOT p99", "in SLO", "goodput tok/s", "batch"]
    out = [Table(f"serving {doc['model']} ({doc['scheduler']} batching): throughput and latency by load",
                 header, body, notes, labels=1)]
    if doc.get("costs"):
        out.append(cost_table(doc))
    return out


def _usd(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}" if x < 1 else f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def cost_table(doc: dict) -> Table:
    """$/Mtoken at the highest load each system carried within the SLO, and whether a pair beats its parts."""
    body, notes = [], []
    by = {c["system"]: c for c in doc["costs"]}
    for c in doc["costs"]:
        chips = " + ".join(f"{n} x{k}" if k > 1 else n for n, k in c["chips"])
        top = c["rate"] is not None and c["rate"] == doc.get("highest_rate")
        body.append([c["system"], chips, "-" if c["rate"] is None else f"{c['rate']:g}" + ("+" if top else ""),
                     "-" if c["tokens_per_s"] is None else f"{c['tokens_per_s']:,.0f}", f"{c['capex_usd']:,.0f}",
                     f"{c['power_w']:,.0f}", _usd(c["capex_usd_per_mtok"]), _usd(c["energy_usd_per_mtok"]),
                     _usd(c["usd_per_mtok"])])
        if len(c["chips"]) == 2 and c["usd_per_mtok"] is not None:
            alone = {n: by[n]["usd_per_mtok"] for n, _ in c["chips"] if n in by}
            if alone:
                beats = [n for n, v in alone.items() if v is None or c["usd_per_mtok"] < v]
                verdict = ("cheaper per token than " + " and ".join(beats) + " alone" if len(beats) == len(alone)
                           else "not cheaper than " + " or ".join(n for n in alone if n not in beats) + " alone")
                notes.append(f"{c['system']}: ${_usd(c['usd_per_mtok'])}/Mtoken at the SLO, against "
                             + ", ".join(f"{n} alone ${_usd(v)}" for n, v in alone.items()) + f": {verdict}")
    notes.append("At the highest offered load with every request of the run within the SLO; tok/s is what the "
                 "system delivered there (output tokens from the first arrival to the last finish, the drain "
                 "included). '+': within the SLO at the highest load tried. $/Mtoken: chips' "
                 "capex over their service life (a hardwired chip's over the model's lifetime) plus board power at "
                 "the scenario's electricity price, both at its utilisation (asicsim/studies/economics.py); prices "
                 "and powers are the scenario's, each with its source. '-': no load tried was within the SLO.")
    header = ["system", "chips", "load/s", "tok/s", "capex $", "power W", "capex $/Mtok", "energy $/Mtok",
              "$/Mtok"]
    return Table(f"cost per million tokens at the SLO ({doc['model']})", header, body, notes, labels=1)


def write_figures(doc: dict, folder: Path) -> list[Path]:
    """Throughput against p99 end-to-end latency, one curve per system over the loads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for system in dict.fromkeys(r["system"] for r in doc["rows"]):
        pts = [(r["throughput_tokens_per_s"], r["latency_p99_ms"]) for r in doc["rows"]
               if r["system"] == system and r["fits"]]
        if pts:
            ax.plot(*zip(*pts), "o-", label=system)
    ax.set_xlabel("throughput (tokens/s)")
    ax.set_ylabel("p99 end-to-end latency (ms)")
    ax.set_yscale("log")
    ax.set_title(f"serving {doc['model']}: throughput vs latency")
    ax.legend(loc="best")
    fig.tight_layout()
    paths = [folder / "serving.png", folder / "serving.svg"]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    if doc.get("occupancy"):
        paths += _occupancy_figure(doc, folder, plt)
    return paths


def _occupancy_figure(doc: dict, folder: Path, plt) -> list[Path]:
    """KV cache held (% of each system's budget) and requests admitted over the run at the highest load."""
    fig, (kv, n) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True)
    for system, s in doc["occupancy"].items():
        kv.step(s["t_s"], [100 * x for x in s["kv_share"]], where="post", label=system)
        n.step(s["t_s"], s["admitted"], where="post", label=system)
    kv.set_ylabel("KV cache held (% of budget)")
    n.set_ylabel("requests admitted")
    n.set_xlabel("simulated time (s)")
    rate = next(iter(doc["occupancy"].values()))["rate"]
    kv.set_title(f"serving {doc['model']} at {rate:g} req/s: KV cache and batch over time")
    n.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    paths = [folder / "serving_kv.png", folder / "serving_kv.svg"]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths
