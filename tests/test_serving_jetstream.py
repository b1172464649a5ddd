"""The ``jetstream-pytorch`` runtime profile: a server that shapes its steps (one-prompt prefills
padded to buckets, fixed-shape decode steps over every slot's whole cache), as the continuous
scheduler in asicsim/serving.py follows it. Step costs are a recording stand-in here, so each
mechanism is seen in the shapes the scheduler asks for; the real rows (P70-P75) are checked at the
end on one row."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from asicsim.errors import InputError
from asicsim.hardware import RuntimeSpec, load_runtime
from asicsim.serving import KVBudget, KVLink, Request, StepCosts, Workload, simulate, simulate_disaggregated

KV_PER_TOKEN = 1000.0  # bytes a token of KV holds in the stand-in budget


class Recorder(StepCosts):
    """Step costs that record every shape asked for: prefill ``1 ms + 10 us x batch x tokens``,
    decode ``1 ms + 1 us x batch x context`` (any affine stand-in shows the shapes)."""

    def __init__(self, runtime):
        self.runtime, self.bucket, self.cache = runtime, 1, {}
        self.system = SimpleNamespace(name="stand-in")
        self.prefills: list[tuple[int, float]] = []
        self.decodes: list[tuple[int, float]] = []

    def prefill_ns(self, batch, mean_prompt):
        self.prefills.append((batch, mean_prompt))
        return 1e6 + 1e4 * batch * mean_prompt

    def decode_ns(self, batch, mean_context):
        self.decodes.append((batch, mean_context))
        return 1e6 + 1e3 * batch * mean_context


@dataclass(frozen=True)
class Budget(KVBudget):
    def holds(self, tokens: int) -> float:
        return tokens * KV_PER_TOKEN


def budget(slots_of_2048: float = 8.0) -> Budget:
    return Budget(slots_of_2048 * 2048 * KV_PER_TOKEN, "hbm", SimpleNamespace(name="m", max_context=None), None)


JET = load_runtime("jetstream-pytorch")
BARE = load_runtime("bare")


def at_zero(*pairs) -> Workload:
    return Workload(tuple(Request(i, 0.0, p, o) for i, (p, o) in enumerate(pairs)))


def test_the_profile_is_read_from_jetstreams_code():
    """Bookkeeping: the numbers are JetStream's (token_utils' power-of-two buckets cut at the
    1,024-token max prefill length; the runs' 2,048-token cache) and the source says where."""
    assert JET.prefill_one_at_a_time and JET.decode_full_batch and JET.shapes_steps
    assert JET.prefill_buckets == tuple(2 ** k for k in range(4, 11))
    assert JET.cache_tokens == 2048
    assert JET.request_ns == JET.step_ns == JET.sequence_step_ns == 0.0  # nothing fitted
    for ref in ("orchestrator.py", "token_utils.py", "engine.py", "layers.py", "J1", "J4"):
        assert ref in JET.source
    assert not BARE.shapes_steps
    assert [JET.padded_prompt(n) for n in (1, 16, 17, 100, 1024, 1500)] == [16, 16, 32, 128, 1024, 1024]


def test_each_prompt_prefills_alone_padded_up_to_its_bucket():
    """Three prompts admitted together: bare prefills them as one batch at their mean length; the
    profile runs three batch-1 prefills of 32, 128 and 1,024 tokens. Red if the prefills are
    batched again or the padding is dropped."""
    wl = at_zero((20, 3), (100, 3), (600, 3))
    jet, bare = Recorder(JET), Recorder(BARE)
    simulate(wl, jet, budget(), max_batch=4)
    simulate(wl, bare, budget(), max_batch=4)
    assert bare.prefills == [(3, 240.0)]
    assert jet.prefills == [(1, 32), (1, 128), (1, 1024)]
    # the first tokens come one prefill apart, in order
    res = simulate(wl, Recorder(JET), budget(), max_batch=4)
    ttft = [r["ttft_ms"] for r in sorted(res.records, key=lambda r: r["id"])]
    assert ttft == pytest.approx([1.32, 1.32 + 2.28, 1.32 + 2.28 + 11.24])


def test_every_decode_step_costs_all_slots_at_the_whole_cache():
    """One 100-token request decoding alone in a batch cap of 8: bare costs each step at batch 1
    and the sequence's own context; the profile at 8 slots over 2,048 positions, every step. The
    step log keeps the live sequences (the tokens produced), not the computed slots. Red if
    either the fixed batch or the cache span is removed."""
    wl = at_zero((100, 5))
    jet, bare = Recorder(JET), Recorder(BARE)
    r_jet = simulate(wl, jet, budget(), max_batch=8)
    simulate(wl, bare, budget(), max_batch=8)
    assert bare.decodes == [(1, 100.0), (1, 101.0), (1, 102.0), (1, 103.0)]
    assert jet.decodes == [(8, 2048.0)] * 4
    assert [b for _, _, b, _ in r_jet.steps] == [1, 1, 1, 1]
    # the run's time is the prefill and four full steps
    assert r_jet.records[0]["latency_ms"] == pytest.approx(1 + 0.01 * 128 + 4 * (1 + 1e-3 * 8 * 2048))


