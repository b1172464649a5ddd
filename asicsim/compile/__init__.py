"""Compile: place a model on a system and emit a Program for a whole run (prefill + decode).

Passes, in order: check the model fits (and is the one a hardwired chip was built for); build
stages (blocks per layer); for each step, lower the op graph into tasks, chaining each step after
the token it needs. Temporal chips run the whole batch through one stage per step; spatial chips
pipeline one micro-batch per sequence through per-layer stages.
"""

from __future__ import annotations

from asicsim.compile.lower import Lowerer, Stage, Store
from asicsim.compile.placement import (Workload, attention_matmul, check_fits, numerics_for, weight_level,
                                       weight_matmul)
from asicsim.compile.program import Level, Program, ProgramBuilder, StepRef
from asicsim.dtypes import DType
from asicsim.hardware.spec import ChipSpec, DMASpec, Mapping, VectorSpec
from asicsim.hardware.system import System, instance_name
from asicsim.model.graph import build_graph
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import OpKind, StepShape

__all__ = ["Program", "Workload", "compile_ops", "compile_run", "step_shapes"]


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

    def block(self, spec, stage: int) -> int:
        count = getattr(spec, "count", 1)
        name = instance_name(self.chip, spec.name, stage % count, count)
        if name not in self.ids:
            self.ids[name] = self.b.add_block(name, spec.kind, self.chip)
        return self.ids[name]

    def server(self, spec, stage: int, gbps: float) -> int:
        count = getattr(spec, "count", 1)
        name = instance_name(self.chip, spec.name, stage % count, count)
        if name not in self.servers:
            self.servers[name] = self.b.add_server(name, spec.kind, gbps)
        return self.servers[name]


def _stages(chip: ChipSpec, blocks: _Blocks, n_stages: int) -> list[Stage]:
    mm, attn = weight_matmul(chip), attention_matmul(chip)
    vec = chip.blocks_of(VectorSpec)[0]
    stages = []
    for s in range(n_stages):
        if chip.mapping is Mapping.TEMPORAL:
            hbm = chip.hbm
            dma = chip.blocks_of(DMASpec)
            if hbm is None or not dma:
                raise ValueError(f"{chip.name}: a temporal chip needs an hbm block and a dma block")
            srv = blocks.server(hbm, 0, hbm.effective_gbps)
            store = Store(True, Level.HBM_READ, Level.HBM_WRITE, srv, hbm.effective_gbps, hbm.latency_ns)
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


def compile_run(model: ModelSpec, system: System, workload: Workload) -> Program:
    """The Program for ``workload`` on ``system``: every step, every op, every task."""
    workload.check()
    chip = system.chip
    num = numerics_for(workload, chip)
    check_fits(model, system, workload, num)
    b = ProgramBuilder()
    blocks = _Blocks(b, 0)
    spatial = chip.mapping is Mapping.SPATIAL
    n_layers = model.n_layers
    n_stages = getattr(weight_matmul(chip), "count", 1) if spatial else 1
    stages = _stages(chip, blocks, n_stages)
    head_stage = min(n_layers, n_stages - 1) if n_stages > n_layers else n_stages - 1

    def stage_of(layer: int, kind: OpKind) -> Stage:
        if kind is OpKind.EMBED:
            return stages[0]
        if layer < 0:
            return stages[head_stage]
        return stages[layer if n_stages > n_layers else layer * n_stages // n_layers]

    lower = Lowerer(b, workload.dtype, chip.op_overhead_ns)
    micro = workload.batch if spatial else 1
    last_out: list[int | None] = [None] * micro
    graphs: dict[StepShape, object] = {}
    for phase, shape in step_shapes(workload):
        step = b.add_step(StepRef(phase, shape.batch, shape.tokens, shape.context))
        mb_shape = StepShape(shape.batch // micro, shape.tokens, shape.context)
        graph = graphs.get(mb_shape) or graphs.setdefault(mb_shape, build_graph(model, mb_shape, num))
        for mb in range(micro):
            outs: list[int] = []
            for i, op in enumerate(graph.ops):
                op_id = b.add_op(op.name, op.layer, op.kind.value, step)
                deps = [outs[d] for d in graph.deps[i]]
                if i == 0 and last_out[mb] is not None:
                    deps.append(last_out[mb])
                outs.append(lower.op(op, op_id, stage_of(op.layer, op.kind), deps))
            last_out[mb] = outs[-1]
    meta = {"model": model.name, "system": system.name, "mapping": chip.mapping.value,
            "batch": workload.batch, "prompt": workload.prompt, "generate": workload.generate,
            "dtype": workload.dtype.value, "weight_bytes_per_param": num.weight_bytes,
            "kv_bytes_per_element": num.kv_bytes, "micro_batches": micro, "stages": n_stages}
    return b.build(meta)


def compile_ops(ops: list, system: System, dtype: DType = DType.BF16) -> Program:
    """A Program for a chain of ops on the first stage of ``system``: for experiments and tests
    that time single ops (a GEMM, an attention) without a whole model."""
    b = ProgramBuilder()
    stages = _stages(system.chip, _Blocks(b, 0), 1)
    step = b.add_step(StepRef("prefill", 1, max((o.m for o in ops), default=1), 0))
    lower = Lowerer(b, dtype, system.chip.op_overhead_ns)
    prev: list[int] = []
    for op in ops:
        prev = [lower.op(op, b.add_op(op.name, op.layer, op.kind.value, step), stages[0], prev)]
    return b.build({"system": system.name, "ops": len(ops)})
