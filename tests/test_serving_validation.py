"""Request-load validation rows (asicsim/serving_validation.py): the mechanisms behind each
prediction, on small stand-in rows so the file stays quick; `asicsim validate --kind serving`
runs the real rows."""

from __future__ import annotations

import pytest

from asicsim import serving_validation as sv
from asicsim.api import predict
from asicsim.serving import ServeResult
from asicsim.validation import measurements

MODEL, CHIP = "llama-3.1-8b", "h100-sxm"


def _row(rid, chips=1, prompt=128, generate=128, metric="output_tokens_per_s", batch=""):
    return {"id": rid, "kind": "serving", "chip": CHIP, "chips": str(chips), "model": MODEL, "dtype": "fp8",
            "batch": batch, "prompt": str(prompt), "generate": str(generate), "metric": metric, "value": "1"}


def test_every_request_load_row_has_a_setup_matching_its_chips():
    rows = [r for r in measurements() if r["metric"] in sv.METRICS]
    assert {r["id"] for r in rows} == set(sv.SETUPS)
    assert len(rows) == 12 + 9 + 6  # P38-P49, P61-P69, P70-P75
    for r in rows:
        s = sv.SETUPS[r["id"]]
        assert s.replicas * s.tp * s.pp == int(r["chips"]), r["id"]
        trtllm_bench = r["id"] in {f"P{i}" for i in range(38, 50)}
        jetstream = r["id"] in {f"P{i}" for i in range(70, 76)}
        expected = "trtllm-bench" if trtllm_bench else "jetstream-pytorch" if jetstream else "bare"
        assert r["runtime"] == expected, r["id"]  # one profile per stack
        assert r["role"] == "check" or r["id"] == "P38" and r["role"].startswith("calibration: trtllm-bench")


def test_grid_costs_are_predict_at_the_corners_and_linear_between():
    from asicsim.api import system
    from asicsim.model import load_model

    g = sv.GridCosts(load_model(MODEL), system(CHIP), dtype="fp8")
    g.batches.update({8})
    g.contexts.update({256, 512})
    ref = predict(MODEL, CHIP, batch=8, prompt=512, generate=2, dtype="fp8").metrics
    assert g.decode_ns(8, 512) == pytest.approx(ref.tpot_ms * 1e6, rel=1e-9)
    assert g.prefill_ns(8, 512) == pytest.approx(ref.ttft_ms * 1e6, rel=1e-9)
    lo, hi = g.decode_ns(8, 256), g.decode_ns(8, 512)
    assert lo < hi and g.decode_ns(8, 384) == pytest.approx((lo + hi) / 2, rel=1e-12)
    one = g.decode_ns(1, 256)
    assert g.decode_ns(4, 256) == pytest.approx(one + 3 / 7 * (lo - one), rel=1e-12)
    assert g.corners == 3  # (8, 512), (8, 256), (1, 256): only the corners asked for