def test_a_fixed_shape_step_makes_a_half_empty_batch_cost_a_full_one():
    """With the batch cap at 8, four live sequences or eight take the same decode step under the
    profile (and a different one under bare): the throughput of a half-empty server halves."""
    for n, runtime, same in ((4, JET, True), (4, BARE, False)):
        few, full = Recorder(runtime), Recorder(runtime)
        simulate(at_zero(*[(64, 10)] * n), few, budget(), max_batch=8)
        simulate(at_zero(*[(64, 10)] * 8), full, budget(), max_batch=8)
        assert (few.decodes[-1] == full.decodes[-1]) is same


def test_the_whole_cache_of_every_slot_must_fit_at_start():
    """The server allocates batch x 2,048 tokens of cache before serving: a batch cap beyond what
    fits is refused with the numbers, and the default cap is what fits (here 5 slots)."""
    wl = at_zero((100, 5))
    with pytest.raises(InputError) as e:
        simulate(wl, Recorder(JET), budget(5.5), max_batch=6)
    msg = str(e.value)
    assert "--max-batch" in msg and "2,048-token cache" in msg and "at most 5 fit" in msg
    assert simulate(wl, Recorder(JET), budget(5.5)).metrics["max_batch"] == 5
    assert simulate(wl, Recorder(BARE), budget(5.5)).metrics["max_batch"] > 5
    with pytest.raises(InputError, match="does not fit") as e:
        simulate(wl, Recorder(JET), budget(0.5))
    assert e.value.source == "runtime profile 'jetstream-pytorch'" and e.value.field == "cache_tokens"


def test_a_step_shaping_profile_refuses_what_its_server_does_not_do():
    wl = at_zero((100, 5))
    for kwargs, field in (({"scheduler": "chunked"}, "--scheduler"), ({"scheduler": "static"}, "--scheduler"),
                          ({"kv_cache": "paged"}, "--kv-cache")):
        with pytest.raises(InputError) as e:
            simulate(wl, Recorder(JET), budget(), max_batch=4, **kwargs)
        assert field in str(e.value) and "jetstream-pytorch" in str(e.value)
    with pytest.raises(InputError, match="disaggregated"):
        simulate_disaggregated(wl, (Recorder(JET), budget()), (Recorder(BARE), budget()), KVLink())


def test_bad_buckets_are_an_input_error_naming_the_field(tmp_path):
    p = tmp_path / "rt.yaml"
    p.write_text("name: x\nprefill_buckets: [64, 32]\n")
    with pytest.raises(InputError) as e:
        load_runtime(str(p))
    assert "prefill_buckets" in str(e.value) and "ascending" in str(e.value)
    assert RuntimeSpec(name="y").padded_prompt(77) == 77  # no buckets: the prompt itself


def test_the_jetstream_row_the_bare_model_missed_most_is_within_20_percent():
    """P72 (Llama-2-7B bf16, batch 96, a check row: nothing was set from it) was +137 % with the
    bare scheduler; with the profile's shapes (every number read from the server's code) it is
    within 20 %. Red if the profile does not reach the request-load runner."""
    from asicsim.validation import run_checks

    (check,) = run_checks(ids={"P72"})
    assert check.runtime == "jetstream-pytorch" and not check.calibrates
    assert abs(check.error) <= 0.20, check


def test_a_request_longer_than_a_slots_cache_is_refused():
    """A slot holds ``cache_tokens`` positions: a request whose prompt (cut to the largest prefill
    bucket, as the server cuts it) and output need more cannot be served by that server, so it is
    an input error naming the request, as a request longer than the model's context is, not a run
    whose decode steps attend over fewer positions than the sequence has."""
    with pytest.raises(InputError) as e:
        simulate(at_zero((100, 5), (1000, 1500)), Recorder(JET), budget(), max_batch=4)
    assert e.value.field == "request 1" and "2,048" in e.value.reason and "jetstream-pytorch" in e.value.reason
    # a longer prompt is cut to 1,024 tokens before its prefill: 1,024 + 1,000 fits the cache
    simulate(at_zero((1500, 1000)), Recorder(JET), budget(), max_batch=4)
    simulate(at_zero((1000, 1500)), Recorder(BARE), budget(), max_batch=4)  # no slot cache: served


def test_a_prompt_cut_to_the_largest_bucket_holds_only_what_is_kept():
    """The server keeps the last 1,024 tokens of a longer prompt: that is all its KV holds, so eight
    requests of 3,000 + 1,000 tokens fit eight 2,048-token slots at once (holding their uncut
    4,000 tokens, only four would), and each prefills 1,024 tokens."""
    rec = Recorder(JET)
    r = simulate(at_zero(*[(3000, 1000)] * 8), rec, budget(8.0))
    assert max(slots for _, _, slots, _ in r.steps) == 8
    assert {p for _, p in rec.prefills} == {1024.0}
