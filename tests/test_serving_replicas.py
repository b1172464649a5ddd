"""Several replicas behind one queue (serve --replicas): dispatch to the fewest outstanding
requests, each replica its own batch and KV cache; and swap preemption (--preemption swap)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asicsim.cli import main
from asicsim.errors import InputError
from asicsim.serving import (KVLink, Request, StepCosts, Workload, kv_budget, mean_in_system, poisson, serve,
                             simulate)
from scenario_text import economics, run_json

MODEL, SYSTEM = "llama-3.1-8b", "h100-sxm"


@pytest.fixture(scope="module")
def world(llama8b, h100):
    return kv_budget(llama8b, h100), StepCosts(llama8b, h100, bucket=64)


def copies(wl: Workload, n: int) -> Workload:
    """Each request of ``wl`` ``n`` times, arriving together."""
    reqs = [Request(i * n + c, r.arrival_ns, r.prompt, r.output) for i, r in enumerate(wl.requests) for c in range(n)]
    return Workload(tuple(reqs), source="copies")


def test_n_replicas_serving_n_copies_of_a_stream_each_serve_one_copy_exactly(world):
    """N copies of every request arriving together: least-outstanding dispatch (ties to the lowest
    index) sends copy c of each to replica c, every replica serves the one-replica stream, so every
    request's latencies equal the single replica's and the throughput is N times."""
    budget, costs = world
    one = poisson(30.0, 40, prompt=(32, 512), output=(8, 96), seed=5)
    single = simulate(one, costs, budget)
    assert single.metrics["queue_p90_ms"] > 0  # the single replica queues: the dispatch matters
    n = 3
    multi = simulate(copies(one, n), costs, budget, replicas=n)
    for i, ref in enumerate(single.records):
        for c in range(n):
            rec = multi.records[i * n + c]
            assert rec["replica"] == c
            for key in ("ttft_ms", "tpot_ms", "latency_ms", "queue_ms", "finish_ms"):
                assert rec[key] == ref[key]
    assert multi.metrics["throughput_tokens_per_s"] == pytest.approx(n * single.metrics["throughput_tokens_per_s"])
    assert multi.metrics["mean_concurrency"] == pytest.approx(n * single.metrics["mean_concurrency"])
    assert multi.metrics["mean_batch"] == pytest.approx(single.metrics["mean_batch"])
    assert multi.metrics["replicas"] == n
    # the merged KV log holds n times the single replica's at its peak
    assert max(kv for _, kv, _ in multi.kv_log) == pytest.approx(n * max(kv for _, kv, _ in single.kv_log))


def test_dispatch_goes_to_the_fewest_outstanding_requests_ties_to_the_lowest_index(world):
    """A long request holds replica 0; a short one goes to replica 1 and finishes; the next goes to
    replica 1 again (round robin would send it to replica 0), and the one after, with both holding one,
    to replica 0."""
    budget, costs = world
    ms = 1e6
    reqs = (Request(0, 0.0, 64, 400), Request(1, 1 * ms, 64, 4), Request(2, 500 * ms, 64, 4),
            Request(3, 500 * ms + 1, 64, 4))
    r = simulate(Workload(reqs), costs, budget, replicas=2)
    assert r.records[1]["finish_ms"] < 500 < r.records[0]["finish_ms"]
    assert [x["replica"] for x in r.records] == [0, 1, 1, 0]


def test_littles_law_and_pooling_with_replicas(world):
    """Little's law on the pooled event log; and two replicas at twice the load queue less than one
    replica at the load (the same seeded stream shape), at twice its throughput within sampling noise."""
    budget, costs = world
    # below saturation (a batch of at most 4): a queue forms, but it does not grow without end
    one = simulate(poisson(10.0, 120, prompt=(32, 512), output=(8, 96), seed=2), costs, budget, max_batch=4)
    two = simulate(poisson(20.0, 240, prompt=(32, 512), output=(8, 96), seed=2), costs, budget, max_batch=4,
                   replicas=2)
    L, span = mean_in_system(two.events)
    mean_latency_s = sum(x["latency_ms"] for x in two.records) / len(two.records) / 1e3
    assert L == pytest.approx(len(two.records) / span * 1e9 * mean_latency_s, rel=0.01)
    assert {x["replica"] for x in two.records} == {0, 1}
    assert one.metrics["queue_p90_ms"] > 0
    assert two.metrics["throughput_tokens_per_s"] == pytest.approx(2 * one.metrics["throughput_tokens_per_s"], rel=0.15)
    assert two.metrics["tpot_p50_ms"] == pytest.approx(one.metrics["tpot_p50_ms"], rel=0.15)
    # one queue in front of two servers waits less than one in front of one at half the load
    assert two.metrics["queue_mean_ms"] < 0.5 * one.metrics["queue_mean_ms"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_replicas_must_be_a_whole_number_at_least_one(world, bad):
    budget, costs = world
    with pytest.raises(InputError, match="--replicas"):
        simulate(poisson(1.0, 2, prompt=8, output=2), costs, budget, replicas=bad)


def test_serve_cli_replicas(tmp_path):
    runner = CliRunner()
    for bad in ("0", "-2"):
        out = runner.invoke(main, ["serve", "--model", MODEL, "--system", SYSTEM, "--rate", "4", "--requests", "4",
                                   "--replicas", bad])
        assert out.exit_code == 2 and "--replicas" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, ["-q", "serve", "--model", MODEL, "--system", SYSTEM, "--rate", "8", "--requests", "12",
                               "--prompt", "64-256", "--generate", "8-32", "--replicas", "3", "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.output)
    assert m["replicas"] == 3 and m["total_chips"] == 3 and m["chips"] == 1


def test_serve_replicas_of_a_tensor_parallel_replica_count_every_chip(llama8b):
    r = serve(llama8b, SYSTEM, poisson(8.0, 6, prompt=64, output=4), chips=2, tp=2, replicas=2, bucket=64)
    assert r.metrics["chips"] == 2 and r.metrics["tp"] == 2 and r.metrics["total_chips"] == 4


@pytest.fixture(scope="module")
def tight(world):
    """An H100 whose KV budget holds three 1,200-token sequences, and a closed loop that overfills it."""
    from dataclasses import replace

    budget, costs = world
    small = replace(budget, capacity_bytes=budget.holds(1200) * 3)
    return costs, small, poisson(40.0, 24, prompt=(256, 768), output=(64, 256), seed=1)


@pytest.mark.parametrize("scheduler", ["continuous", "chunked"])
def test_swap_charges_both_copies_at_the_host_links_rate(tight, scheduler):
    costs, small, wl = tight
    slow, fast = KVLink(1.0, 5_000.0), KVLink(10.0, 5_000.0)
    runs = {link: simulate(wl, costs, small, scheduler=scheduler, kv_cache="paged", preemption="swap", host_link=link)
            for link in (slow, fast)}
    for link, r in runs.items():
        m = r.metrics
        assert m["preemptions"] > 0 and all(x["finish_ms"] > 0 for x in r.records)
        assert max(kv for _, kv, _ in r.kv_log) <= small.capacity_bytes
        # every swapped-out request came back in: two copies a preemption, each bytes / rate + latency
        copies = 2 * m["preemptions"]
        assert m["swap_ms_total"] * 1e6 == pytest.approx(m["swapped_gb"] * 1e9 / link.gbps + copies * link.latency_ns)
        # each copy moves at least one page of one sequence's KV
        assert m["swapped_gb"] * 1e9 >= copies * small.holds(16) * 0.999
    # a ten-times faster link: the same bytes' copies take a tenth of the time, and the run ends sooner
    s, f = runs[slow].metrics, runs[fast].metrics
    assert f["swapped_gb"] == pytest.approx(s["swapped_gb"], rel=0.5)
    assert f["swap_ms_total"] < 0.2 * s["swap_ms_total"]
    assert f["duration_s"] < s["duration_s"] and f["latency_mean_ms"] < s["latency_mean_ms"]


def test_swap_beats_recompute_on_a_fast_link_and_loses_on_a_slow_one(tight):
    """Swap saves the preempted requests' second prefill and pays two copies: over PCIe Gen5 (64 GB/s) the
    copies of a few hundred tokens' KV take far less than their prefill; over 0.05 GB/s far more."""
    costs, small, wl = tight
    kw = dict(kv_cache="paged")
    recompute = simulate(wl, costs, small, **kw)
    pcie = simulate(wl, costs, small, preemption="swap", **kw)
    crawl = simulate(wl, costs, small, preemption="swap", host_link=KVLink(0.05), **kw)
    assert recompute.metrics["preemptions"] > 0 and pcie.metrics["preemptions"] > 0
    assert "swap_ms_total" not in recompute.metrics
    assert pcie.metrics["duration_s"] < recompute.metrics["duration_s"] < crawl.metrics["duration_s"]
    assert pcie.metrics["latency_mean_ms"] < recompute.metrics["latency_mean_ms"] < crawl.metrics["latency_mean_ms"]
    # no preemption, nothing to swap: the same run whichever the mode
    roomy = simulate(wl, costs, kv_budget(costs.model, costs.system), **kw)
    assert roomy.metrics["preemptions"] == 0
    swapless = simulate(wl, costs, kv_budget(costs.model, costs.system), preemption="swap", **kw)
    assert [x["latency_ms"] for x in swapless.records] == [x["latency_ms"] for x in roomy.records]


