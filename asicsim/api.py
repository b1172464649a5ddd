"""The Python API: one call from names to results, the same path the CLI takes.

>>> from asicsim.api import predict
>>> result = predict("llama-3.1-8b", "h100-sxm", batch=1, prompt=128, generate=4)
>>> result.metrics.tpot_ms > 0
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from asicsim.compile import Adapters, Plan, Program, Workload, compile_plan, plan_run
from asicsim.dtypes import DType, parse_dtype
from asicsim.energy import energy_report
from asicsim.errors import InputError
from asicsim.engine import Trace, simulate
from asicsim.hardware import Mapping, System, load_system, with_chips
from asicsim.metrics import Metrics, compute_metrics
from asicsim.model import ModelSpec, load_model


@dataclass(frozen=True)
class Result:
    """Everything one run produced, stage by stage. ``system`` is the system asked for;
    ``plan.system`` the one that ran (remapped, or grown to as many chips as the model needs)."""

    model: ModelSpec
    system: System
    workload: Workload
    plan: Plan
    program: Program
    trace: Trace
    metrics: Metrics
    energy: dict | None = None

    def link_utilisation(self) -> dict[str, dict[str, float]]:
        """Per phase, the busy fraction of every chip-to-chip link the run used."""
        links = {s.name for s in self.program.servers if s.kind == "link" and "->" in s.name}
        return {phase: {k: v for k, v in names.items() if k in links}
                for phase, names in self.metrics.block_utilisation.items()}

    def summary(self) -> dict:
        """The JSON-ready record of this run (what ``predict --json`` prints)."""
        m = self.metrics.to_dict()
        plan = self.plan
        area = plan.chip.area_mm2
        return {"model": self.model.name, "system": plan.system.name, "mapping": plan.mapping.value,
                "batch": self.workload.batch, "prompt": self.workload.prompt, "generate": self.workload.generate,
                "dtype": self.workload.dtype.value, "tasks": self.program.n_tasks,
                "adapters": asdict(self.workload.adapters) if self.workload.adapters else None,
                "chips": plan.chips, "silicon_mm2": area * plan.chips if area else None,
                "tokens_per_s_all_replicas": (m["tokens_per_s"] * plan.parallel.dp
                                              if m["tokens_per_s"] is not None else None),
                **m, "energy": self.energy, "plan": plan.to_dict(), "link_utilisation": self.link_utilisation()}


def run(model: ModelSpec, system: System, workload: Workload) -> Result:
    """Compile, simulate and measure ``workload`` of ``model`` on ``system``."""
    plan = plan_run(model, system, workload)
    program = compile_plan(plan, model, workload)
    trace = simulate(program)
    simulated = plan.chips // plan.parallel.dp
    energy = energy_report(trace, plan.chip, workload.dtype, simulated)
    return Result(model, system, workload, plan, program, trace, compute_metrics(trace), energy)


def predict(model: str, system: str, *, batch: int = 1, prompt: int = 512, generate: int = 128,
            dtype: str | DType = DType.BF16, adapters: Adapters | None = None,
            mapping: str | Mapping | None = None, chips: int | None = None, tp: int | None = None,
            pp: int | None = None, ep: int | None = None, dp: int | None = None,
            micro_batches: int | None = None, fast: bool = False) -> Result:
    """Run a shipped (or path-given) model on a preset (or path-given) system, optionally with
    LoRA-style ``adapters`` (e.g. ``Adapters(rank=16, targets=("qkv", "o"))``) and a ``mapping``
    ("temporal" or "spatial") other than the chip's own. ``chips`` takes that many chips of the
    system's kind on its network (a chip preset: the chip's own); ``tp``, ``pp``, ``ep``, ``dp``
    and ``micro_batches`` choose how the model is split over them (default: tensor parallel
    over all). ``fast`` simulates the prefill and sampled decode steps and interpolates the rest
    (within 0.5 % of simulating every step; see ``compile.sampling``)."""
    wl = Workload(batch=batch, prompt=prompt, generate=generate,
                  dtype=dtype if isinstance(dtype, DType) else parse_dtype(dtype), adapters=adapters,
                  mapping=Mapping(mapping) if mapping is not None else None, tp=tp, pp=pp, ep=ep, dp=dp,
                  micro_batches=micro_batches, fast=fast)
    wl.check("arguments")
    sys_ = load_system(system)
    if chips is not None:
        if chips < 1:
            raise InputError("--chips", None, f"must be at least 1, got {chips}")
        sys_ = with_chips(sys_, chips)
    return run(load_model(model), sys_, wl)


def collective_ns(system: System | str, kind: str, nbytes: float, ranks: list[int] | None = None,
                  algorithm: str | None = None) -> float:
    """Simulated time of one collective (``all_reduce``, ``all_gather``, ``reduce_scatter``,
    ``all_to_all`` or a point-to-point ``send``) of ``nbytes`` per rank on ``system``, ns."""
    from asicsim.compile.fabric import collective_program
    from asicsim.hardware import Collective

    sys_ = load_system(system) if isinstance(system, str) else system
    if len(sys_.chips) < 2:
        raise InputError(sys_.source, "count", "a collective needs a system of at least two chips")
    program = collective_program(sys_, kind, nbytes, ranks, Collective(algorithm) if algorithm else None)
    return simulate(program).makespan_ns
