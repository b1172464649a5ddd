"""Compile: decide how a model runs on a system (a Plan), then emit a Program for a whole run.

``plan_run`` decides: the system as run (remapped, or grown to as many SRAM-only chips as the
weights need), the parallel layout over temporal chips, numerics, where weights and KV live,
stages and micro-batches; it refuses what cannot run. ``compile_plan`` emits: for each step,
each micro-batch, each op, its tasks on the blocks of the stage that runs it, the transfers
between chips and the collectives that a split layer needs, each step chained after the token
it needs. Temporal chips run the batch through pipeline stages of tensor-parallel groups;
spatial chips pipeline one micro-batch per sequence through per-layer stages.

Tensor-parallel ranks do identical work, so the compute of one rank per stage is emitted and
stands for all of them (its blocks count ``copies = tp`` in byte and energy totals); every
rank's sends are emitted, so collectives run over all the links they really use, and a
stage goes on once the slowest rank has its result.
"""

from __future__ import annotations

import gc
from dataclasses import fields, replace
from operator import attrgetter

import numpy as np

from asicsim import cost
from asicsim.compile.adapters import Adapters, adapter_ops
from asicsim.compile.fabric import Fabric
from asicsim.compile.lower import Lowerer, Stage, Store, fuses_into_previous
from asicsim.compile.packing import MAX_PAIRS, pack, split_op
from asicsim.compile.placement import (Workload, attention_matmul, check_fits, chips_needed, numerics_for,
                                       packs_by_op, stages_per_chip, weight_level, weight_matmul, with_mapping,
                                       with_stages)
from asicsim.compile.plan import Parallel, Plan, resolve_parallel
from asicsim.compile.sampling import PROBE, break_points, sampled_steps
from asicsim.compile.shard import shard_op, stage_of_layer
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import ChipSpec, Collective, DMASpec, LinkSpec, Mapping, Topology, VectorSpec
from asicsim.hardware.system import MAX_BLOCKS, MAX_CHIPS, System, SystemSpec, build_system, instance_name
from asicsim.model.graph import build_graph, layer_layout, renamed_graph
from asicsim.model.layers import ModelSpec
from asicsim.model.moe import MoE
from asicsim.model.ops import Op, OpKind, StepShape
from asicsim.program import Level, OpRef, Program, ProgramBuilder, StepRef

__all__ = ["Adapters", "Parallel", "Plan", "Program", "Workload", "check_run", "compile_ops", "compile_plan",
           "compile_run", "plan_run", "simulated_steps", "step_shapes"]


def step_shapes(workload: Workload, indices: list[int] | None = None) -> list[tuple[str, StepShape]]:
    """Prefill of the prompt, then one decode step per generated token after the first (or only
    the decode steps ``indices``, 1-based). With ``tokens_per_step`` t > 1 (a speculative
    verifier) each decode step adds t tokens per sequence, all scored by the LM head."""
    return list(_step_shapes(workload, indices))


def _step_shapes(w: Workload, indices: list[int] | None = None):
    """:func:`step_shapes`, one at a time (compile stops early when the budget says so)."""
    t = w.tokens_per_step
    yield "prefill", StepShape(w.batch, w.prompt, 0)
    for j in range(1, w.generate) if indices is None else indices:
        yield "decode", StepShape(w.batch, t, w.prompt + (j - 1) * t, t)


