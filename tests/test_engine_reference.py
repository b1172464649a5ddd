"""The engine's event loop against a reference written on SimPy (the engine's first form): the
same trace, bit for bit, on random Programs full of ties (small integer times, shared servers,
several blocks waiting on one task) and on compiled ones, in both of the engine's storage modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asicsim.engine as engine
from asicsim.engine import Trace, simulate
from asicsim.program import Level, ProgramBuilder, StepRef

simpy = pytest.importorskip("simpy")


def reference(program) -> Trace:
    """One SimPy process per block; a shared server is reserved only once the clock reaches the
    task's ready time; a missing dependency is an event the issuing block succeeds."""
    env = simpy.Environment()
    n = program.n_tasks
    start, end, wait = [0.0] * n, [None] * n, [0.0] * n
    free_at = [0.0] * len(program.servers)
    events: dict[int, simpy.Event] = {}
    holder = program.holding_task()
    users: dict[int, set] = {}
    for s, t in zip(program.srv_idx.tolist(), holder.tolist()):
        users.setdefault(s, set()).add(int(program.block[t]))

    def run(stream):
        clock = 0.0
        for t in stream:
            ready = clock
            for d in program.deps(t).tolist():
                if end[d] is None:
                    if d not in events:
                        events[d] = env.event()
                    yield events[d]
                ready = max(ready, end[d])
            work = ready + float(program.fixed_ns[t])
            held = range(program.srv_ptr[t], program.srv_ptr[t + 1])
            if len(held):
                if any(len(users[program.srv_idx[j]]) > 1 for j in held) and ready > env.now:
                    yield env.timeout(ready - env.now)
                queued = max([work] + [free_at[program.srv_idx[j]] for j in held])
                for j in held:
                    free_at[program.srv_idx[j]] = queued + float(program.srv_hold_ns[j])
                wait[t] = queued - work
                work = queued
            clock = work + float(program.service_ns[t])
            start[t], end[t] = ready, clock + float(program.latency_ns[t])
            if t in events:
                events.pop(t).succeed()

    for b in range(len(program.blocks)):
        stream = np.flatnonzero(program.block == b).tolist()
        if stream:
            env.process(run(stream))
    env.run()
    return Trace(program, np.array(start), np.array(end, dtype=np.float64), np.array(wait))


@st.composite
def programs(draw):
    b = ProgramBuilder()
    n_blocks, n_servers = draw(st.integers(1, 5)), draw(st.integers(0, 3))
    blocks = [b.add_block(f"b{i}", "x") for i in range(n_blocks)]
    servers = [b.add_server(f"s{i}", "hbm", 1.0) for i in range(n_servers)]
    op = b.add_op("op", 0, "matmul", b.add_step(StepRef("prefill", 1, 1, 0)))
    times = st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0, 5.0])
    for t in range(draw(st.integers(1, 40))):
        deps = sorted(draw(st.sets(st.integers(0, t - 1), max_size=3))) if t else []
        held = draw(st.lists(st.sampled_from(servers), max_size=2, unique=True)) if servers else []
        b.task(draw(st.sampled_from(blocks)), op, draw(times), deps, fixed_ns=draw(times), latency_ns=draw(times),
               level=Level.HBM_READ, servers=tuple((s, draw(times)) for s in held))
    return b.build()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(programs(), st.booleans())
def test_the_engine_gives_the_reference_trace_on_random_programs(program, compact):
    old = engine.COMPACT_ABOVE
    engine.COMPACT_ABOVE = 0 if compact else old
    try:
        got = simulate(program)
    finally:
        engine.COMPACT_ABOVE = old
    want = reference(program)
    assert got.digest() == want.digest()


@pytest.mark.parametrize("model, system, kw", [
    ("llama-3.1-8b", "groq-lpu", dict(batch=3, prompt=16, generate=3)),           # shared SRAM, many chips
    ("llama-3.1-70b", "dgx-h100", dict(batch=2, prompt=16, generate=3, tp=4, pp=2)),  # collectives on shared links
])
def test_the_engine_gives_the_reference_trace_on_compiled_programs(model, system, kw):
    from asicsim.compile import Workload, compile_run
    from asicsim.hardware import load_system
    from asicsim.model import load_model

    program = compile_run(load_model(model), load_system(system), Workload(**kw))
    assert simulate(program).digest() == reference(program).digest()
