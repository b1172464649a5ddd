"""Study ``context-scaling``: decode time and cache memory as the context grows.

For each model and context length C, a prompt of C - 2 tokens and two generated tokens are
simulated, so the sequence holds C tokens at the end (a model trained for fewer is refused for that
column); the table gives TPOT and the KV cache plus fixed state one sequence holds. Full
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
from asicsim.tables import Table, render_text


class ContextScalingSpec(Spec):
    """Models × context lengths on one system, batch ``batch``."""

    kind: Literal["context-scaling"]
    name: str
    description: str = ""
    system: str
    models: list[str] = Field(min_length=1)
    contexts: list[Annotated[int, Field(ge=3)]] = Field(min_length=1)
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
            # the decode step runs at ``context`` tokens: a prompt of context - 2, then two tokens
            wl = Workload(batch=spec.batch, prompt=context - 2, generate=2, dtype=spec.dtype)
            num = numerics_for(wl, system.chip)
            row = {"model": name, "context": context,
                   "kv_bytes": model.kv_bytes(spec.batch, context, num),
                   "state_bytes": model.state_bytes(spec.batch, num)}
            try:
                m = run(model, system, wl).metrics
                row.update(tpot_ms=m.tpot_ms, bound=m.dominant_bound["decode"],
                           hbm_read_per_step=m.bytes_per_decode_step.get("hbm_read", 0.0))
            except InputError as e:
                beyond = e.field == "max_position_embeddings"
                row.update(tpot_ms=None, bound="beyond its context" if beyond else "does not fit", reason=e.reason)
                if beyond:  # no such sequence exists: no cache to report either
                    row.update(kv_bytes=None, state_bytes=None,
                               reason=f"beyond the {model.max_context:,} tokens it was trained for "
                                      f"(max_position_embeddings)")
            rows.append(row)
    doc = {"system": system.name, "rows": rows}
    return StudyOutput(render_text(tables(doc, spec.model_dump(mode="json"))), doc)


def tables(doc: dict, scenario: dict) -> list[Table]:
    """Decode TPOT by model and context, then the KV cache and state each needs."""
    rows = doc["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    contexts = list(dict.fromkeys(r["context"] for r in rows))
    header = ["model"] + [f"{c:,}" for c in contexts]
    cell = {(r["model"], r["context"]): r for r in rows}
    tpot = [[m] + [f"{cell[m, c]['tpot_ms']:.3f}" if cell[m, c]["tpot_ms"] else "-" for c in contexts]
            for m in models]
    cache = [[m] + [f"{(cell[m, c]['kv_bytes'] + cell[m, c]['state_bytes']) / 1e6:,.1f}"
                    if cell[m, c]["kv_bytes"] is not None else "-" for c in contexts]
             for m in models]
    refused = [f"{r['model']} @ {r['context']:,}: {r['reason']}" for r in rows if r.get("reason")]
    return [Table(f"decode TPOT (ms) on {doc['system']}, batch {scenario.get('batch', 1)}, by context length",
                  header, tpot, refused[:3]),
            Table("KV cache + state per batch (MB)", header, cache)]


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
        held = [r for r in mine if r["kv_bytes"] is not None]
        axes[1].plot([r["context"] for r in held], [(r["kv_bytes"] + r["state_bytes"]) / 1e9 for r in held],
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
