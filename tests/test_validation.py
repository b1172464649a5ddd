"""Out-of-sample checks against public measurements (asicsim/data/measurements.csv).

Tolerances are set by what the model claims to capture, not by the results: bandwidth-bound
16-bit decode within 15 %, on one chip or split over several; large collectives and link copies, which the links' datasheet rate and one
measured efficiency bound, within 15 %. Time to first token, whose short prompts are dominated
by the serving stack, is checked within 20 % with the row's runtime profile (per-request cost set
from one calibration row per stack). Calibration rows never count as checks. GEMM
microbenchmarks run the kernel model and are held within 15 % (the issue's target) on every shape of the project's sheet that set nothing; HBM read benchmarks other than
the copy each efficiency was set from within 12 % (a dot product reads faster than a copy).
"""

import pytest

from asicsim.validation import measurements, run_checks


SPATIAL = ("groq-lpu", "cerebras-wse3")  # checked on their own below


@pytest.fixture(scope="module")
def checks():
    """Every row but the request-load ones (tests/test_serving_validation.py checks their path)."""
    from asicsim.serving_validation import METRICS

    return {c.id: c for c in run_checks(ids={r["id"] for r in measurements() if r["metric"] not in METRICS})}


def test_calibration_and_checking_rows_are_kept_apart(checks):
    roles = {r["id"]: r["role"] for r in measurements()}
    calibrating = {i for i, role in roles.items() if role.startswith("calibration")}
    assert calibrating == {"P13", "P16", "P107", "P1", "P2", "P3", "P4", "P9", "P87", "P89", "P10", "P11", "P12",
                           "P19", "P37", "P38", "P113", "P124"}
    assert all(role == "check" or role.startswith(("calibration: ", "pending: ")) for role in roles.values())
    # P38 (request-load, tests/test_serving_validation.py) is outside this fixture
    assert {c.id for c in checks.values() if c.calibrates} == calibrating - {"P38"}


def test_pending_rows_are_listed_with_a_reason_and_never_simulated(checks):
    from asicsim.validation import page, pending

    waiting = {r["id"]: r for r in pending()}
    assert {"P76", "P77", "P78", "P83", "P86"} <= set(waiting)
    assert not set(waiting) & set(checks)
    assert all(len(r["role"].removeprefix("pending:").strip()) > 20 for r in waiting.values())
    text = page(list(checks.values()), list(waiting.values()))
    assert all(f"| {i} " in text or f"{i} " in text for i in waiting)


def test_decode_tokens_per_s_within_15_percent(checks):
    decode = [c for c in checks.values() if c.metric in ("tokens_per_s_per_user", "tpot_ms")
              and c.id not in ("P31", "P32") and c.chip not in SPATIAL]
    assert len([c for c in decode if c.chips > 1]) >= 4  # split over 2, 4 and 8 chips
    for c in decode:
        assert abs(c.error) <= 0.15, f"{c.id}: predicted {c.predicted:.1f}, measured {c.measured:.1f}"


@pytest.mark.parametrize("cid", [
    "P20", "P21", "P26", "P27", "P35",
    pytest.param("P24", marks=pytest.mark.xfail(strict=True, reason=(
        "LMDeploy TP4 Llama-2-70B: 31 % short; lmdeploy-0.1's per-request cost was set on one GPU (P19) "
        "and four ranks' host work is not modelled"))),
])
def test_ttft_within_20_percent_with_the_runtime_profile_named(checks, cid):
    """Time to first token with the serving stack's per-request cost (set from P19 for LMDeploy and
    P37 for TensorRT-LLM, neither of which is checked here)."""
    c = checks[cid]
    assert c.runtime != "bare" and not c.calibrates
    assert abs(c.error) <= 0.20, c


def test_large_collectives_and_link_copies_within_15_percent(checks):
    for cid in ("P14", "P99", "P100", "P101", "P104"):
        assert abs(checks[cid].error) <= 0.15, checks[cid]


def test_mid_size_all_reduce_pays_the_in_switch_start_up(checks):
    """16 MiB on 8 H200s (P15, NCCL's sweep under torch.distributed): +38 % without NVLS's extra
    start-up, +27 % with it, +13 % once the in-switch rate and its steps are NCCL's (the start-up
    set at 1 MiB, P16, and the step cost at 256 MiB, P124, neither of them checked here)."""
    assert not checks["P15"].calibrates and checks["P16"].calibrates and checks["P124"].calibrates
    assert abs(checks["P15"].error) <= 0.15, checks["P15"]
    assert abs(checks["P16"].error) <= 0.01, checks["P16"]
    assert abs(checks["P124"].error) <= 0.01, checks["P124"]


