"""Pure cost functions: how long a piece of work takes on one block, uncontended.

Each is a closed form of (block spec, work) and nothing else, so it can be tested without SimPy
and serves as the analytic twin the engine is held to. Times are in ns. Bandwidths in GB/s are
bytes per ns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from asicsim.dtypes import DType
from asicsim.hardware.spec import MatmulSpec, VectorSpec


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def matmul_cycles(spec: MatmulSpec, m: int, k: int, n: int, groups: int = 1) -> int:
    """Cycles for ``groups`` products of (m×k)·(k×n) on the block's arrays, at the base rate.

    Weight tiles of ``rows × cols`` are spread over ``units`` arrays; each pass streams the
    m rows (rounded up to ``m_quantum``) through.
    """
    return _cycles(spec.units, spec.rows, spec.cols, spec.m_quantum, spec.depth_cycles,
                   spec.dataflow != "weight_stationary", spec.preload_weights, m, k, n, groups)


@lru_cache(maxsize=65536)
def _cycles(units: int, rows: int, cols: int, m_quantum: int, depth: int, no_refill: bool, preload: bool,
            m: int, k: int, n: int, groups: int) -> int:
    if m <= 0 or k <= 0 or n <= 0:
        return 0
    m_eff = ceil_div(m, m_quantum) * m_quantum
    rounds = ceil_div(ceil_div(k, rows) * ceil_div(n, cols) * groups, units)
    if no_refill:
        return rounds * m_eff + depth
    if preload:  # next tile shifts in (rows cycles) under the current pass; drain paid once
        return rounds * max(m_eff, rows) + depth
    return rounds * (m_eff + depth)


def matmul_ns(spec: MatmulSpec, m: int, k: int, n: int, groups: int, dtype: DType) -> float:
    """Uncontended time of a matmul on ``spec``, in ns: the GEMM kernel's if the block has a
    ``kernel`` model, else its arrays' tile passes at the achievable fraction of peak.

    Inside a simulated step the op's first operand access is the load task's memory latency, so
    the kernel's first prologue (that same access) is not counted twice here."""
    if spec.kernel is not None:
        plan = gemm_kernel(spec, m, k, n, groups, dtype)
        return max(0.0, plan.ns - spec.kernel.prologue_ns) if plan.tiles else 0.0
    cycles = matmul_cycles(spec, m, k, n, groups)
    return cycles / (spec.clock_ghz * spec.rate(dtype) * spec.efficiency)


@dataclass(frozen=True)
class KernelPlan:
    """How the kernel model runs one GEMM: its output tile, split over K, and time."""

    ns: float
    tile_m: int
    tile_n: int
    tiles: int
    split_k: int
    waves: int


def gemm_kernel(spec: MatmulSpec, m: int, k: int, n: int, groups: int, dtype: DType) -> KernelPlan:
    """The fastest way the chip's GEMM library can run ``groups`` products of (m×k)·(k×n).

    Per candidate output tile (tile_m shrinks to the padded m when m is smaller, as small-M
    kernels do): tiles = groups × ⌈m/tile_m⌉ × ⌈n/tile_n⌉, each a K loop of ⌈k/tile_k⌉
    iterations of tile_m·tile_n·tile_k MACs on one core at the in-loop efficiency. Waves of
    ``cores`` tiles run one after another, the last one possibly partly empty; a persistent
    (stream-K) kernel deals the K iterations out evenly instead. With too few tiles to fill
    the cores, K is split and the fp32 partial sums make a round trip to memory. A kernel that
    does not overlap its epilogue (``kernel.epilogue_overlap`` false) adds, to a plan that does not
    split K, the store of every tile's 16-bit output (padded to whole tiles) at ``reduce_gbps``:
    the tiles of a wave finish together and write at once through the shared memory system.
    """
    kern = spec.kernel
    assert kern is not None
    eff = kern.efficiency.get(dtype.compute, spec.efficiency)
    return _kernel(kern.cores, spec.units * spec.rows * spec.cols // kern.cores, spec.clock_ghz, kern.tiles,
                   kern.tile_k, kern.stream_k, kern.prologue_ns, kern.reduce_gbps, spec.m_quantum,
                   spec.rate(dtype), eff, m, k, n, groups, kern.epilogue_overlap)


OUT_BYTES = 2  # a GEMM's output is stored 16-bit (bf16/fp16; 8-bit GEMMs also write 16-bit results)


