"""Serving: a stream of requests through a model's replicas (one, several behind one queue, or a
prefill/decode pair), scheduled over simulated time.

What is simulated: requests arrive (Poisson at a rate, a closed loop of ``concurrency`` users, or
a CSV trace); a scheduler (``static``, ``continuous`` or ``chunked``) forms batches over simulated
time in a plain discrete-event loop; each iteration's duration is a step of the real pipeline
(compile → engine), so queueing, batching and the KV-cache limit are simulated, not estimated.
The KV cache is reserved in full at admission or held in pages with recompute or swap preemption
(``kv_cache``, ``preemption``). ``replicas`` copies of the system run as one coroutine each under a
time-ordered driver that dispatches every arrival to the replica with the fewest outstanding
requests. :func:`simulate_disaggregated` runs a prefill group and a decode group on two systems
(each its own chips and split), each with its own queue and KV budget, the KV cache crossing a
link between them.

Step costs: one ``predict(model, system, batch=B, prompt=C, generate=2)`` gives both the prefill
time of B prompts of C tokens (``ttft_ms``) and one decode step of B sequences at context C
(``tpot_ms``); each (B, C) is simulated once and memoised (:class:`StepCosts`).

What is approximated (say so when quoting numbers; docs/serving.md says more):

- Context is bucketed: C is rounded UP to a multiple of ``bucket`` tokens (default 256; 1 is
  exact). A batch of sequences of different lengths costs as B sequences at their mean context
  (attention reads the sum of the contexts; weights are read once), rounded up; a batch of
  prompts of different lengths prefills as B prompts of their mean length, rounded up (packed,
  not padded), for both schedulers alike.
- ``continuous``: an iteration that admits new requests runs their prefill as one step, then one
  decode step for the requests already running (real engines fuse the two into one mixed step).
- ``chunked``: a fused step costs its decode step plus each chunk's marginal batch-1 prefill
  (:meth:`StepCosts.chunk_ns`), summed, with no overlap between them: an upper bound.
- Paging: admission needs the pages of the first prefill only; preemption takes the newest
  admitted request (recomputed, or swapped over the host link at its peak rate, the replica
  waiting for each copy; host memory unbounded). Capacity is the memory that holds the KV cache (HBM, or the KV
  SRAM of an SRAM-only or hardwired chip) less the weights, over the chips of one replica.
- Static batching keeps a finished sequence's slot until the whole batch ends (the batch is
  decoded at its full size, as padded static batching does), but the request's latency ends at
  its own last token.
- Replicas: dispatch at arrival, final (no stealing, no migration); the dispatcher takes no time.
- Disaggregation: whole-prompt prefills (or chunks, without decodes), the link a FIFO server at
  its peak rate times the smaller group's chips, one per pair.
- No serving-stack overheads in ``asicsim serve`` (the ``bare`` runtime profile). :class:`StepCosts`
  takes a ``runtime`` profile (the request-load validation rows pass theirs): its per-step and
  per-sequence costs then enter every step (a step of B sequences pays ``step_ns + B ×
  sequence_step_ns``), and its ``request_ns`` once per prefill step, not per request. A profile
  may also shape the continuous scheduler's steps as its server forms them (:func:`step_rules`:
  one-prompt prefills padded to buckets, decode steps over every slot of the batch cap at a fixed
  cache span; ``jetstream-pytorch``), refused with the other schedulers and a paged cache.
"""

from __future__ import annotations

import csv
import heapq
import io
import math
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from asicsim.errors import InputError

# Default SLO: the MLPerf Inference Llama-2-70B server scenario's latency limits, TTFT <= 2 s and
# TPOT <= 200 ms (MLCommons LoadGen config: ``llama2-70b.Server.ttft_latency = 2000``,
# ``llama2-70b.Server.tpot_latency = 200``, https://github.com/mlcommons/inference/blob/master/loadgen/mlperf.conf).
SLO_TTFT_MS = 2000.0
SLO_TPOT_MS = 200.0
# Default cap on sequences in a batch when memory allows more: 256, vLLM's long-standing
# ``max_num_seqs`` default (https://docs.vllm.ai/en/latest/configuration/engine_args.html); a
# scheduling choice, not a hardware number.
MAX_BATCH_CAP = 256
DEFAULT_BUCKET = 256
# Chunked prefill's token budget per iteration and the KV page size: scheduling choices, not hardware
# numbers. 512 tokens is the smaller of the two budgets Sarathi-Serve evaluates (Agrawal et al., OSDI
# 2024, https://arxiv.org/abs/2403.02310); 16 tokens is vLLM's default KV block size (`--block-size`,
# https://docs.vllm.ai/en/latest/configuration/engine_args.html).
DEFAULT_CHUNK = 512
DEFAULT_PAGE_TOKENS = 16
# The link a disaggregated pair moves KV caches over, by default PCIe Gen5 x16 (the HC1 is a PCIe
# card, S13): 64 GB/s each way, half the 128 GB/s both ways of the H100 datasheet (docs/sources.md
# K1), taken at its peak; the latency is an assumption (K1).
KV_LINK_GBPS = 64.0
KV_LINK_LATENCY_NS = 2000.0
KV_LINK_SOURCE = ("PCIe Gen5 x16, 64 GB/s each way at peak (docs/sources.md K1); latency 2 us: an assumption "
                  "(K1)")


@dataclass(frozen=True)
class Request:
    """One request: ``arrival_ns`` after the start, ``prompt`` tokens in, ``output`` tokens out."""

    id: int
    arrival_ns: float
    prompt: int
    output: int


@dataclass(frozen=True)
class Workload:
    """The requests to serve. Open loop: ``requests`` carry their arrival times. Closed loop
    (``concurrency`` set): the first ``concurrency`` arrive at 0 and each finish sends the next,
    whose ``arrival_ns`` is ignored."""

    requests: tuple[Request, ...]
    concurrency: int | None = None
    source: str = "workload"


def _lengths(rng: np.random.Generator, n: int, prompt, output, lengths) -> list[tuple[int, int]]:
    if lengths is not None:
        pairs = [(int(p), int(o)) for p, o in lengths]
        if not pairs:
            raise InputError("lengths", None, "is empty: give at least one (prompt, output) pair")
        for p, o in pairs:
            if p < 1 or o < 1:
                raise InputError("lengths", None, f"({p}, {o}): prompt and output must be at least 1 token")
        idx = rng.integers(0, len(pairs), size=n)
        return [pairs[i] for i in idx]

    def draw(v, name):
        if isinstance(v, (tuple, list)):
            lo, hi = int(v[0]), int(v[1])
            if lo < 1 or hi < lo:
                raise InputError(name, None, f"range ({lo}, {hi}) must satisfy 1 <= low <= high")
            return rng.integers(lo, hi + 1, size=n)
        if int(v) < 1:
            raise InputError(name, None, f"must be at least 1 token, got {v}")
        return np.full(n, int(v))

    ps, os_ = draw(prompt, "--prompt"), draw(output, "--generate")
    return list(zip(ps.tolist(), os_.tolist()))


def poisson(rate: float, n: int, *, prompt=512, output=128, lengths=None, seed: int = 0,
            burstiness: float = 1.0) -> Workload:
    """``n`` requests arriving as a Poisson process of ``rate`` requests/s. Lengths: fixed
    ``prompt``/``output``, uniform integer ranges ``(low, high)``, or drawn from ``lengths``.
    ``burstiness`` is the coefficient of variation of the gaps between arrivals: 1 is Poisson;
    above 1 the gaps are gamma-distributed with shape 1/cv², the same mean rate in bursts."""
    _check_count(n)
    if not rate > 0 or not math.isfinite(rate):
        raise InputError("--rate", None, f"must be a positive number of requests per second, got {rate}")
    if not 0 < burstiness <= 100 or not math.isfinite(burstiness):
        raise InputError("--burstiness", None, f"is the gaps' coefficient of variation: more than 0 and at most "
                         f"100 (1 is Poisson), got {burstiness}")
    rng = np.random.default_rng(seed)
    if burstiness == 1.0:
        gaps = rng.exponential(1e9 / rate, size=n)
    else:
        shape = 1.0 / burstiness ** 2
        gaps = rng.gamma(shape, 1e9 / rate / shape, size=n)
    arrivals = np.cumsum(gaps) - gaps[0]  # the first request arrives at 0
    pairs = _lengths(rng, n, prompt, output, lengths)
    return Workload(tuple(Request(i, float(a), p, o) for i, (a, (p, o)) in enumerate(zip(arrivals, pairs))),
                    source="--prompt/--generate")


def closed_loop(concurrency: int, n: int, *, prompt=512, output=128, lengths=None, seed: int = 0) -> Workload:
    """``n`` requests from ``concurrency`` users, each sending the next when its last finishes."""
    _check_count(n)
    if concurrency < 1:
        raise InputError("--concurrency", None, f"must be at least 1, got {concurrency}")
    rng = np.random.default_rng(seed)
    pairs = _lengths(rng, n, prompt, output, lengths)
    return Workload(tuple(Request(i, 0.0, p, o) for i, (p, o) in enumerate(pairs)), concurrency=concurrency,
                    source="--prompt/--generate")


def _check_count(n: int) -> None:
    if n < 1:
        raise InputError("--requests", None, f"must be at least 1, got {n}")


