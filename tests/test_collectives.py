"""Collectives decomposed into link transfers, held to their closed forms, and routes that come
from the topology graph: two collectives that share a link queue, and on a torus only the
transfers routed over a slowed link slow down."""

from __future__ import annotations

import math

import pytest

from asicsim.api import collective_ns
from asicsim.compile.fabric import Fabric
from asicsim.engine import simulate
from asicsim.hardware import Collective, NetworkSpec, SystemSpec, build_system
from asicsim.program import ProgramBuilder, StepRef

B = 100.0        # GB/s each way, i.e. bytes per ns
ALPHA = 1000.0   # ns per link


def system(topology: str, n: int = 8, **net):
    spec = NetworkSpec(topology=topology, bandwidth_gbps=B, latency_ns=ALPHA, **net)
    return build_system(SystemSpec(name=f"{topology}{n}", chip="h100-sxm", count=n, network=spec))


@pytest.mark.parametrize("n", [4, 8])
@pytest.mark.parametrize("size", [64e3, 16e6, 1e9])
def test_ring_collectives_match_their_closed_forms(n, size):
    steps = n - 1
    # through a switch, one ring; over a ring of point-to-point links, half the data each way round
    for topology, ways in (("switch", 1), ("ring", 2)):
        net = system(topology, n, collective="ring")
        alpha = ALPHA * (2 if topology == "switch" else 1)  # a switch route is two links
        assert collective_ns(net, "all_reduce", size) == pytest.approx(
            2 * steps / n * size / B / ways + 2 * steps * alpha, rel=0.03)
        for kind in ("all_gather", "reduce_scatter"):
            assert collective_ns(net, kind, size) == pytest.approx(
                steps / n * size / B / ways + steps * alpha, rel=0.03)


@pytest.mark.parametrize("size", [64e3, 64e6])
def test_all_to_all_through_a_switch_is_bound_by_each_port(size):
    # every rank sends n-1 shares of size/n through its one port; each send crosses two links
    n = 8
    t = collective_ns(system("switch", n), "all_to_all", size)
    assert t == pytest.approx((n - 1) / n * size / B + 2 * ALPHA, rel=0.03)


def test_all_to_all_over_direct_links_runs_in_parallel():
    n, size = 8, 64e6
    assert collective_ns(system("fully_connected", n), "all_to_all", size) == pytest.approx(
        size / n / B + ALPHA, rel=0.03)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_recursive_halving_doubling_matches_its_closed_form(n):
    size = 32e6
    t = collective_ns(system("fully_connected", n, collective="tree"), "all_reduce", size)
    assert t == pytest.approx(2 * (n - 1) / n * size / B + 2 * math.log2(n) * ALPHA, rel=0.03)


@pytest.mark.parametrize("n", [4, 8])
@pytest.mark.parametrize("size", [0.5e6, 64e6])
def test_in_switch_reduction_moves_one_and_an_nth_of_the_message_at_nvls_rate(n, size):
    """NVLS (docs/sources.md C4): each chip's port carries (1 + 1/n) x the message each way, both
    ways at once, at 5/6 of the link rate (NCCL's model), plus the route's latency once."""
    t = collective_ns(system("switch", n, in_switch_reduction=True), "all_reduce", size)
    assert t == pytest.approx((1 + 1 / n) * size / (B * 5 / 6) + 2 * ALPHA, rel=1e-9)
    # and it beats a ring through the same switch once the message is large
    if size > 1e6:
        assert t < collective_ns(system("switch", n), "all_reduce", size)


# NCCL's NVLS steps per channel at 8 GPUs and 16 channels (docs/sources.md C3): 16 KiB chunks
# below 8 MiB (2 MiB a step over all channels), 32 KiB below 64 MiB, 64 KiB below 1 GiB, then 128 KiB
NVLS_STEPS_8 = {2**20: 1, 4 * 2**20: 2, 8 * 2**20: 2, 16 * 2**20: 4, 64 * 2**20: 8, 256 * 2**20: 32,
                2**30: 64, 4 * 2**30: 256}


