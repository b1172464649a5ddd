"""Chip-to-chip transfers and collectives, decomposed into sends over the system's graph.

A *send* moves bytes from one chip to another along the route the topology gives. Every
directed link of the route is a contended server held for ``bytes / link GB/s``; the send
occupies a sender block (one per first link, so a chip drives its different links at once and
queues sends that share one) for the slowest link's time, and arrives after the route's latency.

Collectives are built from sends, step by step, so the engine simulates their contention and
pipelining rather than a formula:

- ring all-reduce: reduce-scatter then all-gather, ``2(n-1)`` steps of ``S/n`` around the ring;
- ring all-gather and reduce-scatter: ``n-1`` steps of ``S/n``; over point-to-point links half
  the data goes each way round; on a 2D torus or mesh the ring follows a Hamiltonian cycle;
- tree (recursive halving then doubling, ``n`` a power of two): ``2 log2 n`` exchanges with
  partners at halving distances, ``S/2, S/4 ...`` then back;
- in-switch reduction (NVLink SHARP) as NCCL's NVLS all-reduce runs it: every chip owns ``1/n``
  of the message; for each of its chunks the switch reads that chunk from every chip, reduces it,
  returns the sum to its owner (``multimem.ld_reduce``), and the owner writes it back through
  the switch, which multicasts it to every chip (``multimem.st``). So each chip's port carries
  ``(1 + 1/n)`` times the message each way, both ways at once, at NCCL's rate for NVLS (5/6 of
  that traffic bound: :data:`NVLS_RATE`), and every step of the pipeline (each channel's loop
  over one chunk per chip) pays the network's ``in_switch_step_ns`` (the step's handshake across
  the chips: a system-wide fence and a poll of every chip's step counter through the switch);
  the number of steps follows NCCL's chunk sizes (:func:`in_switch_steps`);
- one-shot: every chip sends its whole buffer to every other and sums what arrives (the
  fewest steps: what inference libraries use for the small all-reduces of decode);
- two-shot: a direct reduce-scatter (each chip sends every other chip the shard it sums) then a
  direct all-gather of the summed shards: two steps, and on a full mesh every link at once;
- all-to-all: every chip sends its share for each other chip directly, staggered.

``auto`` picks, per message, the algorithm whose uncontended closed form is least on this
network; the engine then simulates the one picked, contention and all.

Each chip pays the network's ``collective_overhead_ns`` once per collective, before its first
send (the launch and handshake of a communication kernel); an in-switch reduction pays the
network's ``in_switch_startup_ns`` on top, and ``auto`` weighs that against the other
algorithms' extra steps, so small messages go round the chips and large ones through the switch.
The reduction arithmetic itself (an add per element) is not charged: at link speeds it is hidden
under the transfers. Each collective returns, per rank, the tasks whose ends mark when
that rank has its result.
"""

from __future__ import annotations

import math

from asicsim import cost
from asicsim.hardware.spec import IN_SWITCH_DEFAULT_CHANNELS, Collective, Topology
from asicsim.hardware.system import Edge, System
from asicsim.program import Category, Level, Program, ProgramBuilder, StepRef

# NCCL's NVLS all-reduce on one node (NVIDIA/nccl v2.27.7-1, docs/sources.md C3/C4): its largest
# chunk (NCCL_NVLS_CHUNKSIZE's default, src/transport/nvls.cc), cut to 64, 32 and 16 KiB as the
# message shrinks (src/enqueue.cc calcCollChunking); and the rate NCCL's tuning model gives NVLS:
# its per-link traffic bound times 5/6 (src/graph/tuning.cc, the bus-to-algorithm bandwidth ratio).
NVLS_MAX_CHUNK_BYTES = 128 * 1024
NVLS_RATE = 5 / 6
IN_SWITCH_MAX_PIECES = 4  # emitted pieces (for contention); the time does not depend on it


