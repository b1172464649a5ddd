"""Spreading a model over several SRAM-only chips (Groq-like), and what is refused."""

import pytest

from asicsim.api import predict
from asicsim.compile import Workload
import numpy as np

from asicsim.compile.packing import pack, resident_bytes, split_op
from asicsim.compile.placement import numerics_for
from asicsim.model import Numerics, StepShape, build_graph
from asicsim.dtypes import DType
from asicsim.hardware import load_chip, load_system
from asicsim.model import load_model


def test_groq_packs_ops_onto_as_many_chips_as_they_need(llama8b):
    r = predict("llama-3.1-8b", "groq-lpu", prompt=32, generate=3, dtype="int8")
    chips = r.program.meta["chips"]
    capacity = load_chip("groq-lpu").sram_for("weights").capacity_bytes
    num = numerics_for(r.workload, r.system.chip)
    packing = pack(llama8b, r.workload, num, capacity)
    assert chips == packing.chips
    # never less than the whole model divided by one chip's SRAM ...
    need = llama8b.params() * num.weight_bytes + llama8b.kv_bytes(1, 35, num)
    assert chips >= -(-need // capacity) > 1
    # ... and no chip holds more than its SRAM
    graph = build_graph(llama8b, StepShape(1, 1, 34), num)
    held = np.zeros(chips)
    for op in graph.ops:
        where = packing.where[op.name]
        for c in where:
            held[c] += resident_bytes(op, llama8b, num, r.workload) / len(where)
    assert held.max() <= capacity * (1 + 1e-12)
    # every chip computes: each has busy matmul or vector blocks
    busy_chips = {r.program.blocks[b].chip for b in set(r.program.block.tolist())
                  if r.program.blocks[b].kind in ("matmul", "vector")}
    assert busy_chips == set(range(chips))
    assert r.metrics.bytes_per_decode_step["hbm_read"] == 0
    assert r.metrics.bytes_per_decode_step["link"] > 0


def test_split_parts_do_exactly_the_work_of_the_op(llama8b):
    graph = build_graph(llama8b, StepShape(2, 3, 40), Numerics())
    for op in graph.ops:
        parts = split_op(op, 3)
        for field in ("flops", "vector_ops", "weight_bytes", "kv_read_bytes", "kv_write_bytes"):
            assert sum(getattr(p, field) for p in parts) == getattr(op, field)


def test_bf16_needs_twice_the_chips_of_int8():
    int8 = predict("llama-3.1-8b", "groq-lpu", prompt=16, generate=2, dtype="int8").program.meta["chips"]
    bf16 = predict("llama-3.1-8b", "groq-lpu", prompt=16, generate=2, dtype="bf16").program.meta["chips"]
    assert 2 * int8 <= bf16 <= 3 * int8  # twice the bytes; big ops split over more chips


@pytest.mark.parametrize("name", ["mixtral-8x7b", "qwen3-30b-a3b"])
def test_moe_models_count_every_expert_on_sram_chips(name):
    """Every expert is resident wherever it lives, whichever ones a batch touches: the chips a
    MoE model takes hold at least all its weights, and more sequences never take fewer chips."""
    from asicsim.compile import check_run

    model = load_model(name)
    system = load_system("groq-lpu")
    capacity = system.chip.sram_for("weights").capacity_bytes
    chips = [check_run(model, system, Workload(batch=b, prompt=64, generate=2, dtype=DType.INT8)) for b in (1, 64)]
    assert chips[0] * capacity >= model.params() * 1.0
    assert chips[1] >= chips[0]


def test_deepseek_v3_on_groq_does_not_depend_on_the_batch_touching_experts():
    from asicsim.compile import check_run
    from asicsim.compile.packing import pack

    model = load_model("deepseek-v3")
    system = load_system("groq-lpu")
    capacity = system.chip.sram_for("weights").capacity_bytes
    sizes = [check_run(model, system, Workload(batch=b, prompt=16, generate=2, dtype=DType.INT8)) for b in (64, 256)]
    assert sizes[0] <= sizes[1] and sizes[0] * capacity >= model.params()
    assert pack(model, Workload(batch=1, prompt=16, generate=2, dtype=DType.INT8), Numerics(1.0, 1.0), capacity).chips \
        >= model.params() / capacity