@pytest.mark.parametrize("size", sorted(NVLS_STEPS_8))
def test_every_nvls_step_pays_the_step_cost(size):
    step = 2000.0
    nvls = dict(collective="in_switch", in_switch_reduction=True)
    free = collective_ns(system("switch", 8, **nvls), "all_reduce", size)
    paid = collective_ns(system("switch", 8, in_switch_step_ns=step, **nvls), "all_reduce", size)
    assert paid - free == pytest.approx(NVLS_STEPS_8[size] * step, rel=1e-9)
    # more channels, fewer steps (Blackwell runs 24): at 4 GiB 128 KiB chunks, 24 x 8 a step
    if size == 4 * 2**30:
        wide = collective_ns(system("switch", 8, in_switch_step_ns=step, in_switch_channels=24, **nvls),
                             "all_reduce", size)
        assert wide - free == pytest.approx(math.ceil(size / (24 * 8 * 2**17)) * step, rel=1e-9)


@pytest.mark.parametrize("n", [2, 3, 8])
def test_in_switch_link_bytes_count_each_port_once_as_a_send_does(n):
    """Link bytes (what link energy is charged on) count a byte once per chip-to-chip trip, as a
    send through the switch counts its two hops once. Each chip's port carries (1 + 1/n) x the
    message each way, so an in-switch all-reduce moves (n + 1) x the message in all: less than
    the ring's 2 (n - 1) x through the same switch from n = 4 on, never twice that."""
    from asicsim.compile.fabric import collective_program
    from asicsim.program import Level

    size = 3e6 + 7
    nvls = collective_program(system("switch", n, collective="in_switch", in_switch_reduction=True),
                              "all_reduce", size, None, None)
    moved = float(nvls.nbytes[nvls.level == Level.LINK].sum())
    assert moved == pytest.approx((n + 1) * size, rel=1e-12)
    ring = collective_program(system("switch", n, collective="ring"), "all_reduce", size, None, None)
    assert float(ring.nbytes[ring.level == Level.LINK].sum()) == pytest.approx(2 * (n - 1) * size, rel=1e-12)


def test_collective_ns_refuses_what_the_fabric_cannot_run():
    """asicsim.collective_ns's bad arguments are InputErrors naming the argument: an in-switch
    all-reduce on a network whose switch does not reduce (it raised KeyError on a torus and timed
    one in silence on dgx-a100's NVSwitch, which has no SHARP), an unknown algorithm or kind
    (ValueError), ranks that are not distinct chips of the system (NodeNotFound, ValueError), and
    a negative size (timed)."""
    from asicsim.errors import InputError

    cases = (("tpu-v5e-8", dict(algorithm="in_switch"), "in_switch_reduction"),
             ("dgx-a100", dict(algorithm="in_switch"), "in_switch_reduction"),
             (system("switch", 4), dict(algorithm="nvls"), "algorithm"),
             (system("switch", 4), dict(kind="allreduce"), "kind"),
             (system("switch", 4), dict(ranks=[0, 9]), "ranks"),
             (system("switch", 4), dict(ranks=[1, 1]), "ranks"),
             (system("switch", 4), dict(nbytes=-5.0), "nbytes"))
    for sys_, change, field in cases:
        args = dict(kind="all_reduce", nbytes=1e6) | change
        with pytest.raises(InputError) as e:
            collective_ns(sys_, **args)
        assert field in (e.value.field or ""), (change, e.value)
    # what it may run, it still does
    assert collective_ns("dgx-h100", "all_reduce", 64e6, algorithm="in_switch") > 0
    assert collective_ns(system("switch", 4), "all_reduce", 1e6, ranks=[2, 0]) > 0


