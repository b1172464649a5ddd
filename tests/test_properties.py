"""Properties over random small models and chips (hypothesis).

For any model, chip and workload that fits: the same inputs give the same trace bit for bit;
FLOPs and bytes are conserved between the op graphs and the executed Program; no task starts
before its dependencies end; a block never runs two tasks at once; utilisation never exceeds 1.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicsim.compile import Workload, compile_run, step_shapes
from asicsim.compile.placement import numerics_for
from asicsim.program import Level
from asicsim.dtypes import DType
from asicsim.engine import simulate
from asicsim.hardware import ChipSpec, SystemSpec, build_system
from asicsim.metrics import compute_metrics
from asicsim.model import Attention, Block, DenseMLP, ModelSpec, StepShape, build_graph


@st.composite
def models(draw) -> ModelSpec:
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.sampled_from([1, 2, 4]))
    head_dim = draw(st.sampled_from([8, 16]))
    window = draw(st.sampled_from([None, None, 4]))
    layers = draw(st.integers(1, 3))
    attn = Attention(heads, kv, head_dim, window=window)
    mlp = DenseMLP(draw(st.sampled_from([32, 96, 100])))
    return ModelSpec("tiny", "<test>", "llama", heads * head_dim, draw(st.sampled_from([50, 256])),
                     tuple(Block(attn, mlp) for _ in range(layers)))


@st.composite
def chips(draw) -> ChipSpec:
    rows, cols = draw(st.sampled_from([4, 8])), draw(st.sampled_from([4, 8]))
    matmul = dict(kind="matmul", name="mm", units=draw(st.integers(1, 4)), rows=rows, cols=cols,
                  clock_ghz=draw(st.sampled_from([0.5, 1.0, 1.5])), dtype_rate={"bf16": 1, "fp8": 2},
                  m_quantum=draw(st.sampled_from([1, 4])))
    vector = dict(kind="vector", name="vec", lanes=draw(st.sampled_from([8, 32])), clock_ghz=1.0)
    if draw(st.booleans()):  # temporal: weights stream from HBM
        blocks = [matmul, vector,
                  dict(kind="hbm", name="hbm", channels=draw(st.integers(1, 4)), latency_ns=draw(st.sampled_from([0, 50])),
                       bandwidth_gbps_per_channel=draw(st.sampled_from([1.0, 8.0])), capacity_gb=1.0, efficiency=0.9),
                  dict(kind="dma", name="dma")]
        return ChipSpec(name="rand-temporal", mapping="temporal", blocks=blocks,
                        op_overhead_ns=draw(st.sampled_from([0.0, 100.0])))
    stages = draw(st.integers(1, 5))
    matmul["count"] = vector["count"] = stages
    sram = dict(kind="sram", name="sram", count=stages, banks=draw(st.integers(1, 4)), capacity_mb_per_bank=1.0,
                bytes_per_cycle_per_bank=draw(st.sampled_from([4, 64])), clock_ghz=1.0, holds=["weights", "kv"])
    return ChipSpec(name="rand-spatial", mapping="spatial", blocks=[matmul, vector, sram],
                    op_overhead_ns=draw(st.sampled_from([0.0, 10.0])))


workloads = st.builds(Workload, batch=st.integers(1, 3), prompt=st.integers(1, 9), generate=st.integers(1, 4),
                      dtype=st.sampled_from([DType.BF16, DType.FP8]))

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def graph_totals(model, system, wl):
    num = numerics_for(wl, system.chip)
    micro = wl.batch if system.chip.mapping.value == "spatial" else 1
    totals = dict(flops=0.0, weight_bytes=0.0, kv_read_bytes=0.0, kv_write_bytes=0.0)
    for _, shape in step_shapes(wl):
        g = build_graph(model, StepShape(shape.batch // micro, shape.tokens, shape.context), num)
        for key in totals:
            totals[key] += micro * g.total(key)
    return totals


@SETTINGS
@given(models(), chips(), workloads)
def test_run_properties(model, chip, wl):
    system = build_system(SystemSpec(name=chip.name, chip=chip))
    program = compile_run(model, system, wl)
    trace = simulate(program)

    # determinism: compile and simulate again, bit for bit
    again = simulate(compile_run(model, system, wl))
    assert trace.digest() == again.digest()

    # conservation of FLOPs and bytes
    totals = graph_totals(model, system, wl)
    by_level = np.bincount(program.level, weights=program.nbytes, minlength=len(Level))
    assert np.isclose(program.flops.sum(), totals["flops"], rtol=1e-12)
    if chip.mapping.value == "temporal":
        assert by_level[Level.HBM_READ] == totals["weight_bytes"] + totals["kv_read_bytes"]
        assert by_level[Level.HBM_WRITE] == totals["kv_write_bytes"]
    else:
        assert by_level[Level.HBM_READ] == 0
        assert np.isclose(by_level[Level.SRAM_READ], totals["weight_bytes"] + totals["kv_read_bytes"], rtol=1e-12)

    # no task starts before its dependencies end
    for t in range(program.n_tasks):
        deps = program.deps(t)
        if len(deps):
            assert trace.start_ns[t] >= trace.end_ns[deps].max()

    # a block runs one task at a time
    busy_end = trace.end_ns - program.latency_ns
    for b in range(len(program.blocks)):
        idx = np.flatnonzero(program.block == b)
        assert np.all(trace.start_ns[idx][1:] >= busy_end[idx][:-1] - 1e-9)

    # utilisation never exceeds 1
    metrics = compute_metrics(trace)
    for phase in metrics.block_utilisation.values():
        assert all(0.0 <= u <= 1.0 + 1e-9 for u in phase.values())
