"""Stamping: a compiler that copies recorded tasks as numpy blocks builds the same Program, bit
for bit, as one that emits every op (alike layers of a step, alike micro-batches)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import asicsim.compile as compile_
from asicsim.compile import Workload, compile_plan, plan_run
from asicsim.hardware import load_system
from asicsim.model import load_model
from asicsim.program import TASK_FIELDS

CASES = [  # (model, system, workload, whether layers are stamped)
    ("llama-3.1-8b", "h100-sxm", dict(batch=2, prompt=16, generate=3), True),           # dense
    ("gemma-2-9b", "a100-sxm-80gb", dict(prompt=16, generate=3), True),                 # windowed and global layers in turn
    ("recurrentgemma-9b", "b200", dict(prompt=16, generate=3), True),                   # recurrence and attention
    ("qwen3-30b-a3b", "h200", dict(prompt=16, generate=3), True),                       # MoE
    ("llama-3.1-8b", "taalas-hc1", dict(batch=3, prompt=16, generate=3), True),         # spatial: a stage a layer
    ("llama-3.1-70b", "dgx-h100", dict(batch=8, prompt=16, generate=3, tp=2, pp=4, micro_batches=4), True),
    ("mixtral-8x7b", "dgx-h100", dict(batch=16, prompt=16, generate=3, ep=8), True),     # experts over 8 chips
    ("llama-3.1-8b", "groq-lpu", dict(batch=5, prompt=16, generate=3), False),          # ops packed over chips
    ("llama-3.1-8b", "dgx-h100", dict(batch=2, prompt=16, generate=3, tp=8), True),      # TP8: all-reduces
    ("llama-3.1-8b", "dgx-h100", dict(batch=2, prompt=16, generate=3, pp=2), True),      # a chain stops at a hop
    ("llama-3.1-70b", str(Path(__file__).parents[1] / "scenarios/chips/hardwired-llama-3.1-70b.yaml"),
     dict(prompt=8, generate=3), True),                                                  # spatial over 9 dies
    ("llama-3.1-8b", "taalas-hc1", dict(batch=1, prompt=16, generate=3), True),         # the quickstart's chips
    ("llama-3.1-8b", "h100-sxm", dict(batch=1, prompt=16, generate=3), True),
]


def _same(a, b) -> None:
    assert a.ops == b.ops and a.blocks == b.blocks and a.servers == b.servers and a.steps == b.steps
    for f in TASK_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f


@pytest.mark.parametrize("model, system, kw, stamps", CASES, ids=[f"{c[0]}-{Path(c[1]).stem}" for c in CASES])
def test_stamping_alike_layers_builds_the_same_program_as_emitting_each(monkeypatch, model, system, kw, stamps):
    spec, wl = load_model(model), Workload(**kw)
    plan = plan_run(spec, load_system(system), wl)
    stamped_layers = []
    stamp = compile_._Layer.stamp

    calls = []

    def counting(self, b, e, run, *args):
        out = stamp(self, b, e, run, *args)
        stamped_layers.extend(layer for layer, _ in run[:len(out)])
        calls.append(len(out))
        return out

    monkeypatch.setattr(compile_._Layer, "stamp", counting)
    stamped = compile_plan(plan, spec, wl)
    monkeypatch.setattr(compile_, "STAMP_LAYERS", False)
    monkeypatch.setattr(compile_, "STAMP_MICRO_BATCHES", False)
    n = len(stamped_layers)
    emitted = compile_plan(plan, spec, wl)
    assert len(stamped_layers) == n  # nothing stamped with stamping off
    _same(stamped, emitted)
    steps = 1 + wl.generate - 1
    if stamps:  # most layers of every step are stamped, not emitted
        assert n >= steps * (spec.n_layers // 2)
        if any(x == y for x, y in zip(spec.blocks, spec.blocks[1:])):  # not Gemma 2's alternating layers
            assert max(calls) > 1  # alike layers one after another are stamped together, as one block
    else:  # Groq packs ops onto chips one by one, across layer boundaries: every layer is emitted
        assert n == 0


def test_a_stamped_layer_moves_onto_its_own_stage():
    """On a spatial chip each layer has its own arrays and SRAM: a layer stamped from another
    runs on its own stage's blocks and holds its own stage's servers, and its ops carry its name."""
    spec, wl = load_model("llama-3.1-8b"), Workload(batch=1, prompt=16, generate=2)
    p = compile_plan(plan_run(spec, load_system("taalas-hc1"), wl), spec, wl)
    for layer in (3, 17):
        ops = [i for i, o in enumerate(p.ops) if o.layer == layer and o.step == 1]
        assert ops and all(p.ops[i].name.startswith(f"L{layer}.") for i in ops)
        tasks = np.isin(p.op, ops)
        blocks = {p.blocks[b].name for b in np.unique(p.block[tasks])}
        servers = {p.servers[s].name for s in np.unique(p.srv_idx[np.repeat(tasks, np.diff(p.srv_ptr))])}
        assert blocks == {f"chip0.{b}[{layer}]" for b in ("layer_array", "attn_array", "stage_vector")}
        assert servers == {f"chip0.kv_sram[{layer}]"}


GRAPH_CASES = [  # (model, system, workload): dense, windowed, hybrid, MoE, spatial, pipelined
    ("llama-3.1-8b", "h100-sxm", dict(batch=2, prompt=16, generate=4)),
    ("gemma-2-9b", "a100-sxm-80gb", dict(prompt=8, generate=4)),
    ("recurrentgemma-9b", "b200", dict(prompt=16, generate=4)),
    ("qwen3-30b-a3b", "h200", dict(prompt=16, generate=4)),
    ("llama-3.1-8b", "taalas-hc1", dict(batch=3, prompt=16, generate=4)),
    ("llama-3.1-70b", "dgx-h100", dict(batch=8, prompt=16, generate=4, tp=2, pp=4, micro_batches=4)),
    ("llama-3.1-8b", "h100-sxm", dict(prompt=16, generate=4, adapters="8:qkv,o")),          # LoRA on some ops
    ("llama-3.1-8b", "taalas-hc1", dict(prompt=16, generate=4, tokens_per_step=3)),         # a verifier's steps
]


@pytest.mark.parametrize("model, system, kw", GRAPH_CASES, ids=[f"{c[0]}-{c[1]}" for c in GRAPH_CASES])
def test_decode_graphs_renamed_from_one_layer_per_block_build_the_same_program(monkeypatch, model, system, kw):
    """Later decode steps lower one layer per distinct block and reuse the first decode step's
    signatures: the Program equals the one from lowering every layer of every step."""
    from asicsim.compile.adapters import parse_lora

    if "adapters" in kw:
        kw = kw | {"adapters": parse_lora(kw["adapters"])}
    spec, wl = load_model(model), Workload(**kw)
    plan = plan_run(spec, load_system(system), wl)
    renamed = []
    build = compile_.renamed_graph

    def counting(*args):
        out = build(*args)
        renamed.append(out is not None)
        return out

    monkeypatch.setattr(compile_, "renamed_graph", counting)
    cached = compile_plan(plan, spec, wl)
    assert renamed and all(renamed)  # decode steps 2 and 3 came from the cache
    monkeypatch.setattr(compile_, "CACHE_GRAPHS", False)
    n = len(renamed)
    uncached = compile_plan(plan, spec, wl)
    assert len(renamed) == n
    _same(cached, uncached)


def test_a_layer_lowered_apart_from_its_alikes_turns_the_graph_cache_off():
    """layer_layout refuses a graph where a layer's ops are not its first alike layer's renamed."""
    import dataclasses

    from asicsim.model.graph import build_graph, layer_layout
    from asicsim.model.ops import Numerics, StepShape

    spec = load_model("llama-3.1-8b")
    graph = build_graph(spec, StepShape(1, 1, 16), Numerics())
    assert layer_layout(spec, graph) is not None
    ops = list(graph.ops)
    i = next(k for k, op in enumerate(ops) if op.name == "L3.attn")
    ops[i] = dataclasses.replace(ops[i], flops=ops[i].flops + 1)
    assert layer_layout(spec, dataclasses.replace(graph, ops=tuple(ops))) is None


def test_a_chain_of_copies_is_the_same_tasks_as_copies_stamped_one_by_one():
    """ProgramBuilder.replay_chain: several copies of a span, each after the one before and each
    moved onto its own blocks and servers, as one numpy block; equal to replay_span once a copy."""
    from asicsim.program import ProgramBuilder, op_ref

    def builder(chained: bool):
        b = ProgramBuilder()
        for k in range(4):
            b.add_block(f"b{k}", "vector")
            b.add_server(f"s{k}", "hbm", 1.0)
        b.add_step(compile_.StepRef("decode", 1, 1, 8))
        seed = b.task(0, b.add_op("in", -1, "vector", 0), 1.0)
        mark = b.mark()
        x = b.task(0, b.add_op("L0.a", 0, "matmul", 0), 2.0, [seed], servers=((0, 1.5),), nbytes=3.0)
        y = b.task(1, b.add_op("L0.b", 0, "vector", 0), 4.0, [x, seed], fixed_ns=0.5, latency_ns=7.0)
        span = b.record_span(mark, [seed])
        moves = [None, (np.array([2, 3, 2, 3]), np.array([3, 2, 1, 0])), None]
        externals = [[seed], [y + 2], [y + 4]]  # each copy reads the one before's last task
        ops = [op_ref(f"L{j}.{name}", j, kind, 0) for j in (1, 2, 3) for name, kind in (("a", "matmul"), ("b", "vector"))]
        if chained:
            b.replay_chain(span, externals, ops, [m and m[0] for m in moves], [m and m[1] for m in moves])
        else:
            for j, m in enumerate(moves):
                b.replay_span(span, externals[j], ops[2 * j:2 * j + 2], *(m or (None, None)))
        return b.build()

    chained, one_by_one = builder(True), builder(False)
    _same(chained, one_by_one)
    assert chained.n_tasks == 9 and list(chained.deps(5)) == [4]  # the second copy's first task reads the first's last
    assert chained.block[5:7].tolist() == [2, 3] and chained.srv_idx[2] == 3  # the middle copy moved


def test_compile_pauses_the_garbage_collector_and_restores_it_as_found(monkeypatch):
    """compile_plan pauses Python's cyclic collector while it runs and leaves it as it found it:
    on when it was on (an error inside included), off when it was off."""
    import gc

    spec, wl = load_model("llama-3.1-8b"), Workload(prompt=8, generate=2)
    plan = plan_run(spec, load_system("h100-sxm"), wl)
    seen = []
    get = compile_._StepGraphs.get

    def watching(self, shape):
        seen.append(gc.isenabled())
        return get(self, shape)

    monkeypatch.setattr(compile_._StepGraphs, "get", watching)
    was = gc.isenabled()
    try:
        gc.enable()
        compile_plan(plan, spec, wl)
        assert gc.isenabled() and seen and not any(seen)
        gc.disable()
        compile_plan(plan, spec, wl)
        assert not gc.isenabled()
        gc.enable()

        def failing(self, shape):
            raise RuntimeError("boom")

        monkeypatch.setattr(compile_._StepGraphs, "get", failing)
        with pytest.raises(RuntimeError):
            compile_plan(plan, spec, wl)
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
