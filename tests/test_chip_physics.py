"""The physics the open/closed comparison rests on.

- **HBM chips** stream every weight for every decode step, so at batch 1 a step lies between the
  bandwidth bound ((weight + KV bytes) / peak HBM bandwidth) and 1.5× it. That is tested per HBM
  preset in test_presets.py (``test_decode_step_is_no_faster_than_bandwidth_allows`` and
  ``test_decode_step_is_within_1_5x_of_bandwidth_bound``; b200 is a strict xfail there, with its
  reason) and not repeated here.
- **The hardwired chip** reads its weights in place from ROM: its decode step is set by its arrays
  and by on-chip SRAM traffic (the KV cache), with no HBM bytes at all.
- **Spatial pipelines** (HC1: a stage per layer; Groq: a chip per few layers) run one sequence per
  micro-batch, so aggregate throughput grows with the batch while stages sit idle, then stops at
  the rate of the slowest stage.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import numpy as np
import pytest

from asicsim.api import Result, run
from asicsim.compile import Workload
from asicsim.dtypes import DType
from asicsim.hardware import load_system
from asicsim.model import load_model

PROMPT, GENERATE = 32, 4
# Batches past which the slowest stage saturates: the HC1's LM-head stage (~4.1 us a token against
# a 75 us step) fills at ~18 sequences, Groq's busiest chip (~16 us against 577 us) at ~35.
SATURATING = {"taalas-hc1": (16, 32), "groq-lpu": (32, 64)}


@cache
def decode(system: str, batch: int) -> Result:
    return run(load_model("llama-3.1-8b"), load_system(system), Workload(batch, PROMPT, GENERATE))


def slowest_block_ns_per_token(r: Result) -> float:
    """The most busy time any one block spends per generated token while decoding: no pipeline can
    deliver tokens faster than its slowest stage handles them."""
    p = r.program
    phases = np.array([s.phase for s in p.steps])
    sel = phases[p.step_of_task()] == "decode"
    busy = np.bincount(p.block[sel], weights=(p.fixed_ns + p.service_ns)[sel], minlength=len(p.blocks))
    return float(busy.max()) / (int((phases == "decode").sum()) * r.workload.batch)


# -- the hardwired chip ------------------------------------------------------------------------------

def test_hardwired_decode_is_set_by_compute_and_sram_with_zero_hbm_bytes():
    m = decode("taalas-hc1", 1).metrics
    assert m.dominant_bound["decode"] in ("compute", "memory")  # memory here can only mean SRAM
    per_step = m.bytes_per_decode_step
    assert per_step.get("hbm_read", 0.0) == 0.0 and per_step.get("hbm_write", 0.0) == 0.0
    assert per_step["rom_read"] > 0 and per_step["sram_read"] > 0
    assert m.utilisation["decode"].get("hbm") is None


# -- spatial pipelines -------------------------------------------------------------------------------

@pytest.mark.parametrize("system", ["taalas-hc1", "groq-lpu"])
def test_pipeline_throughput_rises_with_batch(system):
    """Below saturation each added sequence fills an idle stage: doubling the batch at most doubles
    tokens/s, and here (batches 1-8, far from saturation) very nearly does."""
    tps = [decode(system, b).metrics.tokens_per_s for b in (1, 2, 4, 8)]
    for lo, hi in pairwise(tps):
        assert 1.9 * lo < hi <= 2.0 * lo * (1 + 1e-9)


@pytest.mark.parametrize("system", ["taalas-hc1", "groq-lpu"])
def test_pipeline_throughput_saturates_at_the_slowest_stage(system):
    """Past saturation a doubling gains less than the first did, the aggregate stays below
    batch-1 tokens/s × stages, and it meets the slowest stage's rate (within a few per cent: TPOT
    is timed from the end of the last prefill, and the first sequences' decode overlaps it)."""
    below, past = SATURATING[system]
    one = decode(system, 1).metrics.tokens_per_s
    first_gain = decode(system, 2).metrics.tokens_per_s / one
    big = decode(system, past)
    tps = big.metrics.tokens_per_s
    assert tps / decode(system, below).metrics.tokens_per_s < first_gain
    assert tps <= one * big.program.meta["stages"]
    ceiling = 1e9 / slowest_block_ns_per_token(big)
    assert 0.9 * ceiling <= tps <= 1.05 * ceiling


# -- links between chips: bandwidth and latency both count ------------------------------------------