def test_swap_needs_a_paged_cache_and_a_positive_link(world):
    budget, costs = world
    wl = poisson(1.0, 2, prompt=8, output=2)
    with pytest.raises(InputError, match="swap needs --kv-cache paged"):
        simulate(wl, costs, budget, preemption="swap")
    with pytest.raises(InputError, match="--host-link-gbps"):
        simulate(wl, costs, budget, kv_cache="paged", preemption="swap", host_link=KVLink(0.0))
    with pytest.raises(InputError, match="--preemption"):
        simulate(wl, costs, budget, kv_cache="paged", preemption="evict")
    runner = CliRunner()
    out = runner.invoke(main, ["serve", "--model", MODEL, "--prefill-system", SYSTEM, "--decode-system", SYSTEM,
                               "--rate", "4", "--requests", "4", "--kv-cache", "paged", "--preemption", "swap"])
    assert out.exit_code == 2 and "--preemption" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, ["serve", "--model", MODEL, "--system", SYSTEM, "--rate", "4", "--requests", "4",
                               "--kv-cache", "paged", "--preemption", "swap", "--host-link-gbps", "-1"])
    assert out.exit_code == 2 and "--host-link-gbps" in out.output


REPLICA_SCENARIO = """kind: serving
name: r
model: llama-3.1-8b
systems:
  - h100-sxm
  - {system: h100-sxm, replicas: 3}
  - {system: h100-sxm, chips: 2, tp: 2, replicas: 2, name: two tp2}
  - {prefill: {system: h100-sxm, chips: 2, tp: 2}, decode: h100-sxm, replicas: 2}
rates: [4, 12]
requests: 24
prompt: [64, 256]
output: [8, 32]
bucket: 512
kv_cache: paged
preemption: swap
""" + economics("h100-sxm: {chip_price_usd: 20000, source: test, power_w: 700, power_source: test}")


