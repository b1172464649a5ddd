"""A Program whose tasks can never all run (built or loaded by hand: compiled ones cannot) ends
in a Deadlock that names each stuck block, the task it stops at and what that task waits on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from asicsim.engine import Deadlock, simulate
from asicsim.program import ProgramBuilder, StepRef


def _two_blocks():
    """Blocks A (tasks 0, 2) and B (tasks 1, 3), 10 ns each, no dependencies yet."""
    b = ProgramBuilder()
    a, bb = b.add_block("A", "matmul"), b.add_block("B", "vector")
    step = b.add_step(StepRef("prefill", 1, 1, 0))
    ops = [b.add_op(name, 0, "matmul", step) for name in ("a0", "b1", "a2", "b3")]
    for t, block in enumerate((a, bb, a, bb)):
        b.task(block, ops[t], 10.0)
    return b.build()


def _with_deps(program, deps: dict[int, list[int]]):
    ptr, idx = [0], []
    for t in range(program.n_tasks):
        idx += deps.get(t, [])
        ptr.append(len(idx))
    return dataclasses.replace(program, dep_ptr=np.array(ptr, np.int64), dep_idx=np.array(idx, np.int64))


def test_a_cycle_through_two_blocks_names_both_waits_and_the_cycle():
    # A's first task waits on B's last; B's first waits on A's last: neither block can start
    program = _with_deps(_two_blocks(), {0: [3], 1: [2]})
    with pytest.raises(Deadlock) as caught:
        simulate(program)
    e = caught.value
    assert e.waiting == {0: (0, [3]), 1: (1, [2])}
    assert sorted(e.cycle) == [0, 1]
    text = str(e)
    assert text.startswith("4 of 4 tasks can never run: 2 blocks wait")
    assert "A stops at task 0 (a0, step 0, on A), waiting on task 3 (b3, step 0, on B)" in text
    assert "B stops at task 1 (b1, step 0, on B), waiting on task 2 (a2, step 0, on A)" in text
    assert "cycle: A -> B -> A" in text or "cycle: B -> A -> B" in text


def test_a_task_waiting_on_a_later_task_of_its_own_block():
    program = _with_deps(_two_blocks(), {0: [2]})  # B runs; A waits on its own second task
    with pytest.raises(Deadlock) as caught:
        simulate(program)
    assert caught.value.waiting == {0: (0, [2])} and caught.value.cycle == [0]
    assert str(caught.value).startswith("2 of 4 tasks can never run: 1 block waits")


def test_forward_dependencies_without_a_cycle_still_run():
    trace = simulate(_with_deps(_two_blocks(), {0: [3]}))  # A waits for B to finish: no deadlock
    assert trace.start_ns[0] == 20.0 and trace.makespan_ns == 40.0
