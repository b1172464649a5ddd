"""Lowering: turn each step's op graph into tasks on a chip's blocks.

A *stage* is the set of blocks that runs a layer: one per layer on a spatial chip, a single
stage for everything on a temporal one. Data is either *streamed* (brought on chip in chunks by
the copy engine, up to four chunks ahead of the compute that uses them) or read *in place*
by the task that computes with it (ROM beside the arrays, or SRAM held as a contended server).
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim import cost
from asicsim.program import Category, Level, ProgramBuilder
from asicsim.dtypes import DType
from asicsim.hardware.spec import MatmulSpec, VectorSpec
from asicsim.model.ops import Op, OpKind

CHUNK_BYTES = 4e6   # a streamed transfer is split into chunks of about this size ...
MAX_CHUNKS = 8      # ... but never more than this many per op (the event budget)
BUFFERS = 4         # a 4-deep load pipeline: chunk i may load once chunk i-4's compute is done
                    # (at most 4 × 4 MB staged on chip; deep enough that loads never wait for buffers)


@dataclass(frozen=True)
class Store:
    """Where one kind of data lives. ``streamed`` data goes through ``dma`` and ``server`` (HBM);
    in-place data is read by the computing task, holding ``server`` (SRAM) if there is one."""

    streamed: bool
    read: Level
    write: Level
    server: int | None = None
    gbps: float = 0.0
    latency_ns: float = 0.0
    path: tuple[tuple[int, float], ...] = ()  # on-chip links a streamed transfer crosses: (server, GB/s)


@dataclass(frozen=True)
class Stage:
    """The blocks (program indices) and specs that run one layer's ops."""

    matmul: int
    matmul_spec: MatmulSpec
    attn: int
    attn_spec: MatmulSpec
    vector: int
    vector_spec: VectorSpec
    dma: int | None
    weights: Store
    kv: Store


