"""The engine against each block's analytic twin, uncontended.

Decode at batch 1 streams every weight and the KV cache from HBM once per token, so its TPOT is
(weight + KV bytes) / effective HBM bandwidth plus fixed costs (one graph launch per step, a
node's launch per op and, for
ops that load, one HBM access latency; elementwise epilogues fused into a matmul launch nothing).
What remains is pipeline fill and drain: the first chunk
of each op loads with nothing to overlap, its last chunk computes with nothing to overlap.
"""

import numpy as np
import pytest

from asicsim import cost

from asicsim.api import run
from asicsim.compile import Workload, compile_ops, compile_run
from asicsim.compile.lower import fuses_into_previous, n_chunks
from asicsim.compile.placement import numerics_for
from asicsim.program import Level
from asicsim.dtypes import DType
from asicsim.engine import simulate
from asicsim.model import Op, OpKind, StepShape, build_graph

from conftest import step_ends


def decode_graph(model, chip, context: int, dtype=DType.BF16):
    return build_graph(model, StepShape(1, 1, context), numerics_for(Workload(dtype=dtype), chip))


@pytest.mark.parametrize("dtype", [DType.BF16, DType.FP8])
def test_batch1_decode_tpot_matches_bandwidth_bound(llama8b, h100, dtype):
    prompt = 512
    trace = simulate(compile_run(llama8b, h100, Workload(1, prompt, 3, dtype)))
    ends = step_ends(trace)
    step_ns = ends[-1] - ends[-2]  # the decode step at context prompt + 1
    g = decode_graph(llama8b, h100.chip, prompt + 1, dtype)
    hbm = h100.chip.hbm
    moved = g.total("weight_bytes") + g.total("kv_read_bytes") + g.total("kv_write_bytes")
    loading_ops = sum(1 for op in g.ops if op.weight_bytes or op.kv_read_bytes)
    launched = sum(1 for i, op in enumerate(g.ops) if not fuses_into_previous(op, [g.ops[d] for d in g.deps[i]]))
    assert launched == 7 * llama8b.n_layers + 3  # RoPE and SwiGLU ride in their matmul's epilogue
    analytic = (moved / hbm.effective_gbps + launched * h100.chip.op_overhead_ns + loading_ops * hbm.latency_ns
                + h100.chip.step_overhead_ns)
    # 4 %, not 3 %: since GEMMs run the kernel model, an op's compute (decode rows padded to wgmma's
    # 64, at fp8's lower in-loop efficiency 0.739) is a larger share, and its last chunk, which no load
    # overlaps, adds ~3.4 % at fp8.
    assert step_ns == pytest.approx(analytic, rel=0.04)
    assert step_ns > analytic  # fill and drain can only add


def test_decode_step_reads_exactly_weights_plus_kv_from_hbm(llama8b, h100):
    prompt = 300
    program = compile_run(llama8b, h100, Workload(1, prompt, 2))
    last = program.step_of_task() == len(program.steps) - 1
    read = program.nbytes[last & (program.level == Level.HBM_READ)].sum()
    g = decode_graph(llama8b, h100.chip, prompt)
    assert read == g.total("weight_bytes") + g.total("kv_read_bytes")
    assert read == pytest.approx(15.01e9 + 32 * prompt * 2 * 8 * 128 * 2, rel=1e-3)


@pytest.mark.parametrize("mkn", [(8192, 8192, 8192), (1024, 1024, 1024), (2048, 2048, 13312)])
def test_gemm_runs_as_its_kernel_model_says(h100, mkn):
    """The engine's GEMM against its twin, cost.gemm_kernel: tiles in waves (here stream-K) at the
    in-loop efficiency, the first operand access paid once as the load's HBM latency."""
    m, k, n = mkn
    gemm = Op("gemm", 0, OpKind.MATMUL, flops=2.0 * m * k * n, weight_bytes=2.0 * k * n, m=m, k=k, n=n)
    trace = simulate(compile_ops([gemm], h100))
    tensor, hbm = h100.chip.blocks[0], h100.chip.hbm
    plan = cost.gemm_kernel(tensor, m, k, n, 1, DType.BF16)
    first_chunk = gemm.weight_bytes / n_chunks(gemm.weight_bytes, n) / hbm.effective_gbps
    analytic = (h100.chip.op_overhead_ns + hbm.latency_ns + first_chunk
                + plan.ns - tensor.kernel.prologue_ns)  # the prologue is that first access
    assert trace.end_ns.max() == pytest.approx(analytic, rel=0.01)
    # not the array's effective peak for a small shape: 1024^3 is 32 tiles of 16 K iterations on 132 SMs
    ideal_ns = gemm.flops / (tensor.peak_flops(DType.BF16) * tensor.efficiency) * 1e9
    assert (plan.ns > 1.15 * ideal_ns) == (m == 1024)


def test_hardwired_chip_moves_no_hbm_bytes_and_is_not_memory_bound(llama8b, hc1):
    r = run(llama8b, hc1, Workload(1, 64, 4))
    per_step = r.metrics.bytes_per_decode_step
    assert per_step.get("hbm_read", 0) == 0 and per_step.get("hbm_write", 0) == 0
    assert per_step["rom_read"] == pytest.approx(decode_graph(llama8b, hc1.chip, 64).total("weight_bytes"))
    assert r.metrics.dominant_bound["decode"] == "compute"


def test_h100_decode_is_memory_bound_and_prefill_compute_bound(llama8b, h100):
    r = run(llama8b, h100, Workload(1, 512, 4))
    assert r.metrics.dominant_bound == {"prefill": "compute", "decode": "memory"}