def load_trace(path: str | Path) -> Workload:
    """Requests from a CSV file of ``arrival_s,prompt,output`` rows (a header row of those names
    is optional); every bad row is an InputError naming the file, the line and the field."""
    from asicsim.safeio import read_text

    path = Path(path)
    text = read_text(path)
    rows = []
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if not rows and line_no == 1 and [c.strip() for c in row] == ["arrival_s", "prompt", "output"]:
            continue
        if len(row) != 3:
            raise InputError(str(path), f"line {line_no}",
                             f"has {len(row)} fields; each row is arrival_s,prompt,output")
        try:
            arrival = float(row[0])
        except ValueError:
            raise InputError(str(path), f"line {line_no}, arrival_s",
                             f"{row[0].strip()!r} is not a number of seconds") from None
        if not math.isfinite(arrival) or arrival < 0:
            raise InputError(str(path), f"line {line_no}, arrival_s", f"must be a finite time >= 0, got {row[0].strip()}")
        lens = []
        for name, cell in (("prompt", row[1]), ("output", row[2])):
            try:
                v = int(cell)
            except ValueError:
                raise InputError(str(path), f"line {line_no}, {name}",
                                 f"{cell.strip()!r} is not a whole number of tokens") from None
            if v < 1:
                raise InputError(str(path), f"line {line_no}, {name}", f"must be at least 1 token, got {v}")
            lens.append(v)
        rows.append((arrival, lens[0], lens[1]))
    if not rows:
        raise InputError(str(path), None, "holds no requests: expected rows of arrival_s,prompt,output")
    rows.sort(key=lambda r: r[0])  # stable: ties keep file order
    return Workload(tuple(Request(i, a * 1e9, p, o) for i, (a, p, o) in enumerate(rows)), source=str(path))


class StepCosts:
    """Step durations from the real pipeline, memoised per (batch, context bucket)."""

    def __init__(self, model, system, *, bucket: int = DEFAULT_BUCKET, dtype: str = "bf16",
                 layout: dict | None = None, runtime=None, kv_dtype: str | None = None):
        if bucket < 1:
            raise InputError("--bucket", None, f"must be at least 1 token, got {bucket}")
        self.model, self.system, self.bucket, self.dtype = model, system, bucket, dtype
        self.kv_dtype = kv_dtype  # the KV cache's format (None: the dtype's default)
        self.runtime = runtime  # the serving stack's profile (None: bare), passed to every predict run
        self.layout = dict(layout or {})  # tp/pp/ep of the replica's split (predict's keywords)
        self.cache: dict[tuple[int, int], tuple[float, float]] = {}

    def rounded(self, context: float) -> int:
        return int(math.ceil(context / self.bucket) * self.bucket)

    def _costs(self, batch: int, context: float) -> tuple[float, float]:
        key = (batch, self.rounded(context))
        hit = self.cache.get(key)
        if hit is None:
            from asicsim.api import predict

            # the context rounded up to the bucket (and the run's two generated tokens) can overfill a
            # small KV memory (an SRAM) that the batch itself fits: then cost the shape at its own
            # context, or two tokens less (what the run's two generated tokens add back)
            exact = int(math.ceil(context))
            tries = list(dict.fromkeys(c for c in (key[1], exact, exact - 2) if c >= 1))
            for i, c in enumerate(tries):
                try:
                    m = predict(self.model, self.system, batch=batch, prompt=c, generate=2, dtype=self.dtype,
                                kv_dtype=self.kv_dtype, runtime=self.runtime, **self.layout).metrics
                    break
                except InputError:
                    if i == len(tries) - 1:
                        raise
            hit = self.cache[key] = (m.ttft_ms * 1e6, m.tpot_ms * 1e6)
        return hit

    def prefill_ns(self, batch: int, mean_prompt: float) -> float:
        """Prefill of ``batch`` prompts of ``mean_prompt`` tokens (rounded up to the bucket)."""
        return self._costs(batch, mean_prompt)[0]

    def decode_ns(self, batch: int, mean_context: float) -> float:
        """One decode step of ``batch`` sequences whose KV holds ``mean_context`` tokens."""
        return self._costs(batch, mean_context)[1]

    def chunk_ns(self, done: int, tokens: int) -> float:
        """The marginal cost of prefilling ``tokens`` more tokens of a prompt whose first ``done``
        are already in the KV cache: the batch-1 prefill of ``done + tokens`` tokens less that of
        ``done`` (of nothing when ``done`` is 0). A prompt's chunks therefore sum to its whole
        batch-1 prefill: the differences telescope, bucketing included."""
        whole = self._costs(1, done + tokens)[0]
        return whole - self._costs(1, done)[0] if done > 0 else whole


VARIABLE_CONTEXTS = (64, 256, 1024, 2048)  # context anchors for rows of variable lengths (<= 2,048 tokens)


def _anchors_around(x: float, anchors: set[int]) -> tuple[int, int]:
    """The anchors lo <= x <= hi (lo == hi on an anchor; below the least or above the greatest,
    the two nearest)."""
    grid = sorted(anchors)
    if len(grid) == 1:
        return grid[0], grid[0]
    below = [g for g in grid if g <= x]
    above = [g for g in grid if g >= x]
    if not below:
        return grid[0], grid[1]
    if not above:
        return grid[-2], grid[-1]
    return below[-1], above[0]


class GridCosts(StepCosts):
    """Step costs interpolated linearly over simulated (batch, context) corners: ``batches``
    (1 and each row's batch cap) by ``contexts`` (a fixed-length row's prompt and prompt +
    output; 64, 256, 1,024 and 2,048 for variable lengths). ``corners`` counts the ``predict``
    runs made."""

    def __init__(self, model, system, *, dtype: str = "bf16", layout: dict | None = None, runtime=None,
                 kv_dtype: str | None = None):
        super().__init__(model, system, bucket=1, dtype=dtype, layout=layout, runtime=runtime, kv_dtype=kv_dtype)
        self.batches: set[int] = {1}
        self.contexts: set[int] = set()
        self.points: dict[tuple[int, int], tuple[float, float] | None] = {}
        self.memo: dict[tuple, float] = {}  # interpolated (which, batch, context) -> ns

    def _point(self, batch: int, ctx: int, which: int) -> float | None:
        key = (batch, ctx)
        if key not in self.points:
            try:
                self.points[key] = StepCosts._costs(self, batch, ctx)
            except InputError:  # this corner's KV cache does not fit
                self.points[key] = None
        hit = self.points[key]
        return None if hit is None else hit[which]

    def _along(self, x: float, anchors: set[int], value) -> float | None:
        """``value(anchor)`` interpolated at x; an upper anchor that does not fit is halved
        until it does (or the line through the two anchors below is extended)."""
        lo, hi = _anchors_around(x, anchors)
        f_lo = value(lo)
        if f_lo is None:
            below = [g for g in sorted(anchors) if g < lo]
            if not below or value(below[-1]) is None:
                return None
            lo, f_lo = below[-1], value(below[-1])
        if hi == lo:
            return f_lo
        f_hi = value(hi)
        while f_hi is None and hi // 2 > lo:
            hi //= 2
            f_hi = value(hi)
        if f_hi is None:
            below = [g for g in sorted(anchors) if g < lo]
            if not below:
                return f_lo
            f_below = value(below[-1])
            return f_lo if f_below is None else _line(x, below[-1], f_below, lo, f_lo)
        return _line(x, lo, f_lo, hi, f_hi)

    def _interpolated(self, batch: int, context: float, which: int) -> float:
        key = (which, batch, context)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        out = self._along(context, self.contexts,
                          lambda c: self._along(batch, self.batches, lambda b: self._point(b, c, which)))
        if out is None:
            raise InputError(str(self.system.name), None, f"no simulated corner fits batch {batch} at context "
                             f"{context:.0f}")
        self.memo[key] = out
        return out

    def prefill_ns(self, batch: int, mean_prompt: float) -> float:
        return self._interpolated(batch, mean_prompt, 0)

    def decode_ns(self, batch: int, mean_context: float) -> float:
        return self._interpolated(batch, mean_context, 1)

    @property
    def corners(self) -> int:
        return len(self.points)


def _line(x: float, x0: float, f0: float, x1: float, f1: float) -> float:
    """The line through (x0, f0) and (x1, f1) at x (a step time, never negative)."""
    return max(f0 + (x - x0) / (x1 - x0) * (f1 - f0), 0.0)


WARM_UP = 0.25  # the share of a truncated run's window left out as warm-up


def steady_throughput(result) -> float:
    """Output tokens per second in a truncated run's steady state: from a quarter of the way to
    the last admission until it (after the warm-up from an empty system, before the batch
    drains; a benchmark of many more requests spends a much smaller share of its time in
    either). Tokens: each decode step's sequences for steps inside the window, and the first
    tokens that arrive in it."""
    recs = result.records
    end_ns = max(r["arrival_ms"] + r["queue_ms"] for r in recs) * 1e6
    start_ns = WARM_UP * end_ns
    if end_ns <= start_ns:
        return result.metrics["throughput_tokens_per_s"]
    decoded = sum(batch for t0, dt, batch, _ in result.steps if t0 >= start_ns and t0 + dt <= end_ns)
    first = sum(1 for r in recs if start_ns <= (r["arrival_ms"] + r["ttft_ms"]) * 1e6 <= end_ns)
    return (decoded + first) / ((end_ns - start_ns) / 1e9)


