"""Serving schedulers beyond continuous batching: chunked prefill, and a paged KV cache with preemption."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from asicsim.api import predict
from asicsim.errors import InputError
from asicsim.serving import Request, StepCosts, Workload, closed_loop, kv_budget, poisson, simulate


@pytest.fixture(scope="module")
def world(llama8b, h100):
    return llama8b, h100, kv_budget(llama8b, h100), StepCosts(llama8b, h100, bucket=512)


def with_long_prompt(seed: int) -> Workload:
    """Short requests (Poisson, seeded) and one 8,000-token prompt arriving while they decode."""
    short = poisson(100.0, 24, prompt=(128, 384), output=(8, 32), seed=seed).requests
    reqs = sorted(short + (Request(-1, 0.3e9, 8000, 4),), key=lambda r: r.arrival_ns)
    return Workload(tuple(replace(r, id=i) for i, r in enumerate(reqs)))


def test_chunked_prefill_keeps_running_requests_flowing(world):
    model, system, budget, costs = world  # bucket 512: few shapes, and chunks of 512 stay exact
    wl = with_long_prompt(seed=4)
    long_id = next(r.id for r in wl.requests if r.prompt == 8000)
    res = {s: simulate(wl, costs, budget, scheduler=s) for s in ("continuous", "chunked")}

    def tail(s, key):
        return np.percentile([x[key] for x in res[s].records if x["id"] != long_id], 99)

    # continuous stalls every running request for the whole 8,000-token prefill; chunked spreads it
    # over 512-token steps that also decode
    assert tail("chunked", "tpot_ms") < 0.8 * tail("continuous", "tpot_ms")
    assert tail("chunked", "max_gap_ms") < 0.3 * tail("continuous", "max_gap_ms")
    # the price: the long prompt's first token comes later
    ttft = {s: res[s].records[long_id]["ttft_ms"] for s in res}
    assert ttft["chunked"] > ttft["continuous"]
    assert res["chunked"].metrics["chunk_tokens"] == 512


def test_a_prompt_in_chunks_alone_costs_its_whole_prefill(llama8b, h100):
    """One request at a time: the chunks' marginal costs telescope to predict's TTFT, and the
    decode steps are predict's, whatever the chunk size."""
    costs = StepCosts(llama8b, h100, bucket=1)
    ref = predict(llama8b, h100, batch=1, prompt=96, generate=5).metrics
    for chunk in (32, 40, 512):
        r = simulate(closed_loop(1, 2, prompt=96, output=5), costs, kv_budget(llama8b, h100),
                     scheduler="chunked", chunk=chunk)
        for rec in r.records:
            assert rec["ttft_ms"] == pytest.approx(ref.ttft_ms, rel=1e-9)
            assert rec["tpot_ms"] == pytest.approx(ref.tpot_ms, rel=1e-6)


def test_chunk_budget_counts_the_decodes(world):
    """With 8 requests decoding and a budget of 8 tokens, no prefill can start until one finishes."""
    model, system, budget, costs = world
    wl = Workload(tuple([Request(i, 0.0, 64, 20) for i in range(8)] + [Request(8, 1.0, 64, 4)]))
    r = simulate(wl, costs, budget, scheduler="chunked", chunk=8)
    first_finish = min(x["finish_ms"] for x in r.records[:8])
    assert r.records[8]["ttft_ms"] > first_finish


def small(budget, wl, times):
    return replace(budget, capacity_bytes=max(budget.need(r) for r in wl.requests) * times)


@pytest.mark.parametrize("scheduler", ["continuous", "chunked"])
def test_paged_admits_more_than_full_reservation(world, scheduler):
    model, system, budget, costs = world
    wl = closed_loop(24, 48, prompt=128, output=(200, 600), seed=2)
    cap = small(budget, wl, 4.5)
    reserved = simulate(wl, costs, cap, scheduler=scheduler, max_batch=64).metrics
    paged = simulate(wl, costs, cap, scheduler=scheduler, max_batch=64, kv_cache="paged").metrics
    assert reserved["peak_admitted"] <= cap.capacity_bytes // min(budget.need(r) for r in wl.requests)
    assert paged["peak_admitted"] > 2 * reserved["peak_admitted"]
    assert paged["mean_batch"] > 1.5 * reserved["mean_batch"]
    assert paged["throughput_tokens_per_s"] > reserved["throughput_tokens_per_s"]