@lru_cache(maxsize=65536)
def _kernel(cores: int, macs: int, clock: float, tiles: tuple, tile_k: int, stream_k: bool, prologue: float,
            reduce_gbps: float, m_quantum: int, rate: float, eff: float, m: int, k: int, n: int,
            groups: int, epilogue_overlap: bool = True) -> KernelPlan:
    if m <= 0 or k <= 0 or n <= 0:
        return KernelPlan(0.0, 0, 0, 0, 1, 0)
    tk = max(1, int(tile_k * rate))  # an 8-bit stage holds twice the K of a 16-bit one
    iters = ceil_div(k, tk)
    best: KernelPlan | None = None
    for tile_m, tile_n in tiles:
        tm = min(tile_m, ceil_div(m, m_quantum) * m_quantum)
        count = groups * ceil_div(m, tm) * ceil_div(n, tile_n)
        iter_ns = tm * tile_n * tk / (macs * rate * eff) / clock
        stores = 0.0 if epilogue_overlap else count * tm * tile_n * OUT_BYTES / reduce_gbps
        if stream_k:
            plans = [(ceil_div(count * iters, cores) * iter_ns + ceil_div(count, cores) * prologue + stores, 1,
                      ceil_div(count, cores))]
        else:
            plans = [(ceil_div(count, cores) * (iters * iter_ns + prologue) + stores, 1, ceil_div(count, cores))]
            split = 2
            while count * split <= cores and split <= iters:
                waves = ceil_div(count * split, cores)
                partials = 2 * split * groups * m * n * 4 / reduce_gbps  # written, then read and summed
                plans.append((waves * (ceil_div(iters, split) * iter_ns + prologue) + prologue + partials,
                              split, waves))
                split += 1
        for ns, s, waves in plans:
            if best is None or ns < best.ns:
                best = KernelPlan(ns, tm, tile_n, count, s, waves)
    assert best is not None
    return best


def attention_ns(spec: MatmulSpec, m: int, d: int, keys: int, groups: int, dtype: DType) -> float:
    """Uncontended time of ``groups`` attentions of ``m`` query rows (head dim ``d``) over ``keys``
    keys each: QK^T and PV. With a kernel's flash-attention model (see :func:`flash_attention`) the
    softmax is inside it; otherwise a matmul of twice the width (the softmax is a vector task)."""
    kern = spec.kernel
    if kern is None or kern.attention_tile is None or kern.exp_per_cycle is None:
        return matmul_ns(spec, m, d, 2 * keys, groups, dtype)
    plan = flash_attention(spec, m, d, keys, groups, dtype)
    return max(0.0, plan.ns - kern.prologue_ns) if plan.tiles else 0.0


def flash_attention(spec: MatmulSpec, m: int, d: int, keys: int, groups: int, dtype: DType) -> KernelPlan:
    """Flash attention as its kernel runs: groups × ⌈m/tile_q⌉ Q blocks over ``cores``, each
    streaming ⌈keys/tile_kv⌉ K/V blocks; a block is 2·tile_q·tile_kv·d MACs on the core's arrays
    and tile_q·tile_kv exponentials on its special-function units (one after the other, or
    overlapped with ``softmax_overlap``). Too few Q blocks split the keys over cores (split-KV,
    as flash-decoding does), whose partial outputs make a round trip at ``reduce_gbps`` and are
    combined by the same kernel (an assumption: no second launch)."""
    kern = spec.kernel
    assert kern is not None and kern.attention_tile is not None and kern.exp_per_cycle is not None
    eff = kern.efficiency.get(dtype.compute, spec.efficiency)
    return _flash(kern.cores, spec.units * spec.rows * spec.cols // kern.cores, spec.clock_ghz, kern.attention_tile,
                  kern.exp_per_cycle, kern.softmax_overlap, kern.prologue_ns, kern.reduce_gbps, spec.m_quantum,
                  spec.rate(dtype), eff, m, d, keys, groups)


@lru_cache(maxsize=65536)
def _flash(cores: int, macs: int, clock: float, tile: tuple, exp_per_cycle: float, overlap: bool, prologue: float,
           reduce_gbps: float, m_quantum: int, rate: float, eff: float, m: int, d: int, keys: int,
           groups: int) -> KernelPlan:
    if m <= 0 or d <= 0 or keys <= 0:
        return KernelPlan(0.0, 0, 0, 0, 1, 0)
    tq = min(tile[0], ceil_div(m, m_quantum) * m_quantum)
    tkv = tile[1]
    blocks = groups * ceil_div(m, tq)
    iters = ceil_div(keys, tkv)
    mma = 2 * tq * tkv * d / (macs * rate * eff) / clock
    exp = tq * tkv / exp_per_cycle / clock
    per_iter = max(mma, exp) if overlap else mma + exp
    best = KernelPlan(ceil_div(blocks, cores) * (iters * per_iter + prologue), tq, tkv, blocks, 1,
                      ceil_div(blocks, cores))
    split = 2
    while blocks * split <= cores and split <= iters:
        waves = ceil_div(blocks * split, cores)
        partials = 2 * split * groups * m * d * 4 / reduce_gbps
        ns = waves * (ceil_div(iters, split) * per_iter + prologue) + partials  # combined in-kernel
        if ns < best.ns:
            best = KernelPlan(ns, tq, tkv, blocks, split, waves)
        split += 1
    return best


