"""Study ``scale-out``: one model split over more and more chips, and how fast the links must be.

Each *setup* is a system (a preset name or a YAML path), optionally resized (``chips``), with
its network fields overridden (``network``, e.g. a torus's ``dims``) and a parallel layout
(``tp``, ``pp``, ``ep``, ``dp``); a setup that cannot hold the model is listed with the reason.
The *link sweep* runs one system with its chip-to-chip bandwidth set to each value given: where
does tensor parallelism stop paying?
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from asicsim.api import run
from asicsim.dtypes import DType, formats_text
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.hardware.system import System, SystemSpec, build_system, merged_network
from asicsim.scenario import StudyOutput, WorkloadSpec, resolve_model, resolve_system, study
from asicsim.tables import Table, render_text


class SetupSpec(Spec):
    """One system the model runs on, sized and split as given."""

    system: str = Field(description="A preset name or a system/chip YAML path.")
    chips: int | None = Field(None, ge=1, description="How many chips of its kind (null: the system's).")
    network: dict | None = Field(None, description="NetworkSpec fields over the system's network, e.g. {dims: [4, 4]}.")
    tp: int | None = Field(None, ge=1, description="Tensor-parallel ranks (null: all chips the rest leave).")
    pp: int | None = Field(None, ge=1, description="Pipeline stages.")
    ep: int | None = Field(None, ge=1, description="Expert-parallel ranks.")
    dp: int | None = Field(None, ge=1, description="Data-parallel replicas.")
    dtype: DType | None = Field(None, description="Number format, overriding the workload's.")
    label: str | None = Field(None, description="The setup's name in the table (default: system and chips).")


class LinkSweepSpec(Spec):
    """One setup run with its chip-to-chip links at each bandwidth (GB/s each way)."""

    setup: SetupSpec
    bandwidth_gbps: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, description="Link bandwidths to try, GB/s each way.")


class ScaleOutSpec(Spec):
    """``model`` with ``workload`` on each setup, then the link sweep."""

    kind: Literal["scale-out"]
    name: str
    description: str = ""
    model: str
    workload: WorkloadSpec = WorkloadSpec()
    setups: list[SetupSpec] = Field(min_length=1)
    link_sweep: LinkSweepSpec | None = None

    @field_validator("workload")
    @classmethod
    def _decodes(cls, workload: WorkloadSpec) -> WorkloadSpec:
        if workload.generate < 2:
            raise ValueError("generate must be at least 2: the study compares decode steps (TPOT)")
        return workload


def _system(path: Path, setup: SetupSpec, where: str, bandwidth: float | None = None) -> System:
    base = resolve_system(path, setup.system, f"{where}.system")
    override = dict(setup.network or {})
    if bandwidth is not None:
        override["bandwidth_gbps"] = bandwidth
    count = setup.chips or len(base.chips)
    if count == len(base.chips) and not override:
        return base
    net = merged_network(base.chip, {**(base.network.model_dump(exclude_defaults=True) if base.network else {}),
                                     **override}, str(path)) if (base.network or override) else None
    return build_system(SystemSpec(name=f"{base.chip.name} x{count}", chip=base.chip, count=count, network=net),
                        str(path))


def _row(label: str, model, system: System, spec: ScaleOutSpec, setup: SetupSpec) -> dict:
    wl = spec.workload.model_copy(update={k: getattr(setup, k) for k in ("tp", "pp", "ep", "dp", "dtype")
                                          if getattr(setup, k) is not None}).workload()
    row = {"setup": label, "chips": len(system.chips), "dtype": wl.dtype.value}
    try:
        r = run(model, system, wl)
    except InputError as e:
        return row | {"fits": False, "reason": e.reason}
    s = r.summary()
    links = s["link_utilisation"].get("prefill", {})
    return row | {"fits": True, "layout": s["plan"], "ttft_ms": s["ttft_ms"], "tpot_ms": s["tpot_ms"],
                  "tokens_per_s_per_user": s["tokens_per_s_per_user"],
                  "tokens_per_s_per_chip": s["tokens_per_s_all_replicas"] / r.plan.chips,
                  "busiest_link": max(links.values()) if links else None}


@study("scale-out", ScaleOutSpec)
def run_scale_out(spec: ScaleOutSpec, path: Path, progress) -> StudyOutput:
    model = resolve_model(path, spec.model)
    rows, sweep = [], []
    for i, setup in enumerate(spec.setups):
        system = _system(path, setup, f"setups.{i}")
        label = setup.label or f"{setup.system} x{len(system.chips)}"
        progress(label)
        rows.append(_row(label, model, system, spec, setup))
    if spec.link_sweep is not None:
        for gbps in spec.link_sweep.bandwidth_gbps:
            system = _system(path, spec.link_sweep.setup, "link_sweep.setup", gbps)
            progress(f"links at {gbps:g} GB/s")
            sweep.append(_row(f"{gbps:g} GB/s", model, system, spec, spec.link_sweep.setup) | {"bandwidth_gbps": gbps})
    doc = {"model": model.name, "rows": rows, "link_sweep": sweep}
    return StudyOutput(render_text(tables(doc, spec.model_dump(mode="json"))), doc)


def _layout(row: dict) -> str:
    p = row["layout"]
    parts = [f"{k} {p[k]}" for k in ("tp", "pp", "ep", "dp") if p[k] > 1]
    return " × ".join(parts) or "one chip"


def _busy(row: dict) -> str:
    return f"{row['busiest_link']:.0%}" if row["busiest_link"] is not None else "-"


def tables(doc: dict, scenario: dict) -> list[Table]:
    """One row per setup; then, when there is a link sweep, one row per bandwidth."""
    w = scenario.get("workload") or {}
    header = ["setup", "chips", "dtype", "layout", "TTFT ms", "TPOT ms", "tok/s/user", "tok/s/chip",
              "busiest link, prefill"]
    body, notes = [], []
    for r in doc["rows"]:
        formats = formats_text(r["dtype"], w.get("kv_dtype"))  # the KV format too, where not the default
        if not r["fits"]:
            body.append([r["setup"], f"{r['chips']}", formats, "refused"] + ["-"] * 5)
            notes.append(f"{r['setup']} refused: {r['reason']}")
            continue
        body.append([r["setup"], f"{r['chips']}", formats, _layout(r), f"{r['ttft_ms']:.2f}",
                     f"{r['tpot_ms']:.3f}", f"{r['tokens_per_s_per_user']:,.1f}",
                     f"{r['tokens_per_s_per_chip']:,.1f}", _busy(r)])
    title = (f"{doc['model']}: batch {w.get('batch', 1)}, prompt {w.get('prompt', 512)}, "
             f"generate {w.get('generate', 128)}")
    out = [Table(title, header, body, notes, left=(2, 3))]
    sweep = doc.get("link_sweep") or []
    if sweep:
        best = min((r["tpot_ms"] for r in sweep if r["fits"]), default=None)
        first = min((r["ttft_ms"] for r in sweep if r["fits"]), default=None)
        body, notes = [], []
        for r in sweep:
            if not r["fits"]:
                body.append([f"{r['bandwidth_gbps']:g}"] + ["-"] * 5)
                notes.append(f"{r['bandwidth_gbps']:g} GB/s refused: {r['reason']}")
                continue
            body.append([f"{r['bandwidth_gbps']:g}", f"{r['ttft_ms']:.2f}", f"{r['ttft_ms'] / first:.2f}",
                         f"{r['tpot_ms']:.3f}", f"{r['tpot_ms'] / best:.2f}", _busy(r)])
        system = ((scenario.get("link_sweep") or {}).get("setup") or {}).get("system", "")
        out.append(Table(f"link sweep on {system}: chip-to-chip GB/s each way",
                         ["GB/s", "TTFT ms", "TTFT / best", "TPOT ms", "TPOT / best", "busiest link, prefill"],
                         body, notes, labels=0))
    return out


def write_figures(doc: dict, folder: Path) -> list[Path]:
    """TPOT and TTFT against chips per setup, and TPOT against link bandwidth (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in doc["rows"] if r["fits"]]
    sweep = [r for r in doc["link_sweep"] if r["fits"]]
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(11 if sweep else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.barh([r["setup"] for r in ok], [r["tpot_ms"] for r in ok], color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlabel("decode time per token, TPOT (ms)")
    ax.grid(axis="x", alpha=0.3)
    if sweep:
        ax = axes[0][1]
        bw = [r["bandwidth_gbps"] for r in sweep]
        for key, label in (("ttft_ms", "time to first token"), ("tpot_ms", "time per output token")):
            best = min(r[key] for r in sweep)
            ax.plot(bw, [r[key] / best for r in sweep], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("chip-to-chip link, GB/s each way")
        ax.set_ylabel("time / fastest in the sweep")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"scaling {doc['model']} out")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "scale-out.png"
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return [out]
