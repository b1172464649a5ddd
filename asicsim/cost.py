"""Pure cost functions: how long a piece of work takes on one block, uncontended.

Each is a closed form of (block spec, work) and nothing else, so it can be tested without SimPy
and serves as the analytic twin the engine is held to. Times are in ns. Bandwidths in GB/s are
bytes per ns.
"""

from __future__ import annotations

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
    """Uncontended time of a matmul on ``spec``, in ns."""
    cycles = matmul_cycles(spec, m, k, n, groups)
    return cycles / (spec.clock_ghz * spec.rate(dtype) * spec.efficiency)


def vector_ns(spec: VectorSpec, ops: float) -> float:
    """Uncontended time of ``ops`` elementwise operations, in ns."""
    if ops <= 0:
        return 0.0
    return ceil_div(int(ops + 0.5), spec.lanes) / spec.clock_ghz


def transfer_ns(nbytes: float, gbps: float) -> float:
    """Time a server of ``gbps`` is held to move ``nbytes`` (GB/s is bytes per ns)."""
    return nbytes / gbps