def test_point_to_point_send_pays_link_rate_and_latency():
    """A send from one GPU to another on dgx-h100 crosses GPU→switch→GPU: a tiny message costs
    the collective start-up and the two links' latency, a large one its size at the link's
    effective rate. Goes red if the
    link is made 10× faster or its latency is dropped."""
    from asicsim.api import collective_ns

    system = load_system("dgx-h100")
    net = system.chip.network
    rate = net.bandwidth_gbps * net.efficiency
    tiny = collective_ns(system, "send", 64, ranks=[0, 1])
    big = 4e9
    large = collective_ns(system, "send", big, ranks=[0, 1])
    assert tiny - net.collective_overhead_ns == pytest.approx(2 * net.latency_ns, rel=0.05)  # start-up apart
    assert large == pytest.approx(big / rate, rel=0.05)
    assert large - tiny == pytest.approx((big - 64) / rate, rel=0.05)


# -- spatial fabrics: the mesh on a wafer, the links between chips ----------------------------------

def _spatial(system: str, **changes):
    from asicsim.hardware import SystemSpec, build_system

    sys_ = load_system(system)
    chip = sys_.chip.with_(**changes) if changes else sys_.chip
    return build_system(SystemSpec(name=sys_.name, chip=chip, count=len(sys_.chips)))  # the chip's own network


def test_a_wafer_op_crosses_its_patch_of_cores_twice():
    """An op on a stage's square patch of cores broadcasts its input along one side and reduces
    partial sums along the other: 2·⌈√units⌉ hops, so a stage k times larger pays √k times as much."""
    from asicsim import cost
    from asicsim.compile.placement import weight_matmul, with_stages

    chip = load_system("cerebras-wse3").chip
    mm = weight_matmul(chip)
    assert cost.mesh_ns(mm) == pytest.approx(2 * 166 * mm.mesh_hop_ns)  # ⌈√27,272⌉ = 166
    bigger = weight_matmul(with_stages(chip, 9))
    assert mm.units * mm.count - 9 < bigger.units * bigger.count <= mm.units * mm.count  # the same cores, re-cut
    assert cost.mesh_ns(bigger) == pytest.approx((33 / 9) ** 0.5 * cost.mesh_ns(mm), rel=0.02)
    assert cost.mesh_ns(weight_matmul(load_system("h100-sxm").chip)) == 0.0  # a GPU is no mesh


def test_wafer_decode_pays_the_mesh_once_per_op():
    """Llama-3.1-8B on one wafer at batch 1: dropping the hop latency shortens a decode step by
    the mesh crossing of every op that is not fused into its predecessor (at least four and at
    most ten a layer: norms, projections, attention, the MLP's matmuls). Goes red if the mesh
    term is dropped or charged per layer instead of per op."""
    from asicsim import cost
    from asicsim.compile.placement import weight_matmul

    model = load_model("llama-3.1-8b")
    wl = Workload(1, PROMPT, GENERATE)
    with_mesh = run(model, _spatial("cerebras-wse3"), wl)
    without = run(model, _spatial("cerebras-wse3", **{"core_array.mesh_hop_ns": 0.0}), wl)
    per_op = cost.mesh_ns(weight_matmul(with_mesh.plan.chip))
    saved = (with_mesh.metrics.tpot_ms - without.metrics.tpot_ms) * 1e6
    assert 4 * model.n_layers * per_op <= saved <= 10 * model.n_layers * per_op