@dataclass
class _Live:
    req: Request
    arrival_ns: float
    admitted_ns: float = math.nan
    first_ns: float = math.nan
    finish_ns: float = math.nan
    generated: int = 0
    target: int = 0  # tokens the current admission prefills: the prompt, plus what was generated before a preemption
    kv: int = 0  # tokens whose KV is in the cache
    held: float = 0.0  # KV bytes held
    preemptions: int = 0
    last_ns: float = math.nan  # when its latest token came
    max_gap_ns: float = 0.0  # the longest wait between two of its tokens
    swapped: bool = False  # preempted by swap: its KV pages are in host memory
    replica: int = 0  # the replica it was dispatched to

    def first(self, now: float) -> None:
        """The token a prefill ends with, at ``now``: its first, or the first after a recompute."""
        self.generated += 1
        if math.isnan(self.first_ns):
            self.first_ns = now
        else:
            self.max_gap_ns = max(self.max_gap_ns, now - self.last_ns)
        self.last_ns = now

    def token(self, now: float) -> None:
        """A decode step's token at ``now``: one more token of KV, and the gap since the last."""
        self.generated += 1
        self.kv += 1
        self.max_gap_ns = max(self.max_gap_ns, now - self.last_ns)
        self.last_ns = now


@dataclass(frozen=True)
class KVBudget:
    """Bytes free for the KV cache in one replica and what each request reserves there."""

    capacity_bytes: float
    kv_in: str
    model: object
    numerics: object
    split: dict = field(default_factory=dict)  # the replica's tp, pp and ep (from the plan)
    chips: int = 1  # chips in one replica

    def need(self, req: Request) -> float:
        return self.holds(req.prompt + req.output)

    def holds(self, tokens: int) -> float:
        """Bytes one sequence holds with ``tokens`` tokens of KV, its fixed state included."""
        return self.model.kv_bytes(1, tokens, self.numerics) + self.model.state_bytes(1, self.numerics)


def kv_budget(model, system, dtype: str = "bf16", layout: dict | None = None,
              kv_dtype: str | None = None) -> KVBudget:
    """The KV cache capacity of one replica: the memory holding it less the weights there
    (``layout``: the tp/pp/ep split, as :class:`StepCosts` takes it; ``kv_dtype``: the cache's
    format, None for the dtype's default)."""
    from asicsim.compile import Workload as StepWorkload, plan_run
    from asicsim.dtypes import parse_dtype

    kv = parse_dtype(kv_dtype, "--kv-dtype", kv=True) if kv_dtype is not None else None
    plan = plan_run(model, system, StepWorkload(batch=1, prompt=1, generate=1, dtype=parse_dtype(dtype),
                                                kv_dtype=kv, **(layout or {})))
    chip = plan.chip
    if plan.kv_in == "hbm":
        per_chip = chip.hbm.capacity_gb * 1e9 - plan.weight_bytes_per_chip
    else:
        sram = chip.sram_for("kv")
        per_chip = sram.capacity_bytes if sram is not None else 0.0
        if sram is not None and "weights" in sram.holds and plan.weights_in == "sram":
            per_chip -= plan.weight_bytes_per_chip
    replica_chips = plan.chips // plan.parallel.dp
    par = plan.parallel
    return KVBudget(max(per_chip, 0.0) * replica_chips, plan.kv_in, model, plan.numerics,
                    {"tp": par.tp, "pp": par.pp, "ep": par.ep}, replica_chips)


class _Source:
    """Where requests come from, in simulated time: a heap of (arrival ns, request index) holding an
    open-loop workload's every request at its arrival time, or a closed loop's first
    ``concurrency`` at time 0 and the next one each time one finishes; and the log of arrivals
    (+1) and departures (-1) that Little's law and the concurrency figures are read from."""

    def __init__(self, workload: Workload):
        self.reqs = workload.requests
        self.closed = workload.concurrency is not None
        self.sent = min(workload.concurrency, len(self.reqs)) if self.closed else len(self.reqs)
        self.heap: list[tuple[float, int]] = []
        for i in range(self.sent):
            heapq.heappush(self.heap, (0.0 if self.closed else self.reqs[i].arrival_ns, i))
        self.events: list[tuple[float, int]] = []
        self.done = 0

    @property
    def open(self) -> bool:
        """Whether some request has not finished."""
        return self.done < len(self.reqs)

    def next_at(self) -> float:
        """When the next request arrives (inf: none is on its way)."""
        return self.heap[0][0] if self.heap else math.inf

    def arrivals(self, now: float):
        """(arrival ns, request index) of each request arrived by ``now``, logged as it is taken."""
        while self.heap and self.heap[0][0] <= now:
            at, i = heapq.heappop(self.heap)
            self.events.append((at, +1))
            yield at, i

    def finish(self, lv: _Live, now: float) -> None:
        """``lv`` leaves at ``now``; a closed loop's user sends the next request at once."""
        lv.finish_ns = now
        self.events.append((now, -1))
        self.done += 1
        if self.closed and self.sent < len(self.reqs):
            heapq.heappush(self.heap, (now, self.sent))
            self.sent += 1


