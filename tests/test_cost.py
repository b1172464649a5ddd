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
