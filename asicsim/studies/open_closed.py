"""Study ``open-vs-closed``: programmable chips against a chip that hardwires one model.

For each system, with the scenario's model: tokens/s per user at batch 1; aggregate tokens/s at
the largest batch that fits; joules per token; the chips the model takes; which models of the
shipped zoo the chip can run at all; and what a million tokens cost, and how that cost moves
when the model is superseded after N months (see :mod:`asicsim.studies.economics`).

Runs stay cheap: ``generate`` can be small (8), because TPOT is the mean decode step right after
the prompt and the context grows by only ``generate`` tokens over the run. On a spatial chip each
sequence is its own micro-batch and its per-stage work does not depend on the batch, so aggregate
throughput stops growing once every stage is busy; there the large-batch run simulates
``min(largest batch, 2 × stages)`` sequences (``simulated_batch``), which gives the same
tokens/s as the largest batch at a fraction of the events.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from asicsim.api import Result, run
from asicsim.compile import Adapters, Workload, check_run
from asicsim.compile.adapters import DEFAULT_TARGETS
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware import System
from asicsim.hardware.spec import Fraction, Mapping, Positive, Spec
from asicsim.model import ModelSpec, load_model
from asicsim.model.hf import MODELS_DIR
from asicsim.scenario import StudyOutput, resolve_model, resolve_system, study
from asicsim.studies.economics import amortisation_months, build_cost, cost_per_mtok, lifetime_curve
from asicsim.studies.open_closed_plots import figure_specs, write_figures  # noqa: F401  (the CLI's hook)
from asicsim.studies.open_closed_table import tables
from asicsim.tables import render_text


class ChipEconomics(Spec):
    """What one chip costs to buy, and (optionally) what it draws; each number with its source
    (a citation, or ``assumption: ...``). Without ``power_w`` the study uses the simulated average power at the largest batch."""

    chip_price_usd: Positive
    source: str = Field(min_length=1)
    power_w: Positive | None = None
    power_source: str = ""
    packaging_usd: float | None = Field(None, ge=0)
    packaging_source: str = ""

    @model_validator(mode="after")
    def _power_has_source(self) -> ChipEconomics:
        if self.power_w is not None and not self.power_source:
            raise ValueError("power_w needs a power_source")
        if self.packaging_usd is not None and not self.packaging_source:
            raise ValueError("packaging_usd needs a packaging_source")
        return self


class SiliconSpec(Spec):
    """What a chip costs to build (docs/area.md): good dies from wafers (dies per wafer, a yield
    model and the node's defect density), the package (``packaging_usd`` of each system) and its
    HBM at ``hbm_usd_per_gb``. ``wafer_usd`` and ``defect_density_per_cm2`` override, by process
    node, the defaults of ``asicsim/hardware/nodes.py``."""

    yield_model: Literal["murphy", "negative_binomial"] = "murphy"
    hbm_usd_per_gb: float = Field(ge=0)
    hbm_source: str = Field(min_length=1)
    wafer_usd: dict[str, Positive] = {}
    defect_density_per_cm2: dict[str, Annotated[float, Field(ge=0)]] = {}
    overrides_source: str = ""

    @model_validator(mode="after")
    def _known_nodes(self) -> SiliconSpec:
        from asicsim.hardware.nodes import NODES

        unknown = sorted((set(self.wafer_usd) | set(self.defect_density_per_cm2)) - set(NODES))
        if unknown:
            raise ValueError(f"no process node {', '.join(unknown)}; known nodes: {', '.join(sorted(NODES))}")
        if (self.wafer_usd or self.defect_density_per_cm2) and not self.overrides_source:
            raise ValueError("wafer_usd and defect_density_per_cm2 overrides need an overrides_source")
        return self


class EconomicsSpec(Spec):
    """Electricity price, service life, utilisation and model lifetime, each with its source, and
    one :class:`ChipEconomics` per system (keyed as the system is written in ``systems``)."""

    electricity_usd_per_kwh: float = Field(ge=0)
    electricity_source: str = Field(min_length=1)
    service_life_months: Positive
    service_life_source: str = Field(min_length=1)
    utilisation: Fraction
    utilisation_source: str = Field(min_length=1)
    model_lifetime_months: Positive
    model_lifetime_source: str = Field(min_length=1)
    chips: dict[str, ChipEconomics]
    silicon: SiliconSpec | None = None


class AdapterSpec(Spec):
    """LoRA-style adapters of ``rank`` on the projections named in ``targets``."""

    rank: int = Field(ge=1)
    targets: tuple[str, ...] = Field(DEFAULT_TARGETS, min_length=1)


class OpenClosedSpec(Spec):
    """``model`` on each of ``systems``: speed, capacity, reach over the zoo, and cost per token."""

    kind: Literal["open-vs-closed"]
    name: str
    description: str = ""
    model: str
    prompt: int = Field(512, ge=1)
    generate: int = Field(8, ge=2)
    dtype: DType = DType.BF16
    systems: list[str] = Field(min_length=1)
    max_batch: int = Field(4096, ge=1)
    adapters: AdapterSpec | None = None
    lifetimes_months: list[Annotated[float, Field(gt=0)]] = Field([3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36], min_length=1)
    economics: EconomicsSpec

    @model_validator(mode="after")
    def _every_system_priced(self) -> OpenClosedSpec:
        missing = [s for s in self.systems if s not in self.economics.chips]
        extra = [s for s in self.economics.chips if s not in self.systems]
        if missing or extra:
            raise ValueError("economics.chips must price exactly the systems listed"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; not in systems: {', '.join(extra)}" if extra else ""))
        return self

    def workload(self) -> Workload:
        """Batch 1 of the scenario's prompt, generate, dtype and adapters."""
        lora = Adapters(self.adapters.rank, self.adapters.targets) if self.adapters else None
        return Workload(1, self.prompt, self.generate, self.dtype, adapters=lora)


def largest_batch(model: ModelSpec, system: System, workload: Workload, max_batch: int) -> int:
    """The largest batch, up to ``max_batch``, that fits on the chips a batch of one takes:
    doubling until a batch does not fit, then bisecting. "Does not fit" is an InputError from
    :func:`check_run` (compile_run's refusals, without building) or a call for more chips."""
    chips = check_run(model, system, replace(workload, batch=1))

    def fits(batch: int) -> bool:
        try:
            return check_run(model, system, replace(workload, batch=batch)) == chips
        except InputError:
            return False

    lo, hi = 1, 2
    while hi <= max_batch and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, max_batch + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def zoo_reach(system: System, workload: Workload) -> dict[str, int | None]:
    """For each shipped model (``models/*.json``): the chips a batch-1 run of ``workload``'s
    context takes on ``system``, or None where the chip cannot run it at all. Compile checks only;
    nothing is simulated."""
    reach: dict[str, int | None] = {}
    for path in sorted(MODELS_DIR.glob("*.json"), key=lambda p: p.stem):
        try:
            reach[path.stem] = check_run(load_model(path.stem), system, replace(workload, batch=1, adapters=None))
        except InputError:
            reach[path.stem] = None
    return reach


def _j_per_token(r: Result) -> float | None:
    return r.energy["decode"]["j_per_token"] if r.energy and "decode" in r.energy else None


def _measure(spec: OpenClosedSpec, path: Path, i: int, model: ModelSpec, system: System) -> tuple[dict, Result]:
    """One system's row: batch-1 and largest-batch runs, zoo reach, economics."""
    name, wl = spec.systems[i], spec.workload()
    price = spec.economics.chips[name]
    if price.power_w is None and system.chip.energy is None:
        raise InputError(str(path), f"economics.chips.{name}.power_w",
                         f"{system.chip.name} has no energy spec to derive its power from; give power_w")
    try:
        one = run(model, system, wl)
    except InputError as e:
        raise InputError(str(path), f"systems.{i}", f"{name} cannot run {model.name}: {e.reason}") from None
    fit = largest_batch(model, system, wl, spec.max_batch)
    stages = one.plan.stages
    simulated = min(fit, 2 * stages) if system.chip.mapping is Mapping.SPATIAL else fit
    big = one if simulated == 1 else run(model, system, replace(wl, batch=simulated))
    chips = one.plan.chips
    power_w = price.power_w * chips if price.power_w else big.energy["decode"]["watts"]
    hardwired = system.chip.rom is not None
    econ = spec.economics
    tps = big.metrics.tokens_per_s
    capex = price.chip_price_usd * chips
    months = amortisation_months(hardwired, econ.service_life_months, econ.model_lifetime_months)
    cost = cost_per_mtok(capex, months, power_w, tps, econ.electricity_usd_per_kwh, econ.utilisation)
    full = cost_per_mtok(capex, econ.service_life_months, power_w, tps, econ.electricity_usd_per_kwh,
                         econ.utilisation)
    curve = lifetime_curve(hardwired, capex, power_w, tps, econ.electricity_usd_per_kwh, econ.utilisation,
                           econ.service_life_months, spec.lifetimes_months)
    reach = zoo_reach(system, wl)
    silicon = _silicon(spec, name, system)
    build = silicon.get("build_usd")
    if build is not None:
        silicon["usd_per_mtok_at_build_cost"] = cost_per_mtok(
            build * chips, months, power_w, tps, econ.electricity_usd_per_kwh, econ.utilisation).usd_per_mtok
    row = {
        "system": name, "chip": system.chip.name, "mapping": system.chip.mapping.value, "hardwired": hardwired,
        "chips": chips, "stages": stages,
        "ttft_ms": one.metrics.ttft_ms, "tpot_ms": one.metrics.tpot_ms,
        "tokens_per_s_per_user": one.metrics.tokens_per_s_per_user,
        "decode_bound": one.metrics.dominant_bound.get("decode"),
        "hbm_read_per_decode_step": one.metrics.bytes_per_decode_step.get("hbm_read", 0.0),
        "largest_batch": fit, "batch_capped": fit == spec.max_batch, "simulated_batch": simulated,
        "tokens_per_s": tps, "tpot_ms_at_largest_batch": big.metrics.tpot_ms,
        "j_per_token": _j_per_token(one), "j_per_token_at_largest_batch": _j_per_token(big),
        "power_w": power_w, "power_source": price.power_source if price.power_w else "simulated (decode, largest batch)",
        "zoo_runs": [m for m, n in reach.items() if n is not None],
        "zoo_cannot": [m for m, n in reach.items() if n is None],
        "zoo_chips": {m: n for m, n in reach.items() if n is not None},
        "chip_price_usd": price.chip_price_usd, "price_source": price.source, "capex_usd": capex,
        "amortisation_months": months,
        "usd_per_mtok": cost.usd_per_mtok, "capex_usd_per_mtok": cost.capex_usd_per_mtok,
        "energy_usd_per_mtok": cost.energy_usd_per_mtok, "usd_per_mtok_full_life": full.usd_per_mtok,
        "usd_per_mtok_by_lifetime": dict(zip((f"{m:g}" for m in spec.lifetimes_months), curve)),
        **silicon,
    }
    return row, one


def _silicon(spec: OpenClosedSpec, name: str, system: System) -> dict:
    """The chip's area (estimated, and public where known) and, when the scenario has a ``silicon``
    section and the system a ``packaging_usd``, what one chip costs to build. The die area used is
    the public one where there is one, else the estimate."""
    from asicsim.hardware.area import estimate_area
    from asicsim.hardware.nodes import NODES

    chip = system.chip
    est = estimate_area(chip)
    out: dict = {"process_node": chip.die.process_node if chip.die else None,
                 "area_mm2_estimate": est.total_mm2 if est else None, "area_mm2_public": chip.area_mm2,
                 "build_usd": None}
    sil, price = spec.economics.silicon, spec.economics.chips[name]
    if sil is None or est is None or price.packaging_usd is None:
        return out
    node = NODES[chip.die.process_node]
    total = chip.area_mm2 or est.total_mm2
    hbm_gb = chip.hbm.capacity_gb if chip.hbm else 0.0
    cost = build_cost(total / est.dies, est.dies,
                      sil.wafer_usd.get(node.name, node.wafer_usd),
                      sil.defect_density_per_cm2.get(node.name, node.defect_density_per_cm2),
                      price.packaging_usd, hbm_gb, sil.hbm_usd_per_gb, sil.yield_model)
    out.update({"die_area_basis": "public" if chip.area_mm2 else "estimate", "die_mm2": cost.die_mm2,
                "dies_per_chip": cost.dies, "dies_per_wafer": cost.dies_per_wafer, "yield": cost.yield_fraction,
                "die_usd": cost.die_usd, "packaging_usd": cost.packaging_usd, "hbm_usd": cost.hbm_usd,
                "build_usd": cost.usd})
    return out


@study("open-vs-closed", OpenClosedSpec)
def run_open_closed(spec: OpenClosedSpec, path: Path, progress) -> StudyOutput:
    """Measure every system, then price its tokens; the doc carries the numbers and the figures."""
    model = resolve_model(path, spec.model)
    rows, results = [], []
    for i, name in enumerate(spec.systems):
        system = resolve_system(path, name, f"systems.{i}")
        progress(name)
        row, result = _measure(spec, path, i, model, system)
        rows.append(row)
        results.append(result)
    lora = spec.adapters.model_dump(mode="json") if spec.adapters else None
    doc = {"model": model.name, "prompt": spec.prompt, "generate": spec.generate, "dtype": spec.dtype.value,
           "adapters": lora, "economics": spec.economics.model_dump(mode="json", exclude={"chips"}),
           "lifetimes_months": spec.lifetimes_months, "systems": rows,
           "notes": [
               (f"TPOT is the mean decode step over the {spec.generate - 1} steps after a {spec.prompt}-token "
                "prompt; it barely depends on generate, so a short generate keeps runs cheap."),
               ("Aggregate tokens/s: the largest batch that fits on the chips batch 1 takes (at most "
                f"max_batch = {spec.max_batch}); spatial chips simulate min(largest, 2 x stages) sequences, "
                "past which their throughput is flat."),
               ("$/Mtok: chip capex amortised over the service life (a hardwired chip: over the model's "
                "lifetime, if shorter) plus electricity while serving, per generated token at the "
                "largest-batch decode throughput x utilisation. Prompt processing time, host, network, "
                "cooling and mask re-spin costs are not counted."),
               ("Build cost (economics.silicon): good dies from wafers (gross dies per wafer, the yield model "
                "at the node's defect density; the public die area where there is one, else the estimate), "
                "plus package and HBM; no harvesting of partly defective dies, no masks, no margin. "
                "'$/Mtok @build' prices the chips at that cost instead of their street price (docs/area.md)."),
           ]}
    doc["figures"] = figure_specs(doc)
    return StudyOutput(render_text(tables(doc)), doc, results)