class _Pool:
    """The KV cache of one replica: bytes held per admitted request, either reserved in full at
    admission (prompt + output) or in pages of ``page_tokens`` allocated as the KV grows."""

    def __init__(self, budget: KVBudget, paged: bool, page_tokens: int):
        self.budget, self.paged, self.page = budget, paged, page_tokens
        self.capacity = budget.capacity_bytes
        self.used = 0.0
        self._pages: dict[int, float] = {}

    def bytes_for(self, lv: _Live, tokens: int) -> float:
        """What ``lv`` holds with ``tokens`` tokens of KV: all of its request (reserved) or whole pages."""
        if not self.paged:
            return self.budget.need(lv.req)
        pages = -(-tokens // self.page)
        b = self._pages.get(pages)
        if b is None:
            b = self._pages[pages] = self.budget.holds(pages * self.page)
        return b

    def grow(self, lv: _Live, tokens: int) -> float:
        """Bytes more ``lv`` needs to hold ``tokens`` tokens of KV."""
        return self.bytes_for(lv, tokens) - lv.held

    def take(self, lv: _Live, extra: float) -> None:
        lv.held += extra
        self.used += extra

    def free(self, lv: _Live) -> None:
        self.used -= lv.held
        lv.held = 0.0


@dataclass
class ServeResult:
    """Per-request records, the event log ((time_ns, +1 arrival / -1 departure) in order), the
    decode steps as (start_ns, duration_ns, batch, KV bytes held), the KV log ((time_ns, KV bytes
    held, requests admitted) at every step's start and end and every preemption; with several
    replicas, summed over them, and each step's replica in ``step_replicas``) and the summary
    metrics."""

    records: list[dict]
    events: list[tuple[float, int]]
    steps: list[tuple[float, float, int, float]]
    metrics: dict
    notes: list[str] = field(default_factory=list)
    kv_log: list[tuple[float, float, int]] = field(default_factory=list)
    step_replicas: list[int] = field(default_factory=list)  # with several replicas: which ran each step


SCHEDULERS = ("static", "continuous", "chunked")
KV_MODES = ("reserved", "paged")


def _check_requests(workload: Workload, model, slo_ttft_ms: float, slo_tpot_ms: float) -> None:
    """Positive SLO limits, and no request longer than the model's context."""
    for name, v in (("--slo-ttft-ms", slo_ttft_ms), ("--slo-tpot-ms", slo_tpot_ms)):
        if not v > 0:
            raise InputError(name, None, f"must be a positive number of milliseconds, got {v}")
    ctx = model.max_context
    for r in workload.requests:
        if ctx is not None and r.prompt + r.output > ctx:
            raise InputError(workload.source, f"request {r.id}",
                             f"prompt {r.prompt} + output {r.output} tokens exceed {model.name}'s context of "
                             f"{ctx} tokens (max_position_embeddings)")


@dataclass(frozen=True)
class KVLink:
    """The link a disaggregated pair moves each request's KV cache over (or a replica swaps a
    preempted request's KV pages to host memory over): ``gbps`` GB/s one way, plus
    ``latency_ns`` per transfer."""

    gbps: float = KV_LINK_GBPS
    latency_ns: float = KV_LINK_LATENCY_NS
    source: str = KV_LINK_SOURCE

    def check(self, flag: str = "--kv-link") -> None:
        if not (self.gbps > 0 and math.isfinite(self.gbps)):
            raise InputError(f"{flag}-gbps", None, f"must be a positive number of GB/s, got {self.gbps}")
        if not (self.latency_ns >= 0 and math.isfinite(self.latency_ns)):
            raise InputError(f"{flag}-latency-us", None, f"must be a time >= 0, got {self.latency_ns / 1e3}")


PREEMPTIONS = ("recompute", "swap")


def simulate(workload: Workload, costs: StepCosts, budget: KVBudget, *, scheduler: str = "continuous",
             max_batch: int | None = None, slo_ttft_ms: float = SLO_TTFT_MS,
             slo_tpot_ms: float = SLO_TPOT_MS, chunk: int = DEFAULT_CHUNK, kv_cache: str = "reserved",
             page_tokens: int = DEFAULT_PAGE_TOKENS, replicas: int = 1, preemption: str = "recompute",
             host_link: KVLink = KVLink()) -> ServeResult:
    """Serve ``workload`` with ``scheduler`` (``static``, ``continuous`` or ``chunked``, whose
    iterations carry at most ``chunk`` tokens) in simulated time, the KV cache ``reserved`` in full
    at admission or ``paged`` (pages of ``page_tokens``, the newest request preempted when full:
    ``preemption="recompute"`` frees its pages and prefills it again; ``"swap"`` copies its pages to
    host memory over ``host_link`` and back before it resumes, both copies charged to the replica).

    ``replicas`` identical copies of the system (each with ``budget`` and its own queue, batch and
    KV cache) serve one arrival stream: each request is dispatched when it arrives to the replica
    with the fewest outstanding requests (dispatched and not finished), ties to the lowest index,
    and stays there (a preempted request waits at the head of its own replica's queue)."""
    if scheduler not in SCHEDULERS:
        raise InputError("--scheduler", None, f"must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if kv_cache not in KV_MODES:
        raise InputError("--kv-cache", None, f"must be reserved or paged, got {kv_cache!r}")
    if kv_cache == "paged" and scheduler == "static":
        raise InputError("--kv-cache", None, "paged needs --scheduler continuous or chunked: a static batch "
                         "runs to its end, so it cannot preempt a request when the pages run out")
    if chunk < 1:
        raise InputError("--chunk", None, f"is the token budget of an iteration: at least 1, got {chunk}")
    if page_tokens < 1:
        raise InputError("--page-tokens", None, f"must be at least 1 token, got {page_tokens}")
    _check_replicas(replicas)
    if preemption not in PREEMPTIONS:
        raise InputError("--preemption", None, f"must be recompute or swap, got {preemption!r}")
    if preemption == "swap" and kv_cache != "paged":
        raise InputError("--preemption", None, "swap needs --kv-cache paged: a reserved cache holds every admitted "
                         "request's whole KV, so nothing is ever preempted")
    host_link.check("--host-link")
    model = budget.model
    rules = step_rules(costs)
    if rules.shapes_steps:
        _check_slot_cache(workload, rules)
    if rules.prefill_buckets:  # the server cuts a longer prompt to its largest bucket: that is what it holds
        workload = replace(workload, requests=tuple(replace(r, prompt=rules.kept_prompt(r.prompt))
                                                    for r in workload.requests))
    _check_requests(workload, model, slo_ttft_ms, slo_tpot_ms)
    biggest = max(budget.need(r) for r in workload.requests)
    fits = int(budget.capacity_bytes // biggest) if biggest > 0 else MAX_BATCH_CAP
    if fits < 1:
        raise InputError(str(costs.system.name), None,
                         f"{model.name}'s KV cache for its longest request ({biggest / 1e9:.3f} GB) does not fit "
                         f"in the {budget.capacity_bytes / 1e9:.3f} GB of {budget.kv_in} left beside the weights")
    paged = kv_cache == "paged"
    if paged:
        _check_pages(workload, budget, page_tokens, str(costs.system.name), "")
    if rules.cache_tokens is not None and kv_cache == "reserved":  # a whole cache per slot
        fits = min(fits, int(budget.capacity_bytes // budget.holds(rules.cache_tokens)))
    if max_batch is None:
        max_batch = MAX_BATCH_CAP if paged else min(fits, MAX_BATCH_CAP)
    elif max_batch < 1:
        raise InputError("--max-batch", None, f"must be at least 1, got {max_batch}")
    if rules.shapes_steps:
        _check_step_rules(rules, costs, budget, scheduler, kv_cache, max_batch)

    reqs = workload.requests
    source = _Source(workload)
    live: list[_Live | None] = [None] * len(reqs)
    steps: list[tuple[float, float, int, float]] = []
    owners: list[int] = []  # the replica of each step
    logs: list[list[tuple[float, float, int]]] = [[] for _ in range(replicas)]
    tally = {"preemptions": 0, "swap_ns": 0.0, "swapped_bytes": 0.0}
    # a swap moves the request's KV pages; each chip of the replica holds its share of them and moves
    # it over its own host link, all at once (docs/serving.md)
    swap_bytes_per_ns = host_link.gbps * budget.chips
    inboxes: list[deque[_Live]] = [deque() for _ in range(replicas)]
    finishes: list[list[float]] = [[] for _ in range(replicas)]  # heaps of finish times not yet passed

    def replica(k: int):
        """One replica's scheduler as a coroutine: it yields (its clock, whether it has work) and is
        resumed with the time to run its next iteration at, once every arrival up to then is in its
        inbox."""
        inbox, kv_log, finish = inboxes[k], logs[k], _finisher(source, finishes[k], replicas)
        waiting: deque[_Live] = deque()
        pool = _Pool(budget, paged, page_tokens)
        t = 0.0

        def admit(lv: _Live, first_tokens: int) -> bool:
            """Take ``lv`` from the head of the queue if the KV for its first ``first_tokens`` fits."""
            extra = pool.bytes_for(lv, first_tokens)
            if pool.used + extra > pool.capacity:
                return False
            waiting.popleft()
            lv.target = lv.req.prompt + lv.generated
            if math.isnan(lv.admitted_ns):
                lv.admitted_ns = t
            pool.take(lv, extra)
            return True

        def swap(nbytes: float) -> None:
            """Copy ``nbytes`` of KV pages over the host link (out or back in): the replica waits."""
            nonlocal t
            dt = nbytes / swap_bytes_per_ns + host_link.latency_ns
            tally["swap_ns"] += dt
            tally["swapped_bytes"] += nbytes
            t += dt

        def swap_in(running: list[_Live], room: int) -> list[_Live]:
            """Swapped-out requests at the head of the queue come back while their pages (and the next
            token's) fit and the batch has room, each copied back in before the step."""
            back = []
            while waiting and waiting[0].swapped and len(running) < room:
                lv = waiting[0]
                extra = pool.bytes_for(lv, lv.kv + (1 if lv.kv >= lv.target else 0))
                if pool.used + extra > pool.capacity:
                    break
                waiting.popleft()
                pool.take(lv, extra)
                swap(pool.bytes_for(lv, lv.kv))  # the pages it took out
                lv.swapped = False
                running.append(lv)
                back.append(lv)
            return back

        def first_token(lv: _Live) -> None:
            lv.first(t)

        def prefill(batch: list[_Live]) -> None:
            nonlocal t
            t += costs.prefill_ns(len(batch), sum(rules.padded_prompt(lv.target) for lv in batch) / len(batch))
            for lv in batch:
                lv.kv = lv.target
                first_token(lv)

        def decode(batch: list[_Live], slots: int, cost_slots: int | None = None) -> None:
            """One decode step: ``batch`` sequences advance; the step is logged with ``slots``
            sequences and costs ``cost_slots`` (default ``slots``), each at the batch's mean
            context or, with a profile's ``cache_tokens``, at that."""
            nonlocal t
            if rules.cache_tokens is not None:
                mean_ctx = float(rules.cache_tokens)
            else:
                mean_ctx = sum(lv.req.prompt + lv.generated - 1 for lv in batch) / len(batch)
            dt = costs.decode_ns(cost_slots or slots, mean_ctx)
            steps.append((t, dt, slots, pool.used))
            owners.append(k)
            t += dt
            for lv in batch:
                lv.token(t)

        def preempt(running: list[_Live]) -> None:
            """Preempt the newest admitted request to the queue's head: its KV freed (recompute) or
            copied to host memory first (swap)."""
            lv = running.pop()
            if preemption == "swap":
                swap(lv.held)
                lv.swapped = True
            else:
                lv.kv = lv.target = 0
            pool.free(lv)
            lv.preemptions += 1
            tally["preemptions"] += 1
            waiting.appendleft(lv)
            kv_log.append((t, pool.used, len(running)))

        def grow_decodes(running: list[_Live], decoding: list[_Live]) -> bool:
            """Pages for the token each decoding request writes next, preempting the newest until they
            fit; True if any request was preempted."""
            hit = False
            while True:
                extra = [pool.grow(lv, lv.kv + 1) for lv in decoding]
                if pool.used + sum(extra) <= pool.capacity:
                    break
                preempt(running)
                hit = True
                decoding = [lv for lv in decoding if lv.held > 0]
            for lv, e in zip(decoding, extra):
                if e:
                    pool.take(lv, e)
            return hit

        running: list[_Live] = []  # admitted, oldest first
        while True:
            t = yield (t if waiting or running else math.inf), t
            waiting.extend(inbox)
            inbox.clear()
            if not waiting and not running:
                continue
            if scheduler == "static":
                batch = []
                while waiting and len(batch) < max_batch:
                    lv = waiting[0]
                    if not admit(lv, 0):
                        break
                    batch.append(lv)
                kv_log.append((t, pool.used, len(batch)))
                prefill(batch)
                for lv in batch:
                    if lv.generated >= lv.req.output:
                        finish(lv, t)
                active = [lv for lv in batch if lv.generated < lv.req.output]
                while active:
                    decode(active, len(batch))
                    for lv in active:
                        if lv.generated >= lv.req.output:
                            finish(lv, t)
                    active = [lv for lv in active if lv.generated < lv.req.output]
                for lv in batch:
                    pool.free(lv)
                pool.used = 0.0
                kv_log.append((t, 0.0, 0))
                continue
            if scheduler == "continuous":
                # admit what fits, prefill the newcomers, then one decode step for the others
                preempted = paged and grow_decodes(running, running)
                if not preempted and waiting and waiting[0].swapped:
                    swap_in(running, max_batch)
                new = []
                while not preempted and waiting and not waiting[0].swapped and len(running) + len(new) < max_batch:
                    lv = waiting[0]
                    if not admit(lv, lv.req.prompt + lv.generated):
                        break
                    new.append(lv)
                old = running
                kv_log.append((t, pool.used, len(old) + len(new)))
                if new and rules.prefill_one_at_a_time:
                    for lv in new:  # each prompt alone, on the chips that decode
                        prefill([lv])
                elif new:
                    prefill(new)
                if old:  # a fixed-shape step computes every slot of the batch cap
                    decode(old, len(old), max_batch if rules.decode_full_batch else None)
                batch = old + new
            else:
                # chunked: one fused step of every running decode and prefill chunks up to `chunk` tokens
                decoding = [lv for lv in running if lv.kv >= lv.target]
                preempted = paged and grow_decodes(running, decoding)
                if preempted:
                    decoding = [lv for lv in running if lv.kv >= lv.target]
                elif waiting and waiting[0].swapped:
                    decoding += [lv for lv in swap_in(running, max_batch) if lv.kv >= lv.target]
                room = chunk - len(decoding)
                chunks: list[tuple[_Live, int]] = []
                for lv in running:
                    if room <= 0:
                        break
                    if lv.kv < lv.target:
                        c = min(room, lv.target - lv.kv)
                        extra = pool.grow(lv, lv.kv + c)
                        if pool.used + extra > pool.capacity:
                            break
                        pool.take(lv, extra)
                        chunks.append((lv, c))
                        room -= c
                while (not preempted and waiting and not waiting[0].swapped and room > 0
                       and len(running) < max_batch):
                    lv = waiting[0]
                    c = min(room, lv.req.prompt + lv.generated)
                    if not admit(lv, c):
                        break
                    running.append(lv)
                    chunks.append((lv, c))
                    room -= c
                if not decoding and not chunks:
                    # the pages are all held by partly prefilled requests: free the newest's
                    preempt(running)
                    continue
                kv_log.append((t, pool.used, len(running)))
                dt = sum(costs.chunk_ns(lv.kv, c) for lv, c in chunks)
                if decoding:
                    d = costs.decode_ns(len(decoding), sum(lv.kv for lv in decoding) / len(decoding))
                    steps.append((t, d + dt, len(decoding), pool.used))
                    owners.append(k)
                    dt += d
                t += dt
                for lv in decoding:
                    lv.token(t)
                for lv, c in chunks:
                    lv.kv += c
                    if lv.kv >= lv.target:
                        first_token(lv)
                batch = running
            running = []
            for lv in batch:
                if lv.generated >= lv.req.output:
                    finish(lv, t)
                    pool.free(lv)
                else:
                    running.append(lv)
            if not running:
                pool.used = 0.0  # no drift from float sums
            kv_log.append((t, pool.used, len(running)))

    _drive(source, live, [replica(k) for k in range(replicas)], inboxes, finishes)

    records = [_record(lv) for lv in live]
    events = sorted(source.events, key=lambda e: (e[0], -e[1]))
    m = _metrics(records, events, steps, slo_ttft_ms, slo_tpot_ms)
    kv_log = logs[0] if replicas == 1 else _merge_logs(logs)
    m.update({"scheduler": scheduler, "max_batch": max_batch, "kv_capacity_gb": budget.capacity_bytes / 1e9,
              "kv_in": budget.kv_in, "bucket": costs.bucket, "step_shapes_simulated": len(costs.cache),
              "kv_cache": kv_cache, "page_tokens": page_tokens if paged else None,
              "chunk_tokens": chunk if scheduler == "chunked" else None, "preemptions": tally["preemptions"],
              "peak_admitted": max((n for *_, n in kv_log), default=0)})
    if replicas > 1:
        m["replicas"] = replicas
    if preemption == "swap":
        m.update({"preemption": "swap", "swap_ms_total": tally["swap_ns"] / 1e6,
                  "swapped_gb": tally["swapped_bytes"] / 1e9, "host_link_gbps": host_link.gbps,
                  "host_link_latency_us": host_link.latency_ns / 1e3})
    notes = []
    if m["requests_meeting_slo"] == 0:
        notes.append(f"no request met the SLO (TTFT <= {slo_ttft_ms:g} ms, TPOT <= {slo_tpot_ms:g} ms): "
                     "goodput is 0")
    return ServeResult(records, events, steps, m, notes, kv_log, owners if replicas > 1 else [])


def step_rules(costs: StepCosts):
    """The runtime profile of ``costs`` (a :class:`~asicsim.hardware.RuntimeSpec`; bare when none),
    whose step-shaping fields the continuous scheduler follows."""
    from asicsim.hardware import load_runtime

    return load_runtime(costs.runtime)


def _check_step_rules(rules, costs: StepCosts, budget: KVBudget, scheduler: str, kv_cache: str,
                      max_batch: int) -> None:
    """A profile that shapes the steps runs under the continuous scheduler, and a profile's
    ``cache_tokens`` reserves that cache for every slot of the batch at start: the batch cap must
    fit."""
    if scheduler != "continuous":
        raise InputError("--scheduler", None, f"runtime profile {rules.name!r} shapes its steps as its server runs "
                         f"them (prefill and decode slots on the same chips, continuous batching); it needs "
                         f"--scheduler continuous, got {scheduler!r}")
    if rules.cache_tokens is not None:
        if kv_cache != "reserved":
            raise InputError("--kv-cache", None, f"runtime profile {rules.name!r} reserves a whole cache of "
                             f"{rules.cache_tokens:,} tokens per batch slot; it needs --kv-cache reserved, "
                             f"got {kv_cache!r}")
        slot = budget.holds(rules.cache_tokens)
        if slot > budget.capacity_bytes:
            raise InputError(f"runtime profile {rules.name!r}", "cache_tokens", f"one batch slot's "
                             f"{rules.cache_tokens:,}-token cache ({slot / 1e9:.3f} GB) does not fit in the "
                             f"{budget.capacity_bytes / 1e9:.3f} GB of {budget.kv_in} left beside the weights on "
                             f"{costs.system.name}; a system with more memory, or more chips, holds it")
        if max_batch * slot > budget.capacity_bytes:
            raise InputError("--max-batch", None, f"{max_batch} slots of runtime profile {rules.name}'s "
                             f"{rules.cache_tokens:,}-token cache need {max_batch * slot / 1e9:.3f} GB, more than "
                             f"the {budget.capacity_bytes / 1e9:.3f} GB of {budget.kv_in} left beside the weights "
                             f"on {costs.system.name} (its server allocates every slot's cache at start); at most "
                             f"{int(budget.capacity_bytes // slot)} fit")


def _check_slot_cache(workload: Workload, rules) -> None:
    """Refuse a request that cannot fit a slot of the profile's ``cache_tokens`` cache: its prompt
    (cut to the largest prefill bucket, as the server cuts it) plus its output, as a request
    longer than the model's context is refused."""
    if rules.cache_tokens is None:
        return
    for r in workload.requests:
        prompt = rules.kept_prompt(r.prompt)
        if prompt + r.output > rules.cache_tokens:
            raise InputError(workload.source, f"request {r.id}",
                             f"prompt {prompt}{' (cut from ' + str(r.prompt) + ')' if prompt != r.prompt else ''} "
                             f"+ output {r.output} tokens exceed the {rules.cache_tokens:,}-token cache of a batch "
                             f"slot of runtime profile {rules.name!r}")


def _check_pages(workload: Workload, budget: KVBudget, page_tokens: int, name: str, role: str) -> None:
    """Refuse a request whose KV at its longest (prompt + output - 1 tokens: the last token's is
    never written) fits the cache to the token but not in whole pages: it could never be admitted
    whole, and would wait, or be preempted, forever."""
    longest = max(r.prompt + r.output - 1 for r in workload.requests)
    pages = -(-longest // page_tokens)
    if budget.holds(pages * page_tokens) > budget.capacity_bytes:
        raise InputError(name, None,
                         f"{role}{budget.model.name}'s KV cache for its longest request ({longest:,} tokens, "
                         f"{pages:,} pages of {page_tokens} tokens: {budget.holds(pages * page_tokens) / 1e9:.3f} GB) "
                         f"does not fit in the {budget.capacity_bytes / 1e9:.3f} GB of {budget.kv_in} left beside "
                         "the weights; smaller pages (--page-tokens) or shorter requests fit")


def _check_replicas(replicas) -> None:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise InputError("--replicas", None, f"is how many copies of the system serve the stream: a whole number "
                         f"at least 1, got {replicas!r}")


def _finisher(source: _Source, finishes: list[float], replicas: int):
    """How a replica retires a request: the source's bookkeeping, and with several replicas its
    finish time in the replica's heap too (what the dispatcher counts as outstanding)."""
    if replicas == 1:
        return source.finish

    def finish(lv: _Live, now: float) -> None:
        source.finish(lv, now)
        heapq.heappush(finishes, now)
    return finish


def _drive(source: _Source, live: list, bodies: list, inboxes: list[deque], finishes: list[list[float]]) -> None:
    """Run the replicas' schedulers (coroutines from :func:`simulate` or
    :func:`simulate_disaggregated`, each yielding when it next acts, inf if it waits for work, and
    the earliest it could act on a new arrival) against one arrival stream in time order: an
    arrival is dispatched before any replica's step at the same time or later, to the replica with
    the fewest outstanding requests at that moment (ties: the lowest index); otherwise the replica
    that acts first (ties: the lowest index) runs one step and is resumed with its time."""
    n = len(bodies)
    reqs = source.reqs
    inf = math.inf
    want, react = [inf] * n, [0.0] * n
    outstanding = [0] * n
    for k, body in enumerate(bodies):
        want[k], react[k] = next(body)
    while source.open:
        soon = source.next_at()
        k = min(range(n), key=want.__getitem__) if n > 1 else 0
        if soon <= want[k]:
            if soon == inf:  # an invariant: an unfinished request is queued, running or on its way
                raise RuntimeError("serving: unfinished requests are neither queued, running nor arriving")
            for at, i in source.arrivals(soon):
                lv = live[i] = _Live(reqs[i], at)
                r = 0
                if n > 1:
                    for j in range(n):
                        done = finishes[j]
                        while done and done[0] <= at:
                            heapq.heappop(done)
                            outstanding[j] -= 1
                    r = min(range(n), key=outstanding.__getitem__)
                    outstanding[r] += 1
                lv.replica = r
                inboxes[r].append(lv)
                want[r] = min(want[r], max(react[r], at))
            continue
        want[k], react[k] = bodies[k].send(want[k])


def _merge_logs(logs: list[list[tuple[float, float, int]]]) -> list[tuple[float, float, int]]:
    """The replicas' KV logs as one: at each entry's time, the KV bytes held and the requests
    admitted summed over the replicas (each at its latest entry)."""
    held, admitted = [0.0] * len(logs), [0] * len(logs)
    out = []
    tagged = [[(t, k, kv, n) for t, kv, n in log] for k, log in enumerate(logs)]
    for t, k, kv, n in heapq.merge(*tagged, key=lambda e: e[0]):
        held[k], admitted[k] = kv, n
        out.append((t, sum(held), sum(admitted)))
    return out


def simulate_disaggregated(workload: Workload, prefill: tuple[StepCosts, KVBudget],
                           decode: tuple[StepCosts, KVBudget], link: KVLink = KVLink(), *,
                           max_batch: int | None = None, slo_ttft_ms: float = SLO_TTFT_MS,
                           slo_tpot_ms: float = SLO_TPOT_MS, kv_cache: str = "reserved",
                           page_tokens: int = DEFAULT_PAGE_TOKENS, prefill_chunk: int | None = None,
                           replicas: int = 1) -> ServeResult:
    """Serve ``workload`` on two groups: ``prefill`` (its step costs and KV budget) prefills
    batches of waiting requests (or, with ``prefill_chunk`` set, steps of at most that many prompt
    tokens in chunks, oldest prompt first, as the ``chunked`` scheduler does without decodes) and
    emits each one's first token; each request's KV cache (its
    prompt's) then crosses ``link`` to ``decode``, which decodes everything it holds one step at a
    time (continuous batching). Each group has its own queue and KV budget: the prefill group holds
    a prompt's KV until it has crossed the link; the decode group reserves a request's whole KV
    (prompt + output) when it admits it, or with ``kv_cache="paged"`` holds it in pages of
    ``page_tokens`` and, when they run out, preempts its newest request back to the prefill
    group's queue (recompute: prefilled again, prompt and tokens so far, and sent again).
    ``replicas`` such pairs serve one arrival stream, each request dispatched to the pair with the
    fewest outstanding requests (ties: the lowest index), as :func:`simulate`'s replicas are."""
    link.check()
    if kv_cache not in KV_MODES:
        raise InputError("--kv-cache", None, f"must be reserved or paged, got {kv_cache!r}")
    if page_tokens < 1:
        raise InputError("--page-tokens", None, f"must be at least 1 token, got {page_tokens}")
    for costs, _ in (prefill, decode):
        rules = step_rules(costs)
        if rules.shapes_steps:
            raise InputError("--runtime", None, f"runtime profile {rules.name!r} shapes its steps as one server "
                             "runs them (prefill and decode on the same chips); a disaggregated pair cannot use it")
    if prefill_chunk is not None and prefill_chunk < 1:
        raise InputError("--chunk", None, f"is the token budget of a prefill step: at least 1, got {prefill_chunk}")
    _check_replicas(replicas)
    (pcosts, pbudget), (dcosts, dbudget) = prefill, decode
    model = dbudget.model
    _check_requests(workload, model, slo_ttft_ms, slo_tpot_ms)
    paged = kv_cache == "paged"
    caps = {}
    for role, costs, budget, tokens in (("prefill", pcosts, pbudget,  # a recompute prefills what was generated too
                                         (lambda r: r.prompt + r.output - 1) if paged else (lambda r: r.prompt)),
                                        ("decode", dcosts, dbudget, lambda r: r.prompt + r.output)):
        biggest = max(budget.holds(tokens(r)) for r in workload.requests)
        fits = int(budget.capacity_bytes // biggest) if biggest > 0 else MAX_BATCH_CAP
        if fits < 1:
            raise InputError(str(costs.system.name), None,
                             f"as the {role} group: {model.name}'s KV cache for its longest request "
                             f"({biggest / 1e9:.3f} GB) does not fit in the {budget.capacity_bytes / 1e9:.3f} GB of "
                             f"{budget.kv_in} left beside the weights")
        if paged and role == "decode":
            _check_pages(workload, budget, page_tokens, str(costs.system.name), "as the decode group: ")
        caps[role] = (MAX_BATCH_CAP if paged and role == "decode" else min(fits, MAX_BATCH_CAP)) \
            if max_batch is None else max_batch
    if max_batch is not None and max_batch < 1:
        raise InputError("--max-batch", None, f"must be at least 1, got {max_batch}")

    reqs = workload.requests
    source = _Source(workload)
    live: list[_Live | None] = [None] * len(reqs)
    steps: list[tuple[float, float, int, float]] = []
    owners: list[int] = []  # the pair of each decode step
    logs: list[list[tuple[float, float, int]]] = [[] for _ in range(replicas)]  # each decode group's
    inboxes: list[deque[_Live]] = [deque() for _ in range(replicas)]
    finishes: list[list[float]] = [[] for _ in range(replicas)]
    # the whole model's KV crosses however each group shards it: each chip of the smaller group sends
    # or receives its share over its own link, all at once
    lanes = min(pbudget.chips, dbudget.chips)
    lane_gbps = link.gbps * lanes
    transfer_ns: list[float] = []
    tally = {"preemptions": 0}
    inf = math.inf

    def pair(k: int):
        """One pair's prefill and decode groups as a coroutine (see :func:`_drive`): it yields when it
        next acts (its prefill group or its decode group, whichever comes first) and when its prefill
        group could take a new arrival."""
        inbox, kv_log, finish = inboxes[k], logs[k], _finisher(source, finishes[k], replicas)
        p_waiting: deque[_Live] = deque()
        returns: list[tuple[float, int]] = []  # heap of (time, request) preempted by the decode group
        p_used = 0.0
        p_frees: list[tuple[float, int, float]] = []  # heap of (time, request, bytes) freed on the prefill side
        moved: list[tuple[float, int]] = []  # heap of (time the KV has crossed, request)
        d_waiting: deque[_Live] = deque()
        d_running: list[_Live] = []
        pool = _Pool(dbudget, paged, page_tokens)
        tp = td = link_free = 0.0
        p_running: list[_Live] = []  # chunked: admitted, partly prefilled, oldest first

        def sent(lv: _Live) -> None:
            """``lv``'s prefill has ended at ``tp``: its first token, then its KV over the link (or it is done)."""
            nonlocal link_free
            lv.first(tp)
            if lv.generated >= lv.req.output:
                heapq.heappush(p_frees, (tp, lv.req.id, lv.held))
                finish(lv, tp)
                return
            kv = dbudget.holds(lv.target)  # the prompt's KV (and any recurrent state)
            start = max(tp, link_free)
            link_free = start + kv / lane_gbps
            arrive = link_free + link.latency_ns
            transfer_ns.append(arrive - tp)
            heapq.heappush(p_frees, (arrive, lv.req.id, lv.held))
            heapq.heappush(moved, (arrive, lv.req.id))
            lv.held = 0.0  # what it holds on the decode side, once admitted there

        def admit(t: float) -> _Live | None:
            """The prefill group takes the oldest waiting request at ``t`` if its whole KV (prompt and
            tokens already generated) fits beside what the group holds; else None."""
            nonlocal p_used
            lv = p_waiting[0]
            need = pbudget.holds(lv.req.prompt + lv.generated)
            if p_used + need > pbudget.capacity_bytes:
                return None
            p_waiting.popleft()
            lv.target = lv.req.prompt + lv.generated
            if math.isnan(lv.admitted_ns):
                lv.admitted_ns = t
            lv.held = need
            p_used += need
            return lv

        def upcoming() -> tuple[float, float]:
            p_soon = min(inbox[0].arrival_ns if inbox else inf, returns[0][0] if returns else inf)
            p_next = tp if p_waiting or p_running else max(tp, p_soon)
            d_next = td if (d_running or d_waiting) else max(td, moved[0][0]) if moved else inf
            return p_next, d_next

        while True:
            now = yield min(upcoming()), tp
            p_next, d_next = upcoming()
            if now != min(p_next, d_next):  # an invariant: the driver resumes a pair when it next acts
                raise RuntimeError(f"serving: pair {k} resumed at {now} ns, but it next acts at "
                                   f"{min(p_next, d_next)} ns")
            if p_next <= d_next:
                t = p_next
                while inbox and inbox[0].arrival_ns <= t:
                    p_waiting.append(inbox.popleft())
                back = []
                while returns and returns[0][0] <= t:
                    back.append(live[heapq.heappop(returns)[1]])
                p_waiting.extendleft(reversed(back))  # preempted requests go first, oldest preemption first
                while p_frees and p_frees[0][0] <= t:
                    p_used -= heapq.heappop(p_frees)[2]
                if prefill_chunk is not None:  # chunked: go on with partly prefilled prompts, then admit
                    room = prefill_chunk
                    chunks: list[tuple[_Live, int]] = []
                    for lv in p_running:
                        if room <= 0:
                            break
                        c = min(room, lv.target - lv.kv)
                        chunks.append((lv, c))
                        room -= c
                    while p_waiting and room > 0 and len(p_running) < caps["prefill"]:
                        lv = admit(t)
                        if lv is None:
                            break
                        lv.kv = 0
                        p_running.append(lv)
                        c = min(room, lv.target)
                        chunks.append((lv, c))
                        room -= c
                    if not chunks:  # the prefill group's KV is full of prompts still crossing the link
                        tp = p_frees[0][0]
                        continue
                    tp = t + sum(pcosts.chunk_ns(lv.kv, c) for lv, c in chunks)
                    for lv, c in chunks:
                        lv.kv += c
                    done = [lv for lv in p_running if lv.kv >= lv.target]
                    p_running = [lv for lv in p_running if lv.kv < lv.target]
                    if not p_frees and not p_running:
                        p_used = sum(lv.held for lv in done)  # no drift from float sums
                    for lv in done:
                        sent(lv)
                    continue
                batch = []
                while p_waiting and len(batch) < caps["prefill"]:
                    lv = admit(t)
                    if lv is None:
                        break
                    batch.append(lv)
                if not batch:  # the prefill group's KV is full of prompts still crossing the link
                    tp = p_frees[0][0]
                    continue
                tp = t + pcosts.prefill_ns(len(batch), sum(lv.target for lv in batch) / len(batch))
                if not p_frees:
                    p_used = sum(lv.held for lv in batch)  # no drift from float sums
                for lv in batch:
                    lv.kv = lv.target
                    sent(lv)
                continue
            t = d_next
            while moved and moved[0][0] <= t:
                _, i = heapq.heappop(moved)
                d_waiting.append(live[i])
            preempted = False
            if paged:  # a page more for each request whose next token starts one; the newest make room
                while True:
                    extra = [pool.grow(lv, lv.kv + 1) for lv in d_running]
                    if pool.used + sum(extra) <= pool.capacity:
                        break
                    lv = d_running.pop()
                    pool.free(lv)
                    lv.kv = 0
                    lv.preemptions += 1
                    tally["preemptions"] += 1
                    preempted = True
                    heapq.heappush(returns, (t, lv.req.id))
                    kv_log.append((t, pool.used, len(d_running)))
                for lv, e in zip(d_running, extra):
                    if e:
                        pool.take(lv, e)
            while not preempted and d_waiting and len(d_running) < caps["decode"]:
                lv = d_waiting[0]
                extra = pool.bytes_for(lv, lv.kv + 1)
                if pool.used + extra > pool.capacity:
                    break
                d_waiting.popleft()
                pool.take(lv, extra)
                d_running.append(lv)
            if not d_running:
                td = t
                continue
            kv_log.append((t, pool.used, len(d_running)))
            dt = dcosts.decode_ns(len(d_running), sum(lv.kv for lv in d_running) / len(d_running))
            steps.append((t, dt, len(d_running), pool.used))
            owners.append(k)
            td = t + dt
            keep = []
            for lv in d_running:
                lv.token(td)
                if lv.generated >= lv.req.output:
                    finish(lv, td)
                    pool.free(lv)
                else:
                    keep.append(lv)
            d_running = keep
            if not d_running:
                pool.used = 0.0
            kv_log.append((td, pool.used, len(d_running)))

    _drive(source, live, [pair(k) for k in range(replicas)], inboxes, finishes)
    kv_log = logs[0] if replicas == 1 else _merge_logs(logs)
    preemptions = tally["preemptions"]

    records = [_record(lv) for lv in live]
    events = sorted(source.events, key=lambda e: (e[0], -e[1]))
    m = _metrics(records, events, steps, slo_ttft_ms, slo_tpot_ms)
    if prefill_chunk is not None:
        m["prefill_chunk_tokens"] = prefill_chunk
    m.update({"scheduler": "disaggregated", "max_batch": caps["decode"], "prefill_max_batch": caps["prefill"],
              "kv_capacity_gb": dbudget.capacity_bytes / 1e9, "kv_in": dbudget.kv_in,
              "prefill_kv_capacity_gb": pbudget.capacity_bytes / 1e9, "prefill_kv_in": pbudget.kv_in,
              "bucket": dcosts.bucket, "step_shapes_simulated": len(pcosts.cache) + len(dcosts.cache),
              "kv_cache": kv_cache, "page_tokens": page_tokens if paged else None, "chunk_tokens": None,
              "preemptions": preemptions, "peak_admitted": max((n for *_, n in kv_log), default=0),
              "prefill_system": pcosts.system.name, "decode_system": dcosts.system.name,
              "kv_link_gbps": link.gbps, "kv_link_latency_us": link.latency_ns / 1e3,
              **({"kv_link_lanes": lanes} if lanes > 1 else {}),
              "kv_transfer_mean_ms": sum(transfer_ns) / len(transfer_ns) / 1e6 if transfer_ns else None})
    if replicas > 1:
        m["replicas"] = replicas
    notes = []
    if m["requests_meeting_slo"] == 0:
        notes.append(f"no request met the SLO (TTFT <= {slo_ttft_ms:g} ms, TPOT <= {slo_tpot_ms:g} ms): "
                     "goodput is 0")
    return ServeResult(records, events, steps, m, notes, kv_log, owners if replicas > 1 else [])


def _record(lv: _Live) -> dict:
    r = lv.req
    tpot = (lv.finish_ns - lv.first_ns) / (r.output - 1) / 1e6 if r.output > 1 else None
    return {"id": r.id, "arrival_ms": lv.arrival_ns / 1e6, "prompt": r.prompt, "output": r.output,
            "queue_ms": (lv.admitted_ns - lv.arrival_ns) / 1e6, "ttft_ms": (lv.first_ns - lv.arrival_ns) / 1e6,
            "tpot_ms": tpot, "latency_ms": (lv.finish_ns - lv.arrival_ns) / 1e6,
            "finish_ms": lv.finish_ns / 1e6, "preemptions": lv.preemptions, "replica": lv.replica,
            "max_gap_ms": lv.max_gap_ns / 1e6 if r.output > 1 else None}


def mean_in_system(events: list[tuple[float, int]]) -> tuple[float, float]:
    """From the event log: the time-average number of requests in the system, and the span."""
    n, area = 0, 0.0
    start, prev = events[0][0], events[0][0]
    for at, d in events:
        area += n * (at - prev)
        n += d
        prev = at
    span = prev - start
    return (area / span if span > 0 else float(n)), span


def _metrics(records, events, steps, slo_ttft_ms, slo_tpot_ms) -> dict:
    span_ns = max(r["finish_ms"] for r in records) * 1e6 - min(r["arrival_ms"] for r in records) * 1e6
    seconds = span_ns / 1e9
    out = {"requests": len(records), "duration_s": seconds}
    for name in ("ttft_ms", "tpot_ms", "latency_ms", "queue_ms", "max_gap_ms"):
        vals = np.array([r[name] for r in records if r[name] is not None], dtype=float)
        key = name[:-3]
        if len(vals):
            for q in (50, 90, 99):
                out[f"{key}_p{q}_ms"] = float(np.percentile(vals, q))
            out[f"{key}_mean_ms"] = float(vals.mean())
        else:
            out.update({f"{key}_p{q}_ms": None for q in (50, 90, 99)} | {f"{key}_mean_ms": None})
    tokens = sum(r["output"] for r in records)
    good = [r for r in records if r["ttft_ms"] <= slo_ttft_ms and (r["tpot_ms"] is None or r["tpot_ms"] <= slo_tpot_ms)]
    concurrency, _ = mean_in_system(events)
    busy = sum(s[1] for s in steps)
    out.update({
        "throughput_tokens_per_s": tokens / seconds if seconds > 0 else None,
        "request_rate_per_s": len(records) / seconds if seconds > 0 else None,
        "slo_ttft_ms": slo_ttft_ms, "slo_tpot_ms": slo_tpot_ms,
        "requests_meeting_slo": len(good), "slo_attainment": len(good) / len(records),
        "goodput_requests_per_s": len(good) / seconds if seconds > 0 else None,
        "goodput_tokens_per_s": sum(r["output"] for r in good) / seconds if seconds > 0 else None,
        "mean_batch": sum(d * b for _, d, b, _ in steps) / busy if busy else None,
        "mean_kv_gb": sum(d * kv for _, d, _, kv in steps) / busy / 1e9 if busy else None,
        "peak_kv_gb": max((kv for *_, kv in steps), default=0.0) / 1e9,
        "mean_concurrency": concurrency,
        "decode_steps": len(steps),
    })
    return out


def serve(model: str, system: str, workload: Workload, *, scheduler: str = "continuous",
          max_batch: int | None = None, bucket: int = DEFAULT_BUCKET, dtype: str = "bf16",
          slo_ttft_ms: float = SLO_TTFT_MS, slo_tpot_ms: float = SLO_TPOT_MS,
          costs: StepCosts | None = None, chips: int | None = None, tp: int | None = None,
          pp: int | None = None, ep: int | None = None, chunk: int = DEFAULT_CHUNK, kv_cache: str = "reserved",
          page_tokens: int = DEFAULT_PAGE_TOKENS, replicas: int = 1, preemption: str = "recompute",
          host_link: KVLink = KVLink(), runtime: str | None = None, kv_dtype: str | None = None) -> ServeResult:
    """Serve ``workload`` of ``model`` (a name, path or ModelSpec) on ``system``; pass ``costs``
    to share memoised step costs between runs of the same model, system, split and bucket.
    ``chips``, ``tp``, ``pp`` and ``ep`` choose one replica's chips and split as ``predict``'s
    do (``chips`` of the system's kind on its network; default tensor parallel over all);
    ``replicas`` copies of it serve the stream behind one dispatcher (see :func:`simulate`).
    ``runtime`` names the serving stack's profile (as ``predict``'s: per-request, per-step and
    per-sequence costs; ``bare``, the default, adds nothing). ``kv_dtype`` keeps the KV cache in
    another format than ``dtype``'s default (as ``predict``'s)."""
    from asicsim.model import ModelSpec, load_model

    if chips is not None and chips < 1:
        raise InputError("--chips", None, f"must be at least 1, got {chips}")
    _check_replicas(replicas)
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    costs, budget = group(spec, system, chips=chips, tp=tp, pp=pp, ep=ep, bucket=bucket, dtype=dtype, costs=costs,
                          runtime=runtime, kv_dtype=kv_dtype)
    result = simulate(workload, costs, budget, scheduler=scheduler, max_batch=max_batch,
                      slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms, chunk=chunk, kv_cache=kv_cache,
                      page_tokens=page_tokens, replicas=replicas, preemption=preemption, host_link=host_link)
    n_chips = len(costs.system.chips)
    result.metrics.update({"chips": n_chips, **budget.split})
    if runtime is not None:
        result.metrics["runtime"] = runtime
    if replicas > 1:
        result.metrics["total_chips"] = n_chips * replicas
    return result


def serve_disaggregated(model: str, prefill_system: str, decode_system: str, workload: Workload, *,
                        link: KVLink = KVLink(), max_batch: int | None = None, bucket: int = DEFAULT_BUCKET,
                        dtype: str = "bf16", slo_ttft_ms: float = SLO_TTFT_MS, slo_tpot_ms: float = SLO_TPOT_MS,
                        costs: tuple[StepCosts, StepCosts] | None = None, kv_cache: str = "reserved",
                        page_tokens: int = DEFAULT_PAGE_TOKENS, prefill_layout: dict | None = None,
                        decode_layout: dict | None = None, prefill_chunk: int | None = None,
                        replicas: int = 1, runtime: str | None = None, kv_dtype: str | None = None) -> ServeResult:
    """Serve ``workload`` of ``model`` with prefill on ``prefill_system`` and decode on
    ``decode_system``, the KV caches crossing ``link`` (see :func:`simulate_disaggregated`). Each
    system must run the model: a hardwired chip only the model it was built for.
    ``prefill_layout`` and ``decode_layout`` choose each group's chips and split as ``serve``'s
    ``chips``/``tp``/``pp``/``ep`` do (keys of those names); ``replicas`` such pairs serve the stream
    behind one dispatcher."""
    from asicsim.model import ModelSpec, load_model

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    groups = []
    for i, (name, layout, role) in enumerate(((prefill_system, prefill_layout, "prefill"),
                                              (decode_system, decode_layout, "decode"))):
        try:
            groups.append(group(spec, name, bucket=bucket, dtype=dtype, costs=costs[i] if costs else None,
                                flag=f"--{role}-", runtime=runtime, kv_dtype=kv_dtype, **(layout or {})))
        except InputError as e:
            if e.source == "parallel layout" and e.field in ("tp", "pp", "ep"):  # a split this group's chips
                raise InputError(f"--{role}-{e.field}", None, e.reason) from None  # cannot take: name its option
            raise
    result = simulate_disaggregated(workload, groups[0], groups[1], link, max_batch=max_batch,
                                    slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms, kv_cache=kv_cache,
                                    page_tokens=page_tokens, prefill_chunk=prefill_chunk, replicas=replicas)
    if replicas > 1:
        result.metrics["total_chips"] = replicas * sum(len(c.system.chips) for c, _ in groups)
    if runtime is not None:
        result.metrics["runtime"] = runtime
    if any(b.chips > 1 for _, b in groups):
        for role, (_, b) in zip(("prefill", "decode"), groups):
            result.metrics.update({f"{role}_chips": b.chips, **{f"{role}_{k}": v for k, v in b.split.items()}})
    return result


def group(model, system, *, chips: int | None = None, tp: int | None = None, pp: int | None = None,
          ep: int | None = None, bucket: int = DEFAULT_BUCKET, dtype: str = "bf16", costs: StepCosts | None = None,
          flag: str = "--", runtime: str | None = None, kv_dtype: str | None = None) -> tuple[StepCosts, KVBudget]:
    """One replica's step costs and KV budget: ``chips`` of ``system``'s kind (a name, path or
    System) split ``tp``/``pp``/``ep`` as ``predict`` splits them; ``flag`` prefixes the option
    names in errors (``--prefill-`` for a pair's prefill group); ``runtime`` the serving stack's
    profile every step is costed with (checked here, before anything runs)."""
    from asicsim.api import system as load_sys
    from asicsim.hardware import load_runtime

    for name, v in (("chips", chips), ("tp", tp), ("pp", pp), ("ep", ep)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{flag}{name}", None, f"must be a whole number at least 1, got {v!r}")
    sys_ = load_sys(system, chips)
    layout = {k: v for k, v in (("tp", tp), ("pp", pp), ("ep", ep)) if v is not None}
    if runtime is not None:
        load_runtime(runtime)  # an unknown profile is refused now, not at the first step's cost
    costs = costs or StepCosts(model, sys_, bucket=bucket, dtype=dtype, layout=layout, runtime=runtime,
                               kv_dtype=kv_dtype)
    return costs, kv_budget(model, sys_, dtype, layout, kv_dtype)


def table(result: ServeResult, title: str) -> str:
    """The metrics as text: percentiles per latency kind, then the rates and batch figures."""
    from asicsim.tables import Table, render_text

    m = result.metrics

    def ms(v):
        return "-" if v is None else f"{v:,.2f}"

    rows = [[label, *(ms(m[f"{key}_p{q}_ms"]) for q in (50, 90, 99)), ms(m[f"{key}_mean_ms"])]
            for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("latency", "end-to-end latency"),
                               ("queue", "queueing delay"), ("max_gap", "longest gap between tokens"))]
    how = f"{m['scheduler']} batching" + (f" ({m['chunk_tokens']} tokens a step)" if m.get("chunk_tokens") else "")
    if m["scheduler"] == "disaggregated":
        chunked = f" (chunked, {m['prefill_chunk_tokens']} tokens a step)" if m.get("prefill_chunk_tokens") else ""
        how = f"prefill on {m['prefill_system']}{chunked}, decode on {m['decode_system']} (continuous)"
    lat = Table(f"{title}: {m['requests']} requests, {how} (max batch {m['max_batch']})",
                ["ms", "p50", "p90", "p99", "mean"], rows)
    rates = [["throughput", f"{m['throughput_tokens_per_s']:,.1f} tokens/s"],
             ["request rate", f"{m['request_rate_per_s']:,.3f} requests/s"],
             ["goodput", f"{m['goodput_requests_per_s']:,.3f} requests/s, {m['goodput_tokens_per_s']:,.1f} tokens/s "
                         f"({m['slo_attainment']:.1%} of requests meet TTFT <= {m['slo_ttft_ms']:g} ms, "
                         f"TPOT <= {m['slo_tpot_ms']:g} ms)"],
             ["mean batch (decode)", "-" if m["mean_batch"] is None else f"{m['mean_batch']:.2f}"],
             ["mean concurrency", f"{m['mean_concurrency']:.2f}"],
             ["KV reserved (decode)", "-" if m["mean_kv_gb"] is None else
              f"mean {m['mean_kv_gb']:,.2f} GB, peak {m['peak_kv_gb']:,.2f} GB"],
             ["simulated span", f"{m['duration_s']:,.3f} s"],
             ["KV cache", f"{m['kv_capacity_gb']:,.2f} GB in {m['kv_in']}, "
                          + (f"paged ({m['page_tokens']} tokens a page), {m['preemptions']} preemptions"
                             if m.get("page_tokens") else "reserved in full at admission")],
             *([["replica", f"{m['chips']} chips, tp {m['tp']} x pp {m['pp']}"
                 + (f", ep {m['ep']}" if m['ep'] > 1 else "")]] if m.get("chips", 1) > 1 else []),
             *([["swap preemption", f"{m['swapped_gb']:,.3f} GB copied to and from host memory over "
                                    f"{m['host_link_gbps']:g} GB/s a chip + {m['host_link_latency_us']:g} us a copy: "
                                    f"{m['swap_ms_total']:,.3f} ms"]] if m.get("preemption") == "swap" else []),
             *([["replicas", f"{m['replicas']} behind one queue, {m.get('total_chips', m['replicas'])} chips in all "
                             "(each request to the replica with the fewest outstanding); the batch and KV figures "
                             "above are per replica, the preemptions all of theirs"]]
               if m.get("replicas", 1) > 1 else []),
             ["step shapes simulated", f"{m['step_shapes_simulated']} (contexts rounded up to {m['bucket']} tokens)"]]
    if m["scheduler"] == "disaggregated":
        rates[-2][0] = "KV cache (decode)"
        rates[-1:-1] = [
            ["KV cache (prefill)", f"{m['prefill_kv_capacity_gb']:,.2f} GB in {m['prefill_kv_in']}, a prompt's held "
                                   "until it has crossed the link"],
            ["KV link", f"{m['kv_link_gbps']:g} GB/s"
                        + (f" x {m['kv_link_lanes']} chips' links" if m.get("kv_link_lanes", 1) > 1 else "")
                        + f", {m['kv_link_latency_us']:g} us; mean transfer {m['kv_transfer_mean_ms'] or 0:,.3f} ms"]]
        if m.get("replicas", 1) > 1:
            rates[-1:-1] = [["replicas", f"{m['replicas']} pairs behind one queue, {m['total_chips']} chips in all "
                                         "(each request to the pair with the fewest outstanding); the batch and KV "
                                         "figures above are per pair, the preemptions all of theirs"]]
        if "prefill_chips" in m:
            rates[-1:-1] = [["groups", "; ".join(
                f"{role} {m[f'{role}_chips']} chips, tp {m[f'{role}_tp']} x pp {m[f'{role}_pp']}"
                + (f", ep {m[f'{role}_ep']}" if m[f"{role}_ep"] > 1 else "") for role in ("prefill", "decode"))]]
    notes = list(result.notes)
    return render_text([lat, Table("", ["measure", "value"], rates, notes=notes, left=(1,))])
