"""Stamping: a compiler that copies recorded tasks as numpy blocks builds the same Program, bit
for bit, as one that emits every op (alike layers of a step, alike micro-batches)."""

from __future__ import annotations

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
]


def _same(a, b) -> None:
    assert a.ops == b.ops and a.blocks == b.blocks and a.servers == b.servers and a.steps == b.steps
    for f in TASK_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f


@pytest.mark.parametrize("model, system, kw, stamps", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_stamping_alike_layers_builds_the_same_program_as_emitting_each(monkeypatch, model, system, kw, stamps):
    spec, wl = load_model(model), Workload(**kw)
    plan = plan_run(spec, load_system(system), wl)
    stamped_layers = []
    stamp = compile_._Layer.stamp

    def counting(self, b, e, layer, *args):
        out = stamp(self, b, e, layer, *args)
        if out is not None:
            stamped_layers.append(layer)
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