def gemm_benchmark_ns(spec: MatmulSpec, memory_gbps: float, m: int, k: int, n: int, dtype: DType,
                      out_bytes: float = 2.0) -> float:
    """One stand-alone GEMM as a microbenchmark times it, calls back to back: the kernel, or the
    memory traffic of its operands and 16-bit output if that takes longer (each moved once,
    ``memory_gbps`` the chip's achievable rate), plus the kernel's per-call ``launch_ns``."""
    act = 2.0 if dtype.weight_only else dtype.bytes  # weight-only formats keep 16-bit activations
    nbytes = m * k * act + k * n * weight_bytes_per_element(dtype) + m * n * out_bytes
    if spec.kernel is None:
        return max(matmul_ns(spec, m, k, n, 1, dtype), nbytes / memory_gbps)
    return max(gemm_kernel(spec, m, k, n, 1, dtype).ns, nbytes / memory_gbps) + spec.kernel.launch_ns


# Weight-only int4 as the group-quantised kernels store it (PyTorch's tinygemm int4 matmul,
# aten/src/ATen/native/cuda/int4mm.cu, which gpt-fast calls; docs/sources.md S18): each group of
# INT4_GROUP weights along K carries a bf16 scale and a bf16 zero point, 4 bytes, and 32 is the
# smallest group that kernel takes (the group size of rows P30 and P32).
INT4_GROUP = 32
INT4_GROUP_BYTES = 4.0
# Lane instructions per weight to turn int4 into 16-bit on the vector lanes, in that kernel: per
# 32-bit word of 8 weights, 4 lop3 (mask and magic-number OR, two weights each), 3 shifts, 4 packed
# bf16 FMAs removing the magic bias and 4 packed FMAs applying scale and zero: 15 for 8 weights.
INT4_DEQUANT_OPS = 15 / 8
# Weight-only int8 (w8a16) as TensorRT-LLM's fpA_intB GEMM widens it to bf16 in its main loop
# (docs/sources.md S21): per 32-bit word of 4 weights, 4 byte permutes into an fp32 with a magic
# exponent, 4 fp32 subtractions removing the magic and the +128 bias, 2 byte permutes packing the
# four bf16 halves, and 2 packed bf16 multiplies by the per-channel scale: 12 for 4 weights. bf16
# has too few mantissa bits for fp16's two-instruction trick, hence more lane work than int4's.
# The scale (one bf16 per output channel) is negligible storage and is not counted in the bytes.
INT8_DEQUANT_OPS = 12 / 4


def weight_bytes_per_element(dtype: DType) -> float:
    """Bytes a stored weight takes: its dtype's, plus its share of the group scale and zero point
    for int4."""
    return dtype.bytes + (INT4_GROUP_BYTES / INT4_GROUP if dtype is DType.INT4 else 0.0)


def dequant_ns(spec: MatmulSpec, vector: VectorSpec, weights: float, dtype: DType) -> float:
    """Time the vector lanes take to widen ``weights`` narrow weights into the 16-bit operands of
    the arrays, inside the matmul's main loop: weight-only int8 (w8a16) always (its products run
    at the bf16 rate, whatever int8 rate the arrays have), int4 on arrays with no int4 rate of
    their own (weight-only int4, as on A100/H100). It runs beside the products (other pipes of
    the same cores), so a matmul takes the longer of the two. Zero for any other dtype."""
    if weights <= 0:
        return 0.0
    if dtype is DType.W8A16:
        ops = INT8_DEQUANT_OPS
    elif dtype is DType.INT4 and dtype not in spec.dtype_rate:
        ops = INT4_DEQUANT_OPS
    else:
        return 0.0
    return weights * ops / vector.lanes / vector.clock_ghz


def mesh_ns(spec: MatmulSpec) -> float:
    """The fabric time of one op on a patch of cores joined as a 2D mesh (``mesh_hop_ns`` > 0):
    the op's input is broadcast along one side of the ⌈√units⌉ × ⌈√units⌉ patch and its partial
    results are reduced back along the other, each a pipelined chain of ⌈√units⌉ nearest-
    neighbour hops. Zero for arrays that are not a mesh of cores."""
    if spec.mesh_hop_ns <= 0:
        return 0.0
    side = math.isqrt(spec.units - 1) + 1  # ⌈√units⌉
    return 2 * side * spec.mesh_hop_ns


def vector_ns(spec: VectorSpec, ops: float) -> float:
    """Uncontended time of ``ops`` elementwise operations, in ns."""
    if ops <= 0:
        return 0.0
    return ceil_div(int(ops + 0.5), spec.lanes) / spec.clock_ghz


def transfer_ns(nbytes: float, gbps: float) -> float:
    """Time a server of ``gbps`` is held to move ``nbytes`` (GB/s is bytes per ns)."""
    return nbytes / gbps
