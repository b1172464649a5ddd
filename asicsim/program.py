"""The Program: per-block task streams with explicit dependencies, as plain data.

A task runs on one *block* (a process that executes its tasks in order), may hold contended
*servers* (HBM, SRAM, links) for part of its time, and starts only after its dependencies end.
Every task has a smaller id than the tasks that depend on it, and each block runs its tasks in
id order, so a Program can never deadlock. Programs are saved and loaded as ``.npz`` files.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from enum import IntEnum
from pathlib import Path

import numpy as np


class Level(IntEnum):
    """Where a task's bytes go: the memory level it reads or writes."""

    NONE = 0
    HBM_READ = 1
    HBM_WRITE = 2
    SRAM_READ = 3
    SRAM_WRITE = 4
    ROM_READ = 5
    LINK = 6


class Category(IntEnum):
    """What limits a task's own time, uncontended."""

    COMPUTE = 0
    MEMORY = 1
    LINK = 2


@dataclass(frozen=True)
class BlockRef:
    """A block: its name, kind and chip; ``copies`` is how many identical blocks on identical
    chips it stands for (tensor-parallel ranks doing the same work), counted in totals."""

    name: str
    kind: str
    chip: int
    copies: int = 1


@dataclass(frozen=True)
class ServerRef:
    name: str
    kind: str
    gbps: float


@dataclass(frozen=True)
class OpRef:
    name: str
    layer: int
    kind: str
    step: int


def op_ref(name: str, layer: int, kind: str, step: int, _new=object.__new__) -> OpRef:
    """``OpRef(name, layer, kind, step)``, made without the frozen dataclass's per-field
    ``__setattr__`` (a compiler stamping layers makes tens of thousands of them)."""
    ref = _new(OpRef)
    ref.__dict__.update(name=name, layer=layer, kind=kind, step=step)
    return ref


@dataclass(frozen=True)
class StepRef:
    """One forward pass of the run: ``phase`` is 'prefill' or 'decode'. ``index`` is its place
    in the whole run (0 the prefill, ``j`` the j-th decode step); when decode is fast-forwarded
    only some steps are simulated, and ``Program.meta['decode_steps']`` says how many there are.
    ``lead_tasks``: where a step runs several micro-batches (sequences pipelined one after
    another), how many of its tasks, from its first, are its first micro-batch's (the *lead*,
    whose period fast-forward interpolates); None where the step is one micro-batch."""

    phase: str
    batch: int
    tokens: int
    context: int
    index: int | None = None
    lead_tasks: int | None = None


TASK_FIELDS = ("block", "op", "fixed_ns", "service_ns", "latency_ns", "flops", "nbytes", "level",
               "category", "dep_ptr", "dep_idx", "srv_ptr", "srv_idx", "srv_hold_ns")


@dataclass(frozen=True, eq=False)
class Program:
    """Tasks as columns (numpy arrays, one row per task), and the tables they index into.

    ``dep_ptr/dep_idx`` and ``srv_ptr/srv_idx/srv_hold_ns`` are CSR lists: task ``t`` depends on
    ``dep_idx[dep_ptr[t]:dep_ptr[t+1]]`` and holds server ``srv_idx[j]`` for ``srv_hold_ns[j]``.
    A task occupies its block for ``fixed_ns + service_ns`` (plus any wait for a server), and
    ends ``latency_ns`` after that.
    """

    blocks: tuple[BlockRef, ...]
    servers: tuple[ServerRef, ...]
    ops: tuple[OpRef, ...]
    steps: tuple[StepRef, ...]
    block: np.ndarray
    op: np.ndarray
    fixed_ns: np.ndarray
    service_ns: np.ndarray
    latency_ns: np.ndarray
    flops: np.ndarray
    nbytes: np.ndarray
    level: np.ndarray
    category: np.ndarray
    dep_ptr: np.ndarray
    dep_idx: np.ndarray
    srv_ptr: np.ndarray
    srv_idx: np.ndarray
    srv_hold_ns: np.ndarray
    meta: dict

    @property
    def n_tasks(self) -> int:
        return len(self.block)

    def deps(self, t: int) -> np.ndarray:
        return self.dep_idx[self.dep_ptr[t]:self.dep_ptr[t + 1]]

    def dependent_task(self) -> np.ndarray:
        """For each entry of ``dep_idx``, the task that depends on it."""
        return np.repeat(np.arange(self.n_tasks), np.diff(self.dep_ptr))

    def holding_task(self) -> np.ndarray:
        """For each entry of ``srv_idx``, the task that holds that server."""
        return np.repeat(np.arange(self.n_tasks), np.diff(self.srv_ptr))

    def task_copies(self) -> np.ndarray:
        """For each task, how many identical tasks it stands for (its block's ``copies``)."""
        return np.array([b.copies for b in self.blocks], dtype=np.float64)[self.block]

    def step_of_task(self) -> np.ndarray:
        """For each task, the index of its step (read-only; computed once: metrics, energy and
        traces all ask, and a large run has millions of ops to read it from)."""
        cached = self.__dict__.get("_step_of_task")
        if cached is None:
            dtype = np.int32 if len(self.steps) < 2**31 else np.int64  # 4 bytes a task
            cached = np.fromiter((o.step for o in self.ops), dtype, len(self.ops))[self.op]
            cached.flags.writeable = False
            self.__dict__["_step_of_task"] = cached  # a cache, not a field: the dataclass is frozen
        return cached

    def save(self, path: str | Path) -> None:
        tables = {"blocks": [asdict(b) for b in self.blocks], "servers": [asdict(s) for s in self.servers],
                  "ops": [asdict(o) for o in self.ops], "steps": [asdict(s) for s in self.steps],
                  "meta": self.meta}
        np.savez_compressed(path, tables=np.array(json.dumps(tables)),
                            **{f: getattr(self, f) for f in TASK_FIELDS})

    @classmethod
    def load(cls, path: str | Path) -> Program:
        with np.load(path) as z:
            tables = json.loads(str(z["tables"]))
            cols = {f: z[f] for f in TASK_FIELDS}
        return cls(blocks=tuple(BlockRef(**b) for b in tables["blocks"]),
                   servers=tuple(ServerRef(**s) for s in tables["servers"]),
                   ops=tuple(OpRef(**o) for o in tables["ops"]),
                   steps=tuple(StepRef(**s) for s in tables["steps"]), meta=tables["meta"], **cols)