def test_replicas_multiply_one_simulated_replica_and_trtllm_sizes_the_batch(monkeypatch):
    monkeypatch.setitem(sv.SETUPS, "X1", sv.Setup("max load", 300))
    monkeypatch.setitem(sv.SETUPS, "X4", sv.Setup("max load", 1200, replicas=4))
    run = sv.Runner()
    one = run.predict(_row("X1"))
    four = run.predict(_row("X4", chips=4))
    assert four == pytest.approx(4 * one, rel=1e-12)  # the same replica, its share of the requests
    m = run.last["X1"]
    assert m["simulated_requests"] == 300 and m["replicas"] == 1
    grid = next(iter(run.grids.values()))
    from asicsim.serving import Request

    budget = sv.kv_budget(grid.model, grid.system, "fp8")
    fits = int(budget.capacity_bytes // budget.need(Request(0, 0.0, 128, 128)))
    assert m["batch_cap"] == min(fits, sv.TRTLLM_BATCH_CAP)
    assert one == pytest.approx(m["throughput_tokens_per_s"], rel=1e-12)
    with pytest.raises(ValueError, match="not the row's 2 chips"):
        run.predict(_row("X4", chips=2))


def test_server_rows_take_the_highest_rate_within_the_limits(monkeypatch):
    monkeypatch.setitem(sv.SETUPS, "S1", sv.Setup("server", 200, "sharegpt", rate=40.0, batch_cap=32))
    monkeypatch.setattr(sv, "CAP_REQUESTS", 200)
    run = sv.Runner()
    predicted = run.predict(_row("S1", metric="server_tokens_per_s"))
    m = run.last["S1"]
    assert m["ttft_p99_ms"] <= sv.SLO_TTFT_MS and m["tpot_p99_ms"] <= sv.SLO_TPOT_MS
    pairs = sv.preset("sharegpt").draw(200, seed=0)
    assert predicted == pytest.approx(m["rate_per_replica"] * sum(o for _, o in pairs) / 200, rel=1e-12)
    # a tighter TPOT limit (below what the found rate needed) finds a lower rate
    monkeypatch.setattr(sv, "SLO_TPOT_MS", 0.9 * m["tpot_p99_ms"])
    tighter = sv.Runner()
    assert tighter.predict(_row("S1", metric="server_tokens_per_s")) < predicted


def test_steady_throughput_leaves_out_the_warm_up_and_the_drain():
    # one step a second: one sequence for the first 20 s (warm-up), ten until 80 s (the last
    # admission), then two (the drain)
    steps = [(t * 1e9, 1e9, 1 if t < 20 else 10 if t < 80 else 2, 0.0) for t in range(100)]
    records = [{"arrival_ms": 0.0, "queue_ms": 80_000.0, "ttft_ms": 81_000.0}]
    result = ServeResult(records, [], steps, {"throughput_tokens_per_s": 0.0})
    # window [20 s, 80 s]: 60 steps of 10 tokens, no first token inside it
    assert sv.steady_throughput(result) == pytest.approx(600 / 60)


def test_a_row_the_serving_model_cannot_express_is_pending_not_passed(monkeypatch):
    import asicsim.validation as validation

    fake = {**_row("P999"), "unit": "tok/s", "conditions": "", "source": "", "evidence": "", "role": "check",
            "runtime": "bare"}
    monkeypatch.setattr(validation, "measurements", lambda: [fake])
    checks = validation.run_checks()
    assert len(checks) == 1 and "no serving setup" in checks[0].pending
    assert validation.summary(checks, lambda c: c.chip) == []
    text = validation.table(checks)
    assert "pending (the simulator cannot express these yet)" in text and "P999: " in text


def test_runtimes_that_page_their_kv_cache_are_simulated_paged(monkeypatch):
    """TensorRT-LLM and vLLM rows run with a paged KV cache, JetStream's with its slots reserved;
    the runner passes the row's cache to the scheduler: with variable lengths a paged cache holds
    more sequences at once than whole-request reservations in the same memory."""
    assert all(sv.SETUPS[p].kv_cache == "paged" for p in ("P38", "P46", "P61", "P65", "P66", "P69"))
    assert all(sv.SETUPS[p].kv_cache == "reserved" for p in ("P70", "P75"))
    assert sv.SETUPS["P66"].page_tokens == sv.VLLM_PAGE_TOKENS == 16
    monkeypatch.setattr(sv, "CAP_REQUESTS", 400)
    batches = {}
    for cache in ("paged", "reserved"):
        monkeypatch.setitem(sv.SETUPS, "V1", sv.Setup("max load", 400, "sharegpt", batch_cap=4096, kv_cache=cache))
        run = sv.Runner()
        run.predict(_row("V1") | {"model": "llama-2-70b"})  # 69 GB of fp8 weights: ~10 GB of KV
        batches[cache] = run.last["V1"]["mean_batch"]
    assert batches["paged"] > 1.2 * batches["reserved"]


def test_a_runtimes_per_sequence_cost_adds_batch_times_cost_to_each_serving_step():
    """The serving model's step costs carry the runtime profile: a decode step of B sequences
    gets exactly B × ``sequence_step_ns`` more, a prefill of B prompts (B first tokens) too; the
    grid's interpolation in batch keeps that exact between its corners. Red if the profile does
    not reach the serving runs or the term does not scale with the step's batch."""
    from asicsim.api import system
    from asicsim.hardware import RuntimeSpec
    from asicsim.model import load_model

    model, chip = load_model(MODEL), system(CHIP)
    cost = 10_000.0
    bare = sv.GridCosts(model, chip, dtype="fp8")
    served = sv.GridCosts(model, chip, dtype="fp8", runtime=RuntimeSpec(name="t", sequence_step_ns=cost))
    for g in (bare, served):
        g.batches.update({64})
        g.contexts.update({256})
    for batch in (1, 64, 20):  # the corners, and between them
        assert served.decode_ns(batch, 256) - bare.decode_ns(batch, 256) == pytest.approx(batch * cost, rel=1e-6)
        assert served.prefill_ns(batch, 256) - bare.prefill_ns(batch, 256) == pytest.approx(batch * cost, rel=1e-6)


def test_the_trtllm_bench_calibration_row_reproduces_and_its_largest_batch_check_holds():
    """Bookkeeping for P38 (it sets trtllm-bench's ``sequence_step_ns``: the profile's source
    says how; red if the serving model changes and the constant is not set again), and the
    check of the same shape on another chip (P42, H200: set nothing) within 10 %, which the
    bare runtime misses by +48 %."""
    from asicsim.validation import run_checks

    checks = {c.id: c for c in run_checks(ids={"P38", "P42"})}
    assert checks["P38"].calibrates and checks["P38"].runtime == "trtllm-bench"
    assert abs(checks["P38"].error) <= 0.01, checks["P38"]
    assert not checks["P42"].calibrates and abs(checks["P42"].error) <= 0.10, checks["P42"]
