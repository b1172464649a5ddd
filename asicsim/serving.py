"""Serving: a stream of requests through one model replica, scheduled over simulated time.

What is simulated: requests arrive (Poisson at a rate, a closed loop of ``concurrency`` users, or
a CSV trace); a scheduler (``static`` or ``continuous``) forms batches over simulated time in a
plain discrete-event loop; each iteration's duration is a step of the real pipeline (compile →
engine), so queueing, batching and the KV-cache limit are simulated, not estimated.

Step costs: one ``predict(model, system, batch=B, prompt=C, generate=2)`` gives both the prefill
time of B prompts of C tokens (``ttft_ms``) and one decode step of B sequences at context C
(``tpot_ms``); each (B, C) is simulated once and memoised (:class:`StepCosts`).

What is approximated (say so when quoting numbers):

- Context is bucketed: C is rounded UP to a multiple of ``bucket`` tokens (default 256; 1 is
  exact). A batch of sequences of different lengths costs as B sequences at their mean context
  (attention reads the sum of the contexts; weights are read once), rounded up; a batch of
  prompts of different lengths prefills as B prompts of their mean length, rounded up (packed,
  not padded), for both schedulers alike.
- An iteration that admits new requests runs their prefill as one step, then one decode step for
  the requests already running (real engines fuse the two into one mixed step).
- The KV cache is reserved in full (prompt + output tokens) when a request is admitted: no
  paging, no preemption. Capacity is the memory that holds the KV cache (HBM, or the KV SRAM of
  an SRAM-only or hardwired chip) less the weights, over the chips of one replica.
- Static batching keeps a finished sequence's slot until the whole batch ends (the batch is
  decoded at its full size, as padded static batching does), but the request's latency ends at
  its own last token.
- One replica; no serving-stack overheads (the ``bare`` runtime profile).
"""

from __future__ import annotations

import csv
import heapq
import io
import math
from collections import deque
from dataclasses import dataclass, field
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
                 layout: dict | None = None):
        if bucket < 1:
            raise InputError("--bucket", None, f"must be at least 1 token, got {bucket}")
        self.model, self.system, self.bucket, self.dtype = model, system, bucket, dtype
        self.layout = dict(layout or {})  # tp/pp/ep of the replica's split (predict's keywords)
        self.cache: dict[tuple[int, int], tuple[float, float]] = {}

    def rounded(self, context: float) -> int:
        return int(math.ceil(context / self.bucket) * self.bucket)

    def _costs(self, batch: int, context: float) -> tuple[float, float]:
        key = (batch, self.rounded(context))
        hit = self.cache.get(key)
        if hit is None:
            from asicsim.api import predict

            m = predict(self.model, self.system, batch=key[0], prompt=key[1], generate=2, dtype=self.dtype,
                        **self.layout).metrics
            hit = self.cache[key] = (m.ttft_ms * 1e6, m.tpot_ms * 1e6)
        return hit

    def prefill_ns(self, batch: int, mean_prompt: float) -> float:
        """Prefill of ``batch`` prompts of ``mean_prompt`` tokens (rounded up to the bucket)."""
        return self._costs(batch, mean_prompt)[0]

    def decode_ns(self, batch: int, mean_context: float) -> float:
        """One decode step of ``batch`` sequences whose KV holds ``mean_context`` tokens."""
        return self._costs(batch, mean_context)[1]


@dataclass
class _Live:
    req: Request
    arrival_ns: float
    admitted_ns: float = math.nan
    first_ns: float = math.nan
    finish_ns: float = math.nan
    generated: int = 0


@dataclass(frozen=True)
class KVBudget:
    """Bytes free for the KV cache in one replica and what each request reserves there."""

    capacity_bytes: float
    kv_in: str
    model: object
    numerics: object
    split: dict = field(default_factory=dict)  # the replica's tp, pp and ep (from the plan)

    def need(self, req: Request) -> float:
        return (self.model.kv_bytes(1, req.prompt + req.output, self.numerics)
                + self.model.state_bytes(1, self.numerics))


def kv_budget(model, system, dtype: str = "bf16", layout: dict | None = None) -> KVBudget:
    """The KV cache capacity of one replica: the memory holding it less the weights there
    (``layout``: the tp/pp/ep split, as :class:`StepCosts` takes it)."""
    from asicsim.compile import Workload as StepWorkload, plan_run
    from asicsim.dtypes import parse_dtype

    plan = plan_run(model, system, StepWorkload(batch=1, prompt=1, generate=1, dtype=parse_dtype(dtype),
                                                **(layout or {})))
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
                    {"tp": par.tp, "pp": par.pp, "ep": par.ep})