def test_a_serving_scenario_prices_every_replicas_chips(tmp_path):
    doc = run_json(tmp_path, REPLICA_SCENARIO)
    costs = {c["system"]: c for c in doc["costs"]}
    three, tp2, pair = "h100-sxm x3 replicas", "two tp2", "h100-sxm tp2 prefill + h100-sxm decode x2 pairs"
    assert set(costs) == {"h100-sxm", three, tp2, pair}
    assert costs[three]["chips"] == [["h100-sxm", 3]] and costs[three]["capex_usd"] == 60000
    assert costs[tp2]["chips"] == [["h100-sxm", 4]] and costs[tp2]["power_w"] == 4 * 700
    assert costs[pair]["chips"] == [["h100-sxm", 4], ["h100-sxm", 2]] and costs[pair]["capex_usd"] == 120000
    rows = {(r["system"], r["rate"]): r for r in doc["rows"]}
    assert rows[three, 12.0]["replicas"] == 3 and rows["h100-sxm", 12.0].get("replicas") is None
    assert rows[pair, 12.0]["kv_link_gbps"] == 64.0 and rows[pair, 12.0]["replicas"] == 2
    # the same load over three replicas: every chip is priced, so a token costs more where one chip sufficed
    one, many = costs["h100-sxm"], costs[three]
    assert one["rate"] == many["rate"]  # both within the SLO at the highest load: the check below runs
    assert many["capex_usd_per_mtok"] == pytest.approx(
        3 * one["capex_usd_per_mtok"] * one["tokens_per_s"] / many["tokens_per_s"])
    assert max(doc["occupancy"][three]["kv_share"]) <= 1


