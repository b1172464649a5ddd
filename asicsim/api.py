"""The Python API: one call from names to results, the same path the CLI takes.

>>> from asicsim.api import predict
>>> result = predict("llama-3.1-8b", "h100-sxm", batch=1, prompt=128, generate=4)
>>> result.metrics.tpot_ms > 0
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass

from asicsim.compile import Adapters, BudgetError, LongRun, Plan, Program, Workload, compile_plan, plan_run
from asicsim.compile.sampling import PROBE
from asicsim.dtypes import DType, parse_dtype
from asicsim.energy import energy_report
from asicsim.errors import InputError
from asicsim.engine import Trace, simulate
from asicsim.hardware import (ChipSpec, Mapping, System, SystemSpec, build_system, load_chip, load_runtime,
                              load_system, with_chips)
from asicsim.metrics import Metrics, compute_metrics, head_settled
from asicsim.model import ModelSpec, load_model


@dataclass(frozen=True, repr=False)
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

    def __repr__(self) -> str:
        m = self.metrics
        tpot = f"TPOT {m.tpot_ms:.3f} ms, {m.tokens_per_s_per_user:,.0f} tok/s/user" if m.tpot_ms else "no decode"
        return (f"Result({self.model.name} on {self.plan.system.name}, batch {self.workload.batch}: "
                f"TTFT {m.ttft_ms:.2f} ms, {tpot})")

    @property
    def ttft_ms(self) -> float:
        return self.metrics.ttft_ms

    @property
    def tpot_ms(self) -> float | None:
        return self.metrics.tpot_ms

    @property
    def tokens_per_s(self) -> float | None:
        return self.metrics.tokens_per_s

    @property
    def tokens_per_s_per_user(self) -> float | None:
        return self.metrics.tokens_per_s_per_user

    def to_dict(self) -> dict:
        """The JSON-ready record of this run (the same as ``summary``)."""
        return self.summary()

    def row(self) -> dict:
        """The run as one flat row of scalars, for a table (``compare`` builds a DataFrame of them)."""
        s = self.summary()
        row = {k: v for k, v in s.items() if isinstance(v, (int, float, str, bool)) or v is None}
        row.update({f"plan.{k}": v for k, v in s["plan"].items()})
        row.update({f"bound.{k}": v for k, v in s["dominant_bound"].items()})
        row.update({f"{k}_per_decode_step": v for k, v in s["bytes_per_decode_step"].items()})
        if s["energy"]:
            row.update({f"j_per_token.{k}": v["j_per_token"] for k, v in s["energy"].items() if isinstance(v, dict)})
        return row

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
        simulated_decode = sum(st.phase == "decode" for st in self.program.steps)
        return {"model": self.model.name, "system": plan.system.name, "mapping": plan.mapping.value,
                "batch": self.workload.batch, "prompt": self.workload.prompt, "generate": self.workload.generate,
                "dtype": self.workload.dtype.value, "kv_dtype": self.workload.kv_format.value,
                "runtime": self.workload.runtime.name,
                "tasks": self.program.n_tasks, "fast": self.workload.fast,
                "decode_steps": int(self.program.meta.get("decode_steps", 0)) or simulated_decode,
                "decode_steps_simulated": simulated_decode,
                "adapters": asdict(self.workload.adapters) if self.workload.adapters else None,
                "chips": plan.chips, "silicon_mm2": area * plan.chips if area else None,
                "tokens_per_s_all_replicas": (m["tokens_per_s"] * plan.parallel.dp
                                              if m["tokens_per_s"] is not None else None),
                **m, "energy": self.energy, "plan": plan.to_dict(), "link_utilisation": self.link_utilisation()}


PIPELINED_HEAD = 2 * PROBE  # decode steps run one after another first where micro-batches pipeline


def compile_and_simulate(plan: Plan, model: ModelSpec, workload: Workload,
                         engine: Callable[[Program], Trace] = simulate) -> tuple[Program, Trace]:
    """The Program for ``plan`` and its Trace. Under fast-forward with several micro-batches
    pipelined one after another, the pipeline takes many steps to settle after the prefill (see
    :func:`asicsim.metrics.head_settled`): the first ``PIPELINED_HEAD`` decode steps are
    simulated one after another, four times as many again while they end unsettled (at most
    every step). ``engine`` simulates (the bench passes a timed one)."""
    pipelined = workload.fast and plan.micro_batches > 1
    head = PIPELINED_HEAD if pipelined else PROBE
    program = compile_plan(plan, model, workload, head)
    trace = engine(program)
    while pipelined and head < workload.generate - 1 and not head_settled(trace):
        head *= 4
        try:
            program = compile_plan(plan, model, workload, head)
        except BudgetError:  # more steps than one run may take: say so, and keep the shorter head's
            import warnings

            warnings.warn(LongRun(f"fast-forward: the {head // 4} decode steps simulated one after another "
                                  "did not end with the pipelined sequences settled, and simulating more would "
                                  "take more tasks than one run may; TPOT may be more than 0.5 % off"),
                          stacklevel=2)
            break
        trace = engine(program)
    return program, trace


def run(model: ModelSpec, system: System, workload: Workload) -> Result:
    """Compile, simulate and measure ``workload`` of ``model`` on ``system``."""
    plan = plan_run(model, system, workload)
    program, trace = compile_and_simulate(plan, model, workload)
    simulated = plan.chips // plan.parallel.dp
    energy = energy_report(trace, plan.chip, workload.dtype, simulated)
    return Result(model, system, workload, plan, program, trace, compute_metrics(trace), energy)


def chip(name_or_path: str) -> ChipSpec:
    """A chip preset by name, or a chip YAML by path; ``.with_(...)`` changes its fields."""
    return load_chip(name_or_path)


def system(name_or_path: str | ChipSpec | System, chips: int | None = None) -> System:
    """A system: a preset or file name, a chip (one of it, or ``chips`` on its own network), or
    a System as it is."""
    if isinstance(name_or_path, System):
        sys_ = name_or_path
    elif isinstance(name_or_path, ChipSpec):
        sys_ = build_system(SystemSpec(name=name_or_path.name, chip=name_or_path))
    else:
        sys_ = load_system(name_or_path)
    return with_chips(sys_, chips) if chips is not None else sys_


_system = system  # predict's own ``system`` argument shadows the function


def predict(model: str | ModelSpec, system: str | ChipSpec | System, *, batch: int = 1, prompt: int = 512,
            generate: int = 128, dtype: str | DType = DType.BF16, kv_dtype: str | DType | None = None,
            adapters: Adapters | None = None,
            mapping: str | Mapping | None = None, chips: int | None = None, tp: int | None = None,
            pp: int | None = None, ep: int | None = None, dp: int | None = None,
            micro_batches: int | None = None, fast: bool = False, runtime: str | None = None) -> Result:
    """Run a model (a shipped name, a ``config.json`` path, or a ModelSpec) on a system (a preset
    name, a chip or system YAML path, a ChipSpec such as ``chip("h100-sxm").with_(...)``, or a
    System), optionally with LoRA-style ``adapters`` (e.g. ``Adapters(rank=16, targets=("qkv",
    "o"))``) and a ``mapping`` ("temporal" or "spatial") other than the chip's own. ``chips``
    takes that many chips of the system's kind on its network (a chip preset: the chip's own);
    ``tp``, ``pp``, ``ep``, ``dp`` and ``micro_batches`` choose how the model is split over them
    (default: tensor parallel over all). ``fast`` simulates the prefill and sampled decode steps
    and interpolates the rest (within 0.5 % of simulating every step; see ``compile.sampling``).
    ``runtime`` names the serving stack's profile (``bare``, the default, adds nothing; see
    ``hardware.runtime``). ``kv_dtype`` keeps the KV cache in another format than ``dtype``'s
    default (bf16, fp16, fp8 or int8; None: 8-bit for fp8/int8 runs, else 16-bit)."""
    wl = Workload(batch=batch, prompt=prompt, generate=generate,
                  dtype=dtype if isinstance(dtype, DType) else parse_dtype(dtype),
                  kv_dtype=kv_dtype if kv_dtype is None or isinstance(kv_dtype, DType)
                  else parse_dtype(kv_dtype, "--kv-dtype", kv=True), adapters=adapters,
                  mapping=Mapping(mapping) if mapping is not None else None, tp=tp, pp=pp, ep=ep, dp=dp,
                  micro_batches=micro_batches, fast=fast, runtime=load_runtime(runtime))
    wl.check("arguments")
    if chips is not None and chips < 1:
        raise InputError("--chips", None, f"must be at least 1, got {chips}")
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    return run(spec, _system(system, chips), wl)


def compare(systems: list, model: str | ModelSpec, **workload):
    """``model`` on each of ``systems`` (anything :func:`system` takes) with the same workload
    (the keyword arguments of :func:`predict`): a pandas DataFrame, one row per system."""
    import pandas as pd

    return pd.DataFrame([predict(model, s, **workload).row() for s in systems])


def collective_ns(system: System | str, kind: str, nbytes: float, ranks: list[int] | None = None,
                  algorithm: str | None = None) -> float:
    """Simulated time of one collective (``all_reduce``, ``all_gather``, ``reduce_scatter``,
    ``all_to_all`` or a point-to-point ``send``) of ``nbytes`` per rank on ``system``, ns."""
    from asicsim.compile.fabric import COLLECTIVES, collective_program
    from asicsim.hardware import Collective

    sys_ = load_system(system) if isinstance(system, str) else system
    if len(sys_.chips) < 2:
        raise InputError(sys_.source, "count", "a collective needs a system of at least two chips")
    if kind not in COLLECTIVES:
        raise InputError("collective_ns", "kind", f"unknown collective '{kind}'; one of {', '.join(COLLECTIVES)}")
    names = [c.value for c in Collective]
    if algorithm is not None and str(algorithm) not in names:
        raise InputError("collective_ns", "algorithm", f"unknown algorithm '{algorithm}'; one of {', '.join(names)}")
    alg = Collective(algorithm) if algorithm else None
    if alg is Collective.IN_SWITCH and not (sys_.network and sys_.network.in_switch_reduction):
        raise InputError(sys_.source, "network.in_switch_reduction", f"the in_switch algorithm needs a switch "
                         f"that reduces; {sys_.name}'s network has in_switch_reduction: false")
    n = len(sys_.chips)
    if ranks is not None and (len(ranks) < 2 or len(set(ranks)) != len(ranks)
                              or any(not isinstance(r, numbers.Integral) or not 0 <= r < n for r in ranks)):
        raise InputError("collective_ns", "ranks", f"{ranks} are not two or more distinct chips of "
                         f"{sys_.name} (indices 0 to {n - 1})")
    if not (isinstance(nbytes, numbers.Real) and math.isfinite(nbytes) and nbytes >= 0):
        raise InputError("collective_ns", "nbytes", f"{nbytes!r} is not a size in bytes (a finite number, 0 or more)")
    program = collective_program(sys_, kind, nbytes, ranks, alg)
    return simulate(program).makespan_ns