@pytest.mark.parametrize("scheduler", ["continuous", "chunked"])
def test_an_overfull_cache_preempts_and_still_finishes_everything(world, scheduler):
    model, system, budget, costs = world
    wl = closed_loop(16, 32, prompt=(64, 256), output=(300, 700), seed=5)
    cap = small(budget, wl, 3.0)
    r = simulate(wl, costs, cap, scheduler=scheduler, kv_cache="paged", page_tokens=16)
    assert r.metrics["preemptions"] > 0
    assert sum(x["preemptions"] for x in r.records) == r.metrics["preemptions"]
    assert all(np.isfinite(x["finish_ms"]) and x["tpot_ms"] > 0 for x in r.records)
    # every token was generated: each request's decode steps add up (its first token from a prefill)
    assert r.metrics["throughput_tokens_per_s"] * r.metrics["duration_s"] == pytest.approx(
        sum(q.output for q in wl.requests))
    # the KV log never shows more held than the cache holds, and the cache did fill
    held = np.array([kv for _, kv, _ in r.kv_log])
    assert held.max() <= cap.capacity_bytes
    assert held.max() > 0.9 * cap.capacity_bytes
    # KV held equals the pages of the admitted requests' tokens: re-derive it at the end of the run
    assert held[-1] == 0.0


def test_preemption_recomputes_the_victims_prefill(world):
    """A preempted request's latency carries the recompute: compared with a cache that holds all,
    the run takes longer and preempted requests' longest gap covers their re-prefill."""
    model, system, budget, costs = world
    wl = closed_loop(12, 12, prompt=512, output=600, seed=0)
    roomy = simulate(wl, costs, budget, kv_cache="paged")
    tight = simulate(wl, costs, small(budget, wl, 4.0), kv_cache="paged")
    assert roomy.metrics["preemptions"] == 0 and tight.metrics["preemptions"] > 0
    hit = [x for x in tight.records if x["preemptions"]]
    spared = [x for x in tight.records if not x["preemptions"]]
    assert min(x["max_gap_ms"] for x in hit) > max(x["max_gap_ms"] for x in spared)
    assert tight.metrics["duration_s"] > roomy.metrics["duration_s"]


def test_bad_scheduler_options(world):
    model, system, budget, costs = world
    wl = poisson(1.0, 3, prompt=8, output=2)
    for kw, says in (({"chunk": 0}, "--chunk"), ({"page_tokens": 0}, "--page-tokens"),
                     ({"kv_cache": "swap"}, "--kv-cache"),
                     ({"kv_cache": "paged", "scheduler": "static"}, "--kv-cache")):
        with pytest.raises(InputError, match=says):
            simulate(wl, costs, budget, **({"scheduler": "chunked"} | kw))


def test_serve_trace_has_kv_and_batch_counters(tmp_path):
    import json

    from click.testing import CliRunner

    from asicsim.cli import main

    out = tmp_path / "serve.json"
    args = ["serve", "--model", "llama-3.1-8b", "--system", "taalas-hc1", "--concurrency", "6", "--requests", "12",
            "--prompt", "256-900", "--generate", "16-200", "--kv-cache", "paged", "--trace", str(out), "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    counters = {}
    for e in json.loads(out.read_text())["traceEvents"]:
        if e["ph"] == "C":
            counters.setdefault(e["name"], []).append((e["ts"], e["args"]["value"]))
    assert set(counters) == {"KV cache held (GB)", "requests admitted", "decode batch"}
    kv = [v for _, v in counters["KV cache held (GB)"]]
    assert max(kv) <= m["kv_capacity_gb"] and max(kv) > 0.5 * m["kv_capacity_gb"]
    assert max(v for _, v in counters["requests admitted"]) == m["peak_admitted"] > 1
    assert max(v for _, v in counters["decode batch"]) <= m["peak_admitted"]
    for series in counters.values():  # time-ordered, no repeated values
        assert all(a[0] < b[0] and a[1] != b[1] for a, b in zip(series, series[1:]))
