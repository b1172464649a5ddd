"""The pure cost functions against hand-worked numbers."""

from asicsim import cost
from asicsim.dtypes import DType
from asicsim.hardware.spec import MatmulSpec, VectorSpec


def array(**kw) -> MatmulSpec:
    base = dict(kind="matmul", name="a", units=1, rows=4, cols=4, clock_ghz=1.0, dtype_rate={"bf16": 1, "fp8": 2})
    return MatmulSpec(**{**base, **kw})


def test_weight_stationary_pays_fill_and_drain_every_pass():
    # 8x8 weights on one 4x4 array: 4 tile passes of m=10 rows plus 4+4-2 cycles each.
    assert cost.matmul_cycles(array(), m=10, k=8, n=8) == 4 * (10 + 6)


def test_fixed_weights_pay_pipeline_depth_once():
    assert cost.matmul_cycles(array(dataflow="fixed_weights"), m=10, k=8, n=8) == 4 * 10 + 6


def test_small_m_rounds_up_to_the_tile_quantum():
    a = array(m_quantum=8, fill_cycles=0)
    assert cost.matmul_cycles(a, m=1, k=4, n=4) == cost.matmul_cycles(a, m=8, k=4, n=4) == 8


def test_units_share_tiles_and_fp8_doubles_the_rate():
    a = array(units=4, fill_cycles=0)
    assert cost.matmul_cycles(a, m=16, k=8, n=8) == 16  # 4 tiles, one round
    assert cost.matmul_ns(a, 16, 8, 8, 1, DType.FP8) == 8.0
    assert cost.matmul_ns(a, 16, 8, 8, 1, DType.INT4) == 16.0  # no int4 path: runs at bf16 rate


def test_vector_and_transfer_closed_forms():
    v = VectorSpec(kind="vector", name="v", lanes=64, clock_ghz=2.0)
    assert cost.vector_ns(v, 130) == 1.5  # ceil(130/64) = 3 cycles at 2 GHz
    assert cost.transfer_ns(3e9, 1500.0) == 2e6  # 3 GB at 1.5 TB/s = 2 ms


def gpu(**kernel) -> MatmulSpec:
    """4 cores of one 4x4 array each, 16 MACs a cycle per core, 1 GHz."""
    k = dict(cores=4, tiles=[[8, 8]], tile_k=4, prologue_ns=10.0, reduce_gbps=1.0)
    return array(units=4, fill_cycles=0, kernel={**k, **kernel})


def test_kernel_tiles_run_in_waves_with_a_tail():
    # 16x16 output in 8x8 tiles = 4 tiles on 4 cores: one wave of K/4 = 2 iterations of 8*8*4/16 = 16 ns.
    plan = cost.gemm_kernel(gpu(), 16, 8, 16, 1, DType.BF16)
    assert (plan.tiles, plan.waves, plan.split_k) == (4, 1, 1)
    assert plan.ns == 2 * 16 + 10
    # 24x16: 6 tiles, two waves (the second half empty): twice the time of one
    assert cost.gemm_kernel(gpu(), 24, 8, 16, 1, DType.BF16).ns == 2 * (2 * 16 + 10)
    # persistent stream-K deals the 12 K iterations out evenly: 3 each, two tile starts on some cores
    assert cost.gemm_kernel(gpu(stream_k=True), 24, 8, 16, 1, DType.BF16).ns == 3 * 16 + 2 * 10


def test_kernel_splits_k_when_tiles_are_too_few():
    # one 8x8 tile, K = 64: 16 iterations on one core, or split over 4 cores with a reduction
    spec = gpu(reduce_gbps=1000.0)
    plan = cost.gemm_kernel(spec, 8, 64, 8, 1, DType.BF16)
    assert plan.split_k == 4
    partials = 2 * 4 * 8 * 8 * 4 / 1000.0
    assert plan.ns == (4 * 16 + 10) + 10 + partials
    assert plan.ns < 16 * 16 + 10  # faster than one core alone
    # a slow memory makes the partial sums' round trip too costly: no split
    assert cost.gemm_kernel(gpu(reduce_gbps=0.01), 8, 64, 8, 1, DType.BF16).split_k == 1


