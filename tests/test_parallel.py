"""Models split over temporal chips: tensor, pipeline, expert and data parallelism, what each
costs on the links, and the layouts that are refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from asicsim.api import predict, run
from asicsim.compile import Workload, compile_run, plan_run
from asicsim.compile.shard import kv_share, rank_bytes
from asicsim.dtypes import parse_dtype
from asicsim.engine import simulate
from asicsim.errors import InputError
from asicsim.hardware import NetworkSpec, SystemSpec, build_system, load_system
from asicsim.model import Numerics, StepShape, build_graph, load_model
from asicsim.model.moe import MoE
from asicsim.program import Level


@pytest.fixture(scope="module")
def llama70b():
    return load_model("llama-3.1-70b")


def h100s(n: int, gbps: float = 450.0, latency_ns: float = 1000.0, **net):
    spec = NetworkSpec(topology="switch", bandwidth_gbps=gbps, latency_ns=latency_ns, **net)
    return build_system(SystemSpec(name=f"{n}xh100", chip="h100-sxm", count=n, network=spec))


def test_tensor_parallel_splits_the_weight_stream(llama70b):
    """70B bf16 decode is bound by streaming 141 GB of weights: each of t ranks streams 1/t of
    them, so the step shrinks with t, and the ranks together still read every weight once."""
    tpot, weights = {}, llama70b.params() * 2
    for t in (2, 4, 8):
        r = run(llama70b, h100s(t), Workload(batch=1, prompt=64, generate=4))
        tpot[t] = r.metrics.tpot_ms
        per_step = r.metrics.bytes_per_decode_step
        graphs = [build_graph(llama70b, StepShape(1, 1, c), Numerics()) for c in (64, 65, 66)]
        expect = np.mean([g.total("weight_bytes") + g.total("kv_read_bytes") for g in graphs])
        assert per_step["hbm_read"] == pytest.approx(expect, rel=1e-9)  # all ranks, each counted
        assert per_step["link"] > 0
        assert r.plan.parallel.tp == t and r.plan.weight_bytes_per_chip == pytest.approx(weights / t, rel=0.01)
    assert tpot[8] < tpot[4] < tpot[2]
    assert tpot[2] / tpot[8] > 3  # nearly linear while the weight stream dominates


def test_a_faster_link_makes_a_split_decode_faster(llama70b):
    wl = Workload(batch=1, prompt=64, generate=4)
    slow = run(llama70b, h100s(8, gbps=5), wl).metrics.tpot_ms
    fast = run(llama70b, h100s(8, gbps=50), wl).metrics.tpot_ms
    no_latency = run(llama70b, h100s(8, gbps=50, latency_ns=0), wl).metrics.tpot_ms
    assert slow > fast > no_latency


def test_the_interconnect_of_sram_only_chips_is_read():
    """Groq's chips pass activations over their network: a 10× slower link shows in TPOT."""
    base = predict("llama-3.1-8b", "groq-lpu", prompt=16, generate=3, dtype="int8")
    chip = base.plan.chip
    slow_net = chip.network.model_copy(update={"bandwidth_gbps": chip.network.bandwidth_gbps / 10})
    slow = run(base.model, build_system(SystemSpec(name="groq-slow", chip=chip, network=slow_net)), base.workload)
    assert slow.trace.digest() != base.trace.digest()
    assert slow.metrics.tpot_ms > base.metrics.tpot_ms


def test_kv_heads_fewer_than_ranks_are_replicated(llama70b):
    attn = llama70b.blocks[0].mixer
    assert attn.kv_heads == 8
    assert kv_share(attn, 4) == 1 / 4 and kv_share(attn, 8) == 1 / 8 and kv_share(attn, 16) == 1 / 8
    w16 = rank_bytes(llama70b, 4, 1024, Numerics(), 16, 1, 1)[0][1]
    w8 = rank_bytes(llama70b, 4, 1024, Numerics(), 8, 1, 1)[0][1]
    assert w16 == pytest.approx(w8)  # past 8 ranks each still keeps one whole KV head


def test_pipeline_bubble_is_p_minus_1_over_m_plus_p_minus_1(llama70b):
    """Uniform stages (a vocabulary too small to matter, free links): m micro-batches of one
    sequence through p stages take (m + p - 1) stage times against p for one micro-batch."""
    tiny_vocab = dataclasses.replace(llama70b, vocab=8)
    p = 4
    fast = h100s(p, gbps=1e6, latency_ns=0)
    one = run(tiny_vocab, fast, Workload(batch=1, prompt=256, generate=1, tp=1, pp=p)).metrics.ttft_ms
    for m in (2, 4, 8):
        many = run(tiny_vocab, fast, Workload(batch=m, prompt=256, generate=1, tp=1, pp=p, micro_batches=m))
        assert many.metrics.ttft_ms / one == pytest.approx((m + p - 1) / p, rel=0.03)
        bubble = 1 - m * one / p / many.metrics.ttft_ms
        assert bubble == pytest.approx((p - 1) / (m + p - 1), abs=0.02)