def test_a_serving_scenario_refuses_an_impossible_split(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(REPLICA_SCENARIO.replace("chips: 2, tp: 2, replicas: 2", "chips: 2, tp: 3, replicas: 2")
                    .replace("economics:", "economics_unused:").split("economics_unused:")[0])
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "systems.2" in result.output and "Traceback" not in result.output
    path.write_text(REPLICA_SCENARIO.replace("replicas: 3", "replicas: 0").split("economics:")[0])
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "replicas" in result.output and "Traceback" not in result.output
    path.write_text(REPLICA_SCENARIO.replace("kv_cache: paged\n", "").split("economics:")[0])
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "'preemption'" in result.output and "kv_cache: paged" in result.output


def test_best_loads_by_the_p99_rule():
    from asicsim.studies.serving_curve import best_loads

    def row(rate, ttft, tpot, share):
        return {"system": "a", "rate": rate, "fits": True, "ttft_p99_ms": ttft, "tpot_p99_ms": tpot,
                "slo_ttft_ms": 2000.0, "slo_tpot_ms": 200.0, "slo_attainment": share}

    rows = [row(1, 100, 50, 1.0), row(2, 1900, 190, 0.995), row(4, 2100, 150, 0.9), row(8, 500, 250, 0.9)]
    assert best_loads(rows) == {"a": 1}
    assert best_loads(rows, "p99") == {"a": 2}


def test_interpolated_step_costs_and_the_steady_state_in_a_scenario(tmp_path):
    path = tmp_path / "s.yaml"
    body = ("kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [{system: h100-sxm, replicas: 2}]\n"
            "rates: [40]\nrequests: 120\nprompt: [64, 512]\noutput: [16, 64]\nbucket: 64\nmax_batch: 64\n"
            "steady_state: true\nslo: {within: p99}\n")
    docs = {}
    for how in ("simulated", "interpolated"):
        path.write_text(body + f"step_costs: {how}\n")
        result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / how), "--json"])
        assert result.exit_code == 0, result.output
        docs[how] = json.loads(result.stdout)
    sim, grid = (docs[h]["rows"][0] for h in ("simulated", "interpolated"))
    assert docs["interpolated"]["step_costs"] == "interpolated" and "step_costs" not in docs["simulated"]
    # a few corners, interpolated, land near every shape simulated
    assert grid["step_shapes_simulated"] < sim["step_shapes_simulated"]
    assert grid["throughput_tokens_per_s"] == pytest.approx(sim["throughput_tokens_per_s"], rel=0.1)
    assert grid["tpot_p50_ms"] == pytest.approx(sim["tpot_p50_ms"], rel=0.15)
    # the steady state leaves out the drain: at a load the replicas keep up with, about the offered tokens
    for row in (sim, grid):
        assert row["steady_tokens_per_s"] > 0
        assert row["steady_tokens_per_s"] >= 0.9 * row["throughput_tokens_per_s"]
    text = CliRunner().invoke(main, ["-q", "run", str(path), "--out", str(tmp_path / "t"), "--force"]).output
    assert "steady tok/s" in text and "p99 TTFT and p99 TPOT within the SLO" in text