def split(total: float, parts: list[int]) -> list[float]:
    """Divide ``total`` in proportion to ``parts``; the pieces sum back to ``total`` exactly."""
    whole = sum(parts)
    out = [float(int(total * p // whole)) for p in parts[:-1]]
    out.append(total - sum(out))
    return out


def share(total_ns: float, parts: list[int]) -> list[float]:
    """An op's time spread over its chunks in proportion to their size. The op is costed whole,
    so tile rounds quantise once per op (as a kernel's waves do), not once per chunk."""
    whole = sum(parts)
    return [total_ns * p / whole for p in parts]


def even(n: int, chunks: int) -> list[int]:
    base, extra = divmod(n, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def n_chunks(nbytes: float, width: int) -> int:
    return max(1, min(MAX_CHUNKS, width, int(-(-nbytes // CHUNK_BYTES))))


class Lowerer:
    """Emits one op's tasks into a ProgramBuilder; returns the task whose end is the op's output."""

    def __init__(self, b: ProgramBuilder, dtype: DType, op_overhead_ns: float):
        self.b, self.dtype, self.overhead = b, dtype, op_overhead_ns
        self._memo: dict[tuple, list] = {}

    def op(self, op: Op, op_id: int, st: Stage, deps: list[int], fused: bool = False,
           adapter: bool = False, extra_ns: float = 0.0) -> int:
        """Emit ``op``'s tasks on stage ``st`` after ``deps``; an op seen before is replayed.
        A ``fused`` op runs as the previous op's epilogue and pays no per-op overhead; an
        ``adapter`` op is a LoRA product, placed by :meth:`_adapter`; ``extra_ns`` is paid before
        the op's work on top of its own overhead (a step's launch, on its first op)."""
        key = (op, id(st), len(deps), fused, adapter, extra_ns)
        memo = self._memo.get(key)
        if memo is not None:
            rows, out_offset = memo
            return self.b.replay(rows, op_id, deps) - len(rows) + 1 + out_offset
        first = self.b.n_tasks
        overhead = self.overhead
        self.overhead = (0.0 if fused else overhead) + extra_ns
        try:
            out = self._adapter(op, op_id, st, deps) if adapter else self._emit(op, op_id, st, deps)
        finally:
            self.overhead = overhead
        self._memo[key] = (self.b.record(first, deps), out - first)
        return out

    def _emit(self, op: Op, op_id: int, st: Stage, deps: list[int]) -> int:
        match op.kind:
            case OpKind.MATMUL:
                return self._matmul(op, op_id, st, deps)
            case OpKind.ATTENTION:
                return self._attention(op, op_id, st, deps)
            case OpKind.VECTOR | OpKind.EMBED:
                return self._vector(op, op_id, st, deps)
        raise TypeError(f"no lowering for {op.kind}")

    # -- pieces -----------------------------------------------------------------------------------

    def _load(self, st: Stage, store: Store, op_id: int, nbytes: float, deps: list[int], fixed: float,
              write: bool = False) -> int:
        holds = ((store.server, cost.transfer_ns(nbytes, store.gbps)),
                 *((s, cost.transfer_ns(nbytes, gbps)) for s, gbps in store.path))
        slowest = max(h for _, h in holds)  # a transfer streams through every hop at the slowest rate
        return self.b.task(st.dma, op_id, slowest, deps, fixed_ns=fixed, latency_ns=store.latency_ns,
                           nbytes=nbytes, level=store.write if write else store.read,
                           category=Category.MEMORY, servers=holds)

    def _in_place(self, block: int, op_id: int, compute_ns: float, store: Store, nbytes: float,
                  deps: list[int], fixed: float, flops: float = 0.0, write: bool = False) -> int:
        """A compute task that reads (or writes) ``nbytes`` of in-place data as it works."""
        hold = cost.transfer_ns(nbytes, store.gbps) if store.server is not None and nbytes else 0.0
        servers = ((store.server, hold),) if hold else ()
        level = (store.write if write else store.read) if nbytes else Level.NONE
        category = Category.MEMORY if hold > compute_ns else Category.COMPUTE
        return self.b.task(block, op_id, max(compute_ns, hold), deps, fixed_ns=fixed, flops=flops,
                           nbytes=nbytes, level=level, category=category, servers=servers)

    def _streamed(self, st: Stage, op_id: int, store: Store, block: int, compute: list[float],
                  sizes: list[float], flops: list[float], deps: list[int], fixed: float) -> int:
        """Chunk i loads, then computes; its load waits for chunk i-BUFFERS's compute to free a buffer."""
        comps: list[int] = []
        for i, ns in enumerate(compute):
            load_deps = deps if i == 0 else ([comps[i - BUFFERS]] if i >= BUFFERS else [])
            load = self._load(st, store, op_id, sizes[i], load_deps, fixed if i == 0 else 0.0)
            comps.append(self.b.task(block, op_id, ns, [load] + (deps if i == 0 else []), flops=flops[i]))
        return comps[-1]

    # -- op kinds ---------------------------------------------------------------------------------

    def _matmul(self, op: Op, op_id: int, st: Stage, deps: list[int]) -> int:
        spec, ws = st.matmul_spec, st.weights
        # weights hardwired in ROM sit beside the MACs in their fabricated format: nothing to widen
        weights = 0.0 if ws.read is Level.ROM_READ else op.weight_bytes / cost.weight_bytes_per_element(self.dtype)
        kernel_ns = max(cost.matmul_ns(spec, op.m, op.k, op.n, op.groups, self.dtype),
                        cost.dequant_ns(spec, st.vector_spec, weights, self.dtype))
        if not ws.streamed:
            return self._in_place(st.matmul, op_id, kernel_ns, ws, op.weight_bytes, deps, self.overhead, op.flops)
        cols = even(op.n, n_chunks(op.weight_bytes, op.n))
        compute = share(kernel_ns, cols)
        return self._streamed(st, op_id, ws, st.matmul, compute, split(op.weight_bytes, cols),
                              split(op.flops, cols), deps, self.overhead)

    def _adapter(self, op: Op, op_id: int, st: Stage, deps: list[int]) -> int:
        """A LoRA product. A hardwired chip's weight arrays cannot take new weights, so it runs on
        the programmable array, reading its weights from the KV SRAM (holding it as a server);
        elsewhere it is a weight matmul like any other (streamed from HBM, or read from SRAM)."""
        if st.weights.read is not Level.ROM_READ:
            return self._matmul(op, op_id, st, deps)
        ns = cost.matmul_ns(st.attn_spec, op.m, op.k, op.n, op.groups, self.dtype)
        return self._in_place(st.attn, op_id, ns, st.kv, op.weight_bytes, deps, self.overhead, op.flops)

    def _attention(self, op: Op, op_id: int, st: Stage, deps: list[int]) -> int:
        kv = st.kv
        fixed = self.overhead
        if op.kv_write_bytes:  # the new tokens' K and V go to the cache (off the critical path)
            if kv.streamed:
                self._load(st, kv, op_id, op.kv_write_bytes, deps, fixed, write=True)
            else:
                self._in_place(st.vector, op_id, 0.0, kv, op.kv_write_bytes, deps, fixed, write=True)
            fixed = 0.0
        if op.weight_bytes:  # per-head parameters (attention sinks): fetched before the scores
            ws = st.weights
            if ws.streamed:
                deps = deps + [self._load(st, ws, op_id, op.weight_bytes, deps, fixed)]
            else:
                deps = [self._in_place(st.vector, op_id, 0.0, ws, op.weight_bytes, deps, fixed)]
            fixed = 0.0
        keys = even(op.n, n_chunks(op.kv_read_bytes, op.n)) if kv.streamed and op.kv_read_bytes else [op.n]
        # QK^T and PV are each m×k by k×keys (cost.attention_ns: a flash kernel where the chip has one).
        compute = share(cost.attention_ns(st.attn_spec, op.m, op.k, op.n, op.groups, self.dtype), keys)
        if kv.streamed and op.kv_read_bytes:
            last = self._streamed(st, op_id, kv, st.attn, compute, split(op.kv_read_bytes, keys),
                                  split(op.flops, keys), deps, fixed)
        else:
            last = self._in_place(st.attn, op_id, compute[0], kv, op.kv_read_bytes, deps, fixed, op.flops)
        flash = st.attn_spec.kernel is not None and st.attn_spec.kernel.exp_per_cycle is not None
        softmax = 0.0 if flash else cost.vector_ns(st.vector_spec, op.vector_ops)  # a flash kernel's is inside
        return self.b.task(st.vector, op_id, softmax, [last])

    def _vector(self, op: Op, op_id: int, st: Stage, deps: list[int]) -> int:
        """Elementwise work; it may read weights (norms) and read and write back a recurrent
        state (a scan's or a convolution's), which lives where the KV cache does."""
        ns = cost.vector_ns(st.vector_spec, op.vector_ops or op.act_bytes / 2)
        ws, kv, fixed = st.weights, st.kv, self.overhead
        first = list(deps)
        if op.weight_bytes and ws.streamed:
            first.append(self._load(st, ws, op_id, op.weight_bytes, deps, fixed))
            fixed = 0.0
        if op.kv_read_bytes and kv.streamed:
            first.append(self._load(st, kv, op_id, op.kv_read_bytes, deps, fixed))
            fixed = 0.0
        if first != deps:  # inputs arrive by copy: compute once they have
            out = self.b.task(st.vector, op_id, ns, first, fixed_ns=fixed)
        else:
            in_place = op.weight_bytes if not ws.streamed else 0.0
            out = self._in_place(st.vector, op_id, ns, ws, in_place, deps, fixed)
        if op.kv_read_bytes and not kv.streamed:
            out = self._in_place(st.vector, op_id, 0.0, kv, op.kv_read_bytes, [out], 0.0)
        if op.kv_write_bytes:  # the updated state goes back; nothing downstream waits for it
            if kv.streamed:
                self._load(st, kv, op_id, op.kv_write_bytes, [out], 0.0, write=True)
            else:
                self._in_place(st.vector, op_id, 0.0, kv, op.kv_write_bytes, [out], 0.0, write=True)
        return out


def fuses_into_previous(op: Op, previous: list[Op]) -> bool:
    """An elementwise op with no weights right after a matmul or attention runs as its epilogue
    (RoPE after the QKV projection, SwiGLU after gate/up), as inference kernels fuse them."""
    return (op.kind is OpKind.VECTOR and not op.weight_bytes and len(previous) == 1
            and previous[0].kind in (OpKind.MATMUL, OpKind.ATTENTION))