def test_a_narrow_on_chip_link_bounds_streaming():
    """The teaching chip's HBM gives 10 GB/s; a 5 GB/s link between HBM and the array halves
    the rate every weight load can stream at."""
    from asicsim.hardware import ChipSpec, SystemSpec, build_system, load_chip

    plain = load_chip("teaching-chip")
    linked = ChipSpec.model_validate({**plain.model_dump(mode="json"), "name": "linked",
                                      "links": [{"a": "hbm", "b": "array", "bandwidth_gbps": 5.0}]})
    gemv = Op("gemv", 0, OpKind.MATMUL, flops=2.0 * 512 * 512, weight_bytes=2.0 * 512 * 512, m=1, k=512, n=512)
    times = {}
    for chip in (plain, linked):
        trace = simulate(compile_ops([gemv], build_system(SystemSpec(name=chip.name, chip=chip))))
        times[chip.name] = trace.makespan_ns - chip.op_overhead_ns - chip.hbm.latency_ns
    load_plain = gemv.weight_bytes / plain.hbm.effective_gbps
    assert times["linked"] - times["teaching-chip"] == pytest.approx(load_plain, rel=0.02)


def test_long_context_decode_step_pays_for_reading_the_kv_cache(llama8b, h100):
    """At a 32k context the KV cache is ~4 GB against 15 GB of weights: a decode step takes at least
    their sum over the HBM's effective rate, and not much more. Goes red if KV reads are free."""
    prompt = 32768
    trace = simulate(compile_run(llama8b, h100, Workload(1, prompt, 2)))
    ends = step_ends(trace)
    step_ns = ends[-1] - ends[-2]
    g = decode_graph(llama8b, h100.chip, prompt + 1)
    kv = g.total("kv_read_bytes")
    assert kv > 0.25 * g.total("weight_bytes")
    bound = (g.total("weight_bytes") + kv) / h100.chip.hbm.effective_gbps
    assert bound <= step_ns <= 1.1 * bound


def test_runtime_profile_adds_its_costs_to_the_steps(llama8b, h100):
    """A runtime profile's request_ns lands once, before the first token; its step_ns on every
    step; ``bare`` changes nothing. Goes red if either is dropped or misplaced."""
    from asicsim.hardware import BARE, RuntimeSpec

    def steps(runtime):
        return step_ends(simulate(compile_run(llama8b, h100, Workload(1, 32, 4, runtime=runtime))))

    bare = steps(BARE)
    served = steps(RuntimeSpec(name="t", request_ns=3e6, step_ns=5e4))
    assert served[0] - bare[0] == pytest.approx(3e6 + 5e4, rel=1e-6)  # the first token
    assert np.diff(served) - np.diff(bare) == pytest.approx([5e4] * (len(bare) - 1), rel=1e-6)


def test_runtime_per_sequence_cost_scales_with_the_steps_batch(llama8b, h100):
    """``sequence_step_ns`` lands on every step, prefill and decode, once per sequence in it: a
    step of 4 sequences pays 4 × the cost (per-step and per-request costs unchanged beside it).
    Goes red if the term is dropped, charged once per step, or left out of a phase."""
    from asicsim.hardware import BARE, RuntimeSpec

    def steps(runtime):
        return step_ends(simulate(compile_run(llama8b, h100, Workload(4, 32, 4, runtime=runtime))))

    bare = steps(BARE)
    served = steps(RuntimeSpec(name="t", sequence_step_ns=7e4))
    assert served[0] - bare[0] == pytest.approx(4 * 7e4, rel=1e-6)  # the prefill step's 4 first tokens
    assert np.diff(served) - np.diff(bare) == pytest.approx([4 * 7e4] * (len(bare) - 1), rel=1e-6)
    both = steps(RuntimeSpec(name="t", step_ns=5e4, sequence_step_ns=7e4))
    assert np.diff(both) - np.diff(bare) == pytest.approx([5e4 + 4 * 7e4] * (len(bare) - 1), rel=1e-6)


def test_prefill_attention_runs_as_one_flash_kernel(h100):
    """On a chip with a flash-attention model the softmax is inside the kernel: the op takes the
    kernel's time (products and exponentials), with no separate vector pass. Red if the softmax is
    also charged on the vector units, or the kernel's exponentials are dropped."""
    m, d, keys, heads = 2048, 128, 1024, 32
    attn = Op("attn", 0, OpKind.ATTENTION, flops=4.0 * heads * d * m * keys, vector_ops=5.0 * heads * m * keys,
              m=m, k=d, n=keys, groups=heads)
    trace = simulate(compile_ops([attn], h100))
    tensor = h100.chip.blocks[0]
    kernel_ns = cost.attention_ns(tensor, m, d, keys, heads, DType.BF16)
    assert trace.end_ns.max() == pytest.approx(h100.chip.op_overhead_ns + kernel_ns, rel=0.01)
    # On A100 (FlashAttention-2: softmax after the products) the exponentials add a quarter at d=128.
    from asicsim.hardware import load_system

    a100 = load_system("a100-sxm-80gb").chip.blocks[0]
    no_exp = a100.with_(**{"kernel.exp_per_cycle": 1e9})
    with_exp = cost.attention_ns(a100, m, d, keys, heads, DType.BF16)
    assert with_exp == pytest.approx(1.25 * cost.attention_ns(no_exp, m, d, keys, heads, DType.BF16), rel=0.05)
