"""The engine: SimPy runs a Program and records when every task started and ended.

One SimPy process per block walks that block's task stream in order. Memories and links are
contended FIFO servers: a task that needs one reserves it at the simulated moment it is ready,
for its hold time, behind whoever reserved it first (a server only serves, so it needs no process
of its own: its queue is one ``free_at`` time).

A task's end time is fixed when it is issued. So a block process only has to stop for two
things: a dependency not issued yet (it sleeps on an event until it is), and a server to reserve
(it advances the clock to the task's ready time first, so reservations happen in time order).
Between those it runs ahead of the simulation clock, issuing tasks whose times follow from what
is already known: the same schedule as stepping one task at a time, in far fewer events. The
engine knows blocks, servers and tasks, nothing about models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import simpy

from asicsim.program import Program


@dataclass(frozen=True, eq=False)
class Trace:
    """When each task of ``program`` ran: ``start_ns`` (ready and issued), ``end_ns`` (done),
    and ``wait_ns`` (time queued behind other tasks for a contended server)."""

    program: Program
    start_ns: np.ndarray
    end_ns: np.ndarray
    wait_ns: np.ndarray

    @property
    def makespan_ns(self) -> float:
        return float(self.end_ns.max()) if len(self.end_ns) else 0.0

    def digest(self) -> str:
        """A fingerprint of the whole trace: equal digests mean bit-identical timings."""
        h = hashlib.sha256()
        for a in (self.start_ns, self.end_ns, self.wait_ns):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def simulate(program: Program) -> Trace:
    """Run ``program`` to completion and return its Trace."""
    n = program.n_tasks
    env = simpy.Environment()
    dep_ptr, dep_idx = program.dep_ptr.tolist(), program.dep_idx.tolist()
    srv_ptr, srv_idx, srv_hold = program.srv_ptr.tolist(), program.srv_idx.tolist(), program.srv_hold_ns.tolist()
    fixed, service, latency = program.fixed_ns.tolist(), program.service_ns.tolist(), program.latency_ns.tolist()
    start, end, wait = [0.0] * n, [None] * n, [0.0] * n
    free_at = [0.0] * len(program.servers)
    waiters: dict[int, simpy.Event] = {}

    # A server reserved by a single block sees its reservations in that block's order, which is
    # already time order: only tasks touching a server that several blocks share must sync.
    holder = program.holding_task()
    users = [set() for _ in program.servers]
    for s, b in zip(srv_idx, program.block[holder].tolist()):
        users[s].add(b)
    sync = [False] * n
    for s, t in zip(srv_idx, holder.tolist()):
        if len(users[s]) > 1:
            sync[t] = True

    streams: list[list[int]] = [[] for _ in program.blocks]
    for t, b in enumerate(program.block.tolist()):
        streams[b].append(t)

    def block_process(stream: list[int]):
        clock = 0.0  # when this block is next free; may run ahead of env.now (see module doc)
        for t in stream:
            ready = clock
            for j in range(dep_ptr[t], dep_ptr[t + 1]):
                d = dep_idx[j]
                e = end[d]
                if e is None:  # not issued yet: sleep until it is
                    ev = waiters.get(d)
                    if ev is None:
                        ev = waiters[d] = env.event()
                    yield ev
                    e = end[d]
                if e > ready:
                    ready = e
            work = ready + fixed[t]
            a, b = srv_ptr[t], srv_ptr[t + 1]
            if a != b:
                if sync[t] and ready > env.now:  # reserve in time order: an idle server is never blocked
                    yield env.timeout(ready - env.now)
                queued = work
                for j in range(a, b):
                    if free_at[srv_idx[j]] > queued:
                        queued = free_at[srv_idx[j]]
                for j in range(a, b):
                    free_at[srv_idx[j]] = queued + srv_hold[j]
                wait[t] = queued - work
                work = queued
            clock = work + service[t]
            start[t] = ready
            end[t] = clock + latency[t]
            if waiters:
                ev = waiters.pop(t, None)
                if ev is not None:
                    ev.succeed()

    for stream in streams:
        if stream:
            env.process(block_process(stream))
    env.run()
    if any(e is None for e in end):
        raise RuntimeError("simulation ended with tasks never issued; the Program is malformed")
    return Trace(program, np.array(start), np.array(end, dtype=np.float64), np.array(wait))
