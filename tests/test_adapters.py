"""LoRA-style adapters: the compiler adds two low-rank products beside each targeted projection.

On the hardwired HC1 they run on its small programmable array with their weights in the KV SRAM,
so they cost time and SRAM traffic but never touch HBM; on an H100 their weights stream from HBM
like any other. Either way the work added is exactly 2·m·r·(k+n) FLOPs and r·(k+n)·2 bytes of
weights per targeted op.
"""

from __future__ import annotations

from functools import cache

import pytest

from asicsim.api import predict
from asicsim.compile import Adapters, Workload, compile_run, step_shapes
from asicsim.compile.adapters import ADAPTER_WEIGHT_BYTES
from asicsim.compile.placement import numerics_for
from asicsim.program import Level
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.hardware.spec import Mapping
from asicsim.model import load_model
from asicsim.model.graph import build_graph
from asicsim.model.ops import StepShape

TARGETS = ("qkv", "o", "gate_up", "down")


@cache
def program(system: str, rank: int | None, batch: int = 2):
    wl = Workload(batch=batch, prompt=16, generate=3, adapters=Adapters(rank, TARGETS) if rank else None)
    return compile_run(load_model("llama-3.1-8b"), load_system(system), wl), wl


def expected_extra(system: str, wl: Workload) -> tuple[float, float]:
    """(FLOPs, weight bytes) the adapters add over the whole run, from the op graphs."""
    model, chip = load_model("llama-3.1-8b"), load_system(system).chip
    micro = wl.batch if chip.mapping is Mapping.SPATIAL else 1
    r, flops, nbytes = wl.adapters.rank, 0.0, 0.0
    for _, shape in step_shapes(wl):
        graph = build_graph(model, StepShape(shape.batch // micro, shape.tokens, shape.context),
                            numerics_for(wl, chip))
        for op in graph.ops:
            if op.name.rsplit(".", 1)[-1] in TARGETS and op.kind.value == "matmul":
                flops += micro * 2 * op.m * r * (op.k + op.n) * op.groups
                nbytes += micro * r * (op.k + op.n) * ADAPTER_WEIGHT_BYTES * op.groups
    return flops, nbytes


def level_bytes(p, level: Level) -> float:
    return float(p.nbytes[p.level == level].sum())


@pytest.mark.parametrize("system,level", [("taalas-hc1", Level.SRAM_READ), ("h100-sxm", Level.HBM_READ)])
def test_adapter_flops_and_bytes_are_conserved(system, level):
    base, _ = program(system, None)
    lora, wl = program(system, 8)
    flops, nbytes = expected_extra(system, wl)
    assert flops > 0
    assert float(lora.flops.sum() - base.flops.sum()) == pytest.approx(flops, rel=1e-9)
    assert level_bytes(lora, level) - level_bytes(base, level) == pytest.approx(nbytes, rel=1e-9)


def test_adapters_run_on_the_programmable_array_of_the_hardwired_chip():
    lora, _ = program("taalas-hc1", 8)
    blocks = {lora.ops[o].name: lora.blocks[b].name for o, b in zip(lora.op, lora.block)}
    assert "attn_array" in blocks["L3.qkv.lora_a"]
    assert "layer_array" in blocks["L3.qkv"]


def test_hbm_bytes_stay_zero_on_the_hardwired_chip():
    lora, _ = program("taalas-hc1", 16)
    assert level_bytes(lora, Level.HBM_READ) == level_bytes(lora, Level.HBM_WRITE) == 0


def test_tpot_rises_with_rank_on_the_hardwired_chip():
    tpot = [predict("llama-3.1-8b", "taalas-hc1", prompt=32, generate=4,
                    adapters=Adapters(r) if r else None).metrics.tpot_ms for r in (None, 8, 32)]
    assert tpot[0] < tpot[1] < tpot[2]


def test_adapter_weights_count_against_the_kv_sram():
    """Rank 64 on all four projections is 285 MB of bf16 weights: more than the HC1's 264 MB SRAM."""
    with pytest.raises(InputError, match="adapters"):
        program("taalas-hc1", 64, batch=1)


def test_targets_that_match_nothing_are_refused():
    with pytest.raises(InputError, match="match no weight matmul"):
        predict("llama-3.1-8b", "taalas-hc1", prompt=8, generate=2, adapters=Adapters(4, ("wq",)))


def test_rank_below_one_is_refused():
    with pytest.raises(InputError, match="rank"):
        predict("llama-3.1-8b", "h100-sxm", prompt=8, generate=2, adapters=Adapters(0))