def in_switch_steps(nbytes: float, n: int, channels: int) -> int:
    """Steps each channel of an NVLS all-reduce takes over ``nbytes`` on ``n`` chips: a step moves
    one chunk per chip on each of ``channels`` channels, the chunk cut by message size as NCCL's
    calcCollChunking cuts it (docs/sources.md C3)."""
    concurrent = channels * n
    chunk = NVLS_MAX_CHUNK_BYTES
    for factor, smaller in ((64, 64 * 1024), (8, 32 * 1024), (2, 16 * 1024)):
        if nbytes < factor * concurrent * chunk and chunk > smaller:
            chunk = smaller
    return max(1, math.ceil(nbytes / (concurrent * chunk)))


def in_switch_traffic(n: int) -> float:
    """Bytes each chip's port carries each way, per byte of the message, in an in-switch
    all-reduce on ``n`` chips: every chip's whole buffer is read by the switch (reductions of all
    ``n`` owners' chunks), plus the ``1/n`` it owns written back; and the other way its owned sum,
    plus the whole result multicast to it."""
    return 1 + 1 / n


class Fabric:
    """Emits sends and collectives over ``system``'s graph into a ProgramBuilder."""

    def __init__(self, b: ProgramBuilder, system: System, algorithm: Collective = Collective.AUTO):
        self.b, self.system = b, system
        self.algorithm = algorithm
        self.overhead_ns = system.network.collective_overhead_ns if system.network else 0.0
        self.in_switch_startup_ns = system.network.in_switch_startup_ns if system.network else 0.0
        self.in_switch_step_ns = system.network.in_switch_step_ns if system.network else 0.0
        self.in_switch_channels = (system.network.in_switch_channels if system.network else None) \
            or IN_SWITCH_DEFAULT_CHANNELS
        self._paths: dict[tuple, tuple] = {}
        self.lane = "p2p"
        self._memo: dict[tuple, tuple] = {}
        self._servers: dict[Edge, int] = {}
        self._senders: dict[tuple, int] = {}

    def pick(self, ranks: list[int], nbytes: float) -> Collective:
        """The all-reduce algorithm for this message: the configured one, or under ``auto`` the one
        whose closed form (uncontended, from the first route's bandwidth and latency) is least."""
        if self.algorithm is not Collective.AUTO:
            return self.algorithm
        n, net = len(ranks), self.system.network
        path = self.system.route(ranks[0], ranks[1])
        bw = min(self.system.link(e)["bandwidth_gbps"] for e in path)
        lat = self.system.route_latency_ns(path)
        direct = net is not None and net.topology is Topology.FULLY_CONNECTED
        both_ways = 2 if self._both_ways(n) else 1
        times = {Collective.RING: 2 * (n - 1) / n * nbytes / bw / both_ways + 2 * (n - 1) * lat,
                 Collective.ONE_SHOT: (1 if direct else n - 1) * nbytes / bw + lat,
                 Collective.TWO_SHOT: 2 * (1 if direct else n - 1) / n * nbytes / bw + 2 * lat}
        if n & (n - 1) == 0:
            times[Collective.TREE] = 2 * (n - 1) / n * nbytes / bw + 2 * math.log2(n) * lat
        if net is not None and net.in_switch_reduction:
            steps = in_switch_steps(nbytes, n, self.in_switch_channels)
            times[Collective.IN_SWITCH] = (in_switch_traffic(n) * nbytes / (bw * NVLS_RATE) + lat
                                           + self.in_switch_startup_ns + steps * self.in_switch_step_ns)
        return min(times, key=lambda k: (times[k], k.value))

    def _both_ways(self, n: int) -> bool:
        """Whether a ring of ``n`` runs both ways round: over point-to-point links, not a switch's
        ports (which a second ring would share)."""
        net = self.system.network
        return net is not None and net.topology is not Topology.SWITCH and n > 2

    def _server(self, e: Edge) -> int:
        if e not in self._servers:
            self._servers[e] = self.b.add_server(f"{e[0]}->{e[1]}", "link", self.system.link(e)["bandwidth_gbps"])
        return self._servers[e]

    def _sender(self, e: Edge, lane) -> int:
        """The block that issues sends over link ``e`` for ``lane``: a point-to-point stream, or
        one per group of ranks (as a communicator has its own stream). Sends in one lane queue
        in order; lanes share the link itself, a contended server."""
        key = (e, lane)
        if key not in self._senders:
            node = self.system.graph.nodes[e[0]]
            chip = node["index"] if node["kind"] == "chip" else self.system.graph.nodes[e[1]].get("index", 0)
            name = f"{e[0]}->{e[1]}" + ("" if lane == "p2p" else f" [{','.join(map(str, lane))}]")
            self._senders[key] = self.b.add_block(name, "link", chip)
        return self._senders[key]

    def _path(self, path: tuple[Edge, ...]) -> tuple[int, tuple[tuple[int, float], ...], float]:
        """(sender block, (server, GB/s) of each link, latency) of a route in the current lane,
        looked up once."""
        info = self._paths.get((path, self.lane))
        if info is None:
            links = tuple((self._server(e), self.system.link(e)["bandwidth_gbps"]) for e in path)
            info = self._paths[path, self.lane] = (self._sender(path[0], self.lane), links,
                                                   self.system.route_latency_ns(path))
        return info

    def _over(self, path: tuple[Edge, ...], nbytes: float, op_id: int, deps: list[int], start: bool = False,
              extra_start_ns: float = 0.0) -> int:
        """A transfer along ``path``; ``start`` pays the collective's start-up cost (and
        ``extra_start_ns``) first."""
        sender, links, latency = self._path(path)
        holds = tuple((server, cost.transfer_ns(nbytes, gbps)) for server, gbps in links)
        fixed_ns = self.overhead_ns + extra_start_ns if start else 0.0
        return self.b.task(sender, op_id, max(h for _, h in holds), deps,
                           fixed_ns=fixed_ns, latency_ns=latency, nbytes=nbytes,
                           level=Level.LINK, category=Category.LINK, servers=holds)

    def mirrored(self, kind: str, ranks: list[int], nbytes: float, op_id: int, deps: list[int]) -> list[list[int]]:
        """A collective whose ranks all start after the same ``deps`` (identical tensor-parallel
        ranks): emitted once per shape, then its recorded tasks are replayed."""
        key = (kind, tuple(ranks), nbytes, len(deps))
        memo = self._memo.get(key)
        if memo is not None:
            rows, outs = memo
            base = self.b.replay(rows, op_id, deps) - len(rows) + 1
            return [[base + t for t in ts] for ts in outs]
        first = self.b.n_tasks
        out = getattr(self, kind)(ranks, nbytes, op_id, [deps] * len(ranks))
        self._memo[key] = (self.b.record(first, deps), [[t - first for t in ts] for ts in out])
        return out

    def send(self, src: int, dst: int, nbytes: float, op_id: int, deps: list[int]) -> int:
        """Move ``nbytes`` from chip ``src`` to chip ``dst`` along their route, as a transfer of
        its own (it pays the start-up cost) in the point-to-point lane."""
        self.lane = "p2p"
        return self._over(self.system.route(src, dst), nbytes, op_id, deps, True)

    def _send(self, src: int, dst: int, nbytes: float, op_id: int, deps: list[int], start: bool) -> int:
        """A send within a collective (its lane already set); only a rank's first starts it."""
        return self._over(self.system.route(src, dst), nbytes, op_id, deps, start)

    # -- collectives ------------------------------------------------------------------------------

    def all_reduce(self, ranks: list[int], nbytes: float, op_id: int, deps: list[list[int]]) -> list[list[int]]:
        """Sum ``nbytes`` held by each of ``ranks`` onto all of them, by the fabric's algorithm."""
        self.lane = tuple(sorted(ranks))
        n = len(ranks)
        if n == 1:
            return [list(deps[0])]
        match self.pick(ranks, nbytes):
            case Collective.IN_SWITCH:
                return self._in_switch(ranks, nbytes, op_id, deps)
            case Collective.TREE if n & (n - 1) == 0:
                return self._halving_doubling(ranks, nbytes, op_id, deps)
            case Collective.ONE_SHOT:
                return self.all_to_all(ranks, nbytes, op_id, deps)
            case Collective.TWO_SHOT:
                shards = self.all_to_all(ranks, nbytes / n, op_id, deps)
                return self.all_to_all(ranks, nbytes / n, op_id, shards, start=False)
        return self._ring(ranks, nbytes / n, 2 * (n - 1), op_id, deps)

    def all_gather(self, ranks: list[int], nbytes: float, op_id: int, deps: list[list[int]]) -> list[list[int]]:
        """Each rank ends with all ``nbytes`` (each held ``nbytes / n`` of them): a ring."""
        self.lane = tuple(sorted(ranks))
        n = len(ranks)
        return [list(deps[0])] if n == 1 else self._ring(ranks, nbytes / n, n - 1, op_id, deps)

    def reduce_scatter(self, ranks: list[int], nbytes: float, op_id: int,
                       deps: list[list[int]]) -> list[list[int]]:
        """Each rank ends with the sum of its ``nbytes / n`` share: the same ring traffic as an
        all-gather, run the other way round the data (the sums are not charged)."""
        return self.all_gather(ranks, nbytes, op_id, deps)

    def all_to_all(self, ranks: list[int], bytes_per_pair: float, op_id: int,
                   deps: list[list[int]], start: bool = True) -> list[list[int]]:
        """Every rank sends ``bytes_per_pair`` to every other, staggered (rank i first to i+1);
        ``start: False`` continues a collective already started (two-shot's second half)."""
        self.lane = tuple(sorted(ranks))
        n = len(ranks)
        incoming: list[list[int]] = [[] for _ in ranks]
        for shift in range(1, n):
            for i, src in enumerate(ranks):
                j = (i + shift) % n
                incoming[j].append(self._send(src, ranks[j], bytes_per_pair, op_id, deps[i], start and shift == 1))
        return [inc or list(deps[i]) for i, inc in enumerate(incoming)]

    def _ring(self, ranks: list[int], piece: float, steps: int, op_id: int,
              deps: list[list[int]]) -> list[list[int]]:
        """``steps`` rounds around the ring. Where links are point to point (not a switch's
        ports), half the data goes each way round, so both directions of every link work."""
        order = ring_order(self.system, ranks)
        pos = {r: i for i, r in enumerate(ranks)}
        d = [deps[pos[r]] for r in order]
        if self._both_ways(len(ranks)):
            fwd = self._one_ring(order, piece / 2, steps, op_id, d)
            back = self._one_ring(order[::-1], piece / 2, steps, op_id, d[::-1])[::-1]
            done = [f + b for f, b in zip(fwd, back)]
        else:
            done = self._one_ring(order, piece, steps, op_id, d)
        by_rank = dict(zip(order, done))
        return [by_rank[r] for r in ranks]

    def _one_ring(self, ranks: list[int], piece: float, steps: int, op_id: int,
                  deps: list[list[int]]) -> list[list[int]]:
        """Every rank passes ``piece`` bytes to the next, ``steps`` times; a rank's send in a
        round waits for what it received in the round before."""
        n = len(ranks)
        sent: list[int | None] = [None] * n
        for _ in range(steps):
            prev = list(sent)
            for i in range(n):
                got = prev[(i - 1) % n]
                d = list(deps[i]) if got is None else [got]
                sent[i] = self._send(ranks[i], ranks[(i + 1) % n], piece, op_id, d, got is None)
        return [[sent[(i - 1) % n]] for i in range(n)]

    def _halving_doubling(self, ranks: list[int], nbytes: float, op_id: int,
                          deps: list[list[int]]) -> list[list[int]]:
        """Recursive halving (reduce-scatter) then doubling (all-gather): partners at distance
        n/2, n/4 ... 1 exchange half of what they hold, then the same distances in reverse."""
        n = len(ranks)
        rounds = int(math.log2(n))
        dists = [n >> (r + 1) for r in range(rounds)]
        sizes = [nbytes / 2 ** (r + 1) for r in range(rounds)]
        have: list[list[int]] = [list(d) for d in deps]
        for k, (dist, size) in enumerate(list(zip(dists, sizes)) + list(zip(reversed(dists), reversed(sizes)))):
            sent = [self._send(ranks[i], ranks[i ^ dist], size, op_id, have[i], k == 0) for i in range(n)]
            have = [[sent[i ^ dist]] for i in range(n)]
        return have

    def _in_switch(self, ranks: list[int], nbytes: float, op_id: int,
                   deps: list[list[int]]) -> list[list[int]]:
        """NVLS: each chip's port carries ``in_switch_traffic(n)`` times the message each way, both
        ways at once (one task holds the chip's up- and down-link), at ``NVLS_RATE`` of the link
        rate, and each pipeline step pays ``in_switch_step_ns``. Emitted in up to four pieces of
        whole steps, each waiting for every chip's piece before (the steps' handshake); the
        first pays the collective's start-ups, the last the route's latency. A rank has its
        result when every chip's last piece has landed (the sums come from every owner). Its
        bytes count once, ``wire``, though up- and down-link each carry them: a send through the
        switch counts its two hops once too (link bytes are what link energy is charged on)."""
        n = len(ranks)
        steps = in_switch_steps(nbytes, n, self.in_switch_channels)
        pieces = min(steps, IN_SWITCH_MAX_PIECES)
        wire = in_switch_traffic(n) * nbytes / pieces
        step_ns = self.in_switch_step_ns * steps / pieces
        ports = []  # each chip's sender, its up- and down-link held for one piece, and the route's latency
        for r in ranks:
            sender, links, latency = self._path(((f"chip{r}", "switch"), ("switch", f"chip{r}")))
            ports.append((sender, tuple((server, cost.transfer_ns(wire, gbps * NVLS_RATE)) for server, gbps in links),
                          latency))
        before: list[int] = []
        for c in range(pieces):
            fixed_ns = step_ns + (self.overhead_ns + self.in_switch_startup_ns if c == 0 else 0.0)
            before = [self.b.task(sender, op_id, max(h for _, h in holds), deps[i] if c == 0 else before,
                                  fixed_ns=fixed_ns, latency_ns=latency if c == pieces - 1 else 0.0,
                                  nbytes=wire, level=Level.LINK, category=Category.LINK, servers=holds)
                      for i, (sender, holds, latency) in enumerate(ports)]
        return [list(before) for _ in ranks]


