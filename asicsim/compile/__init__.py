"""Compile: place a model on a system and emit a Program for a whole run (prefill + decode).

Passes, in order: check the model fits (and is the one a hardwired chip was built for); build
stages (blocks per layer); for each step, lower the op graph into tasks, chaining each step after
the token it needs. Temporal chips run the whole batch through one stage per step; spatial chips
pipeline one micro-batch per sequence through per-layer stages.
"""

from __future__ import annotations

from asicsim.compile.adapters import Adapters, adapter_ops
from asicsim.compile.lower import Lowerer, Stage, Store, fuses_into_previous
from asicsim.compile.packing import pack, split_op
from asicsim.compile.placement import (Workload, attention_matmul, check_fits, chips_needed, numerics_for,
                                       packs_by_op, weight_level, weight_matmul, with_mapping)
from asicsim.compile.program import Category, Level, Program, ProgramBuilder, StepRef
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import ChipSpec, DMASpec, LinkSpec, Mapping, VectorSpec
from asicsim.hardware.system import System, SystemSpec, build_system, instance_name
from asicsim.model.graph import build_graph
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import OpKind, StepShape

__all__ = ["Adapters", "Program", "Workload", "check_run", "compile_ops", "compile_run", "step_shapes"]


def step_shapes(workload: Workload) -> list[tuple[str, StepShape]]:
    """Prefill of the prompt, then one decode step per generated token after the first."""
    w = workload
    steps = [("prefill", StepShape(w.batch, w.prompt, 0))]
    steps += [("decode", StepShape(w.batch, 1, w.prompt + j)) for j in range(w.generate - 1)]
    return steps


class _Blocks:
    """Registers each block instance of one chip with the builder, once, by name."""

    def __init__(self, b: ProgramBuilder, chip_index: int):
        self.b, self.chip, self.ids, self.servers = b, chip_index, {}, {}

    def _name(self, spec, stage: int) -> str:
        count = getattr(spec, "count", 1)
        return instance_name(self.chip, spec.name, stage % count, count)

    def block(self, spec, stage: int) -> int:
        name = self._name(spec, stage)
        if name not in self.ids:
            self.ids[name] = self.b.add_block(name, spec.kind, self.chip)
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


class _Hops:
    """Chip-to-chip activation transfers: one link (a server) and one sender (a block) per pair."""

    def __init__(self, b: ProgramBuilder, chip: ChipSpec, bytes_per_token: float):
        self.b, self.link, self.bytes_per_token = b, chip.chip_link, bytes_per_token
        self.pairs: dict[tuple[int, int], tuple[int, int]] = {}

    def send(self, src: int, dst: int, op_id: int, deps: list[int], tokens: float) -> int:
        """Move ``tokens`` activation vectors (or that share of them) from chip ``src`` to ``dst``."""
        if (src, dst) not in self.pairs:
            name = f"chip{src}->chip{dst}"
            self.pairs[src, dst] = (self.b.add_block(name, "link", src),
                                    self.b.add_server(name, "link", self.link.bandwidth_gbps))
        block, server = self.pairs[src, dst]
        nbytes = tokens * self.bytes_per_token
        hold = nbytes / self.link.bandwidth_gbps
        return self.b.task(block, op_id, hold, deps, latency_ns=self.link.latency_ns, nbytes=nbytes,
                           level=Level.LINK, category=Category.LINK, servers=((server, hold),))


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
    chip = system.chip
    need = chips_needed(model, chip, workload, numerics_for(workload, chip))
    if need > len(system.chips) and chip.chip_link is None:
        raise InputError(system.source, "chip_link", f"{model.name} needs {need} chips of {chip.name} "
                         "but the chip describes no chip_link to join them")
    return max(need, len(system.chips))


def remap(system: System, workload: Workload) -> System:
    """The system with the workload's mapping, when it asks for one other than the chip's own."""
    if workload.mapping is None or workload.mapping is system.chip.mapping:
        return system
    chip = with_mapping(system.chip, workload.mapping, system.source)
    return build_system(SystemSpec(name=f"{system.name} ({chip.mapping.value})", chip=chip,
                                   count=len(system.chips)), system.source)


def check_run(model: ModelSpec, system: System, workload: Workload) -> int:
    """The refusals of :func:`compile_run` (a bad workload, a model that does not fit or is not the
    one a hardwired chip holds) without building or lowering anything: raises the same InputError,
    or returns the number of chips the run takes. Cheap enough to ask about every model of the zoo
    or to search batch sizes, even where the scaled-out system would have thousands of chips."""
    workload.check()
    system = remap(system, workload)
    n_chips = _chip_count(model, system, workload)
    check_fits(model, system, workload, numerics_for(workload, system.chip), n_chips)
    return n_chips