def test_an_in_switch_reduction_holds_each_port_both_ways():
    """The switch's multicast into a chip shares that chip's down-link with other traffic: a large
    send from chip 5, outside the all-reduce of chips 0-3, to chip 0 (so only chip 0's down-link
    is shared) delays the all-reduce."""
    size = 64e6
    net = system("switch", 8, collective="in_switch", in_switch_reduction=True)

    def run(with_send: bool) -> float:
        b = ProgramBuilder()
        fabric = Fabric(b, net, Collective.IN_SWITCH)
        op = b.add_op("x", -1, "collective", b.add_step(StepRef("prefill", 1, 1, 0)))
        if with_send:
            fabric.send(5, 0, size, op, [])
        fabric.all_reduce(list(range(4)), size, op, [[] for _ in range(4)])
        return simulate(b.build()).makespan_ns

    alone, shared = run(False), run(True)
    assert shared > alone + 0.5 * size / B


def test_one_shot_all_reduce_sends_the_whole_buffer_to_every_peer():
    n, size = 8, 256e3
    t = collective_ns(system("switch", n, collective="one_shot"), "all_reduce", size)
    assert t == pytest.approx((n - 1) * size / B + 2 * ALPHA, rel=0.03)


@pytest.mark.parametrize("size", [16e3, 1e6, 256e6])
def test_auto_picks_the_fastest_algorithm_for_each_message(size):
    times = {alg: collective_ns(system("switch", 8, collective=alg), "all_reduce", size)
             for alg in ("ring", "tree", "one_shot", "two_shot")}
    auto = collective_ns(system("switch", 8), "all_reduce", size)
    assert auto == pytest.approx(min(times.values()), rel=1e-9)
    if size < 64e3:  # latency-bound: the fewest steps win
        assert auto == pytest.approx(times["one_shot"], rel=1e-9) and auto < times["ring"] / 3


def _two_all_reduces(sys_, a: list[int], b: list[int], size: float) -> float:
    builder = ProgramBuilder()
    fabric = Fabric(builder, sys_, Collective.RING)
    op = builder.add_op("two", -1, "collective", builder.add_step(StepRef("prefill", 1, 1, 0)))
    for ranks in (a, b):
        fabric.all_reduce(ranks, size, op, [[] for _ in ranks])
    return simulate(builder.build()).makespan_ns


def test_all_reduces_that_share_links_queue_and_disjoint_ones_do_not():
    size = 64e6
    evens, odds = [0, 2, 4, 6], [1, 3, 5, 7]
    ring = system("ring", collective="ring")
    alone = collective_ns(ring, "all_reduce", size, ranks=evens)
    together = _two_all_reduces(ring, evens, odds, size)
    assert together > 1.8 * alone          # every hop of both rings crosses the same links
    switch = system("switch", collective="ring")
    alone = collective_ns(switch, "all_reduce", size, ranks=evens)
    assert _two_all_reduces(switch, evens, odds, size) == pytest.approx(alone, rel=1e-9)  # own ports


def test_torus_routes_follow_the_graph():
    torus = system("torus", 8, dims=(2, 4))
    size = 10e6
    before = {(a, b): collective_ns(torus, "send", size, ranks=[a, b]) for a in range(8) for b in range(8) if a != b}
    torus.graph.edges["chip1", "chip2"]["bandwidth_gbps"] = B / 10
    crossed = 0
    for (a, b), t0 in before.items():
        t1 = collective_ns(torus, "send", size, ranks=[a, b])
        route = torus.route(a, b)
        if ("chip1", "chip2") in route or ("chip2", "chip1") in route:
            crossed += 1
            assert t1 == pytest.approx(size / (B / 10) + len(route) * ALPHA)
        else:
            assert t1 == t0
    assert crossed > 2


def test_torus_routes_go_in_dimension_order():
    torus = system("torus", 16, dims=(4, 4))
    # chip 0 is (0, 0), chip 10 is (2, 2): first along dimension 0 to (2, 0), then along dimension 1
    hops = torus.route(0, 10)
    assert [v for _, v in hops] == ["chip4", "chip8", "chip9", "chip10"]
    # the wrap-around link is the short way from (0, 0) to (3, 0)
    assert torus.route(0, 12) == (("chip0", "chip12"),)