def ring_order(system: System, ranks: list[int]) -> list[int]:
    """The order a ring visits ``ranks``: on a 2D torus or mesh holding exactly them (first
    dimension even), a Hamiltonian cycle, so that ring neighbours are grid neighbours; otherwise
    as given."""
    net = system.network
    if net is None or net.dims is None or len(net.dims) != 2 or sorted(ranks) != list(range(len(system.chips))):
        return list(ranks)
    rows, cols = net.dims
    if rows % 2 or cols < 2:
        return list(ranks)
    cycle = [c for c in range(cols)]                      # along row 0
    for r in range(1, rows):                              # snake over columns 1.. of the other rows
        span = range(cols - 1, 0, -1) if r % 2 else range(1, cols)
        cycle += [r * cols + c for c in span]
    cycle += [r * cols for r in range(rows - 1, 0, -1)]   # back up column 0
    return cycle


COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send")


def collective_program(system: System, kind: str, nbytes: float, ranks: list[int] | None = None,
                       algorithm: Collective | None = None) -> Program:
    """A Program of one collective alone on ``ranks`` (default: every chip), for experiments and
    checks against closed forms and measurements. ``nbytes`` is the buffer each rank holds
    (all-to-all: in total, ``nbytes / n`` to each rank; send: from the first rank to the last)."""
    ranks = list(range(len(system.chips))) if ranks is None else ranks
    b = ProgramBuilder()
    fabric = Fabric(b, system, algorithm or (system.network.collective if system.network else Collective.AUTO))
    op = b.add_op(kind, -1, "collective", b.add_step(StepRef("prefill", 1, 1, 0)))
    deps: list[list[int]] = [[] for _ in ranks]
    match kind:
        case "all_reduce":
            fabric.all_reduce(ranks, nbytes, op, deps)
        case "all_gather":
            fabric.all_gather(ranks, nbytes, op, deps)
        case "reduce_scatter":
            fabric.reduce_scatter(ranks, nbytes, op, deps)
        case "all_to_all":
            fabric.all_to_all(ranks, nbytes / len(ranks), op, deps)
        case "send":
            fabric.send(ranks[0], ranks[-1], nbytes, op, [])
        case _:
            raise ValueError(f"unknown collective {kind!r}; one of {', '.join(COLLECTIVES)}")
    return b.build({"system": system.name, "collective": kind, "bytes": nbytes, "algorithm": fabric.algorithm.value})
