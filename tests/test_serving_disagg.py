"""Disaggregated serving: prefill on one system, decode on another, the KV cache over a link; and
the serving study's pairs and $/Mtoken at the SLO."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asicsim.api import load_system, predict
from asicsim.cli import main
from asicsim.errors import InputError
from asicsim.serving import (KVLink, StepCosts, closed_loop, kv_budget, mean_in_system, poisson,
                             serve_disaggregated, simulate_disaggregated)
from scenario_text import economics, run_json

MODEL = "llama-3.1-8b"


@pytest.fixture(scope="module")
def pair(llama8b, h100):
    hc1 = load_system("taalas-hc1")
    return ((StepCosts(llama8b, h100, bucket=1), kv_budget(llama8b, h100)),
            (StepCosts(llama8b, hc1, bucket=1), kv_budget(llama8b, hc1)), hc1)


def test_one_request_through_the_pair_is_prefill_there_decode_here_plus_the_link(llama8b, h100, pair):
    prefill, decode, hc1 = pair
    wl = closed_loop(1, 2, prompt=96, output=6)
    fast = simulate_disaggregated(wl, prefill, decode, KVLink(1e9, 0.0))
    link = KVLink(1.0, 50_000.0)  # 1 GB/s, 50 us
    slow = simulate_disaggregated(wl, prefill, decode, link)
    ttft = predict(llama8b, h100, batch=1, prompt=96, generate=2).metrics.ttft_ms
    tpot = predict(llama8b, hc1, batch=1, prompt=96, generate=6).metrics.tpot_ms
    kv_bytes = llama8b.kv_bytes(1, 96, decode[1].numerics)
    for f, s in zip(fast.records, slow.records):
        assert f["ttft_ms"] == pytest.approx(ttft, rel=1e-9) and s["ttft_ms"] == pytest.approx(f["ttft_ms"], rel=1e-12)
        assert f["tpot_ms"] == pytest.approx(tpot, rel=1e-6)
        # the decode waits for the KV to cross: bytes / (GB/s = bytes per ns) + latency, once per request
        assert (s["latency_ms"] - f["latency_ms"]) * 1e6 == pytest.approx(kv_bytes / 1.0 + 50_000.0, rel=1e-9)
    assert slow.metrics["kv_transfer_mean_ms"] == pytest.approx((kv_bytes + 50_000.0) / 1e6)


def test_each_group_has_its_own_kv_budget_and_queue(llama8b, h100, pair):
    _, (_, hc1_budget), hc1 = pair
    prefill = (StepCosts(llama8b, h100, bucket=512), kv_budget(llama8b, h100))
    decode = (StepCosts(llama8b, hc1, bucket=512), hc1_budget)
    wl = poisson(30.0, 40, prompt=(256, 1024), output=(64, 256), seed=3)
    r = simulate_disaggregated(wl, prefill, decode, max_batch=64)  # the KV budget, not the cap, binds
    cap = decode[1].capacity_bytes
    assert max(kv for _, kv, _ in r.kv_log) <= cap  # the HC1's 264 MB of SRAM
    most = int(cap // min(decode[1].need(q) for q in wl.requests))
    assert max(n for *_, n in r.kv_log) <= most
    # the decode queue is real: requests wait between their first token and their second
    assert max(x["max_gap_ms"] for x in r.records) > 10 * r.metrics["tpot_p50_ms"]
    # Little's law holds on the pair's event log too
    L, span = mean_in_system(r.events)
    mean_latency_s = sum(x["latency_ms"] for x in r.records) / len(r.records) / 1e3
    assert L == pytest.approx(len(r.records) / span * 1e9 * mean_latency_s, rel=0.01)


def test_a_slow_link_and_a_small_prefill_cache_hold_back_the_prefills(pair):
    """The prefill group keeps each prompt's KV until it has crossed: with room for one prompt and a
    slow link, the next prefill waits for the transfer."""
    from dataclasses import replace

    prefill, decode, _ = pair
    wl = closed_loop(4, 4, prompt=512, output=4)
    one = replace(prefill[1], capacity_bytes=prefill[1].holds(512) * 1.5)
    link = KVLink(0.1, 0.0)  # 0.1 GB/s: 64 MiB of KV take ~0.67 s
    roomy = simulate_disaggregated(wl, prefill, decode, link)
    tight = simulate_disaggregated(wl, (prefill[0], one), decode, link)
    assert roomy.metrics["ttft_p99_ms"] < 100 < tight.metrics["ttft_p99_ms"]
    assert tight.metrics["prefill_max_batch"] == 1


def test_a_hardwired_decoder_holds_only_its_own_model():
    with pytest.raises(InputError, match="hardwires llama-3.1-8b"):
        serve_disaggregated("llama-2-7b", "h100-sxm", "taalas-hc1", poisson(1.0, 2, prompt=8, output=2))


def test_bad_links_are_refused(pair):
    prefill, decode, _ = pair
    for link, says in ((KVLink(0.0), "--kv-link-gbps"), (KVLink(1.0, -1.0), "--kv-link-latency-us")):
        with pytest.raises(InputError, match=says):
            simulate_disaggregated(poisson(1.0, 2, prompt=8, output=2), prefill, decode, link)


def test_cli_disaggregated():
    args = ["serve", "--model", MODEL, "--prefill-system", "h100-sxm", "--decode-system", "taalas-hc1",
            "--concurrency", "2", "--requests", "4", "--prompt", "64", "--generate", "4", "--bucket", "64"]
    out = CliRunner().invoke(main, args + ["--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["prefill_system"] == "h100-sxm" and doc["decode_system"] == "taalas-hc1"
    assert doc["kv_link_gbps"] == 64.0 and doc["kv_transfer_mean_ms"] > 0
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0 and "KV link" in text.output
    for bad, says in ((["--system", "h100-sxm"], "no --system"), (["--scheduler", "static"], "--scheduler"),
                      (["--kv-link-gbps", "0"], "--kv-link-gbps")):
        out = CliRunner().invoke(main, args + bad)
        assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(main, ["serve", "--model", MODEL, "--decode-system", "taalas-hc1", "--rate", "1"])
    assert out.exit_code == 2 and "--prefill-system" in out.output


SCENARIO = """kind: serving
name: s
model: llama-3.1-8b
systems: [h100-sxm, taalas-hc1, {prefill: h100-sxm, decode: taalas-hc1}]
rates: [2]
requests: 12
prompt: [64, 256]
output: [8, 32]
bucket: 512
""" + economics("h100-sxm: {chip_price_usd: 20000, source: test, power_w: 700, power_source: test}",
                "taalas-hc1: {chip_price_usd: 10000, source: test, power_w: 200, power_source: test}")


def test_a_serving_scenario_prices_tokens_at_the_slo(tmp_path):
    doc = run_json(tmp_path, SCENARIO)
    costs = {c["system"]: c for c in doc["costs"]}
    pair_name = "h100-sxm prefill + taalas-hc1 decode"
    assert set(costs) == {"h100-sxm", "taalas-hc1", pair_name}
    assert costs[pair_name]["capex_usd"] == 30000 and costs[pair_name]["power_w"] == 900
    hc1 = costs["taalas-hc1"]
    assert hc1["rate"] == doc["best"]["taalas-hc1"]
    # by hand: the HC1's $10,000 over the model's 12 months (hardwired), 200 W at $0.1/kWh, half the time
    mtok_per_hour = hc1["tokens_per_s"] * 3600 * 0.5 / 1e6
    assert hc1["capex_usd_per_mtok"] == pytest.approx(10000 / (12 * 730) / mtok_per_hour)
    assert hc1["energy_usd_per_mtok"] == pytest.approx(0.2 * 0.1 * 0.5 / mtok_per_hour)
    h100 = costs["h100-sxm"]  # programmable: over its 48 months of service
    assert h100["capex_usd_per_mtok"] == pytest.approx(20000 / (48 * 730) / (h100["tokens_per_s"] * 1800 / 1e6))
    pair = costs[pair_name]
    assert pair["usd_per_mtok"] == pytest.approx(
        (20000 / (48 * 730) + 10000 / (12 * 730) + 0.9 * 0.1 * 0.5) / (pair["tokens_per_s"] * 1800 / 1e6))
    # KV occupancy and batch over time at the highest load, per system, and their figure
    occ = doc["occupancy"][pair_name]
    assert len(occ["t_s"]) == 200 and 0 < max(occ["kv_share"]) <= 1 and max(occ["admitted"]) >= 1
    assert max(doc["occupancy"]["taalas-hc1"]["kv_share"]) <= 1
    assert (tmp_path / "o" / "serving_kv.png").exists()
    # the verdict beside the table: is the pair cheaper per token than each of its parts alone?
    from asicsim.studies.serving_curve import cost_table

    note = next(n for n in cost_table(doc).notes if n.startswith(pair_name))
    cheaper = [n for n in ("h100-sxm", "taalas-hc1") if costs[n]["usd_per_mtok"] is None
               or pair["usd_per_mtok"] < costs[n]["usd_per_mtok"]]
    assert note.endswith("cheaper per token than h100-sxm and taalas-hc1 alone") == (len(cheaper) == 2)


def test_a_serving_scenario_must_price_every_part(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("    taalas-hc1: {chip_price_usd: 10000, source: test, power_w: 200, "
                                     "power_source: test}\n", ""))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "economics.chips" in result.output and "taalas-hc1" in result.output


def test_a_paged_decoder_holds_more_and_sends_its_preempted_back_to_prefill(llama8b, h100, pair):
    """The HC1 as a paged decode group: more requests in its 264 MB than full reservation allows;
    when the pages run out the newest goes back to the H100 for a recomputed prefill and is sent
    again, and every request still finishes with its tokens; the KV held never exceeds the SRAM."""
    _, (_, hc1_budget), hc1 = pair
    prefill = (StepCosts(llama8b, h100, bucket=512), kv_budget(llama8b, h100))
    decode = (StepCosts(llama8b, hc1, bucket=512), hc1_budget)
    wl = poisson(40.0, 40, prompt=(256, 768), output=(200, 500), seed=6)
    reserved = simulate_disaggregated(wl, prefill, decode)
    paged = simulate_disaggregated(wl, prefill, decode, kv_cache="paged")
    assert reserved.metrics["peak_admitted"] == 1 and reserved.metrics["preemptions"] == 0
    assert paged.metrics["peak_admitted"] > 2 and paged.metrics["mean_batch"] > 1.5
    assert paged.metrics["preemptions"] > 0
    assert max(kv for _, kv, _ in paged.kv_log) <= hc1_budget.capacity_bytes
    assert all(x["finish_ms"] > x["arrival_ms"] for x in paged.records)
    assert paged.metrics["throughput_tokens_per_s"] * paged.metrics["duration_s"] == pytest.approx(
        sum(q.output for q in wl.requests))
    # a preempted request's TTFT is its first prefill's; its recompute shows as a long gap
    hit = [x for x in paged.records if x["preemptions"]]
    assert min(x["max_gap_ms"] for x in hit) > paged.metrics["tpot_p50_ms"] * 10
    assert paged.metrics["latency_p99_ms"] < reserved.metrics["latency_p99_ms"]