@pytest.mark.parametrize("name,system,dtype", [("mixtral-8x7b", 8, "bf16"), ("deepseek-v3", 8, "fp8")])
def test_expert_parallel_all_to_all_moves_the_closed_form_bytes(name, system, dtype):
    """Dispatch and combine each move tokens × top_k × hidden × 2 bytes × (ep-1)/ep per MoE layer."""
    model = load_model(name)
    n = system
    sys_ = build_system(SystemSpec(name="h200x8", chip="h200", count=n,
                                   network=NetworkSpec(topology="switch", bandwidth_gbps=450, latency_ns=1000)))
    batch = 16
    wl = Workload(batch=batch, prompt=8, generate=2, dtype=parse_dtype(dtype), tp=n, ep=n)
    program = compile_run(model, sys_, wl)
    moe = [b.ffn for b in model.blocks if isinstance(b.ffn, MoE)]
    link = program.level == Level.LINK
    for step, tokens in ((0, batch * 8), (1, batch)):
        ops = [i for i, o in enumerate(program.ops) if o.step == step]
        for what in ("dispatch", "combine"):
            sel = np.isin(program.op, [i for i in ops if program.ops[i].name.endswith("." + what)]) & link
            expect = sum(tokens * f.top_k * model.hidden * 2 * (n - 1) / n for f in moe)
            assert program.nbytes[sel].sum() == pytest.approx(expect, rel=1e-9)
    assert simulate(program).makespan_ns > 0


def test_data_parallel_replicas_multiply_throughput_not_latency(llama70b):
    one = predict("llama-3.1-8b", "h100-sxm", prompt=32, generate=3)
    sys_ = h100s(2)
    two = run(one.model, sys_, Workload(batch=1, prompt=32, generate=3, tp=1, dp=2))
    assert two.metrics.tpot_ms == pytest.approx(one.metrics.tpot_ms)
    s = two.summary()
    assert s["tokens_per_s_all_replicas"] == pytest.approx(2 * s["tokens_per_s"])
    assert s["plan"]["dp"] == 2 and s["chips"] == 2


@pytest.mark.parametrize("layout,field,words", [
    (dict(tp=3), "tp", "does not divide"),
    (dict(tp=2, pp=3), "pp", "stages do not divide"),
    (dict(tp=4, pp=4), "tp", "must equal the chip count"),
    (dict(tp=8, ep=2), "ep", "ep must be 1 or equal tp"),
    (dict(tp=8, ep=8), "ep", "no mixture-of-experts"),
    (dict(batch=3, tp=4, pp=2, micro_batches=2), "micro_batches", "do not divide batch"),
])
def test_impossible_layouts_are_refused_with_the_field(llama70b, layout, field, words):
    n = {3: 3, 2: 6}.get(layout.get("tp"), 8)
    batch = layout.pop("batch", 2)
    with pytest.raises(InputError) as e:
        plan_run(llama70b, h100s(n), Workload(batch=batch, prompt=16, generate=2, **layout))
    assert e.value.field == field and words in e.value.reason


def test_a_model_too_big_even_when_split_is_refused_with_the_numbers():
    model = load_model("llama-3.1-405b")
    with pytest.raises(InputError) as e:
        plan_run(model, h100s(8), Workload(batch=1, prompt=128, generate=2))
    assert "does not fit split tp 8" in e.value.reason and "at least 11 chips" in e.value.reason
    assert e.value.field == "blocks.hbm.capacity_gb"


def test_a_network_that_leaves_chips_unreachable_is_refused():
    net = {"topology": "custom", "bandwidth_gbps": 100,
           "edges": [{"a": "chip0", "b": "chip1"}, {"a": "chip2", "b": "chip3"}]}
    with pytest.raises(InputError) as e:
        build_system(SystemSpec(name="split", chip="h100-sxm", count=4, network=net), "split.yaml")
    assert e.value.source == "split.yaml" and e.value.field == "network"
    assert "chip2, chip3 disconnected" in e.value.reason


def test_turning_off_the_chips_in_switch_reduction_drops_its_start_up():
    """h100-sxm's network reduces in the switch and pays NVLS's extra start-up; a system file that
    turns the reduction off gets a plain switch, not an error about a start-up it did not set."""
    plain = build_system(SystemSpec(name="p", chip="h100-sxm", count=4, network={"in_switch_reduction": False}))
    assert plain.network.in_switch_startup_ns == 0 and not plain.network.in_switch_reduction
    assert plain.network.in_switch_step_ns == 0 and plain.network.in_switch_channels is None  # likewise
    with pytest.raises(InputError) as e:
        build_system(SystemSpec(name="q", chip="h100-sxm", count=4,
                                network={"in_switch_reduction": False, "in_switch_startup_ns": 5000}), "q.yaml")
    assert e.value.field == "network" and "in_switch_startup_ns" in e.value.reason
    for field, value in (("in_switch_step_ns", 2000), ("in_switch_channels", 24)):
        with pytest.raises(InputError) as e:
            build_system(SystemSpec(name="q", chip="b200", count=4,
                                    network={"in_switch_reduction": False, field: value}), "q.yaml")
        assert e.value.field == "network" and field in e.value.reason


