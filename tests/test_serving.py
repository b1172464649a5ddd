"""The serving simulator: queueing over simulated time, schedulers, metrics and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asicsim.api import predict
from asicsim.cli import main
from asicsim.errors import InputError
from asicsim.serving import (StepCosts, closed_loop, kv_budget, load_trace, mean_in_system, poisson, serve,
                             simulate)

MODEL, SYSTEM = "llama-3.1-8b", "h100-sxm"


@pytest.fixture(scope="module")
def world(llama8b, h100):
    """The model, the system, its KV budget and step costs shared by the tests (bucket 64)."""
    return llama8b, h100, kv_budget(llama8b, h100), StepCosts(llama8b, h100, bucket=64)


def run(world, wl, **kw):
    model, system, budget, costs = world
    return simulate(wl, costs, budget, **kw)


def test_littles_law_on_the_simulated_queue(world):
    wl = poisson(40.0, 60, prompt=(32, 256), output=(4, 64), seed=3)
    r = run(world, wl)
    L, span_ns = mean_in_system(r.events)  # time-average number in system, from the event log
    throughput = len(r.records) / span_ns * 1e9
    mean_latency_s = sum(x["latency_ms"] for x in r.records) / len(r.records) / 1e3
    assert r.metrics["queue_p90_ms"] > 0  # a real queue formed
    assert L == pytest.approx(throughput * mean_latency_s, rel=0.01)
    assert r.metrics["mean_concurrency"] == pytest.approx(L)


def test_one_request_at_a_time_matches_predict(llama8b, h100):
    costs = StepCosts(llama8b, h100, bucket=1)
    wl = closed_loop(1, 2, prompt=96, output=5, seed=0)
    r = simulate(wl, costs, kv_budget(llama8b, h100))
    ref = predict(llama8b, h100, batch=1, prompt=96, generate=5).metrics
    for rec in r.records:
        assert rec["ttft_ms"] == pytest.approx(ref.ttft_ms, rel=1e-9)
        assert rec["tpot_ms"] == pytest.approx(ref.tpot_ms, rel=1e-6)
        assert rec["queue_ms"] == 0
    assert r.metrics["mean_batch"] == 1 and r.metrics["decode_steps"] == 2 * 4


def test_one_static_batch_matches_predict_batch(llama8b, h100):
    costs = StepCosts(llama8b, h100, bucket=1)
    r = simulate(closed_loop(4, 4, prompt=64, output=4), costs, kv_budget(llama8b, h100), scheduler="static")
    ref = predict(llama8b, h100, batch=4, prompt=64, generate=4).metrics
    assert [x["ttft_ms"] for x in r.records] == [pytest.approx(ref.ttft_ms, rel=1e-9)] * 4
    assert [x["tpot_ms"] for x in r.records] == [pytest.approx(ref.tpot_ms, rel=1e-6)] * 4


def test_continuous_beats_static_on_variable_lengths(world):
    wl = closed_loop(16, 64, prompt=(32, 256), output=(4, 160), seed=7)
    static = run(world, wl, scheduler="static").metrics
    cont = run(world, wl, scheduler="continuous").metrics
    assert cont["throughput_tokens_per_s"] > 1.2 * static["throughput_tokens_per_s"]
    assert cont["latency_p99_ms"] <= static["latency_p99_ms"]


def test_kv_capacity_bounds_the_batch(world):
    model, system, budget, costs = world
    wl = closed_loop(32, 64, prompt=128, output=(8, 64), seed=1)
    from dataclasses import replace

    needs = [budget.need(r) for r in wl.requests]
    small = replace(budget, capacity_bytes=max(needs) * 4.5)
    assert simulate(wl, costs, small).metrics["max_batch"] == 4  # the default: the longest request, 4 times
    most = int(small.capacity_bytes // min(needs))
    for scheduler in ("static", "continuous"):  # a larger cap: the KV cache still bounds the batch
        r = simulate(wl, costs, small, scheduler=scheduler, max_batch=32)
        assert all(kv <= small.capacity_bytes for *_, kv in r.steps)
        assert 4 <= max(s[2] for s in r.steps) <= most
    assert r.metrics["mean_batch"] > 3.5  # continuous: a finished request's KV is freed for the next


def test_same_seed_same_results(world):
    a = run(world, poisson(30.0, 40, prompt=(16, 200), output=(2, 40), seed=11))
    b = run(world, poisson(30.0, 40, prompt=(16, 200), output=(2, 40), seed=11))
    c = run(world, poisson(30.0, 40, prompt=(16, 200), output=(2, 40), seed=12))
    assert a.records == b.records and a.metrics == b.metrics and a.events == b.events
    assert a.records != c.records


def test_trace_file(tmp_path, world):
    f = tmp_path / "t.csv"
    f.write_text("arrival_s,prompt,output\n0.0,64,8\n0.5,32,4\n0.25,128,2\n")
    wl = load_trace(f)
    assert [(r.arrival_ns, r.prompt) for r in wl.requests] == [(0.0, 64), (0.25e9, 128), (0.5e9, 32)]
    r = run(world, wl)
    assert [x["output"] for x in r.records] == [8, 2, 4]


@pytest.mark.parametrize("text, where", [
    ("", "holds no requests"),
    ("arrival_s,prompt,output\n", "holds no requests"),
    ("0,64,8\n1.0,x,8\n", "line 2, prompt"),
    ("0,64,8\nsoon,64,8\n", "line 2, arrival_s"),
    ("0,64\n", "line 1"),
    ("0,64,0\n", "line 1, output"),
    ("-1,64,3\n", "line 1, arrival_s"),
])
def test_bad_trace_files(tmp_path, text, where):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError) as e:
        load_trace(f)
    assert str(f) in str(e.value) and where in str(e.value)


@pytest.mark.parametrize("make, field", [
    (lambda: poisson(0.0, 10), "--rate"),
    (lambda: poisson(-1.0, 10), "--rate"),
    (lambda: poisson(1.0, 0), "--requests"),
    (lambda: closed_loop(0, 10), "--concurrency"),
    (lambda: poisson(1.0, 5, prompt=0), "--prompt"),
    (lambda: poisson(1.0, 5, output=(10, 5)), "--generate"),
])
def test_bad_workloads(make, field):
    with pytest.raises(InputError, match=field):
        make()


def test_bad_serving_options(world):
    with pytest.raises(InputError, match="max_position_embeddings"):
        run(world, poisson(1.0, 3, prompt=131_000, output=200))
    with pytest.raises(InputError, match="--max-batch"):
        run(world, poisson(1.0, 3, prompt=8, output=2), max_batch=0)
    with pytest.raises(InputError, match="--slo-ttft-ms"):
        run(world, poisson(1.0, 3, prompt=8, output=2), slo_ttft_ms=0)
    with pytest.raises(InputError, match="--scheduler"):
        run(world, poisson(1.0, 3, prompt=8, output=2), scheduler="fifo")


def test_an_slo_no_request_meets_is_said(world):
    r = run(world, poisson(5.0, 6, prompt=64, output=4, seed=2), slo_ttft_ms=0.001)
    assert r.metrics["goodput_requests_per_s"] == 0 and r.metrics["slo_attainment"] == 0
    assert any("no request met the SLO" in n for n in r.notes)
    ok = run(world, poisson(5.0, 6, prompt=64, output=4, seed=2))
    assert ok.metrics["slo_attainment"] == 1 and not ok.notes


def test_model_that_does_not_fit():
    with pytest.raises(InputError, match="does not fit"):
        serve("llama-3.1-405b", SYSTEM, poisson(1.0, 2, prompt=8, output=2))


def test_cli_json_and_table():
    args = ["serve", "--model", MODEL, "--system", SYSTEM, "--concurrency", "2", "--requests", "4",
            "--prompt", "64", "--generate", "4", "--bucket", "64"]
    out = CliRunner().invoke(main, args + ["--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert {"ttft_p50_ms", "tpot_p90_ms", "latency_p99_ms", "goodput_requests_per_s"} <= doc.keys()
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0 and "TTFT" in table.output and "goodput" in table.output


@pytest.mark.parametrize("extra, says", [
    (["--rate", "0"], "--rate"),
    (["--rate", "1", "--requests", "0"], "--requests"),
    (["--rate", "1", "--prompt", "200000"], "max_position_embeddings"),
    ([], "exactly one of"),
    (["--rate", "1", "--concurrency", "2"], "exactly one of"),
    (["--rate", "1", "--generate", "many"], "--generate"),
])
def test_cli_bad_input_exits_2(extra, says):
    out = CliRunner().invoke(main, ["serve", "--model", MODEL, "--system", SYSTEM] + extra)
    assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output


def test_bursty_arrivals_keep_the_rate_and_lengthen_the_queue(llama8b, h100):
    from asicsim.serving import poisson

    smooth = poisson(20.0, 400, prompt=64, output=8, seed=5)
    bursty = poisson(20.0, 400, prompt=64, output=8, seed=5, burstiness=4.0)
    gaps = [np.diff([r.arrival_ns for r in wl.requests]) for wl in (smooth, bursty)]
    assert gaps[0].mean() == pytest.approx(5e7, rel=0.15) and gaps[1].mean() == pytest.approx(5e7, rel=0.5)
    assert gaps[0].std() / gaps[0].mean() == pytest.approx(1.0, rel=0.2)
    assert gaps[1].std() / gaps[1].mean() > 2.5  # a coefficient of variation near 4
    costs = StepCosts(llama8b, h100, bucket=64)
    budget = kv_budget(llama8b, h100)
    calm, burst = (simulate(wl, costs, budget).metrics for wl in (smooth, bursty))
    assert burst["queue_p99_ms"] > calm["queue_p99_ms"]
    with pytest.raises(InputError):
        poisson(20.0, 10, burstiness=0)
