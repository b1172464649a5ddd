"""Request-load validation rows (issue 11): trtllm-bench at maximum load, MLPerf Inference
Llama-2-70B offline and server, JetStream on TPU v5e-8, predicted through the serving model.

Each row of ``asicsim/data/measurements.csv`` whose metric is ``output_tokens_per_s``,
``offline_tokens_per_s`` or ``server_tokens_per_s`` has a :class:`Setup` here: what the
benchmark ran, copied from the row's conditions and its source (no number here is fitted to a
row's measured value). How each is simulated:

- **Maximum load / offline** (trtllm-bench, MLPerf Offline, JetStream's "all sent at t=0"):
  every request arrives at time 0; continuous batching admits as many as the batch cap and the
  KV cache allow, and throughput is the output tokens over the time to finish them all.
- **Server** (MLPerf Server): Poisson arrivals; a submitter reports the highest rate its system
  serves within the limits (p99 TTFT <= 2 s, p99 TPOT <= 200 ms), so the prediction is the
  highest rate per replica at which the simulated p99s stay within them (found by doubling or
  halving from the published rate, then bisection: ``SERVER_STEPS`` runs), times the mean
  output tokens and the replicas. A run of ``CAP_REQUESTS`` requests from an empty system
  queues less than a ten-minute MLPerf run near the limit, so this leans optimistic.
- **Replicas**: "4 TP2 instances" on eight GPUs is four independent replicas of two GPUs. One
  replica is simulated with its share of the requests and its throughput multiplied by the
  replica count.
- **Batch cap**: the one the submission states (MLPerf "max batch", JetStream "batch size"),
  else the runtime's own rule: trtllm-bench sizes the batch to the requests of the dataset's
  mean ISL + OSL that the KV cache holds, at most 4,096 / pp
  (``tensorrt_llm/bench/build/tuning.py``, ``finetune_setting``: docs/sources.md L7); vLLM's
  default ``max_num_seqs`` is 256. Within the cap, the KV cache is paged as these runtimes page it
  (``--kv-cache paged``: vLLM's 16-token blocks; TensorRT-LLM's block size, a power of two, taken
  as 32), except JetStream's, which gives each batch slot a whole cache of the stated length
  (reserved in full).
- **Requests simulated**: never more than the benchmark sent per replica. Equal lengths run in
  identical waves of the batch cap, so whole waves up to ``CAP_REQUESTS`` requests (at least
  one wave) give the benchmark's throughput. Variable lengths: ``CAP_REQUESTS`` requests (at
  least the batch cap); when that is fewer than the benchmark's, throughput is taken in the
  steady state (:func:`steady_throughput`: from a quarter of the way to the last admission
  until it), after the warm-up from an empty system and before the batch drains, since a
  benchmark of many more requests spends a much smaller share of its time in either.
- **Step costs** (:class:`GridCosts`): each step's prefill and decode time come from
  ``predict`` runs at a few (batch, context) corners, interpolated linearly in batch and in
  context: batches 1 and the row's batch cap; contexts the row's prompt and prompt + output
  (equal lengths) or 64, 256, 1,024 and 2,048 tokens (variable lengths). A decode step is close
  to affine in both (weights read once, KV reads proportional to batch × context) and a
  prefill step close to proportional to its tokens, so the interpolation costs little accuracy
  except near the bend from memory- to compute-bound, where the chord is pessimistic; a corner
  whose KV cache would not fit is replaced by a halved one or by extending the line through the
  corners below. Rows with the same model, chip, split and dtype share their corners.
- **Runtime**: the row's ``runtime`` column, passed to every corner's ``predict`` run (so a
  step of B sequences pays the profile's ``step_ns + B × sequence_step_ns``; linear in batch,
  the grid's interpolation keeps it exact). trtllm-bench rows run ``trtllm-bench`` (TensorRT-LLM's
  PyTorch backend: a per-sequence step cost set from P38); the MLPerf rows ``bare``, no profile
  being calibrated for their stacks (MLPerf TRT-LLM, vLLM on ROCm). The JetStream rows run
  ``jetstream-pytorch``, which shapes the steps as that server ran them, read from its code
  (docs/sources.md J1-J5), nothing fitted: each prompt prefills alone, padded up to a power-of-two
  bucket (16 ... 1,024; the buckets are grid corners), between decode steps on the same chips;
  every decode step computes all of the batch's slots, live or not, and attends over each slot's
  whole 2,048-token cache (masked), not its context. The benchmark counts the whole run (all
  2,000 requests are simulated), so the ramp-up and the drain, fixed-shape steps with few live
  slots, are in it as they were in the measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asicsim.serving import (SLO_TPOT_MS, SLO_TTFT_MS, VARIABLE_CONTEXTS, GridCosts, KVBudget,
                             Request, Workload, kv_budget, simulate, steady_throughput)
from asicsim.serving_lengths import preset

CAP_REQUESTS = 2048  # most requests simulated for one row (at least the batch cap; see above)
TRTLLM_BATCH_CAP = 4096  # trtllm-bench: min(KV-cache requests, 4096) / pp (docs/sources.md L7)
VLLM_MAX_NUM_SEQS = 256  # vLLM's default max_num_seqs (asicsim.serving.MAX_BATCH_CAP's source)
VLLM_PAGE_TOKENS = 16  # vLLM's default KV block size (Kwon et al., SOSP 2023; docs/serving.md)
TRTLLM_PAGE_TOKENS = 32  # TensorRT-LLM: block-paged KV cache, tokens per block a power of two; 32 assumed
METRICS = ("output_tokens_per_s", "offline_tokens_per_s", "server_tokens_per_s")
SERVER_STEPS = 7  # simulated rates per server row: doubling or halving to a bracket, then bisection


@dataclass(frozen=True)
class _MemoBudget(KVBudget):
    """The KV budget with each request's reservation memoised by its token count (the same
    bytes as :meth:`KVBudget.need`, computed once per length instead of once per admission test)."""

    def need(self, req: Request) -> float:
        memo = self.__dict__.setdefault("_memo", {})
        tokens = req.prompt + req.output
        hit = memo.get(tokens)
        if hit is None:
            hit = memo[tokens] = KVBudget.need(self, req)
        return hit


class Pending(Exception):
    """A row the serving model cannot express yet; the message says why."""


@dataclass(frozen=True)
class Setup:
    """What one request-load benchmark ran. ``lengths``: a preset name, or None for the row's
    fixed prompt/generate. ``replicas`` × ``tp`` × ``pp`` is the row's chip count.
    ``batch_cap``: the stated cap, or "trtllm" / "vllm" for the runtime's own rule.
    ``rate``: server samples/s over the whole system (None: everything at t=0)."""

    scenario: str
    requests: int
    lengths: str | None = None
    replicas: int = 1
    tp: int = 1
    pp: int = 1
    batch_cap: int | str = "trtllm"
    rate: float | None = None
    assumption: str = ""
    kv_cache: str = "paged"  # TensorRT-LLM and vLLM page their KV caches; JetStream keeps a slot per sequence
    page_tokens: int = 32


def _trtllm(requests: int, tp: int = 1) -> Setup:
    return Setup("max load", requests, tp=tp, page_tokens=TRTLLM_PAGE_TOKENS)


SETUPS: dict[str, Setup] = {
    # trtllm-bench throughput, PyTorch backend, infinite request rate; requests per the perf overview
    "P38": _trtllm(30_000), "P39": _trtllm(3_000), "P40": _trtllm(1_500), "P41": _trtllm(1_000),
    "P42": _trtllm(30_000), "P43": _trtllm(3_000), "P44": _trtllm(1_500), "P45": _trtllm(1_000),
    "P46": _trtllm(30_000, tp=2), "P47": _trtllm(3_000, tp=2),
    "P48": _trtllm(30_000), "P49": _trtllm(3_000),
    # MLPerf Inference Llama-2-70B on OpenOrca (24,576 samples)
    "P61": Setup("offline", 24_576, "openorca", replicas=4, tp=2, page_tokens=TRTLLM_PAGE_TOKENS),
    "P62": Setup("server", 24_576, "openorca", replicas=4, tp=2, rate=70.42, page_tokens=TRTLLM_PAGE_TOKENS),
    "P63": Setup("offline", 24_576, "openorca", replicas=4, tp=2, batch_cap=896, page_tokens=TRTLLM_PAGE_TOKENS),
    "P64": Setup("offline", 24_576, "openorca", replicas=8, batch_cap=806, page_tokens=TRTLLM_PAGE_TOKENS),
    "P65": Setup("server", 24_576, "openorca", replicas=8, batch_cap=896, rate=100.35, page_tokens=TRTLLM_PAGE_TOKENS),
    "P66": Setup("offline", 24_576, "openorca", replicas=8, batch_cap="vllm", page_tokens=VLLM_PAGE_TOKENS,
                 assumption="layout not stated: eight one-GPU replicas assumed (the model fits one MI300X, as in P69)"),
    "P67": Setup("server", 24_576, "openorca", replicas=8, batch_cap="vllm", rate=71.74, page_tokens=VLLM_PAGE_TOKENS,
                 assumption="layout not stated: eight one-GPU replicas assumed (the model fits one MI300X, as in P69)"),
    "P68": Setup("offline", 24_576, "openorca", replicas=8, batch_cap="vllm", page_tokens=VLLM_PAGE_TOKENS,
                 assumption="layout not stated: eight one-GPU replicas assumed; the host CPU (EPYC Turin) is not "
                            "modelled, so P66 and P68 get the same prediction"),
    "P69": Setup("offline", 24_576, "openorca", batch_cap="vllm", page_tokens=VLLM_PAGE_TOKENS),
    # JetStream benchmark_serving.py on TPU v5e-8: ShareGPT, 2,000 prompts at t=0; batch from the row
    # JetStream gives each of its batch slots a whole cache of the stated length: nothing paged (the
    # rows' runtime, jetstream-pytorch, reserves and attends over 2,048 tokens per slot)
    **{pid: Setup("max load", 2_000, "sharegpt", tp=8, batch_cap="row", kv_cache="reserved") for pid in
       ("P70", "P71", "P72", "P73", "P74", "P75")},
}


class Runner:
    """Predicts request-load rows, sharing one :class:`GridCosts` per model, chip, split and dtype."""

    def __init__(self, runtime=None):
        self.runtime = runtime  # a profile for every row (None: each row's own ``runtime`` column)
        self.grids: dict[tuple, GridCosts] = {}
        self.last: dict[str, dict] = {}  # row id -> the serving metrics behind its prediction

    def predict(self, row: dict) -> float:
        from asicsim.api import system as load_system
        from asicsim.hardware import load_runtime
        from asicsim.model import load_model

        setup = SETUPS.get(row["id"])
        if setup is None:
            raise Pending(f"{row['id']}: no serving setup recorded for this row")
        chips = int(row["chips"] or 1)
        if setup.replicas * setup.tp * setup.pp != chips:
            raise ValueError(f"{row['id']}: {setup.replicas} replicas x tp {setup.tp} x pp {setup.pp} "
                             f"is not the row's {chips} chips")
        replica_chips = setup.tp * setup.pp
        layout = {"tp": setup.tp, "pp": setup.pp} if replica_chips > 1 else {}
        runtime = load_runtime(self.runtime if self.runtime is not None else row.get("runtime") or "bare")
        kv = row.get("kv_dtype") or None  # the KV cache's format (None: the dtype's default)
        key = (row["model"], row["chip"], replica_chips, setup.tp, setup.pp, row["dtype"], kv, runtime)
        if key not in self.grids:
            model = load_model(row["model"])
            system = load_system(row["chip"], replica_chips if replica_chips > 1 else None)
            self.grids[key] = GridCosts(model, system, dtype=row["dtype"], layout=layout, runtime=runtime,
                                        kv_dtype=kv)
        costs = self.grids[key]
        b = kv_budget(costs.model, costs.system, row["dtype"], layout, kv)
        budget = _MemoBudget(b.capacity_bytes, b.kv_in, b.model, b.numerics, b.split, b.chips)
        per_replica = math.ceil(setup.requests / setup.replicas)
        pairs_for = _lengths(setup, row)
        sample = pairs_for(256)
        mean_request = Request(0, 0.0, round(sum(p for p, _ in sample) / len(sample)),
                               round(sum(o for _, o in sample) / len(sample)))
        cap = _batch_cap(setup, row, int(budget.capacity_bytes // budget.need(mean_request)))
        costs.batches.add(cap)
        if setup.lengths is None:
            costs.contexts.update({int(row["prompt"]), int(row["prompt"]) + int(row["generate"])})
        else:
            costs.contexts.update(VARIABLE_CONTEXTS)
        costs.contexts.update(runtime.prefill_buckets)  # a padded prefill is a corner, not a chord
        costs.memo.clear()  # interpolations change with the anchors
        if setup.lengths is None:  # equal lengths: whole waves of the batch cap
            n = min(per_replica, cap * max(1, CAP_REQUESTS // cap))
        else:
            n = min(per_replica, max(cap, CAP_REQUESTS))
        pairs = pairs_for(n)
        if setup.rate is not None:
            return self._server(row, setup, costs, budget, cap, pairs)
        wl = Workload(tuple(Request(i, 0.0, p, o) for i, (p, o) in enumerate(pairs)), source=row["id"])
        result = simulate(wl, costs, budget, max_batch=cap, kv_cache=setup.kv_cache, page_tokens=setup.page_tokens)
        m = result.metrics
        truncated = n < per_replica and setup.lengths is not None
        per_s = steady_throughput(result) if truncated else m["throughput_tokens_per_s"]
        self.last[row["id"]] = {**m, "replicas": setup.replicas, "simulated_requests": n, "batch_cap": cap,
                                "grid_corners": costs.corners, "window": "steady state" if truncated
                                else "whole run", "replica_tokens_per_s": per_s}
        return per_s * setup.replicas

    def _server(self, row, setup, costs, budget, cap, pairs) -> float:
        """MLPerf Server: the highest Poisson rate per replica at which the simulated p99 TTFT and
        p99 TPOT stay within the server limits (bisection from the published rate), as
        submitters pick theirs; its output tokens/s over all replicas is the prediction."""
        import numpy as np

        gaps = np.random.default_rng(0).exponential(1.0, size=len(pairs))
        unit = np.cumsum(gaps) - gaps[0]  # arrival times at 1 request/s; scaled for each rate

        def run(rate):
            wl = Workload(tuple(Request(i, float(a) * 1e9 / rate, p, o)
                                for i, (a, (p, o)) in enumerate(zip(unit, pairs))), source=row["id"])
            m = simulate(wl, costs, budget, max_batch=cap, kv_cache=setup.kv_cache,
                         page_tokens=setup.page_tokens).metrics
            return m, m["ttft_p99_ms"] <= SLO_TTFT_MS and (m["tpot_p99_ms"] or 0.0) <= SLO_TPOT_MS

        published = setup.rate / setup.replicas
        good, bad, best = 0.0, None, None
        rate = published
        for _ in range(SERVER_STEPS):
            m, ok = run(rate)
            if ok:
                good, best = rate, m
                rate = rate * 2 if bad is None else (rate + bad) / 2
            else:
                bad = rate
                rate = rate / 2 if good == 0.0 else (good + rate) / 2
        if best is None:
            raise Pending(f"{row['id']}: no rate down to {rate:.3g}/s per replica met the server limits")
        mean_out = sum(o for _, o in pairs) / len(pairs)
        self.last[row["id"]] = {**best, "replicas": setup.replicas, "simulated_requests": len(pairs),
                                "batch_cap": cap, "grid_corners": costs.corners,
                                "window": f"highest rate within the limits: {good:.3g}/s per replica "
                                          f"(published {published:.3g}/s)", "rate_per_replica": good}
        return good * mean_out * setup.replicas


def _lengths(setup: Setup, row: dict):
    """A function n -> n (prompt, output) pairs for the row (seed 0)."""
    if setup.lengths is None:
        p, g = int(row["prompt"]), int(row["generate"])
        return lambda n: [(p, g)] * n
    chosen = preset(setup.lengths)
    return lambda n: chosen.draw(n, seed=0)


def _batch_cap(setup: Setup, row: dict, fits_mean: int) -> int:
    """The most sequences in a batch; the KV cache admits fewer when it is full. ``fits_mean``:
    requests of the mean length the KV cache holds (trtllm-bench's own sizing)."""
    if setup.batch_cap == "trtllm":
        if fits_mean < 1:
            raise Pending(f"{row['id']}: a request of the mean length does not fit beside the weights")
        return min(fits_mean, TRTLLM_BATCH_CAP) // setup.pp or 1
    if setup.batch_cap == "vllm":
        return VLLM_MAX_NUM_SEQS
    if setup.batch_cap == "row":
        return int(row["batch"])
    return int(setup.batch_cap)


def describe(row_id: str, m: dict) -> str:
    """One line on how a row was simulated, for the validation table's notes."""
    setup = SETUPS[row_id]
    replicas = f"{m['replicas']} replicas x " if m["replicas"] > 1 else ""
    split = f"tp {setup.tp}" + (f" pp {setup.pp}" if setup.pp > 1 else "")
    head = (f"{setup.scenario}, {replicas}{split}, {m['simulated_requests']:,} requests simulated per replica, "
            f"batch cap {m['batch_cap']:,} (mean {m['mean_batch']:,.0f}), {m['window']}")
    tail = (f"TTFT p50 {m['ttft_p50_ms']:,.0f} ms p99 {m['ttft_p99_ms']:,.0f} ms, "
            f"TPOT mean {m['tpot_mean_ms']:,.1f} ms p99 {m['tpot_p99_ms']:,.1f} ms")
    extra = f"; {setup.assumption}" if setup.assumption else ""
    return f"{head}; {tail}{extra}"