@dataclass
class ServeResult:
    """Per-request records, the event log ((time_ns, +1 arrival / -1 departure) in order),
    the decode steps as (start_ns, duration_ns, batch, KV bytes reserved), and the summary metrics."""

    records: list[dict]
    events: list[tuple[float, int]]
    steps: list[tuple[float, float, int, float]]
    metrics: dict
    notes: list[str] = field(default_factory=list)


def simulate(workload: Workload, costs: StepCosts, budget: KVBudget, *, scheduler: str = "continuous",
             max_batch: int | None = None, slo_ttft_ms: float = SLO_TTFT_MS,
             slo_tpot_ms: float = SLO_TPOT_MS) -> ServeResult:
    """Serve ``workload`` with ``scheduler`` (``static`` or ``continuous``) in simulated time."""
    if scheduler not in ("static", "continuous"):
        raise InputError("--scheduler", None, f"must be static or continuous, got {scheduler!r}")
    for name, v in (("--slo-ttft-ms", slo_ttft_ms), ("--slo-tpot-ms", slo_tpot_ms)):
        if not v > 0:
            raise InputError(name, None, f"must be a positive number of milliseconds, got {v}")
    model = budget.model
    ctx = model.max_context
    for r in workload.requests:
        if ctx is not None and r.prompt + r.output > ctx:
            raise InputError(workload.source, f"request {r.id}",
                             f"prompt {r.prompt} + output {r.output} tokens exceed {model.name}'s context of "
                             f"{ctx} tokens (max_position_embeddings)")
    biggest = max(budget.need(r) for r in workload.requests)
    fits = int(budget.capacity_bytes // biggest) if biggest > 0 else MAX_BATCH_CAP
    if fits < 1:
        raise InputError(str(costs.system.name), None,
                         f"{model.name}'s KV cache for its longest request ({biggest / 1e9:.3f} GB) does not fit "
                         f"in the {budget.capacity_bytes / 1e9:.3f} GB of {budget.kv_in} left beside the weights")
    if max_batch is None:
        max_batch = min(fits, MAX_BATCH_CAP)
    elif max_batch < 1:
        raise InputError("--max-batch", None, f"must be at least 1, got {max_batch}")

    reqs = workload.requests
    arrivals: list[tuple[float, int]] = []  # heap of (arrival_ns, request index)
    sent = len(reqs) if workload.concurrency is None else min(workload.concurrency, len(reqs))
    for i in range(sent):
        heapq.heappush(arrivals, (0.0 if workload.concurrency else reqs[i].arrival_ns, i))
    live: list[_Live | None] = [None] * len(reqs)
    waiting: deque[_Live] = deque()
    events: list[tuple[float, int]] = []
    steps: list[tuple[float, float, int, float]] = []
    done = 0
    t = 0.0
    kv_used = 0.0

    def arrive_until(now: float) -> None:
        while arrivals and arrivals[0][0] <= now:
            at, i = heapq.heappop(arrivals)
            lv = live[i] = _Live(reqs[i], at)
            waiting.append(lv)
            events.append((at, +1))

    def finish(lv: _Live, now: float) -> None:
        nonlocal done, sent
        lv.finish_ns = now
        events.append((now, -1))
        done += 1
        if workload.concurrency is not None and sent < len(reqs):
            heapq.heappush(arrivals, (now, sent))
            sent += 1

    def prefill(batch: list[_Live]) -> None:
        nonlocal t
        for lv in batch:
            lv.admitted_ns = t
        t += costs.prefill_ns(len(batch), sum(lv.req.prompt for lv in batch) / len(batch))
        for lv in batch:
            lv.first_ns, lv.generated = t, 1

    def decode(batch: list[_Live], slots: int) -> None:
        """One decode step: ``batch`` sequences advance; the step costs ``slots`` sequences."""
        nonlocal t
        mean_ctx = sum(lv.req.prompt + lv.generated - 1 for lv in batch) / len(batch)
        dt = costs.decode_ns(slots, mean_ctx)
        steps.append((t, dt, slots, kv_used))
        t += dt
        for lv in batch:
            lv.generated += 1

    running: list[_Live] = []
    while done < len(reqs):
        arrive_until(t)
        if not waiting and not running:
            t = max(t, arrivals[0][0])
            continue
        if scheduler == "static":
            batch = []
            while waiting and len(batch) < max_batch and kv_used + budget.need(waiting[0].req) <= budget.capacity_bytes:
                lv = waiting.popleft()
                kv_used += budget.need(lv.req)
                batch.append(lv)
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
            kv_used = 0.0
            continue
        # continuous: admit what fits, prefill the newcomers, one decode step for the others
        new = []
        while (waiting and len(running) + len(new) < max_batch
               and kv_used + budget.need(waiting[0].req) <= budget.capacity_bytes):
            lv = waiting.popleft()
            kv_used += budget.need(lv.req)
            new.append(lv)
        old = running
        if new:
            prefill(new)
        if old:
            decode(old, len(old))
        running = []
        for lv in old + new:
            if lv.generated >= lv.req.output:
                finish(lv, t)
                kv_used -= budget.need(lv.req)
            else:
                running.append(lv)
        if not running:
            kv_used = 0.0  # no drift from float sums

    records = [_record(lv) for lv in live]
    events.sort(key=lambda e: (e[0], -e[1]))
    m = _metrics(records, events, steps, slo_ttft_ms, slo_tpot_ms)
    m.update({"scheduler": scheduler, "max_batch": max_batch, "kv_capacity_gb": budget.capacity_bytes / 1e9,
              "kv_in": budget.kv_in, "bucket": costs.bucket, "step_shapes_simulated": len(costs.cache)})
    notes = []
    if m["requests_meeting_slo"] == 0:
        notes.append(f"no request met the SLO (TTFT <= {slo_ttft_ms:g} ms, TPOT <= {slo_tpot_ms:g} ms): "
                     "goodput is 0")
    return ServeResult(records, events, steps, m, notes)


def _record(lv: _Live) -> dict:
    r = lv.req
    tpot = (lv.finish_ns - lv.first_ns) / (r.output - 1) / 1e6 if r.output > 1 else None
    return {"id": r.id, "arrival_ms": lv.arrival_ns / 1e6, "prompt": r.prompt, "output": r.output,
            "queue_ms": (lv.admitted_ns - lv.arrival_ns) / 1e6, "ttft_ms": (lv.first_ns - lv.arrival_ns) / 1e6,
            "tpot_ms": tpot, "latency_ms": (lv.finish_ns - lv.arrival_ns) / 1e6,
            "finish_ms": lv.finish_ns / 1e6}


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
    for name in ("ttft_ms", "tpot_ms", "latency_ms", "queue_ms"):
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
          pp: int | None = None, ep: int | None = None) -> ServeResult:
    """Serve ``workload`` of ``model`` (a name, path or ModelSpec) on ``system``; pass ``costs``
    to share memoised step costs between runs of the same model, system, split and bucket.
    ``chips``, ``tp``, ``pp`` and ``ep`` choose the replica's chips and split as ``predict``'s
    do (``chips`` of the system's kind on its network; default tensor parallel over all); the
    whole system is one replica."""
    from asicsim.api import system as load_sys
    from asicsim.model import ModelSpec, load_model

    if chips is not None and chips < 1:
        raise InputError("--chips", None, f"must be at least 1, got {chips}")
    spec = model if isinstance(model, ModelSpec) else load_model(model)
    sys_ = load_sys(system, chips)
    layout = {k: v for k, v in (("tp", tp), ("pp", pp), ("ep", ep)) if v is not None}
    costs = costs or StepCosts(spec, sys_, bucket=bucket, dtype=dtype, layout=layout)
    budget = kv_budget(spec, sys_, dtype, layout)
    result = simulate(workload, costs, budget, scheduler=scheduler, max_batch=max_batch,
                      slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms)
    result.metrics.update({"chips": len(sys_.chips), **budget.split})
    return result


def table(result: ServeResult, title: str) -> str:
    """The metrics as text: percentiles per latency kind, then the rates and batch figures."""
    from asicsim.tables import Table, render_text

    m = result.metrics

    def ms(v):
        return "-" if v is None else f"{v:,.2f}"

    rows = [[label, *(ms(m[f"{key}_p{q}_ms"]) for q in (50, 90, 99)), ms(m[f"{key}_mean_ms"])]
            for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("latency", "end-to-end latency"),
                               ("queue", "queueing delay"))]
    lat = Table(f"{title}: {m['requests']} requests, {m['scheduler']} batching (max batch {m['max_batch']})",
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
             ["KV cache", f"{m['kv_capacity_gb']:,.2f} GB in {m['kv_in']}"],
             *([["replica", f"{m['chips']} chips, tp {m['tp']} x pp {m['pp']}"
                 + (f", ep {m['ep']}" if m['ep'] > 1 else "")]] if m.get("chips", 1) > 1 else []),
             ["step shapes simulated", f"{m['step_shapes_simulated']} (contexts rounded up to {m['bucket']} tokens)"]]
    notes = list(result.notes)
    return render_text([lat, Table("", ["measure", "value"], rates, notes=notes, left=(1,))])