_COLUMNS = ("block", "op", "fixed_ns", "service_ns", "latency_ns", "flops", "nbytes", "level", "category")

@dataclass(frozen=True)
class Recording:
    """Tasks recorded for replaying elsewhere, column by column: every column but ``op``, the
    dependencies as local indices (>= 0, within the recording) or external ones (-1 - k), and
    the servers held, each CSR list with offsets relative to the recording's start."""

    cols: tuple[list, ...]          # the _COLUMNS except ``op``
    dep_ptr: list[int]              # n + 1 offsets into ``deps``
    deps: list[int]
    srv_ptr: list[int]              # n + 1 offsets into ``srv`` and ``hold``
    srv: list[int]
    hold: list[float]

    def __len__(self) -> int:
        return len(self.cols[0])


@dataclass(frozen=True, eq=False)
class Span:
    """A stretch of tasks and the ops they belong to (a whole micro-batch of a step), recorded as
    numpy columns for stamping again: ``op`` relative to the span's first op, dependencies local
    (>= 0) or external (-1 - k, the k-th of the ``external`` tasks given at replay)."""

    ops: tuple[OpRef, ...]
    cols: dict
    dep_count: np.ndarray
    deps: np.ndarray
    srv_count: np.ndarray
    srv: np.ndarray
    hold: np.ndarray

    def __len__(self) -> int:
        return len(self.dep_count)

    @cached_property
    def external(self) -> tuple[np.ndarray, np.ndarray]:
        """Where ``deps`` names an external task, and which (its index in ``external``)."""
        at = np.flatnonzero(self.deps < 0)
        return at, -1 - self.deps[at]


_TYPES = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, np.float64, np.int8, np.int8)