def test_a_trace_of_replicas_has_a_decode_batch_track_each(world, tmp_path):
    from asicsim.perfetto import write_serving_trace

    budget, costs = world
    r = simulate(poisson(20.0, 30, prompt=(32, 256), output=(8, 32), seed=4), costs, budget, replicas=3)
    assert len(r.step_replicas) == len(r.steps) and set(r.step_replicas) == {0, 1, 2}
    write_serving_trace(r, tmp_path / "t.json", "replicas")
    names = {e["name"] for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"] if e["ph"] == "C"}
    assert {f"decode batch (replica {k})" for k in range(3)} <= names and "decode batch" not in names
    # the KV log sums the replicas: never more than their budgets together
    assert max(kv for _, kv, _ in r.kv_log) <= 3 * budget.capacity_bytes
    assert max(n for *_, n in r.kv_log) == r.metrics["peak_admitted"]


@pytest.mark.parametrize("scheduler,kv_cache,preemption", [
    ("static", "reserved", "recompute"), ("continuous", "reserved", "recompute"), ("continuous", "paged", "recompute"),
    ("continuous", "paged", "swap"), ("chunked", "paged", "recompute"), ("chunked", "paged", "swap")])
def test_every_request_finishes_within_each_replicas_budget(world, scheduler, kv_cache, preemption):
    """Open and closed loops over one to three replicas whose KV cache holds two long requests: every
    request finishes, the summed KV log stays within the replicas' budgets, Little's law holds."""
    import math
    from dataclasses import replace

    from asicsim.serving import closed_loop

    budget, costs = world
    small = replace(budget, capacity_bytes=budget.holds(1500) * 2)
    for replicas in (1, 2, 3):
        for wl in (poisson(30.0, 25, prompt=(16, 700), output=(1, 300), seed=replicas),
                   closed_loop(5, 25, prompt=(16, 700), output=(1, 300), seed=replicas)):
            r = simulate(wl, costs, small, scheduler=scheduler, kv_cache=kv_cache, preemption=preemption,
                         replicas=replicas, chunk=256)
            assert all(math.isfinite(x["finish_ms"]) and x["latency_ms"] >= x["ttft_ms"] >= 0 for x in r.records)
            assert max(kv for _, kv, _ in r.kv_log) <= replicas * small.capacity_bytes * (1 + 1e-9)
            L, span = mean_in_system(r.events)
            mean_latency_s = sum(x["latency_ms"] for x in r.records) / len(r.records) / 1e3
            assert L == pytest.approx(len(r.records) / span * 1e9 * mean_latency_s, rel=0.01)


@pytest.mark.parametrize("scheduler,preemption", [("chunked", "recompute"), ("chunked", "swap"),
                                                  ("continuous", "recompute"), ("continuous", "swap")])
def test_a_request_whose_pages_do_not_fit_is_refused_not_run(world, scheduler, preemption):
    """A request's KV fits the cache to the token, but not in whole pages (its 599 tokens of KV take 38
    pages of 16, 608 tokens): refused naming the page size, rather than run forever or crashing."""
    from dataclasses import replace

    budget, costs = world
    small = replace(budget, capacity_bytes=budget.holds(600))
    wl = Workload((Request(0, 0.0, 300, 300),))
    with pytest.raises(InputError, match="pages of 16 tokens"):
        simulate(wl, costs, small, scheduler=scheduler, kv_cache="paged", preemption=preemption, chunk=256)
    # in pages of 8 it fits (600 tokens, 75 pages), and runs to its end
    r = simulate(wl, costs, small, scheduler=scheduler, kv_cache="paged", preemption=preemption, chunk=256,
                 page_tokens=8)
    assert r.records[0]["finish_ms"] > 0 and r.metrics["preemptions"] == 0


def test_a_pair_refuses_a_request_whose_pages_do_not_fit_its_decode_group(world):
    from dataclasses import replace

    from asicsim.serving import simulate_disaggregated

    budget, costs = world
    small = replace(budget, capacity_bytes=budget.holds(600))
    wl = Workload((Request(0, 0.0, 300, 300),))
    with pytest.raises(InputError, match="as the decode group: .*pages of 16 tokens"):
        simulate_disaggregated(wl, (costs, budget), (costs, small), kv_cache="paged")
    r = simulate_disaggregated(wl, (costs, budget), (costs, small), kv_cache="paged", page_tokens=8)
    assert r.records[0]["finish_ms"] > 0