def test_kernel_that_does_not_overlap_its_epilogue_pays_the_output_stores():
    # 24x16 in 8x8 tiles: 6 tiles in two waves; each tile's 8*8 16-bit outputs (128 bytes) are
    # stored after its K loop at reduce_gbps = 1 byte/ns: 6 * 128 ns on top of the K loops
    overlapped = cost.gemm_kernel(gpu(), 24, 8, 16, 1, DType.BF16)
    serial = cost.gemm_kernel(gpu(epilogue_overlap=False), 24, 8, 16, 1, DType.BF16)
    assert serial.ns == overlapped.ns + 6 * 8 * 8 * 2 / 1.0
    # a split-K plan's partial sums are its stores (charged already): the same time either way
    spec = dict(reduce_gbps=1000.0)
    assert (cost.gemm_kernel(gpu(epilogue_overlap=False, **spec), 8, 64, 8, 1, DType.BF16).ns
            == cost.gemm_kernel(gpu(**spec), 8, 64, 8, 1, DType.BF16).ns)


def test_kernel_engine_time_leaves_the_first_prologue_to_the_load():
    spec = gpu()
    assert cost.matmul_ns(spec, 16, 8, 16, 1, DType.BF16) == cost.gemm_kernel(spec, 16, 8, 16, 1, DType.BF16).ns - 10


def test_gemm_benchmark_takes_the_longer_of_kernel_and_traffic_plus_launch():
    spec = gpu(launch_ns=100.0)
    kernel = cost.gemm_kernel(spec, 16, 8, 16, 1, DType.BF16).ns
    assert cost.gemm_benchmark_ns(spec, 1e6, 16, 8, 16, DType.BF16) == kernel + 100
    traffic = (16 * 8 + 8 * 16) * 2 + 16 * 16 * 2
    assert cost.gemm_benchmark_ns(spec, 1.0, 16, 8, 16, DType.BF16) == traffic + 100


def flash(**kernel) -> MatmulSpec:
    return gpu(attention_tile=[8, 8], exp_per_cycle=4, **kernel)


def test_flash_attention_streams_kv_blocks_with_softmax_on_the_special_units():
    # 16 query rows in 2 Q blocks of 8, 16 keys in 2 K/V blocks of 8, head dim 4: a block is
    # 2*8*8*4 MACs / 16 per cycle = 32 ns of products and 8*8 / 4 = 16 ns of exponentials.
    plan = cost.flash_attention(flash(), 16, 4, 16, 1, DType.BF16)
    assert (plan.tiles, plan.split_k) == (2, 1)
    assert plan.ns == 2 * (32 + 16) + 10  # softmax after the products
    assert cost.flash_attention(flash(softmax_overlap=True), 16, 4, 16, 1, DType.BF16).ns == 2 * 32 + 10
    # the engine's time leaves the first prologue to the KV load; no separate softmax task then
    assert cost.attention_ns(flash(), 16, 4, 16, 1, DType.BF16) == plan.ns - 10
    # without the flash fields: a matmul of twice the width, as before
    assert cost.attention_ns(gpu(), 16, 4, 16, 1, DType.BF16) == cost.matmul_ns(gpu(), 16, 4, 32, 1, DType.BF16)


def test_flash_decoding_splits_the_keys_when_q_blocks_are_few():
    spec = flash(reduce_gbps=1000.0)
    plan = cost.flash_attention(spec, 16, 4, 16, 1, DType.BF16)
    assert plan.split_k == 2  # 2 Q blocks x 2 key halves fill the 4 cores
    assert plan.ns == (32 + 16) + 10 + 2 * 2 * 16 * 4 * 4 / 1000.0
