"""A disaggregated pair whose groups have several chips (serve --prefill-tp 2 --decode-chips 2 ...):
each group's steps are predict's on its split, and the whole model's KV crosses the link."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from asicsim.api import load_system, predict
from asicsim.cli import main
from asicsim.serving import KVLink, closed_loop, kv_budget, serve_disaggregated

MODEL, SYSTEM = "llama-3.1-8b", "h100-sxm"


@pytest.mark.parametrize("decode_chips", [1, 2])
def test_each_group_runs_its_own_split_and_the_whole_kv_crosses(llama8b, decode_chips):
    wl = closed_loop(1, 2, prompt=96, output=5)
    link = KVLink(1.0, 10_000.0)  # 1 GB/s a chip: the transfer is long enough to measure
    decode_layout = {"chips": decode_chips, "tp": decode_chips} if decode_chips > 1 else {}
    r = serve_disaggregated(llama8b, SYSTEM, SYSTEM, wl, link=link, bucket=1,
                            prefill_layout={"chips": 2, "tp": 2}, decode_layout=decode_layout)
    ttft = predict(llama8b, SYSTEM, batch=1, prompt=96, generate=2, chips=2, tp=2).metrics.ttft_ms
    dec = predict(llama8b, SYSTEM, batch=1, prompt=96, generate=5,
                  **({"chips": decode_chips, "tp": decode_chips} if decode_chips > 1 else {})).metrics.tpot_ms
    one_chip_ttft = predict(llama8b, SYSTEM, batch=1, prompt=96, generate=2).metrics.ttft_ms
    assert ttft != pytest.approx(one_chip_ttft, rel=1e-3)  # the group's own split is what is costed
    kv_bytes = llama8b.kv_bytes(1, 96, kv_budget(llama8b, load_system(SYSTEM)).numerics)
    # the whole model's KV (not a shard of it) crosses, over as many links as the smaller group has chips
    transfer_ns = kv_bytes / (1.0 * min(2, decode_chips)) + 10_000.0
    assert r.metrics["kv_transfer_mean_ms"] * 1e6 == pytest.approx(transfer_ns)
    for rec in r.records:
        assert rec["ttft_ms"] == pytest.approx(ttft, rel=1e-9)
        # the second token waits for the transfer, then four decode steps of the decode group's split
        assert rec["tpot_ms"] == pytest.approx(dec + transfer_ns / 1e6 / 4, rel=1e-6)
    assert r.metrics["prefill_chips"] == 2 and r.metrics["prefill_tp"] == 2
    assert r.metrics["decode_chips"] == decode_chips


def test_group_options_are_checked():
    runner = CliRunner()
    base = ["serve", "--model", MODEL, "--rate", "4", "--requests", "4"]
    out = runner.invoke(main, [*base, "--system", SYSTEM, "--prefill-tp", "2"])
    assert out.exit_code == 2 and "--prefill-" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, [*base, "--prefill-system", SYSTEM, "--decode-system", SYSTEM, "--tp", "2"])
    assert out.exit_code == 2 and "--decode-tp" in out.output
    # a split that does not divide the group's chips is refused as predict refuses it
    out = runner.invoke(main, [*base, "--prefill-system", SYSTEM, "--decode-system", SYSTEM, "--prefill-chips", "2",
                               "--prefill-tp", "3"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    out = runner.invoke(main, ["-q", *base, "--prefill-system", SYSTEM, "--decode-system", SYSTEM,
                               "--prefill-chips", "2", "--prefill-tp", "2", "--prompt", "64", "--generate", "4"])
    assert out.exit_code == 0, out.output
    assert "prefill 2 chips, tp 2" in out.output and "64 GB/s," in out.output


def test_a_pairs_prefill_group_prefills_in_chunks(llama8b, h100):
    from asicsim.serving import StepCosts, Workload, Request, simulate_disaggregated

    prefill = (StepCosts(llama8b, h100, bucket=1), kv_budget(llama8b, h100))
    decode = (StepCosts(llama8b, h100, bucket=1), kv_budget(llama8b, h100))
    fast = KVLink(1e9, 0.0)
    # one request alone: its chunks telescope to predict's batch-1 prefill whatever the chunk size
    ttft = predict(llama8b, h100, batch=1, prompt=300, generate=2).metrics.ttft_ms
    for chunk in (None, 64, 300, 1000):
        r = simulate_disaggregated(closed_loop(1, 1, prompt=300, output=3), prefill, decode, fast, prefill_chunk=chunk)
        assert r.records[0]["ttft_ms"] == pytest.approx(ttft, rel=1e-9)
    # eight prompts at once: batched, all eight first tokens come together after one batch-8 prefill;
    # in chunks of one prompt a step, oldest first, one after another, the first after a batch-1 prefill
    wl = Workload(tuple(Request(i, 0.0, 256, 3) for i in range(8)))
    batched = simulate_disaggregated(wl, prefill, decode, fast)
    chunked = simulate_disaggregated(wl, prefill, decode, fast, prefill_chunk=256)
    assert len({x["ttft_ms"] for x in batched.records}) == 1
    one = predict(llama8b, h100, batch=1, prompt=256, generate=2).metrics.ttft_ms
    firsts = [x["ttft_ms"] for x in chunked.records]
    assert firsts == pytest.approx([one * (i + 1) for i in range(8)], rel=1e-9)
    assert firsts[0] < batched.records[0]["ttft_ms"]
    assert chunked.metrics["prefill_chunk_tokens"] == 256 and "prefill_chunk_tokens" not in batched.metrics
    # half a prompt a step: two steps each
    half = simulate_disaggregated(wl, prefill, decode, fast, prefill_chunk=128)
    assert [x["ttft_ms"] for x in half.records] == pytest.approx(firsts, rel=1e-9)
    with pytest.raises(Exception, match="--chunk"):
        simulate_disaggregated(wl, prefill, decode, fast, prefill_chunk=0)


def test_serve_cli_chunked_pair():
    out = CliRunner().invoke(main, ["-q", "serve", "--model", MODEL, "--prefill-system", SYSTEM, "--decode-system",
                                    "taalas-hc1", "--rate", "8", "--requests", "6", "--prompt", "64-512",
                                    "--generate", "4-16", "--scheduler", "chunked", "--chunk", "256"])
    assert out.exit_code == 0, out.output
    assert "prefill on h100-sxm (chunked, 256 tokens a step)" in out.output
    out = CliRunner().invoke(main, ["serve", "--model", MODEL, "--prefill-system", SYSTEM, "--decode-system",
                                    SYSTEM, "--rate", "8", "--requests", "6", "--scheduler", "static"])
    assert out.exit_code == 2 and "--scheduler" in out.output


def copies(wl, n):
    from asicsim.serving import Request, Workload

    return Workload(tuple(Request(i * n + c, r.arrival_ns, r.prompt, r.output)
                          for i, r in enumerate(wl.requests) for c in range(n)), source="copies")


@pytest.fixture(scope="module")
def h100_hc1(llama8b, h100, hc1):
    from asicsim.serving import StepCosts

    return ((StepCosts(llama8b, h100, bucket=256), kv_budget(llama8b, h100)),
            (StepCosts(llama8b, hc1, bucket=256), kv_budget(llama8b, hc1)))


@pytest.mark.parametrize("kv_cache", ["reserved", "paged"])
def test_pairs_behind_one_queue_each_serve_one_copy_exactly(h100_hc1, kv_cache):
    """Two pairs, every request twice at once: each pair serves one copy as one pair serves the
    stream (the HC1's small KV cache queues and, paged, preempts back to the prefill group)."""
    from asicsim.serving import mean_in_system, poisson, simulate_disaggregated

    prefill, decode = h100_hc1
    one = poisson(24.0, 24, prompt=(128, 1024), output=(32, 400), seed=2)
    single = simulate_disaggregated(one, prefill, decode, kv_cache=kv_cache)
    assert single.metrics["queue_p90_ms"] > 0 or single.metrics["preemptions"] > 0
    two = simulate_disaggregated(copies(one, 2), prefill, decode, kv_cache=kv_cache, replicas=2)
    for i, ref in enumerate(single.records):
        for c in range(2):
            rec = two.records[2 * i + c]
            assert rec["replica"] == c
            for key in ("ttft_ms", "tpot_ms", "latency_ms", "queue_ms", "preemptions"):
                assert rec[key] == ref[key]
    assert two.metrics["preemptions"] == 2 * single.metrics["preemptions"]
    assert two.metrics["kv_transfer_mean_ms"] == pytest.approx(single.metrics["kv_transfer_mean_ms"])
    assert two.metrics["replicas"] == 2 and set(two.step_replicas) == {0, 1}
    L, span = mean_in_system(two.events)
    mean_latency_s = sum(x["latency_ms"] for x in two.records) / len(two.records) / 1e3
    assert L == pytest.approx(len(two.records) / span * 1e9 * mean_latency_s, rel=0.01)


def test_serve_cli_pairs_behind_one_queue():
    out = CliRunner().invoke(main, ["-q", "serve", "--model", MODEL, "--prefill-system", SYSTEM, "--decode-system",
                                    "taalas-hc1", "--rate", "16", "--requests", "12", "--prompt", "64-512",
                                    "--generate", "4-64", "--replicas", "3", "--json"])
    assert out.exit_code == 0, out.output
    import json

    m = json.loads(out.output)
    assert m["replicas"] == 3 and m["total_chips"] == 6
    out = CliRunner().invoke(main, ["serve", "--model", MODEL, "--prefill-system", SYSTEM, "--decode-system",
                                    "taalas-hc1", "--rate", "16", "--requests", "12", "--replicas", "0"])
    assert out.exit_code == 2 and "--replicas" in out.output


def test_pairs_dispatch_to_the_fewest_outstanding(h100_hc1):
    from asicsim.serving import Request, Workload, simulate_disaggregated

    prefill, decode = h100_hc1
    ms = 1e6
    reqs = (Request(0, 0.0, 64, 1500), Request(1, 1 * ms, 64, 4), Request(2, 100 * ms, 64, 4),
            Request(3, 100 * ms + 1, 64, 4))
    r = simulate_disaggregated(Workload(reqs), prefill, decode, replicas=2)
    assert r.records[1]["finish_ms"] < 100 < r.records[0]["finish_ms"]
    assert [x["replica"] for x in r.records] == [0, 1, 1, 0]


def test_an_impossible_group_split_names_the_groups_option():
    """A split the group's chips cannot take names the option of that group (--prefill-tp, --decode-tp),
    not only the plan's field."""
    base = ["serve", "--model", MODEL, "--rate", "4", "--requests", "2", "--prefill-system", "dgx-h100",
            "--decode-system", "dgx-h100"]
    for role in ("prefill", "decode"):
        out = CliRunner().invoke(main, [*base, f"--{role}-tp", "3"])
        assert out.exit_code == 2 and "Traceback" not in out.output
        assert out.output.startswith(f"error: --{role}-tp: ") and "8 chips" in out.output, out.output