def test_a_chip_changed_to_no_in_switch_reduction_drops_its_start_up_too():
    """The same through ``with_``: the start-up goes with the reduction unless it is set too."""
    from asicsim.api import chip

    plain = chip("b200").with_(**{"network.in_switch_reduction": False})
    assert plain.network.in_switch_startup_ns == 0 and not plain.network.in_switch_reduction
    assert plain.network.in_switch_step_ns == 0 and plain.network.in_switch_channels is None
    with pytest.raises(InputError, match="in_switch_startup_ns"):
        chip("h100-sxm").with_(**{"network.in_switch_reduction": False, "network.in_switch_startup_ns": 5000})


def test_a_whole_network_given_to_with_keeps_the_in_switch_fields_it_sets():
    """A whole ``network`` handed to ``with_`` inherits nothing: an in-switch field it sets beside
    in_switch_reduction: false is the contradiction a system file gets refused for, not dropped
    in silence, and the caller's dict is left as it was."""
    from asicsim.api import chip

    for field, value in (("in_switch_step_ns", 2000), ("in_switch_channels", 24), ("in_switch_startup_ns", 5000)):
        net = {"topology": "switch", "bandwidth_gbps": 450, "in_switch_reduction": False, field: value}
        with pytest.raises(InputError, match=field):
            chip("h100-sxm").with_(network=net)
        assert net[field] == value
    plain = chip("h100-sxm").with_(network={"topology": "switch", "bandwidth_gbps": 450})
    assert not plain.network.in_switch_reduction and plain.network.in_switch_step_ns == 0


def test_a_system_files_bad_network_field_is_refused_at_its_line(tmp_path):
    """A network field of a system file is validated over the chip's network, but the error
    points at the field's own line in the file (it said line 1, the file's first)."""
    from asicsim.hardware import load_system

    path = tmp_path / "s.yaml"
    for body, field, line in (("  latency_ns: 5\n  in_switch_channels: 0\n", "network.in_switch_channels", 6),
                              ("  in_switch_reduction: false\n  in_switch_step_ns: 9\n", "network", 4)):
        path.write_text(f"name: s\nchip: h100-sxm\ncount: 8\nnetwork:\n{body}")
        with pytest.raises(InputError) as e:
            load_system(str(path))
        assert e.value.field == field and e.value.reason.startswith(f"line {line}:"), e.value


def test_a_link_with_no_bandwidth_is_refused():
    with pytest.raises(InputError) as e:
        build_system(SystemSpec(name="z", chip="h100-sxm", count=2, network={"bandwidth_gbps": 0}), "z.yaml")
    assert e.value.field == "network.bandwidth_gbps" and "greater than 0" in e.value.reason


def test_spatial_chips_refuse_a_parallel_layout():
    with pytest.raises(InputError, match="runs spatially"):
        predict("llama-3.1-8b", "taalas-hc1", prompt=8, generate=2, tp=2)


def test_split_runs_are_deterministic(llama70b):
    wl = Workload(batch=2, prompt=32, generate=3, tp=4, pp=2)
    a = run(llama70b, h100s(8), wl)
    b = run(llama70b, h100s(8), wl)
    assert a.trace.digest() == b.trace.digest()


def test_chips_flag_uses_the_chip_network():
    r = predict("llama-3.1-70b", "h100-sxm", chips=8, prompt=32, generate=3)
    assert r.plan.chips == 8 and r.plan.system.network == load_system("h100-sxm").chip.network
    assert r.plan.parallel.tp == 8


def test_pipeline_stages_of_tensor_parallel_groups_work_at_once(llama70b):
    """Four micro-batches through four TP2 stages: while decoding, the stages stream their
    weights at the same time (a link lane per group keeps one stage's collectives from holding
    up another micro-batch's hand-off), so their summed busy time is several times the step."""
    r = run(llama70b, h100s(8), Workload(batch=4, prompt=32, generate=4, tp=2, pp=4))
    p, tr = r.program, r.trace
    decode = np.array([s.phase == "decode" for s in p.steps])[p.step_of_task()]
    dma = np.array([b.kind == "dma" for b in p.blocks])[p.block]
    busy = (p.service_ns + p.fixed_ns + tr.wait_ns)[decode & dma].sum() / 3  # per decode step
    assert busy > 2.5 * r.metrics.tpot_ms * 1e6


def test_a_rank_past_the_kv_heads_reads_one_whole_kv_head(llama70b):
    """Llama-3.1-70B has 8 KV heads: over 16 ranks each keeps (and reads) 1/8 of the cache, while
    its FLOPs and query heads still split 16 ways."""
    from asicsim.compile.shard import shard_op

    attn = next(op for op in build_graph(llama70b, StepShape(2, 1, 500), Numerics()).ops if op.name == "L0.attn")
    for tp, kv in ((4, 4), (8, 8), (16, 8)):
        part = shard_op(attn, tp, 1, 2)
        assert part.kv_read_bytes == pytest.approx(attn.kv_read_bytes / kv)
        assert part.flops == pytest.approx(attn.flops / tp)