@pytest.mark.parametrize("alg", ["ring", "tree", "one_shot", "two_shot", "in_switch"])
def test_a_collective_pays_its_start_up_cost_once(alg):
    net = dict(collective=alg, in_switch_reduction=alg == "in_switch")
    plain = collective_ns(system("switch", 8, **net), "all_reduce", 8e6)
    slow_start = collective_ns(system("switch", 8, collective_overhead_ns=20_000, **net), "all_reduce", 8e6)
    assert slow_start - plain == pytest.approx(20_000, rel=1e-9)


def test_an_in_switch_reduction_starts_slower_and_auto_weighs_it():
    """NVLS (NCCL's in-switch all-reduce) starts ~10 us slower than its ring (docs/sources.md C2):
    a large message still goes through the switch, paying the extra start-up once; a small one
    goes round the chips instead, where without that start-up the switch would win."""
    startup = 10_000.0
    nvls = dict(in_switch_reduction=True, in_switch_startup_ns=startup)
    for size in (1e6, 64e6):
        forced = collective_ns(system("switch", 8, collective="in_switch", **nvls), "all_reduce", size)
        free = collective_ns(system("switch", 8, collective="in_switch", in_switch_reduction=True), "all_reduce", size)
        assert forced - free == pytest.approx(startup, rel=1e-9)
    small, large = 0.5e6, 64e6
    two_shot = collective_ns(system("switch", 8, collective="two_shot"), "all_reduce", small)
    assert collective_ns(system("switch", 8, **nvls), "all_reduce", small) == pytest.approx(two_shot, rel=1e-9)
    free_small = collective_ns(system("switch", 8, in_switch_reduction=True), "all_reduce", small)
    assert free_small < two_shot  # without the start-up the switch wins at this size
    in_switch = collective_ns(system("switch", 8, collective="in_switch", **nvls), "all_reduce", large)
    assert collective_ns(system("switch", 8, **nvls), "all_reduce", large) == pytest.approx(in_switch, rel=1e-9)


def test_an_in_switch_start_up_needs_a_reducing_switch():
    with pytest.raises(ValueError, match="in_switch_startup_ns"):
        NetworkSpec(topology="switch", bandwidth_gbps=B, in_switch_startup_ns=1000)


def test_a_ring_on_a_mesh_follows_a_hamiltonian_cycle():
    from asicsim.compile.fabric import ring_order

    for dims in ((2, 4), (4, 4), (4, 2)):
        mesh = system("torus", dims[0] * dims[1], dims=dims, wraparound=False)
        order = ring_order(mesh, list(range(dims[0] * dims[1])))
        assert sorted(order) == list(range(dims[0] * dims[1]))
        hops = [len(mesh.route(a, b)) for a, b in zip(order, order[1:] + order[:1])]
        assert hops == [1] * len(order)


def test_a_3d_torus_routes_in_dimension_order_and_wraps():
    torus = system("torus", 27, dims=(3, 3, 3))
    assert torus.graph.number_of_edges() == 27 * 3  # a ring of three in each dimension
    # (0,0,0) -> (2,1,2): dimension 0 the short way round (wrap to 2), then 1, then 2 (wrap)
    assert [v for _, v in torus.route(0, 2 * 9 + 1 * 3 + 2)] == ["chip18", "chip21", "chip23"]


def test_a_large_full_mesh_keeps_its_links_implicit_and_routes_directly():
    from asicsim.hardware.system import EXPLICIT_MESH_CHIPS

    n = EXPLICIT_MESH_CHIPS + 1
    mesh = system("fully_connected", n)
    assert mesh.graph.number_of_edges() == 0 and mesh.route(3, n - 1) == (("chip3", f"chip{n - 1}"),)
    small = system("fully_connected", 8)
    size = 8e6
    assert collective_ns(mesh, "send", size, ranks=[3, n - 1]) == collective_ns(small, "send", size, ranks=[3, 7])


def test_absurd_chip_counts_are_refused_before_anything_is_built():
    from asicsim.errors import InputError

    with pytest.raises(InputError, match="more than the 65,536 a system may have"):
        system("torus", 10**9, dims=(10**5, 10**4))