class ProgramBuilder:
    """Appends tasks in dependency order and freezes them into a Program.

    Tasks are appended to Python lists (the *tail*) and moved into numpy chunks at step and
    micro-batch boundaries (``flush``), which keeps memory near the Program's own. ``record``/
    ``replay`` let a compiler emit an op once and stamp copies of its tasks wherever the same op
    recurs (every layer of every decode step); ``record_span``/``replay_span`` do the same for a
    whole micro-batch, as numpy blocks, where a step's micro-batches are alike.
    """

    def __init__(self) -> None:
        self.blocks: list[BlockRef] = []
        self.servers: list[ServerRef] = []
        self.ops: list[OpRef] = []
        self.steps: list[StepRef] = []
        self._chunks: list[tuple] = []   # (cols, dep_count, dep_idx, srv_count, srv_idx, srv_hold)
        self._starts: list[int] = []     # each chunk's first task
        self._base = 0                   # tasks in chunks
        self._new_tail()

    def _new_tail(self) -> None:
        self._cols: tuple[list, ...] = tuple([] for _ in _COLUMNS)
        self._dep_ptr: list[int] = [0]
        self._dep_idx: list[int] = []
        self._srv_ptr: list[int] = [0]
        self._srv_idx: list[int] = []
        self._srv_hold: list[float] = []

    @property
    def n_tasks(self) -> int:
        return self._base + len(self._cols[0])

    def flush(self) -> None:
        """Move the tail's tasks into a numpy chunk."""
        n = len(self._cols[0])
        if not n:
            return
        cols = {name: np.array(c, dtype=t) for name, c, t in zip(_COLUMNS, self._cols, _TYPES)}
        self._chunks.append((cols, np.diff(np.array(self._dep_ptr, np.int64)), np.array(self._dep_idx, np.int64),
                             np.diff(np.array(self._srv_ptr, np.int64)), np.array(self._srv_idx, np.int64),
                             np.array(self._srv_hold, np.float64)))
        self._starts.append(self._base)
        self._base += n
        self._new_tail()

    def add_block(self, name: str, kind: str, chip: int = 0, copies: int = 1) -> int:
        self.blocks.append(BlockRef(name, kind, chip, copies))
        return len(self.blocks) - 1

    def add_server(self, name: str, kind: str, gbps: float) -> int:
        self.servers.append(ServerRef(name, kind, gbps))
        return len(self.servers) - 1

    def add_step(self, step: StepRef) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def add_op(self, name: str, layer: int, kind: str, step: int) -> int:
        self.ops.append(OpRef(name, layer, kind, step))
        return len(self.ops) - 1

    def task(self, block: int, op: int, service_ns: float, deps: tuple[int, ...] | list[int] = (),
             *, fixed_ns: float = 0.0, latency_ns: float = 0.0, flops: float = 0.0, nbytes: float = 0.0,
             level: Level = Level.NONE, category: Category = Category.COMPUTE,
             servers: tuple[tuple[int, float], ...] = ()) -> int:
        """Append one task; returns its id. Every dependency must already exist."""
        tid = self.n_tasks
        for d in deps:
            if not 0 <= d < tid:
                raise ValueError(f"task {tid} depends on {d}, which is not an earlier task")
        for c, v in zip(self._cols, (block, op, fixed_ns, service_ns, latency_ns, flops, nbytes,
                                     int(level), int(category))):
            c.append(v)
        self._dep_idx.extend(deps)
        self._dep_ptr.append(len(self._dep_idx))
        for s, hold in servers:
            self._srv_idx.append(s)
            self._srv_hold.append(hold)
        self._srv_ptr.append(len(self._srv_idx))
        return tid

    def record(self, first: int, external: list[int]) -> Recording:
        """The tasks from ``first`` on (all in the tail), as a Recording that ``replay`` can stamp again."""
        ext = {d: -1 - k for k, d in enumerate(external)}
        local = first - self._base
        if local < 0:
            raise ValueError("record() reaches back past a flush")
        d0, s0 = self._dep_ptr[local], self._srv_ptr[local]
        deps = [d - first if d >= first else ext[d] for d in self._dep_idx[d0:]]
        cols = tuple(c[local:] for i, c in enumerate(self._cols) if i != 1)
        return Recording(cols, [p - d0 for p in self._dep_ptr[local:]], deps,
                         [p - s0 for p in self._srv_ptr[local:]], self._srv_idx[s0:], self._srv_hold[s0:])

    def replay(self, rec: Recording, op: int, external: list[int]) -> int:
        """Append copies of recorded tasks for ``op``; returns the id of the last one."""
        base, n = self.n_tasks, len(rec)
        cols = [c for i, c in enumerate(self._cols) if i != 1]
        for col, values in zip(cols, rec.cols):
            col.extend(values)
        self._cols[1].extend([op] * n)
        d0, s0 = len(self._dep_idx), len(self._srv_idx)
        self._dep_idx.extend([base + d if d >= 0 else external[-1 - d] for d in rec.deps])
        self._dep_ptr.extend([d0 + p for p in rec.dep_ptr[1:]])
        self._srv_idx.extend(rec.srv)
        self._srv_hold.extend(rec.hold)
        self._srv_ptr.extend([s0 + p for p in rec.srv_ptr[1:]])
        return base + n - 1

    def mark(self) -> tuple[int, int]:
        """Where a span starts (its first task and first op); flushes the tail first."""
        self.flush()
        return self.n_tasks, len(self.ops)

    def record_span(self, mark: tuple[int, int], external: list[int]) -> Span | None:
        """The tasks and ops since ``mark``, or None where a task depends on an earlier task
        that is not among ``external`` (a span that is not self-contained cannot be stamped)."""
        self.flush()
        first, first_op = mark
        if self._base == first:
            return None
        at = bisect.bisect_left(self._starts, first)
        if at == len(self._starts) or self._starts[at] != first:
            return None  # the mark is not at a chunk boundary
        chunks = self._chunks[at:]
        if len(chunks) == 1:
            cols, dep_count, deps, srv_count, srv, hold = chunks[0]
        else:
            cols = {name: np.concatenate([c[0][name] for c in chunks]) for name in _COLUMNS}
            dep_count, deps, srv_count, srv, hold = (np.concatenate([c[i] for c in chunks]) for i in range(1, 6))
        ext = {d: -1 - k for k, d in enumerate(external)}
        outside = deps < first
        if outside.any():
            try:
                mapped = np.array([ext[d] for d in deps[outside].tolist()], np.int64)
            except KeyError:
                return None
        rel = deps - first
        if outside.any():
            rel[outside] = mapped
        span_cols = dict(cols)
        span_cols["op"] = cols["op"] - first_op
        return Span(tuple(self.ops[first_op:]), span_cols, dep_count, rel, srv_count, srv, hold)

    def replay_span(self, span: Span, external: list[int], ops: list[OpRef] | None = None,
                    blocks: np.ndarray | None = None, servers: np.ndarray | None = None) -> int:
        """Append a copy of ``span`` whose external dependencies are ``external``; returns the id
        of its first task. ``ops`` replaces the span's own ops (the same ops of another layer),
        and ``blocks``/``servers``, lookup arrays indexed by the span's ids, move its tasks onto
        other blocks and servers (another stage's)."""
        self.flush()
        base, op_base = self.n_tasks, len(self.ops)
        self.ops.extend(span.ops if ops is None else ops)
        cols = dict(span.cols)
        cols["op"] = span.cols["op"] + op_base
        if blocks is not None:
            cols["block"] = blocks[span.cols["block"]]
        deps = span.deps + base
        at, k = span.external
        if len(at):
            deps[at] = np.asarray(external, np.int64)[k]
        srv = span.srv if servers is None else servers[span.srv]
        self._chunks.append((cols, span.dep_count, deps, span.srv_count, srv, span.hold))
        self._starts.append(base)
        self._base += len(span)
        return base

    def replay_chain(self, span: Span, externals: np.ndarray, ops: list[OpRef],
                     blocks: list[np.ndarray | None] | None = None,
                     servers: list[np.ndarray | None] | None = None) -> int:
        """Append ``len(externals)`` copies of ``span`` one after another, as one numpy block:
        copy ``j``'s external dependencies are ``externals[j]`` (any task before it, a task of an
        earlier copy included) and ``blocks[j]``/``servers[j]`` (lookup arrays, or None to keep
        the span's ids) move it; ``ops`` are all the copies' ops, in order, ``len(span.ops)``
        a copy. The same tasks, bit for bit, as ``replay_span`` once a copy; returns the id of
        the first copy's first task (copy ``j`` starts ``j * len(span)`` after it)."""
        self.flush()
        copies, n, n_ops = len(externals), len(span), len(span.ops)
        base, op_base = self.n_tasks, len(self.ops)
        if len(ops) != copies * n_ops:
            raise ValueError(f"{len(ops)} ops for {copies} copies of a span of {n_ops}")
        self.ops.extend(ops)
        cols = {name: np.tile(c, copies) for name, c in span.cols.items()}
        cols["op"] += np.repeat(np.arange(copies, dtype=np.int64) * n_ops + op_base, n)
        if blocks is not None:
            cols["block"] = np.concatenate([span.cols["block"] if m is None else m[span.cols["block"]]
                                            for m in blocks])
        n_deps = len(span.deps)
        deps = np.tile(span.deps, copies) + np.repeat(np.arange(copies, dtype=np.int64) * n + base, n_deps)
        at, k = span.external
        if len(at):
            deps.reshape(copies, n_deps)[:, at] = np.asarray(externals, np.int64)[:, k]
        srv = (np.tile(span.srv, copies) if servers is None else
               np.concatenate([span.srv if m is None else m[span.srv] for m in servers]))
        self._chunks.append((cols, np.tile(span.dep_count, copies), deps, np.tile(span.srv_count, copies), srv,
                             np.tile(span.hold, copies)))
        self._starts.append(base)
        self._base += copies * n
        return base

    def build(self, meta: dict | None = None) -> Program:
        self.flush()
        chunks = self._chunks

        def cat(i, dtype):
            return np.concatenate([c[i] for c in chunks]) if chunks else np.zeros(0, dtype)

        cols = {name: (np.concatenate([c[0][name] for c in chunks]) if chunks else np.zeros(0, t))
                for name, t in zip(_COLUMNS, _TYPES)}
        dep_ptr = np.concatenate([[0], np.cumsum(cat(1, np.int64))]).astype(np.int64)
        srv_ptr = np.concatenate([[0], np.cumsum(cat(3, np.int64))]).astype(np.int64)
        return Program(
            blocks=tuple(self.blocks), servers=tuple(self.servers), ops=tuple(self.ops), steps=tuple(self.steps),
            dep_ptr=dep_ptr, dep_idx=cat(2, np.int64), srv_ptr=srv_ptr, srv_idx=cat(4, np.int64),
            srv_hold_ns=cat(5, np.float64), meta=meta or {}, **cols)