def scale_out(model: ModelSpec, system: System, workload: Workload) -> System:
    """The system with as many chips as the model needs (only SRAM-only spatial chips grow)."""
    chip = system.chip
    need = _chip_count(model, system, workload)
    if need <= len(system.chips):
        return system
    link = LinkSpec(a="chip", b="chip", bandwidth_gbps=chip.chip_link.bandwidth_gbps,
                    latency_ns=chip.chip_link.latency_ns, source=chip.chip_link.source)
    return build_system(SystemSpec(name=f"{system.name} x{need}", chip=chip, count=need, interconnect=link),
                        system.source)


def compile_run(model: ModelSpec, system: System, workload: Workload) -> Program:
    """The Program for ``workload`` on ``system``: every step, every op, every task."""
    workload.check()
    system = scale_out(model, remap(system, workload), workload)
    chip = system.chip
    num = numerics_for(workload, chip)
    check_fits(model, system, workload, num)
    b = ProgramBuilder()
    spatial = chip.mapping is Mapping.SPATIAL
    n_layers = model.n_layers
    per_chip = getattr(weight_matmul(chip), "count", 1) if spatial else 1
    stages = [st for c in range(len(system.chips)) for st in _stages(chip, _Blocks(b, c), per_chip)]
    n_stages = len(stages)
    head_stage = min(n_layers, n_stages - 1) if n_stages > n_layers else n_stages - 1
    chip_of = {id(st): i // per_chip for i, st in enumerate(stages)}
    hop = _Hops(b, chip, model.hidden * num.act_bytes)

    packing = (pack(model, workload, num, chip.sram_for("weights").capacity_bytes)
               if packs_by_op(chip) and len(system.chips) > 1 else None)

    def placed(op, prev_chip: int) -> list[tuple[Stage, int, object]]:
        """(stage, chip, part of the op) for each part of ``op``."""
        if packing is not None:
            chips = packing.where.get(op.name, (prev_chip,))
            return [(stages[c], c, part) for c, part in zip(chips, split_op(op, len(chips)))]
        if op.kind is OpKind.EMBED:
            st = stages[0]
        elif op.layer < 0:
            st = stages[head_stage]
        else:
            st = stages[op.layer if n_stages > n_layers else op.layer * n_stages // n_layers]
        return [(st, chip_of[id(st)], op)]

    lower = Lowerer(b, workload.dtype, chip.op_overhead_ns)
    adapters = workload.adapters
    micro = workload.batch if spatial else 1
    last: list[list[tuple[int, int, float]]] = [[] for _ in range(micro)]
    graphs: dict[StepShape, object] = {}
    for phase, shape in step_shapes(workload):
        step = b.add_step(StepRef(phase, shape.batch, shape.tokens, shape.context))
        mb_shape = StepShape(shape.batch // micro, shape.tokens, shape.context)
        tokens = mb_shape.batch * mb_shape.tokens
        if mb_shape not in graphs:
            graphs[mb_shape] = build_graph(model, mb_shape, num)
        graph = graphs[mb_shape]
        for mb in range(micro):
            outs: list[list[tuple[int, int, float]]] = []  # per op: (output task, chip, share)
            for i, op in enumerate(graph.ops):
                op_id = b.add_op(op.name, op.layer, op.kind.value, step)
                ins = [p for d in graph.deps[i] for p in outs[d]] + (last[mb] if i == 0 else [])
                fused = fuses_into_previous(op, [graph.ops[d] for d in graph.deps[i]])
                parts = placed(op, ins[-1][1] if ins else 0)
                mine = []
                for st, here, part in parts:
                    deps = [t for t, c, _ in ins if c == here]
                    deps += [hop.send(c, here, op_id, [t], tokens * share) for t, c, share in ins if c != here]
                    launch = chip.step_overhead_ns if i == 0 and mb == 0 else 0.0
                    out = lower.op(part, op_id, st, deps, fused, extra_ns=launch)
                    if adapters is not None and adapters.targets_op(part):
                        out = _adapter(b, lower, part, step, st, deps, out, adapters)
                    mine.append((out, here, 1.0 / len(parts)))
                outs.append(mine)
            last[mb] = outs[-1]
    meta = {"model": model.name, "system": system.name, "mapping": chip.mapping.value,
            "batch": workload.batch, "prompt": workload.prompt, "generate": workload.generate,
            "dtype": workload.dtype.value, "weight_bytes_per_param": num.weight_bytes,
            "kv_bytes_per_element": num.kv_bytes, "micro_batches": micro, "stages": n_stages,
            "chips": len(system.chips)}
    return b.build(meta)


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
    lower = Lowerer(b, dtype, system.chip.op_overhead_ns)
    prev: list[int] = []
    for i, op in enumerate(ops):
        fused = fuses_into_previous(op, ops[i - 1:i])
        prev = [lower.op(op, b.add_op(op.name, op.layer, op.kind.value, step), stages[0], prev, fused)]
    return b.build({"system": system.name, "ops": len(ops)})
