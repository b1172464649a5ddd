"""Study ``context-scaling``: decode time and cache memory as the context grows.

For each model and context length, one decode step is simulated right after a prompt of that
length; the table gives TPOT and the KV cache plus fixed state one sequence holds. Full
attention grows linearly with context; sliding windows stop at the window; recurrent layers hold
a fixed state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from asicsim.api import run
from asicsim.compile import Workload
from asicsim.compile.placement import numerics_for
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.scenario import StudyOutput, resolve_model, resolve_system, study


class ContextScalingSpec(Spec):
    """Models × context lengths on one system, batch ``batch``."""

    kind: Literal["context-scaling"]
    name: str
    description: str = ""
    system: str
    models: list[str] = Field(min_length=1)
    contexts: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    batch: int = Field(1, ge=1)
    dtype: DType = DType.BF16


@study("context-scaling", ContextScalingSpec)
def run_context_scaling(spec: ContextScalingSpec, path: Path, progress) -> StudyOutput:
    system = resolve_system(path, spec.system, "system")
    rows = []
    for i, name in enumerate(spec.models):
        model = resolve_model(path, name, f"models.{i}")
        for context in spec.contexts:
            progress(f"{name} @ {context}")
            wl = Workload(batch=spec.batch, prompt=context, generate=2, dtype=spec.dtype)
            num = numerics_for(wl, system.chip)
            row = {"model": name, "context": context,
                   "kv_bytes": model.kv_bytes(spec.batch, context, num),
                   "state_bytes": model.state_bytes(spec.batch, num)}
            try:
                m = run(model, system, wl).metrics
                row.update(tpot_ms=m.tpot_ms, bound=m.dominant_bound["decode"],
                           hbm_read_per_step=m.bytes_per_decode_step.get("hbm_read", 0.0))
            except InputError as e:
                row.update(tpot_ms=None, bound="does not fit", reason=e.reason)
            rows.append(row)
    return StudyOutput(_table(spec, rows), {"system": system.name, "rows": rows})


def _table(spec: ContextScalingSpec, rows: list[dict]) -> str:
    head = f"{'model':<22}" + "".join(f"{c:>11,}" for c in spec.contexts)
    lines = [f"decode TPOT (ms) on {spec.system}, batch {spec.batch}, by context length", head]
    for name in spec.models:
        mine = [r for r in rows if r["model"] == name]
        lines.append(f"{name:<22}" + "".join(f"{r['tpot_ms']:>11.3f}" if r["tpot_ms"] else f"{'-':>11}"
                                             for r in mine))
    lines += ["", "KV cache + state per batch (MB)", head]
    for name in spec.models:
        mine = [r for r in rows if r["model"] == name]
        lines.append(f"{name:<22}" + "".join(f"{(r['kv_bytes'] + r['state_bytes']) / 1e6:>11,.1f}" for r in mine))
    return "\n".join(lines)


def write_figures(doc: dict, folder: Path) -> list[Path]:
    """TPOT and cache memory against context, one line per model (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r["model"] for r in doc["rows"]):
        mine = [r for r in doc["rows"] if r["model"] == name]
        ok = [r for r in mine if r["tpot_ms"]]
        axes[0].plot([r["context"] for r in ok], [r["tpot_ms"] for r in ok], marker="o", label=name)
        axes[1].plot([r["context"] for r in mine], [(r["kv_bytes"] + r["state_bytes"]) / 1e9 for r in mine],
                     marker="o", label=name)
    for ax, label in zip(axes, ("decode TPOT (ms)", "KV cache + state (GB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context (tokens)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"context scaling on {doc['system']}")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "context-scaling.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]
