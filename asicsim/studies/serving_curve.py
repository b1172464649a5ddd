"""Study ``serving``: one model served on several systems over a range of offered loads.

At each load (Poisson arrivals at ``rates`` requests per second; the same seeded request stream
shape at every rate) each system serves ``requests`` requests with the chosen scheduler
(:mod:`asicsim.serving`); the table gives throughput, tail latencies and goodput under the SLO,
the figure the throughput-latency curve, and the headline the highest load each system carries
with every request within the SLO. Step costs are simulated once per shape and shared across
loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from asicsim import serving
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.scenario import StudyOutput, resolve_model, resolve_system, study
from asicsim.tables import Table, render_text


class SLOSpec(Spec):
    ttft_ms: float = Field(serving.SLO_TTFT_MS, gt=0, description="Time to first token limit (ms).")
    tpot_ms: float = Field(serving.SLO_TPOT_MS, gt=0, description="Time per output token limit (ms).")


class ServingSpec(Spec):
    """``model`` served on each of ``systems`` at each offered load of ``rates``."""

    kind: Literal["serving"]
    name: str
    description: str = ""
    model: str = Field(description="A shipped model name or a config.json path.")
    systems: list[str] = Field(min_length=1, description="Preset names or chip/system YAML paths.")
    rates: list[float] = Field(min_length=1, description="Offered loads, requests per second (Poisson).")
    requests: int = Field(200, ge=1, le=100_000, description="Requests served at each load.")
    prompt: int | tuple[int, int] = Field(512, description="Prompt tokens, or [low, high] drawn uniformly.")
    output: int | tuple[int, int] = Field(128, description="Output tokens, or [low, high] drawn uniformly.")
    lengths: Literal["openorca", "sharegpt", "fixed-128-128", "fixed-1000-1000", "fixed-2048-2048"] | None = Field(
        None, description="Draw prompt and output lengths from a public benchmark's statistics instead "
                          "(serve --lengths; docs/serving.md).")
    dtype: DType = Field(DType.BF16, description="Number format of weights, KV cache and compute.")
    scheduler: Literal["static", "continuous"] = "continuous"
    max_batch: int | None = Field(None, ge=1, description="Sequences in a batch at most (null: what fits, <= 256).")
    bucket: int = Field(serving.DEFAULT_BUCKET, ge=1, description="Contexts rounded up to this many tokens.")
    slo: SLOSpec = SLOSpec()
    burstiness: float = Field(1.0, gt=0, le=100, description="Coefficient of variation of the gaps between "
                                                            "arrivals: 1 is Poisson, above 1 gamma bursts.")
    seed: int = 0


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
    rows = []
    for i, name in enumerate(spec.systems):
        system = resolve_system(path, name, f"systems.{i}")
        costs = serving.StepCosts(model, system, bucket=spec.bucket, dtype=spec.dtype.value)
        try:
            budget = serving.kv_budget(model, system, spec.dtype.value)
        except InputError as e:
            rows.append({"system": name, "rate": None, "fits": False, "reason": e.reason})
            continue
        for rate in spec.rates:
            progress(f"{name} at {rate:g} req/s")
            wl = serving.poisson(rate, spec.requests, prompt=spec.prompt, output=spec.output, seed=spec.seed,
                                 burstiness=spec.burstiness, lengths=pairs)
            r = serving.simulate(wl, costs, budget, scheduler=spec.scheduler, max_batch=spec.max_batch,
                                 slo_ttft_ms=spec.slo.ttft_ms, slo_tpot_ms=spec.slo.tpot_ms)
            rows.append({"system": name, "rate": rate, "fits": True, **r.metrics})
    doc = {"model": model.name, "scheduler": spec.scheduler, "slo": spec.slo.model_dump(), "rows": rows,
           "best": best_loads(rows)}
    return StudyOutput(render_text(tables(doc)), doc)


def best_loads(rows: list[dict]) -> dict[str, float | None]:
    """Per system, the highest offered load at which every request met the SLO (None: none did)."""
    out: dict[str, float | None] = {}
    for r in rows:
        out.setdefault(r["system"], None)
        if r["fits"] and r["slo_attainment"] == 1.0 and (out[r["system"]] is None or r["rate"] > out[r["system"]]):
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
        body.append([r["system"], f"{r['rate']:g}", f"{r['request_rate_per_s']:.2f}",
                     f"{r['throughput_tokens_per_s']:,.0f}", _ms(r["ttft_p50_ms"]), _ms(r["ttft_p99_ms"]),
                     _ms(r["tpot_p50_ms"]), _ms(r["tpot_p99_ms"]), f"{100 * r['slo_attainment']:.0f}%",
                     f"{r['goodput_tokens_per_s']:,.0f}", f"{r['mean_batch']:.1f}" if r["mean_batch"] else "-"])
    for system, rate in doc["best"].items():
        notes.append(f"{system}: " + (f"every request within the SLO up to {rate:g} req/s offered" if rate
                                      else "no load tried kept every request within the SLO"))
    notes.append(f"SLO: TTFT <= {slo['ttft_ms']:g} ms and TPOT <= {slo['tpot_ms']:g} ms; goodput counts the "
                 "tokens of requests that meet it. Step costs are simulated per shape (contexts bucketed); "
                 "see docs/serving.md for what is approximated.")
    header = ["system", "offered/s", "served/s", "tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
              "in SLO", "goodput tok/s", "batch"]
    return [Table(f"serving {doc['model']} ({doc['scheduler']} batching): throughput and latency by load",
                  header, body, notes, labels=1)]


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
    return paths