def simulated_steps(plan: Plan, model: ModelSpec, workload: Workload, head: int = PROBE) -> list[int]:
    """The decode steps (1-based) the Program holds: all of them, or under ``fast`` a sample
    that straddles every point where a step's shape changes, after the first ``head`` steps
    one after another."""
    n = workload.generate - 1
    if not workload.fast:
        return list(range(1, n + 1))
    tp = plan.parallel.tp if plan.mapping is Mapping.TEMPORAL else 1
    breaks = break_points(model, workload.prompt, n, workload.batch // plan.micro_batches, plan.numerics, tp)
    return sampled_steps(n, breaks, head)


class _Blocks:
    """Registers each block instance of one chip with the builder, once, by name."""

    def __init__(self, b: ProgramBuilder, chip_index: int, copies: int = 1):
        self.b, self.chip, self.copies, self.ids, self.servers = b, chip_index, copies, {}, {}

    def _name(self, spec, stage: int) -> str:
        count = getattr(spec, "count", 1)
        return instance_name(self.chip, spec.name, stage % count, count)

    def block(self, spec, stage: int) -> int:
        name = self._name(spec, stage)
        if name not in self.ids:
            self.ids[name] = self.b.add_block(name, spec.kind, self.chip, self.copies)
        return self.ids[name]

    def link(self, spec: LinkSpec) -> int:
        """The server of an on-chip link (registered once)."""
        name = _link_name(self.chip, spec)
        if name not in self.servers:
            self.servers[name] = self.b.add_server(name, "link", spec.bandwidth_gbps)
        return self.servers[name]

    def server(self, spec, stage: int, gbps: float) -> int:
        name = self._name(spec, stage)
        if name not in self.servers:
            self.servers[name] = self.b.add_server(name, spec.kind, gbps)
        return self.servers[name]


def _link_name(chip: int, link: LinkSpec) -> str:
    return f"chip{chip}.{link.a}<->{link.b}"


def _stages(chip: ChipSpec, blocks: _Blocks, n_stages: int) -> list[Stage]:
    mm, attn = weight_matmul(chip), attention_matmul(chip)
    vec = chip.blocks_of(VectorSpec)[0]
    stages = []
    streamed = chip.hbm is not None and chip.rom is None and chip.sram_for("weights") is None
    for s in range(n_stages):
        if streamed:  # weights live in HBM: the copy engine brings them in
            hbm, dma = chip.hbm, chip.blocks_of(DMASpec)
            srv = blocks.server(hbm, 0, hbm.effective_gbps)
            links = [link for link in chip.links if hbm.name in (link.a, link.b)]
            path = tuple((blocks.link(link), link.bandwidth_gbps) for link in links)
            store = Store(True, Level.HBM_READ, Level.HBM_WRITE, srv, hbm.effective_gbps,
                          hbm.latency_ns + sum(link.latency_ns for link in links), path)
            weights = kv = store
            dma_id = blocks.block(dma[0], 0)
        else:
            level, w_sram = weight_level(chip)
            weights = (Store(False, level, level) if w_sram is None else
                       Store(False, level, Level.SRAM_WRITE, blocks.server(w_sram, s, w_sram.bank_gbps * w_sram.banks),
                             w_sram.bank_gbps * w_sram.banks))
            kv_sram = chip.sram_for("kv")
            gbps = kv_sram.bank_gbps * kv_sram.banks
            kv = Store(False, Level.SRAM_READ, Level.SRAM_WRITE, blocks.server(kv_sram, s, gbps), gbps)
            dma_id = None
        stages.append(Stage(blocks.block(mm, s), mm, blocks.block(attn, s), attn, blocks.block(vec, s), vec,
                            dma_id, weights, kv))
    return stages


def _chip_count(model: ModelSpec, system: System, workload: Workload) -> int:
    """How many chips the run takes: the system's, or more where an SRAM-only spatial chip must grow."""
    return _grown(model, system.chip, len(system.chips), system, workload)


def _grown(model: ModelSpec, chip: ChipSpec, have: int, system: System, workload: Workload) -> int:
    """``have`` chips of ``chip``, or as many more as the model needs (refused past MAX_CHIPS, or
    where the system has no network to join them)."""
    need = chips_needed(model, chip, workload, numerics_for(workload, chip))
    if need > have and system.network is None:
        raise InputError(system.source, "network", f"{model.name} needs {need} chips of {chip.name} "
                         "but the chip describes no network to join them")
    if need > MAX_CHIPS:
        many = f"{need:,}" if need > MAX_CHIPS + 1 else f"over {MAX_CHIPS:,}"  # MAX_CHIPS + 1: counting stopped
        raise InputError(system.source, "blocks", f"{model.name} needs {many} chips of {chip.name}, more than "
                         f"the {MAX_CHIPS:,} a system may have")
    return max(need, have)


def _cut_wafers(model: ModelSpec, system: System, workload: Workload, n_chips: int) -> tuple[ChipSpec, int]:
    """The chip re-cut into a patch per layer it holds, and the chips the run then takes. A wafer
    left with one stage packs the model op by op like any one-stage chip, which may split ops
    over more wafers than the bytes alone asked for: then the system grows to that."""
    chip = system.chip
    per_wafer = stages_per_chip(model, chip, n_chips)
    if per_wafer is None or per_wafer == weight_matmul(chip).count:
        return chip, n_chips
    chip = with_stages(chip, per_wafer)
    return chip, _grown(model, chip, n_chips, system, workload) if packs_by_op(chip) else n_chips


def remap(system: System, workload: Workload) -> System:
    """The system with the workload's mapping, when it asks for one other than the chip's own."""
    if workload.mapping is None or workload.mapping is system.chip.mapping:
        return system
    chip = with_mapping(system.chip, workload.mapping, system.source)
    return build_system(SystemSpec(name=f"{system.name} ({chip.mapping.value})", chip=chip,
                                   count=len(system.chips), network=system.network), system.source)


def check_run(model: ModelSpec, system: System, workload: Workload) -> int:
    """The refusals of :func:`compile_run` (a bad workload or layout, a model that does not fit or
    is not the one a hardwired chip holds) without building or lowering anything: raises the same
    InputError, or returns the number of chips the run takes. Cheap enough to ask about every
    model of the zoo or to search batch sizes, even where the scaled-out system would have
    thousands of chips."""
    workload.check()
    system = remap(system, workload)
    n_chips = _cut_wafers(model, system, workload, _chip_count(model, system, workload))[1]
    par = _parallel(model, system, workload) if n_chips == len(system.chips) else Parallel()
    check_fits(model, system, workload, numerics_for(workload, system.chip), n_chips, par)
    return n_chips


def scale_out(model: ModelSpec, system: System, workload: Workload) -> System:
    """The system with as many chips as the model needs (only SRAM-only spatial chips grow)."""
    need = _chip_count(model, system, workload)
    if need <= len(system.chips):
        return system
    return build_system(SystemSpec(name=f"{system.name} x{need}", chip=system.chip, count=need,
                                   network=system.network), system.source)


def _parallel(model: ModelSpec, system: System, workload: Workload) -> Parallel:
    w = workload
    asked = [n for n in ("tp", "pp", "ep", "dp") if (getattr(w, n) or 1) > 1]
    if system.chip.mapping is Mapping.SPATIAL:
        if asked:
            raise InputError("parallel layout", asked[0], f"{system.chip.name} runs spatially: it lays layers over its "
                             "chips itself; tensor, pipeline, expert and data parallel degrees apply to "
                             "temporal chips")
        return Parallel(micro_batches=w.batch)
    return resolve_parallel(model, system, w.batch, w.tp, w.pp, w.ep, w.dp, w.micro_batches, "parallel layout")


def plan_run(model: ModelSpec, system: System, workload: Workload) -> Plan:
    """Decide everything about the run, or refuse it with one clear InputError."""
    workload.check()
    _check_context(model, workload)
    system = scale_out(model, remap(system, workload), workload)
    chip = system.chip
    num = numerics_for(workload, chip)
    par = _parallel(model, system, workload)
    held = check_fits(model, system, workload, num, par=par)
    cut, n_chips = _cut_wafers(model, system, workload, len(system.chips))
    if cut is not chip:  # each layer its own patch
        chip = cut
        system = build_system(SystemSpec(name=system.name, chip=chip, count=n_chips,
                                         network=system.network), system.source)
    spatial = chip.mapping is Mapping.SPATIAL
    weights_in = "rom" if chip.rom else "sram" if chip.sram_for("weights") else "hbm"
    kv_in = "hbm" if weights_in == "hbm" else "sram"
    per_chip = getattr(weight_matmul(chip), "count", 1) if spatial else 1
    stages = per_chip * len(system.chips) if spatial else par.pp
    if held is None:  # spatial: the model's bytes spread over the chips
        held = (model.params() * num.weight_bytes / len(system.chips),
                (model.kv_bytes(workload.batch, workload.max_context, num)
                 + model.state_bytes(workload.batch, num)) / len(system.chips))
    return Plan(model.name, system, par, num, weights_in, kv_in, stages, par.micro_batches,
                system.network.collective if system.network else Collective.AUTO,
                held[0], held[1])


def _check_context(model: ModelSpec, workload: Workload) -> None:
    """Refuse a sequence longer than the model was trained for (``max_position_embeddings``): its
    positions past that are not defined, so timing them would be timing a model that does not exist."""
    ctx, need = model.max_context, workload.max_context
    if ctx is not None and need > ctx:
        raise InputError(model.source, "max_position_embeddings",
                         f"{model.name} takes at most {ctx:,} tokens of context, but prompt {workload.prompt:,} "
                         f"+ {workload.generate:,} generated tokens need {need:,}; use a shorter prompt or fewer "
                         f"generated tokens (--prompt/--generate; workload.prompt/generate in a scenario)")


def compile_run(model: ModelSpec, system: System, workload: Workload) -> Program:
    """The Program for ``workload`` on ``system``: every step, every op, every task."""
    return compile_plan(plan_run(model, system, workload), model, workload)


class _Emitter:
    """Where each op runs and what crosses chips: the stages, the tensor-parallel groups, and
    the collectives a split layer needs (all-reduce of partial sums, expert dispatch/combine)."""

    def __init__(self, plan: Plan, model: ModelSpec, workload: Workload, b: ProgramBuilder):
        self.plan, self.model, self.b, self.step = plan, model, b, 0
        self._shards: dict = {}
        self._stage_maps: dict = {}
        chip, system, par = plan.chip, plan.system, plan.parallel
        self.fabric = Fabric(b, system, plan.collective)
        self.spatial = chip.mapping is Mapping.SPATIAL
        self.tp, self.ep = (1, 1) if self.spatial else (par.tp, par.ep)
        self.act = plan.numerics.act_bytes
        if self.spatial:
            per_chip = getattr(weight_matmul(chip), "count", 1)
            self.stages = [st for c in range(len(system.chips)) for st in _stages(chip, _Blocks(b, c), per_chip)]
            self.chip_of = [i // per_chip for i in range(len(self.stages))]
        else:
            self.stages = [_stages(chip, _Blocks(b, s * par.tp, par.tp), 1)[0] for s in range(par.pp)]
            self.chip_of = [s * par.tp for s in range(par.pp)]
        n_stages, n_layers = len(self.stages), model.n_layers
        self.head_stage = (min(n_layers, n_stages - 1) if n_stages > n_layers and len(system.chips) == 1
                           else n_stages - 1)
        self.packing = (pack(model, workload, plan.numerics, chip.sram_for("weights").capacity_bytes)
                        if packs_by_op(chip) and len(system.chips) > 1 else None)
        if self.packing is not None:
            _check_streams(self.packing, model, system)

    def layer_stage(self, layer: int) -> int:
        """A spatial chip's stage for a layer: one stage a layer where there are enough (the head
        on the next); over several chips the layers spread evenly, the head on the last stage."""
        n_stages, n_layers = len(self.stages), self.model.n_layers
        if n_stages <= n_layers:
            return layer * n_stages // n_layers
        if len(self.plan.system.chips) > 1:
            return layer * (n_stages - 1) // n_layers
        return layer

    def stage_of(self, layer: int) -> int:
        """The stage that runs ``layer``'s ops (without op-by-op packing)."""
        if self.spatial:
            return self.head_stage if layer < 0 else self.layer_stage(layer)
        return stage_of_layer(layer, self.model.n_layers, len(self.stages))

    def stage_maps(self, a_index: int, z_index: int) -> tuple | None:
        """Lookup arrays from stage ``a_index``'s blocks and servers to ``z_index``'s, and the ids
        they move; None where the stages differ in more than their ids (looked up once)."""
        key = (a_index, z_index)
        if key not in self._stage_maps:
            self._stage_maps[key] = _stage_maps(self.b, self.stages[a_index], self.stages[z_index])
        return self._stage_maps[key]

    def shard(self, op, batch: int):
        """One rank's part of ``op`` (the same op recurs step after step: computed once)."""
        key = (op, batch)
        part = self._shards.get(key)
        if part is None:
            part = self._shards[key] = shard_op(op, self.tp, self.ep, batch)
        return part

    def group(self, chip: int) -> list[int]:
        """The tensor-parallel ranks of the group whose first rank is ``chip``."""
        return list(range(chip, chip + self.tp))

    def placed(self, op, prev_chip: int) -> list[tuple[Stage, int, object]]:
        """(stage, chip, part of the op) for each part of ``op``."""
        if self.packing is not None:
            chips = self.packing.where.get(op.name, (prev_chip,))
            return [(self.stages[c], c, part) for c, part in zip(chips, split_op(op, len(chips)))]
        s = 0 if op.kind is OpKind.EMBED else self.stage_of(op.layer)
        return [(self.stages[s], self.chip_of[s], op)]

    def _op(self, op, what: str) -> int:
        """A collective or transfer gets an op of its own, so its time shows beside the compute."""
        return self.b.add_op(f"{op.name}.{what}", op.layer, "collective", self.step)

    def hop(self, op, src: int, dst: int, nbytes: float, deps: list[int]) -> list[int]:
        """Activations from one chip (or tensor-parallel group) to another: each rank sends its
        slice to its counterpart, and the receiving group gathers them."""
        op_id = self._op(op, "send")
        if self.tp == 1:
            return [self.fabric.send(src, dst, nbytes, op_id, deps)]
        sent = [[self.fabric.send(src + r, dst + r, nbytes / self.tp, op_id, deps)] for r in range(self.tp)]
        return _join(self.fabric.all_gather(self.group(dst), nbytes, op_id, sent))

    def collectives_before(self, op, first_expert: bool, chip: int, tokens: int, deps: list[int]) -> list[int]:
        """Expert dispatch: each rank's share of the tokens goes to the ranks of their experts."""
        if self.ep > 1 and first_expert:
            pair = tokens / self.ep * self._top_k(op) * self.model.hidden * self.act / self.ep
            return _join(self.fabric.mirrored("all_to_all", self.group(chip), pair, self._op(op, "dispatch"), deps))
        return deps

    def collectives_after(self, op, last_expert: bool, chip: int, tokens: int, rows: int,
                          out: list[int]) -> list[int]:
        """What a split op's output needs before the next op can use it."""
        if self.tp == 1:
            return out
        group, hidden = self.group(chip), self.model.hidden
        if self.ep > 1 and last_expert:  # combine, then share
            pair = tokens / self.ep * self._top_k(op) * hidden * self.act / self.ep
            back = self.fabric.mirrored("all_to_all", group, pair, self._op(op, "combine"), out)
            out = _join(self.fabric.all_gather(group, tokens * hidden * self.act, self._op(op, "all_gather"), back))
        if op.kind is OpKind.EMBED or (op.ends_sublayer and self._partial(op)):
            return _join(self.fabric.mirrored("all_reduce", group, tokens * hidden * self.act,
                                              self._op(op, "all_reduce"), out))
        if op.kind is OpKind.MATMUL and op.layer < 0:  # the LM head's vocabulary slices
            return _join(self.fabric.mirrored("all_gather", group, rows * self.model.vocab * self.act,
                                              self._op(op, "all_gather"), out))
        return out

    def _partial(self, op) -> bool:
        """Whether a sublayer's output is a partial sum over ranks (not after an expert-parallel
        MoE without shared experts, whose combine already delivers whole results)."""
        ffn = self.model.blocks[op.layer].ffn if op.layer >= 0 else None
        return not (self.ep > 1 and isinstance(ffn, MoE) and not ffn.shared and op.name.endswith("moe_combine"))

    def _top_k(self, op) -> int:
        return self.model.blocks[op.layer].ffn.top_k


STAMP_MICRO_BATCHES = True  # False emits every micro-batch op by op (the same Program, slower)
STAMP_LAYERS = True         # False emits every layer op by op (the same Program, slower)
# Estimates for refusing a run before it is built. Measured: `asicsim predict --model llama-3.1-8b
# --system h100-sxm --generate 1000` (exact) simulates 2.42 million tasks with a peak RSS of 1.41 GB
# in 52 s wall on a shared two-core machine: ~520 bytes and ~47,000 tasks/s end to end.
MAX_TASKS = 8_000_000   # the most tasks one run may simulate: ~5 GB at BYTES_PER_TASK
BYTES_PER_TASK = 600    # peak memory per task (Program, Trace, engine lists), rounded up from ~520
TASKS_PER_S = 200_000   # tasks a second, compiling, simulating and measuring: asicsim bench on 2 cores, Dec (200-235k)
STEP_S = 0.002          # seconds a step costs beside its tasks (its graph, stamping, metrics; a 2-layer model's)
PROCESS_S = 5e-5        # seconds per block or server (a chip-to-chip stream is one of each: its set-up, its
                        # route, its events; ~45 us each measured on a tiny model packed over 1,035 chips, 52k
                        # streams, 6.3 s quiet)
NOTE_S = 5.0            # a run estimated longer than this says so before it starts (LongRun). The estimates
                        # are a quiet machine's; a busy one takes up to twice as long: announced at 5 s, no run
                        # goes past ~10 s unannounced


class LongRun(UserWarning):
    """A run estimated to take more than NOTE_S seconds: said before it starts (the CLI prints it
    as a note on stderr), with how to make it shorter."""


class BudgetError(InputError):
    """A run refused for its size (tasks, hence memory and time), not for what it asks."""


def _check_budget(tasks: int, workload: Workload, at_least: bool = False) -> None:
    """Refuse, before building it, a Program too large to simulate on a workstation, saying
    what it would cost (memory and time, estimated from the task count) and how to go further."""
    if tasks > MAX_TASKS:
        hint = ("simulate with --fast (`fast: true` in a scenario's workload): the prefill and sampled "
                "decode steps, within 0.5 %; or generate fewer tokens" if not workload.fast
                else "lower the batch or the prompt, or split the run into shorter ones")
        raise BudgetError("workload", "generate" if not workload.fast else "batch",
                         f"this run would simulate {'at least' if at_least else 'about'} {tasks:,} tasks, taking "
                         f"{'at least' if at_least else 'about'} "
                         f"{_size(tasks * BYTES_PER_TASK)} of memory and {_duration(tasks / TASKS_PER_S)} "
                         f"(estimates at {BYTES_PER_TASK} bytes and {TASKS_PER_S:,} tasks/s), more than the "
                         f"{MAX_TASKS:,} tasks (~{_size(MAX_TASKS * BYTES_PER_TASK)}) one run may take; to go "
                         f"further, {hint}")


def _note_long(tasks: int, steps: int, processes: int, workload: Workload) -> None:
    """Warn (LongRun) when the run's estimated time is over NOTE_S: a long run is announced, not silent."""
    seconds = tasks / TASKS_PER_S + steps * STEP_S + processes * PROCESS_S
    if seconds > NOTE_S:
        import warnings

        extra = (f" and {PROCESS_S * 1e6:g} us for each of {processes:,} blocks and servers"
                 if processes * PROCESS_S > 1 else "")
        how = ("--fast (`fast: true` in a scenario's workload) samples the decode steps"
               if not workload.fast and steps > 3
               else "a smaller batch or prompt, or fewer generated tokens, is quicker")
        warnings.warn(LongRun(f"this run simulates about {tasks:,} tasks in {steps:,} steps, about "
                              f"{_duration(seconds)} (estimated at {TASKS_PER_S:,} tasks/s, {STEP_S * 1e3:g} ms "
                              f"a step{extra}); {how}"), stacklevel=2)


def _check_streams(packing, model: ModelSpec, system: System) -> None:
    """Refuse a packing whose chip pairs are too many to simulate: over a full mesh each pair that
    exchanges activations is a stream of its own (a simulated process and a link), so a model cut
    over thousands of tiny chips would need millions of them."""
    net = system.network
    if net is None or net.topology is not Topology.FULLY_CONNECTED:
        return  # routes start on a chip's few own links: streams stay a few per chip
    blocks = len(system.chips) * len(system.chip.blocks)
    if blocks + packing.pairs > MAX_BLOCKS:
        many = f"{packing.pairs:,}" if packing.pairs <= MAX_PAIRS else f"over {MAX_PAIRS:,}"
        w_sram = system.chip.sram_for("weights")
        raise InputError(system.source, "blocks",  # not a BudgetError: sampling the decode steps would not help
                         f"{model.name} packed over {packing.chips:,} chips of {system.chip.name} "
                         f"({w_sram.capacity_bytes / 1e6:,.3g} MB of weight SRAM each) sends activations between "
                         f"{many} pairs of chips (each part of an op to every part of the next), each pair a stream "
                         f"of its own over the full mesh; with the chips' {blocks:,} blocks that is more than the "
                         f"{MAX_BLOCKS:,} simulated processes one run may have. A chip with more SRAM "
                         f"(capacity_mb_per_bank of '{w_sram.name}') needs fewer chips")


def _size(nbytes: float) -> str:
    return f"{nbytes / 1e12:,.1f} TB" if nbytes >= 1e12 else f"{nbytes / 1e9:,.0f} GB"


def _duration(seconds: float) -> str:
    for unit, s in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * s:
            return f"{seconds / s:,.0f} {unit}"
    return f"{seconds:.0f} s"


def _expert_ends(ops, layers: list[int]) -> tuple[set[int], set[int]]:
    """Indices of each layer's first and last routed-expert op (where dispatch and combine go);
    ``layers[i]`` is op ``i``'s layer."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        if op.experts:
            first.setdefault(layers[i], i)
            last[layers[i]] = i
    return set(first.values()), set(last.values())


def _join(per_rank: list[list[int]]) -> list[int]:
    return [t for tasks in per_rank for t in tasks]


def compile_plan(plan: Plan, model: ModelSpec, workload: Workload, head: int = PROBE) -> Program:
    """The Program that carries out ``plan``: every step, every op, every task (of the decode
    steps :func:`simulated_steps` picks, ``head`` of them one after another from the first).

    Python's cyclic garbage collector is paused while it compiles (and restored as it was, error
    or not): compiling allocates tens of thousands of objects that all live on (an ``OpRef`` per
    op, the outputs of each layer), and each of them would count towards collections that walk
    the whole heap and free nothing; what compiling throws away is freed by reference counting."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _compile_plan(plan, model, workload, head)
    finally:
        if paused:
            gc.enable()


def _compile_plan(plan: Plan, model: ModelSpec, workload: Workload, head: int) -> Program:
    b = ProgramBuilder()
    e = _Emitter(plan, model, workload, b)
    chip, num = plan.chip, plan.numerics
    lower = Lowerer(b, workload.dtype, chip.op_overhead_ns + cost.mesh_ns(weight_matmul(chip)))
    adapters = workload.adapters
    micro = plan.micro_batches
    bytes_per_token = model.hidden * num.act_bytes
    last: list[list[tuple[tuple[int, ...], int, float]]] = [[] for _ in range(micro)]
    graphs = _StepGraphs(model, num, _block_classes(model), adapters)
    if not workload.fast:  # a task per layer and decode step at the least: refuse before listing the steps
        _check_budget((workload.generate - 1) * len(model.blocks), workload, at_least=True)
    indices = simulated_steps(plan, model, workload, head)
    stamp_layers = STAMP_LAYERS and e.packing is None
    before = 0
    for k, (index, (phase, shape)) in enumerate(zip([0] + indices, _step_shapes(workload, indices))):
        if k in (1, 2):  # after the prefill, and after one decode step: what will the whole run take?
            per_step = b.n_tasks - before if k == 2 else 0
            _check_budget(b.n_tasks + per_step * (len(indices) - k + 1), workload)
            if k == 2:
                _note_long(b.n_tasks + per_step * (len(indices) - 1), len(indices) + 1,
                           len(b.blocks) + len(b.servers), workload)
            before = b.n_tasks
        step = e.step = b.add_step(StepRef(phase, shape.batch, shape.tokens, shape.context, index))
        runtime = workload.runtime  # the serving stack: per step, per sequence in it, per request (first token)
        step_launch = (chip.step_overhead_ns + runtime.step_ns + runtime.sequence_step_ns * shape.batch
                       + (runtime.request_ns if phase == "prefill" else 0.0))
        mb_shape = StepShape(shape.batch // micro, shape.tokens, shape.context, shape.logits)
        tokens = mb_shape.batch * mb_shape.tokens
        graph, firsts, lasts, fused, layer_starts = graphs.get(mb_shape)
        ops = graph.ops
        b.flush()
        span, first_task = None, b.n_tasks
        for mb in range(micro):
            if mb == 1:  # the lead micro-batch's tasks, whose period fast-forward interpolates
                b.steps[step] = replace(b.steps[step], lead_tasks=b.n_tasks - first_task)
            if span is not None:  # alike micro-batches: stamp the recorded one
                last[mb] = span.stamp(b, last[mb])
                continue
            if mb == 1 and micro > 2 and STAMP_MICRO_BATCHES:
                span = _Span(b, last[mb])
            outs: list[list[tuple[tuple[int, ...], int, float]]] = []  # per op: (output tasks, chip, share)
            recs: dict[int, _Layer | None] = {}  # a recorded layer of each signature, to stamp alike ones from
            recording = None  # (signature, first op, end) of the layer being recorded
            i = 0
            while i < len(ops):
                if recording is not None and i == recording[2]:
                    recs[recording[0]] = recs[recording[0]].close(outs[recording[1]:i])
                    recording = None
                start = layer_starts.get(i) if i and recording is None and stamp_layers else None
                if start is not None:
                    layer, end, sig = start
                    s = e.stage_of(layer)
                    if sig is not None and all(c == e.chip_of[s] for _, c, _ in outs[i - 1]):  # no hop in
                        rec = recs.get(sig)
                        if rec is not None:
                            run, ends = [(layer, s)], [end]  # this layer and the alike ones right after it
                            while (nxt := layer_starts.get(ends[-1])) is not None and nxt[2] == sig:
                                run.append((nxt[0], e.stage_of(nxt[0])))
                                ends.append(nxt[1])
                            stamped = rec.stamp(b, e, run, step, outs[i - 1])
                            if stamped:
                                for last_out in stamped:
                                    outs += [None] * (rec.n_ops - 1) + [last_out]
                                i = ends[len(stamped) - 1]
                                continue
                        recs[sig], recording = _Layer(b, layer, s, sig, outs[i - 1]), (sig, i, end)  # record it
                op = ops[i]
                op_id = b.add_op(op.name, op.layer, op.kind.value, step)
                ins = [p for d in graph.deps[i] for p in outs[d]] + (last[mb] if i == 0 else [])
                parts = e.placed(e.shard(op, mb_shape.batch), ins[-1][1] if ins else 0)
                mine = []
                for st, here, part in parts:
                    deps = [t for ts, c, _ in ins if c == here for t in ts]
                    for ts, c, share in ins:
                        if c != here:
                            deps += e.hop(op, c, here, tokens * share * bytes_per_token, list(ts))
                    deps = e.collectives_before(op, i in firsts, here, tokens, deps)
                    launch = step_launch if i == 0 and mb == 0 else 0.0
                    out = lower.op(part, op_id, st, deps, fused[i], extra_ns=launch)
                    if adapters is not None and adapters.targets_op(part):
                        out = _adapter(b, lower, part, step, st, deps, out, adapters)
                    done = e.collectives_after(op, i in lasts, here, tokens, mb_shape.batch, [out])
                    mine.append((tuple(done), here, 1.0 / len(parts)))
                outs.append(mine)
                i += 1
            last[mb] = outs[-1]
            if span is not None:
                span = span.close(outs[-1])
    if len(indices) < 2:  # no second decode step to estimate from: the whole Program, before it is simulated
        _note_long(b.n_tasks, len(indices) + 1, len(b.blocks) + len(b.servers), workload)
    return b.build(plan.to_dict() | {"model": model.name, "batch": workload.batch, "prompt": workload.prompt,
                                     "generate": workload.generate, "dtype": workload.dtype.value,
                                     "kv_dtype": workload.kv_format.value, "decode_steps": workload.generate - 1, "fast": workload.fast})


CACHE_GRAPHS = True  # False lowers every layer of every step's graph (the same Program, slower)


class _StepGraphs:
    """Each step shape's op graph, with what compile needs of it: the ops that start and end a
    layer's routed experts, which ops fuse into the one before, each layer's stamping signature.

    The first graph of each (batch, tokens, logits) is built whole and checked: where every
    layer's ops are its first alike layer's renamed (:func:`layer_layout`), later steps of that
    class (a decode step at another context) lower one layer per distinct block and rename the
    rest when asked (:func:`renamed_graph`). Their marks (fused, expert ends, adapter targets)
    are computed from the lowered layers; where they equal the checked graph's, so do the
    signatures, which are reused (alike layers' ops are equal by construction, so the signature
    comparison can only come out as it did). Anything else is built whole again."""

    def __init__(self, model: ModelSpec, num, block_class: list[int], adapters: Adapters | None):
        self.model, self.num, self.block_class, self.adapters = model, num, block_class, adapters
        self.by_shape: dict[StepShape, tuple] = {}
        self.by_class: dict[tuple, tuple] = {}  # (batch, tokens, logits) -> (layout, marks, signatures)

    def get(self, shape: StepShape) -> tuple:
        out = self.by_shape.get(shape)
        if out is None:
            out = self.by_shape[shape] = self._build(shape)
        return out

    def _build(self, shape: StepShape) -> tuple:
        key = (shape.batch, shape.tokens, shape.logits)
        known = self.by_class.get(key) if CACHE_GRAPHS else None
        if known is not None:
            layout, marks, starts = known
            graph = renamed_graph(self.model, shape, self.num, layout)
            if graph is not None:
                src = graph.ops
                fused, firsts, lasts, flags = self._marks(src.src, src.layers, graph.deps)
                if (fused, firsts, lasts, flags) == marks:
                    return graph, firsts, lasts, fused, starts
        graph = build_graph(self.model, shape, self.num)
        layers = [op.layer for op in graph.ops]
        fused, firsts, lasts, flags = self._marks(graph.ops, layers, graph.deps)
        starts = _layer_signatures(self.block_class, graph, fused, firsts, lasts, self.adapters)
        if key not in self.by_class:
            layout = layer_layout(self.model, graph)
            if layout is not None:
                self.by_class[key] = (layout, (fused, firsts, lasts, flags), starts)
        return graph, firsts, lasts, fused, starts

    def _marks(self, ops, layers: list[int], deps) -> tuple:
        """Which ops fuse into the one before, the first and last routed-expert op of each layer,
        which ops carry an adapter: from the ops as lowered (a renamed op's are its source's)."""
        vector = OpKind.VECTOR  # only a weightless vector op can fuse: the rest are not asked
        fused = [op.kind is vector and not op.weight_bytes and fuses_into_previous(op, [ops[d] for d in deps[i]])
                 for i, op in enumerate(ops)]
        firsts, lasts = _expert_ends(ops, layers)
        a = self.adapters
        flags = tuple(i for i, op in enumerate(ops) if a.targets_op(op)) if a is not None else ()
        return fused, firsts, lasts, flags


class _Span:
    """A step's second micro-batch, recorded so that the third on are stamped from it: a
    micro-batch after the first (which alone pays the step's launch) emits the same tasks as the
    one before it, shifted, with its own previous token as its only input from outside."""

    def __init__(self, b: ProgramBuilder, inputs: list):
        self.mark, self.inputs = b.mark(), _flat(inputs)
        self.b = b

    def close(self, outputs: list) -> _Span | None:
        """Record the micro-batch just emitted; None where it cannot be stamped."""
        self.span = self.b.record_span(self.mark, self.inputs)
        if self.span is None:
            return None
        first, n = self.mark[0], len(self.span)
        ext = {t: k for k, t in enumerate(self.inputs)}
        # each output: a task of the span (>= 0, its offset) or one of the inputs (-1 - k)
        try:
            self.outputs = [([t - first if first <= t < first + n else -1 - ext[t] for t in ts], chip, share)
                            for ts, chip, share in outputs]
        except KeyError:
            return None
        return self

    def stamp(self, b: ProgramBuilder, inputs: list) -> list:
        flat = _flat(inputs)
        base = b.replay_span(self.span, flat)
        return [(tuple(base + t if t >= 0 else flat[-1 - t] for t in ts), chip, share)
                for ts, chip, share in self.outputs]


_OP_FIELDS = attrgetter(*(f.name for f in fields(Op) if f.name not in ("name", "layer")))


def _layer_signatures(block_class: list[int], graph, fused: list[bool], firsts: set[int], lasts: set[int],
                      adapters: Adapters | None) -> dict[int, tuple[int, int, int | None]]:
    """For the first op of each layer: (layer, end, signature). Layers with equal signatures
    (equal blocks, the same ops but for their names' ``L<i>.`` and their layer, wired alike,
    taking only the previous op's output from outside, giving only their last op's to ops
    outside) emit the same tasks on the same stage;
    ``None`` where a layer cannot be stamped. ``block_class[i]`` is the first layer whose block
    equals layer ``i``'s."""
    runs: list[list[int]] = []  # [layer, start, end]
    for i, op in enumerate(graph.ops):
        if op.layer >= 0 and runs and runs[-1][0] == op.layer and runs[-1][2] == i:
            runs[-1][2] = i + 1
        elif op.layer >= 0:
            runs.append([op.layer, i, i + 1])
    seen: dict[int, int] = {}
    for layer, _, _ in runs:
        seen[layer] = seen.get(layer, 0) + 1
    run_of = [-1] * len(graph.ops)
    for r, (_, start, end) in enumerate(runs):
        run_of[start:end] = [r] * (end - start)
    for i, deps in enumerate(graph.deps):  # only a layer's last op may feed ops outside it
        for d in deps:
            r = run_of[d]
            if r >= 0 and r != run_of[i] and d != runs[r][2] - 1:
                seen[runs[r][0]] = 2
    classes: dict[int, list] = {}  # block class -> [(ops' signature, id)]
    n_ids = 0
    out = {}
    for layer, start, end in runs:
        items: list | None = [] if 0 <= layer < len(block_class) and seen[layer] == 1 else None
        prefix = f"L{layer}."
        for i in range(start, end):
            if items is None:
                break
            op, deps = graph.ops[i], graph.deps[i]
            if len(deps) == 1 and deps[0] == i - 1:  # the op before (most ops)
                rel: tuple = (i - 1 - start,) if i > start else (-1,)
            else:
                rel = tuple(d - start if d >= start else -1 if d == start - 1 else None for d in deps)
            if not op.name.startswith(prefix) or None in rel:
                items = None
                break
            items.append((op.name[len(prefix):], _OP_FIELDS(op), rel, fused[i], i in firsts, i in lasts,
                          adapters is not None and adapters.targets_op(op)))
        sig = None
        if items is not None:
            alike = classes.setdefault(block_class[layer], [])
            sig = next((k for other, k in alike if other == items), None)
            if sig is None:
                sig, n_ids = n_ids, n_ids + 1
                alike.append((items, sig))
        out[start] = (layer, end, sig)
    return out


def _block_classes(model: ModelSpec) -> list[int]:
    """For each layer, the first layer whose block equals its own."""
    first: dict = {}
    return [first.setdefault(block, i) for i, block in enumerate(model.blocks)]


class _Layer:
    """A layer's tasks, recorded so that the alike layers after it are stamped from it as numpy
    blocks, renamed, and moved onto their own stage's blocks and servers where that differs."""

    def __init__(self, b: ProgramBuilder, layer: int, stage: int, sig: int, inputs: list):
        self.b, self.layer, self.stage, self.sig = b, layer, stage, sig
        self.mark, self.inputs = b.mark(), _flat(inputs)
        self.shape = _shape(inputs)

    def close(self, outs: list[list]) -> _Layer | None:
        """Record the layer just emitted (``outs``: each op's outputs); None where it cannot be stamped."""
        self.span = span = self.b.record_span(self.mark, self.inputs)
        prefix = f"L{self.layer}."
        if span is None or any(o.layer != self.layer or not o.name.startswith(prefix) for o in span.ops):
            return None
        self.ops = [(o.name[len(prefix):], o.kind) for o in span.ops]
        first, n = self.mark[0], len(span)
        ext = {t: k for k, t in enumerate(self.inputs)}
        try:  # only the last op's outputs are read outside the layer (see _layer_signatures)
            self.out = [([t - first if first <= t < first + n else -1 - ext[t] for t in ts], share)
                        for ts, _, share in outs[-1]]
        except KeyError:
            return None
        self.n_ops = len(outs)
        self.out_shape = tuple((len(ts), share) for ts, share in self.out)
        self.blocks = set(np.unique(span.cols["block"]).tolist())
        self.servers = set(np.unique(span.srv).tolist())
        return self

    def stamp(self, b: ProgramBuilder, e: _Emitter, run: list[tuple[int, int]], step: int,
              inputs: list) -> list[list]:
        """Layers ``run`` (each ``(layer, stage)``, each the input of the next) after ``inputs``,
        stamped from this one as one numpy block: each stamped layer's last op's outputs, for
        as many layers from the first as can be stamped (none where the first cannot: its input
        comes in other pieces, or its blocks or servers cannot be moved onto its stage). A layer
        after a stamped one is stamped where its input (that layer's outputs) has this layer's
        input's shape and is on its own stage's chip: as :meth:`stamp` one layer at a time would."""
        if _shape(inputs) != self.shape:  # its input comes in other pieces (a layer after a collective)
            return []
        maps: list = []
        for k, (_, stage) in enumerate(run):
            if k and (self.out_shape != self.shape or e.chip_of[stage] != e.chip_of[run[k - 1][1]]):
                break
            if stage == self.stage:
                maps.append(None)
                continue
            m = e.stage_maps(self.stage, stage)
            if m is None or not (self.blocks <= m[2] and self.servers <= m[3]):
                break
            maps.append(m)
        run = run[:len(maps)]
        if not run:
            return []
        n, out = len(self.span), self.out
        base = b.n_tasks
        externals = [_flat(inputs)]
        lasts = []
        for k, (_, stage) in enumerate(run):  # each layer's outputs: the next one's input
            flat, first = externals[-1], base + k * n
            chip = e.chip_of[stage]
            lasts.append([(tuple(first + t if t >= 0 else flat[-1 - t] for t in ts), chip, share)
                          for ts, share in out])
            externals.append(_flat(lasts[-1]))
        new, set_, ref = object.__new__, object.__setattr__, OpRef
        ops = []
        for layer, _ in run:  # OpRefs made as op_ref does, without a call each
            prefix = f"L{layer}."
            for name, kind in self.ops:
                o = new(ref)
                set_(o, "__dict__", {"name": prefix + name, "layer": layer, "kind": kind, "step": step})
                ops.append(o)
        moved = any(m is not None for m in maps)
        b.replay_chain(self.span, externals[:-1], ops, [None if m is None else m[0] for m in maps] if moved else None,
                       [None if m is None else m[1] for m in maps] if moved else None)
        return lasts


def _stage_maps(b: ProgramBuilder, a: Stage, z: Stage) -> tuple | None:
    """(block map, server map, blocks moved, servers moved) from stage ``a`` to ``z``, the maps
    arrays indexed by id; None where the stages differ in more than their ids."""
    if (a.matmul_spec, a.attn_spec, a.vector_spec) != (z.matmul_spec, z.attn_spec, z.vector_spec):
        return None
    blocks: dict[int, int] = {}
    servers: dict[int, int] = {}
    pairs = [(blocks, x, y) for x, y in ((a.matmul, z.matmul), (a.attn, z.attn), (a.vector, z.vector), (a.dma, z.dma))]
    for sa, sz in ((a.weights, z.weights), (a.kv, z.kv)):
        if ((sa.streamed, sa.read, sa.write, sa.gbps, sa.latency_ns, [g for _, g in sa.path]) !=
                (sz.streamed, sz.read, sz.write, sz.gbps, sz.latency_ns, [g for _, g in sz.path])):
            return None
        pairs += [(servers, sa.server, sz.server)] + [(servers, x, y) for (x, _), (y, _) in zip(sa.path, sz.path)]
    for table, x, y in pairs:
        if (x is None) != (y is None) or (x is not None and table.setdefault(x, y) != y):
            return None
    block_map, server_map = np.arange(len(b.blocks)), np.arange(max(1, len(b.servers)))
    block_map[list(blocks)] = list(blocks.values())
    if servers:
        server_map[list(servers)] = list(servers.values())
    return block_map, server_map, set(blocks), set(servers)


def _shape(outputs: list) -> tuple:
    """How many tasks each output is, with its share: what emitting an op after them depends on."""
    return tuple((len(ts), share) for ts, _, share in outputs)


def _flat(outputs: list) -> list[int]:
    return [t for ts, _, _ in outputs for t in ts]


def _adapter(b: ProgramBuilder, lower: Lowerer, op, step: int, st: Stage, deps: list[int], base: int,
             adapters: Adapters) -> int:
    """A targeted op's adapter: ``x·A`` starts with the base op (it reads the same input), and
    ``(xA)·B`` adds into the base op's output, so it waits for both; it is the op's new output."""
    down, up = adapter_ops(op, adapters)
    first = lower.op(down, b.add_op(down.name, down.layer, down.kind.value, step), st, deps, adapter=True)
    return lower.op(up, b.add_op(up.name, up.layer, up.kind.value, step), st, [first, base], adapter=True)


def compile_ops(ops: list, system: System, dtype: DType = DType.BF16) -> Program:
    """A Program for a chain of ops on the first stage of ``system``: for experiments and tests
    that time single ops (a GEMM, an attention) without a whole model."""
    b = ProgramBuilder()
    stages = _stages(system.chip, _Blocks(b, 0), 1)
    step = b.add_step(StepRef("prefill", 1, max((o.m for o in ops), default=1), 0))
    lower = Lowerer(b, dtype, system.chip.op_overhead_ns + cost.mesh_ns(weight_matmul(system.chip)))
    prev: list[int] = []
    for i, op in enumerate(ops):
        fused = fuses_into_previous(op, ops[i - 1:i])
        prev = [lower.op(op, b.add_op(op.name, op.layer, op.kind.value, step), stages[0], prev, fused)]
    return b.build({"system": system.name, "ops": len(ops)})
