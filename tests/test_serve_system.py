"""System selection on serve: step costs and the KV budget come from the scale-out plan."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asicsim.api import predict
from asicsim.cli import main
from asicsim.errors import InputError
from asicsim.serving import closed_loop, serve

BIG = "llama-3.1-70b"  # 141 GB of bf16 weights: more than one H100 holds


def test_a_70b_that_does_not_fit_one_h100_is_refused_naming_chips():
    with pytest.raises(InputError, match="--chips"):
        serve(BIG, "h100-sxm", closed_loop(1, 1, prompt=64, output=3))


def test_a_70b_serves_on_two_h100s_with_the_plans_step_costs():
    wl = closed_loop(1, 2, prompt=64, output=3)
    r = serve(BIG, "h100-sxm", wl, chips=2, tp=2, bucket=1)
    ref = predict(BIG, "h100-sxm", chips=2, tp=2, batch=1, prompt=64, generate=3).metrics
    m = r.metrics
    assert (m["chips"], m["tp"], m["pp"]) == (2, 2, 1)
    for rec in r.records:  # one request at a time: predict's TTFT and TPOT on the same split
        assert rec["ttft_ms"] == pytest.approx(ref.ttft_ms, rel=1e-9)
        assert rec["tpot_ms"] == pytest.approx(ref.tpot_ms, rel=1e-6)
    # the KV budget is both chips' HBM less the weights they hold (bf16, 2 bytes a parameter)
    from asicsim.model import load_model

    weights_gb = load_model(BIG).params() * 2 / 1e9
    assert m["kv_capacity_gb"] == pytest.approx(2 * 80 - weights_gb, rel=0.02)
    # the split is what the steps ran: a pipeline of two stages decodes differently from tp 2
    pp = serve(BIG, "h100-sxm", wl, chips=2, pp=2, bucket=1).metrics
    assert (pp["tp"], pp["pp"]) == (1, 2)
    assert pp["tpot_p50_ms"] != pytest.approx(m["tpot_p50_ms"], rel=0.01)


def test_serve_cli_takes_chips_and_tp():
    out = CliRunner().invoke(main, ["serve", "--model", BIG, "--system", "h100-sxm", "--chips", "2", "--tp", "2",
                                    "--concurrency", "2", "--requests", "2", "--prompt", "64", "--generate", "2",
                                    "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["chips"] == 2 and doc["tp"] == 2 and doc["requests"] == 2


@pytest.mark.parametrize("args, words", [
    (["--chips", "4", "--tp", "3"], "tp 3"),
    (["--chips", "2", "--tp", "1"], "product must equal the chip count"),
    (["--chips", "2", "--pp", "3"], "pp 3"),
])
def test_a_bad_plan_exits_2_with_one_clear_paragraph(args, words):
    out = CliRunner().invoke(main, ["serve", "--model", BIG, "--system", "h100-sxm", *args, "--concurrency", "1",
                                    "--requests", "1"])
    assert out.exit_code == 2
    assert words in out.output and "Traceback" not in out.output


def test_serve_costs_every_step_with_the_runtime_profile_it_is_given():
    """--runtime reaches every step's cost: with trtllm-bench (per sequence and step, sequence_step_ns)
    a request served alone pays it once in each decode step, so its TPOT grows by exactly that; an
    unknown profile is refused before anything runs."""
    from asicsim.hardware import load_runtime

    per_seq_ms = load_runtime("trtllm-bench").sequence_step_ns / 1e6
    assert per_seq_ms > 0
    wl = closed_loop(1, 2, prompt=64, output=4)
    bare, bench = (serve("llama-3.1-8b", "h100-sxm", wl, bucket=1, runtime=r) for r in (None, "trtllm-bench"))
    assert bench.metrics["runtime"] == "trtllm-bench" and "runtime" not in bare.metrics
    for b, t in zip(bare.records, bench.records):
        assert t["tpot_ms"] - b["tpot_ms"] == pytest.approx(per_seq_ms, rel=1e-6)
    out = CliRunner().invoke(main, ["serve", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--concurrency", "1",
                                    "--requests", "1", "--runtime", "no-such-stack"])
    assert out.exit_code == 2 and out.output.startswith("error: ") and "no-such-stack" in out.output, out.output
