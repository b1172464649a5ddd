"""The Python API: one call from names to results, the same path the CLI takes.

>>> from asicsim.api import predict
>>> result = predict("llama-3.1-8b", "h100-sxm", batch=1, prompt=128, generate=4)
>>> result.metrics.tpot_ms > 0
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from asicsim.compile import Adapters, Program, Workload, compile_run
from asicsim.dtypes import DType, parse_dtype
from asicsim.energy import energy_report
from asicsim.engine import Trace, simulate
from asicsim.hardware import Mapping, System, load_system
from asicsim.metrics import Metrics, compute_metrics
from asicsim.model import ModelSpec, load_model


@dataclass(frozen=True)
class Result:
    """Everything one run produced, stage by stage."""

    model: ModelSpec
    system: System
    workload: Workload
    program: Program
    trace: Trace
    metrics: Metrics
    energy: dict | None = None

    def summary(self) -> dict:
        """The JSON-ready record of this run (what ``predict --json`` prints)."""
        m = self.metrics.to_dict()
        return {"model": self.model.name, "system": self.system.name, "mapping": self.program.meta["mapping"],
                "batch": self.workload.batch, "prompt": self.workload.prompt, "generate": self.workload.generate,
                "dtype": self.workload.dtype.value, "tasks": self.program.n_tasks,
                "adapters": asdict(self.workload.adapters) if self.workload.adapters else None,
                "chips": self.program.meta.get("chips", 1),
                "silicon_mm2": (self.system.chip.area_mm2 * self.program.meta.get("chips", 1)
                                if self.system.chip.area_mm2 else None),
                **m, "energy": self.energy}


def run(model: ModelSpec, system: System, workload: Workload) -> Result:
    """Compile, simulate and measure ``workload`` of ``model`` on ``system``."""
    program = compile_run(model, system, workload)
    trace = simulate(program)
    energy = energy_report(trace, system.chip, workload.dtype)
    return Result(model, system, workload, program, trace, compute_metrics(trace), energy)


def predict(model: str, system: str, *, batch: int = 1, prompt: int = 512, generate: int = 128,
            dtype: str | DType = DType.BF16, adapters: Adapters | None = None,
            mapping: str | Mapping | None = None) -> Result:
    """Run a shipped (or path-given) model on a preset (or path-given) system, optionally with
    LoRA-style ``adapters`` (e.g. ``Adapters(rank=16, targets=("qkv", "o"))``) and a ``mapping``
    ("temporal" or "spatial") other than the chip's own."""
    wl = Workload(batch=batch, prompt=prompt, generate=generate,
                  dtype=dtype if isinstance(dtype, DType) else parse_dtype(dtype), adapters=adapters,
                  mapping=Mapping(mapping) if mapping is not None else None)
    wl.check("arguments")
    return run(load_model(model), load_system(system), wl)