def test_wafers_give_each_layer_its_own_patch():
    """A model over several wafers: each wafer is re-cut into as many stages as the layers it holds
    (plus the LM head's), so no stage sits idle and a layer gets a larger patch; one wafer holding
    a 32-layer model keeps the preset's 33 stages."""
    from asicsim.compile import Workload as W, plan_run
    from asicsim.compile.placement import weight_matmul

    preset = weight_matmul(load_system("cerebras-wse3").chip)
    one = plan_run(load_model("llama-3.1-8b"), load_system("cerebras-wse3"), W(1, 16, 2))
    assert weight_matmul(one.chip).count == preset.count == 33
    big = plan_run(load_model("llama-3.1-405b"), load_system("cerebras-wse3"), W(1, 16, 2))
    n = len(big.system.chips)
    mm = weight_matmul(big.chip)
    assert mm.count == -(-(126 + 1) // n) and big.stages == mm.count * n
    assert mm.units == preset.units * preset.count // mm.count



def test_a_wafer_cut_to_one_stage_packs_ops_over_as_many_wafers_as_they_need():
    """Wafers with so little SRAM that each holds less than a layer are cut to one stage apiece,
    and a one-stage chip packs the model op by op, splitting ops over wafers: that can take more
    wafers than the bytes alone asked for, and the system grows to them (it indexed past its last
    wafer: the slow fuzz tier found it). check_run counts the same wafers as the run."""
    from asicsim.compile import check_run, plan_run
    from asicsim.compile.packing import pack
    from asicsim.compile.placement import packs_by_op

    model = load_model("llama-2-7b")
    system = _spatial("cerebras-wse3", **{"sram.capacity_mb_per_bank": 1e-4})
    wl = Workload(1, 16, 2)
    plan = plan_run(model, system, wl)
    assert packs_by_op(plan.chip)
    packed = pack(model, wl, plan.numerics, plan.chip.sram_for("weights").capacity_bytes).chips
    assert len(plan.system.chips) == packed == check_run(model, system, wl)
    assert run(model, system, Workload(1, 16, 2, fast=True)).metrics.tpot_ms > 0

def test_groq_token_pays_a_link_latency_at_every_chip_boundary():
    """On Groq a token crosses every chip the model is packed over, one after another: the decode
    step grows by at least the link latency for each boundary (more where an op split over chips
    gathers its parts). Goes red if link latency is dropped or the chips run in parallel."""
    model = load_model("llama-2-7b")
    wl = Workload(1, PROMPT, GENERATE, dtype=DType.INT8)
    base = run(model, _spatial("groq-lpu"), wl)
    no_latency = run(model, _spatial("groq-lpu", **{"network.latency_ns": 0.0}), wl)
    chips = len(base.plan.system.chips)
    latency = load_system("groq-lpu").chip.network.latency_ns
    added = (base.metrics.tpot_ms - no_latency.metrics.tpot_ms) * 1e6
    assert chips > 20
    assert (chips - 1) * latency <= added <= 3 * (chips - 1) * latency


# -- weight-only int4: the group scales it reads, the unpacking it does -----------------------------

def test_int4_decode_reads_each_groups_scale_and_zero():
    """Group-quantised int4 (tinygemm's layout: a bf16 scale and zero per 32 weights) streams
    0.625 bytes a weight, not 0.5: a decode step of Llama-2-70B on one A100 reads that much of HBM
    (plus a small KV cache). Goes red if the group's 4 bytes are dropped."""
    from asicsim import cost

    model = load_model("llama-2-70b")
    r = run(model, load_system("a100-sxm-80gb"), Workload(1, 8, 3, dtype=DType.INT4))
    per_weight = cost.weight_bytes_per_element(DType.INT4)
    assert per_weight == 0.5 + 4 / 32
    read = r.metrics.bytes_per_decode_step["hbm_read"]
    # the embedding table is not streamed (one row a token): ~0.4 % of the weights
    assert 0.99 * model.params() * per_weight <= read <= 1.01 * model.params() * per_weight


def test_int4_unpacking_bounds_a_matmul_when_the_vector_lanes_are_few():
    """The A100's tensor cores have no int4 rate, so every weight is unpacked on the SMs' vector
    lanes (15 lane instructions per 8 weights) beside the products. On the preset it hides under
    the HBM stream; with one lane per SM instead of 64 it sets the step: within 10 % of the
    weights' unpacking time. Goes red if the unpacking is not charged."""
    from asicsim import cost
    from asicsim.compile.placement import numerics_for
    from asicsim.model.graph import build_graph
    from asicsim.model.ops import OpKind, StepShape

    model = load_model("llama-2-7b")
    wl = Workload(1, 8, 3, dtype=DType.INT4)
    few = _spatial("a100-sxm-80gb", **{"cuda_cores.lanes": 108})
    vec = next(b for b in few.chip.blocks if b.kind == "vector")
    mm = next(b for b in few.chip.blocks if b.kind == "matmul")
    graph = build_graph(model, StepShape(1, 1, 8), numerics_for(wl, few.chip))
    weights = (sum(op.weight_bytes for op in graph.ops if op.kind is OpKind.MATMUL)
               / cost.weight_bytes_per_element(DType.INT4))
    bound = cost.dequant_ns(mm, vec, weights, DType.INT4)
    slow = run(model, few, wl).metrics.tpot_ms * 1e6
    fast = run(model, load_system("a100-sxm-80gb"), wl).metrics.tpot_ms * 1e6
    assert bound > 5 * fast  # far beyond what the HBM stream takes
    assert bound <= slow <= 1.1 * bound
    assert cost.dequant_ns(mm, vec, weights, DType.BF16) == cost.dequant_ns(mm, vec, weights, DType.INT8) == 0.0
