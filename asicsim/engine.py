"""The engine: a discrete-event simulation runs a Program and records when every task started and ended.

One process (a generator) per block walks that block's task stream in order. Memories and links
are contended FIFO servers: a task that needs one reserves it at the simulated moment it is
ready, for its hold time, behind whoever reserved it first (a server only serves, so it needs no
process of its own: its queue is one ``free_at`` time).

A task's end time is fixed when it is issued. So a block process only has to stop for two
things: a dependency not issued yet (it sleeps until it is), and a server to reserve (it advances
the clock to the task's ready time first, so reservations happen in time order). Between those it
runs ahead of the simulation clock, issuing tasks whose times follow from what is already known:
the same schedule as stepping one task at a time, in far fewer events. The events wait in a heap
ordered as SimPy orders its own (time, then priority, then the order they were scheduled in), and
processes woken at the current time in a FIFO after the heap's events due then; the
engine ran on SimPy until its Event objects and callbacks became most of its time, and gives the
same traces bit for bit (the golden digests in tests/test_fast_forward.py). The engine knows
blocks, servers and tasks, nothing about models.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import deque
from heapq import heappop, heappush
from itertools import count
from dataclasses import dataclass

import numpy as np

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


COMPACT_ABOVE = 1_000_000  # tasks: above this the engine keeps columns as typed arrays


def _column(a: np.ndarray, code: str, compact: bool) -> memoryview | list:
    """A column for the hot loop: a list (fastest to read), or for a large Program a view of the
    numpy column itself (no copy, and no Python object per value: a few % slower to read)."""
    if compact:
        dtype = {"q": np.int64, "i": np.int32, "d": np.float64}[code]
        return memoryview(np.ascontiguousarray(a, dtype=dtype))
    return a.tolist()


NOT_ISSUED = float("-inf")  # the end time of a task not issued yet


class Deadlock(RuntimeError):
    """The simulation ended with tasks that can never run: each stuck block waits, at the first
    task it has not issued, on a task not issued either (a dependency on a later task of its own
    block, or a cycle through other blocks). A compiled Program cannot deadlock (dependencies point
    at earlier tasks); one built or loaded by hand can. ``waiting`` maps each stuck block to its
    first waiting task and the unissued tasks it waits on; ``cycle`` is one loop of blocks waiting
    on each other, when there is one."""

    SHOWN = 8  # stuck blocks named in the message

    def __init__(self, program: Program, streams: list[list[int]], end: list) -> None:
        self.waiting: dict[int, tuple[int, list[int]]] = {}
        for b, stream in enumerate(streams):
            t = next((t for t in stream if end[t] is None), None)
            if t is not None:
                self.waiting[b] = (t, [int(d) for d in program.deps(t) if end[d] is None])
        self.cycle = self._cycle(program)
        lines = [f"{sum(e is None for e in end):,} of {len(end):,} tasks can never run: "
                 f"{len(self.waiting)} {'blocks wait' if len(self.waiting) != 1 else 'block waits'} on tasks not issued"]
        for b, (t, deps) in list(self.waiting.items())[:self.SHOWN]:
            on = ", ".join(_task(program, d) for d in deps[:3]) + (" ..." if len(deps) > 3 else "")
            lines.append(f"  {program.blocks[b].name} stops at {_task(program, t)}, waiting on {on}")
        if len(self.waiting) > self.SHOWN:
            lines.append(f"  ... and {len(self.waiting) - self.SHOWN} more blocks")
        if self.cycle:
            lines.append("  cycle: " + " -> ".join(program.blocks[b].name for b in self.cycle + self.cycle[:1]))
        super().__init__("\n".join(lines))

    def _cycle(self, program: Program) -> list[int]:
        """Follow 'waits on a task of block ...' from each stuck block until a block repeats."""
        waits_on = {b: int(program.block[deps[0]]) for b, (_, deps) in self.waiting.items() if deps}
        for start in waits_on:
            seen: list[int] = []
            b = start
            while b in waits_on and b not in seen:
                seen.append(b)
                b = waits_on[b]
            if b in seen:
                return seen[seen.index(b):]
        return []


def _task(program: Program, t: int) -> str:
    op = program.ops[int(program.op[t])]
    return f"task {t} ({op.name}, step {op.step}, on {program.blocks[int(program.block[t])].name})"


def simulate(program: Program) -> Trace:
    """Run ``program`` to completion and return its Trace."""
    n = program.n_tasks
    big = n > COMPACT_ABOVE
    dep_ptr, dep_idx = _column(program.dep_ptr, "q", big), _column(program.dep_idx, "q", big)
    srv_ptr, srv_idx = _column(program.srv_ptr, "q", big), _column(program.srv_idx, "q", big)
    srv_hold = _column(program.srv_hold_ns, "d", big)
    fixed, service = _column(program.fixed_ns, "d", big), _column(program.service_ns, "d", big)
    latency = _column(program.latency_ns, "d", big)
    # A server reserved by a single block sees its reservations in that block's order, which is
    # already time order: only tasks touching a server that several blocks share must sync.
    holder = program.holding_task()
    nb, ns = max(1, len(program.blocks)), len(program.servers)
    if ns * nb <= 1 << 24:  # which blocks use which server, as a table (no sort of every hold)
        used = np.zeros((ns, nb), dtype=bool)
        used[program.srv_idx, program.block[holder]] = True
        shared = used.sum(axis=1) > 1
    else:
        pairs = np.unique(program.srv_idx * nb + program.block[holder])  # (server, block) pairs in use
        shared = np.bincount(pairs // nb, minlength=ns) > 1
    sync_mask = np.zeros(n, dtype=bool)
    sync_mask[holder[shared[program.srv_idx]]] = True
    sync = sync_mask.tobytes() if big else sync_mask.tolist()
    del holder, sync_mask

    if big:  # 8 bytes a value
        start, end, wait = array("d", bytes(8 * n)), array("d", [NOT_ISSUED]) * n, array("d", bytes(8 * n))
    else:
        start, end, wait = [0.0] * n, [NOT_ISSUED] * n, [0.0] * n
    free_at = [0.0] * ns

    order = np.argsort(program.block, kind="stable")
    if big and n < 2**31:  # task numbers in 4 bytes
        order = order.astype(np.int32)
    bounds = np.searchsorted(program.block[order], np.arange(len(program.blocks) + 1))
    streams = [_column(order[bounds[b]:bounds[b + 1]], "i" if order.dtype == np.int32 else "q", big)
               for b in range(len(program.blocks))]

    # The event loop: a heap of (time, priority, sequence number, process to resume), the order
    # in which SimPy processes its events (the engine ran on SimPy until its Event objects and
    # callbacks were most of the engine's time; tests/test_engine_reference.py holds the two to
    # the same traces), and a FIFO of processes woken at the current time. A process yields an
    # int (the task it waits for, resumed when that task is issued) or a float (how long to
    # sleep). Starting a process is urgent (priority 0), everything else normal (1).
    queue: list = []
    current: deque = deque()
    waiters: dict[int, list] = {}  # task -> the processes waiting for it to be issued
    awaited = bytearray(n)  # 1 where a process waits for that task (a byte a task: cheaper than a lookup)
    seq = count()
    now = 0.0

    def block_process(stream: memoryview | list):
        not_issued = NOT_ISSUED
        clock = 0.0  # when this block is next free; may run ahead of the clock (see module doc)
        for t in stream:
            ready = clock
            j = dep_ptr[t]
            k = dep_ptr[t + 1]
            if k - j == 1:  # one dependency (most tasks)
                d = dep_idx[j]
                e = end[d]
                if e == not_issued:  # not issued yet: sleep until it is
                    yield d
                    e = end[d]
                if e > ready:
                    ready = e
            else:
                for i in range(j, k):
                    d = dep_idx[i]
                    e = end[d]
                    if e == not_issued:
                        yield d
                        e = end[d]
                    if e > ready:
                        ready = e
            work = ready + fixed[t]
            a = srv_ptr[t]
            b = srv_ptr[t + 1]
            if a != b:
                if sync[t] and ready > now:  # reserve in time order: an idle server is never blocked
                    yield ready - now
                if b - a == 1:  # one server (most tasks)
                    s = srv_idx[a]
                    queued = free_at[s]
                    if queued < work:
                        queued = work
                    free_at[s] = queued + srv_hold[a]
                else:
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
            if awaited[t]:
                current.extend(waiters.pop(t))

    for stream in streams:
        if stream:
            heappush(queue, (0.0, 0, next(seq), block_process(stream)))
    popleft = current.popleft
    while True:
        # Processes woken at ``now`` wait in ``current`` (FIFO) rather than the heap: SimPy would
        # give each a later sequence number than any event already due at ``now`` (those were
        # scheduled earlier), so due heap events go first, then ``current`` in order.
        if current and (not queue or queue[0][0] != now):
            proc = popleft()
        elif queue:
            now, _, _, proc = heappop(queue)
        else:
            break
        try:
            got = next(proc)
        except StopIteration:
            continue
        if got.__class__ is float:  # a sleep until a later time: a process sleeps only to a ready time
            # after now, and now + (ready - now) > now in floating point, so it never lands on now
            heappush(queue, (now + got, 1, next(seq), proc))
        else:
            if awaited[got]:
                waiters[got].append(proc)
            else:
                awaited[got] = 1
                waiters[got] = [proc]
    out = [np.frombuffer(c, np.float64) if big else np.array(c, np.float64) for c in (start, end, wait)]
    if n and out[1].min() == NOT_ISSUED:  # checked once, after the run: costs nothing while simulating
        raise Deadlock(program, streams, [None if e == NOT_ISSUED else e for e in end])
    return Trace(program, *out)