def test_nvls_sweeps_within_10_percent(checks):
    """The Azure H100 and H200 nccl-tests sweeps with NVLS forced (P125–P140, 8 MiB to 1 GiB): the
    in-switch all-reduce's traffic, rate and chunked steps read from NCCL's source, its step cost
    set from another sweep (P124). With the old model (the whole message up and down at the copy
    rate, four chunks) these were +4 % to +24 %."""
    sweep = [checks[f"P{i}"] for i in range(125, 141)]
    assert all(not c.calibrates and c.metric.startswith("allreduce_busbw_") for c in sweep)
    for c in sweep:
        assert abs(c.error) <= 0.10, c


def test_gemm_checks_within_15_percent(checks):
    gemm = [c for c in checks.values() if c.metric.startswith("gemm_") and not c.calibrates]
    assert {"P5", "P6", "P94", "P7", "P8", "P90", "P91", "P22", "P88", "P92", "P93", "P112"} <= {c.id for c in gemm}
    for c in gemm:
        assert abs(c.error) <= 0.15, f"{c.id}: predicted {c.predicted:.1f}, measured {c.measured:.1f}"


def test_small_gemms_are_far_below_peak(checks):
    """1024^3 runs at a fraction of the large-GEMM rate (one partial wave, the per-call launch),
    as measured; the old best-GEMM x efficiency model put it within 10 % of the large ones."""
    for small, large in (("P6", "P5"), ("P93", "P92")):
        assert checks[small].predicted < 0.5 * checks[large].predicted


def test_hbm_read_benchmarks_within_12_percent(checks):
    for cid in ("P95", "P96", "P97", "P98"):
        assert not checks[cid].calibrates and abs(checks[cid].error) <= 0.12, checks[cid]


def test_an_unknown_runtime_profile_is_refused_by_name():
    from asicsim.errors import InputError
    from asicsim.hardware import load_runtime, runtime_names

    assert {"bare", "trtllm-0.5", "lmdeploy-0.1", "trtllm-bench"} <= set(runtime_names())
    with pytest.raises(InputError, match="unknown runtime profile 'nope'.*trtllm-0.5"):
        load_runtime("nope")


def test_validate_filters_by_kind_and_chip():
    import json

    from click.testing import CliRunner

    from asicsim.cli import main

    out = CliRunner().invoke(main, ["validate", "--kind", "gemm", "--chip", "h200", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {r["id"] for r in rows} == {"P22", "P88", "P92", "P93"}
    bad = CliRunner().invoke(main, ["validate", "--chip", "h300"])
    assert bad.exit_code == 2 and "h300" in bad.output and "no measurement row" in bad.output


def test_calibration_rows_still_reproduce_the_constants_they_set(checks):
    """Bookkeeping, not a check: if the cost model changes, a constant set from a row must be set
    again (the preset's source says how), or this goes red."""
    for c in checks.values():
        if c.calibrates and c.metric.startswith(("gemm_", "hbm_", "ttft_")):
            assert abs(c.error) <= 0.01, c


@pytest.mark.parametrize("cid", [
    "P85",
    pytest.param("P84", marks=pytest.mark.xfail(strict=True, reason=(
        "Cerebras' launch release (Aug 2024), which Cerebras later said used a fraction of the wafer's "
        "bandwidth, compute and I/O; the batch-1 hardware model is ~4.8x faster"))),
    *[pytest.param(cid, marks=pytest.mark.xfail(strict=True, reason=(
        "Groq's service figures (Feb-Aug 2024) under unknown load, batching, precision and chip count; "
        "the batch-1 pipeline over the chips the int8 weights need is 2.6-7x faster"))) for cid in
      ("P79", "P80", "P81", "P82")],
])
def test_spatial_rows_within_35_percent_assumptions_stated(checks, cid):
    """Groq and Cerebras rows (the issue's target: within 35 %), each with what it assumes (chips,
    precision, prompt) in its conditions. P85 (405B over 19 wafers) rests on both wafer mechanisms:
    without the mesh crossing per op it is +89 %, without re-cutting each wafer into a patch per
    layer -58 %."""
    c = checks[cid]
    assert c.chip in SPATIAL and "ssumed" in c.conditions and not c.calibrates
    assert abs(c.error) <= 0.35, c
