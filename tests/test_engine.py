"""Small narrated scenarios for the engine, asserting on (task, start, end)."""

import pytest

from asicsim.program import Category, Level, ProgramBuilder, StepRef
from asicsim.engine import simulate


def two_copy_engines(share_link: bool):
    """Two copy engines each move 1,000 bytes over a 10 GB/s link (100 ns alone)."""
    b = ProgramBuilder()
    dma = [b.add_block("dma0", "dma"), b.add_block("dma1", "dma")]
    links = [b.add_server("link", "link", 10.0)]
    if not share_link:
        links.append(b.add_server("link2", "link", 10.0))
    op = b.add_op("copy", 0, "transfer", b.add_step(StepRef("prefill", 1, 1, 0)))
    for i, d in enumerate(dma):
        srv = links[i % len(links)]
        b.task(d, op, 100.0, nbytes=1000, level=Level.LINK, category=Category.LINK, servers=((srv, 100.0),))
    return simulate(b.build())


def test_two_equal_transfers_sharing_a_link_take_twice_as_long():
    alone = two_copy_engines(share_link=False)
    shared = two_copy_engines(share_link=True)
    assert alone.makespan_ns == 100.0
    assert shared.makespan_ns == pytest.approx(2 * alone.makespan_ns)
    assert sorted(shared.wait_ns.tolist()) == [0.0, 100.0]  # the second queued behind the first


def test_dependencies_and_in_order_blocks():
    """A load (latency 50) feeds a compute; a second compute on the same block follows it."""
    b = ProgramBuilder()
    dma, mm = b.add_block("dma", "dma"), b.add_block("mm", "matmul")
    hbm = b.add_server("hbm", "hbm", 1.0)
    op = b.add_op("x", 0, "matmul", b.add_step(StepRef("prefill", 1, 1, 0)))
    load = b.task(dma, op, 30.0, latency_ns=50.0, servers=((hbm, 30.0),), fixed_ns=5.0)
    c1 = b.task(mm, op, 10.0, [load])
    c2 = b.task(mm, op, 20.0)
    tr = simulate(b.build())
    log = [(t, tr.start_ns[t], tr.end_ns[t]) for t in (load, c1, c2)]
    assert log == [(load, 0.0, 85.0), (c1, 85.0, 95.0), (c2, 95.0, 115.0)]


def test_a_later_request_does_not_block_an_idle_server():
    """Task B is ready at 0 and needs the server for 10; task A needs it only after waiting for a
    40 ns compute. B must not queue behind A's future reservation."""
    b = ProgramBuilder()
    mm, d0, d1 = b.add_block("mm", "matmul"), b.add_block("d0", "dma"), b.add_block("d1", "dma")
    srv = b.add_server("hbm", "hbm", 1.0)
    op = b.add_op("x", 0, "matmul", b.add_step(StepRef("prefill", 1, 1, 0)))
    c = b.task(mm, op, 40.0)
    a = b.task(d0, op, 10.0, [c], servers=((srv, 10.0),))
    bb = b.task(d1, op, 10.0, servers=((srv, 10.0),))
    tr = simulate(b.build())
    assert (tr.start_ns[bb], tr.end_ns[bb]) == (0.0, 10.0)
    assert (tr.start_ns[a], tr.end_ns[a]) == (40.0, 50.0)
