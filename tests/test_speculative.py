"""Speculative decoding (asicsim.studies.speculative): a draft proposes k tokens, the target verifies
k + 1 per step. Acceptance 0 is slower than plain decoding; acceptance 1 yields k + 1 tokens per
verifier step."""

from __future__ import annotations

import pytest
import yaml

from asicsim.api import run
from asicsim.compile import Workload
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.model import load_model
from asicsim.model.graph import build_graph
from asicsim.model.ops import Numerics, StepShape
from asicsim.scenario import load_scenario, run_scenario
from asicsim.studies.speculative import expected_tokens, implied_acceptance

K = 3


def test_expected_tokens_per_round():
    assert expected_tokens([0.0] * K) == 1.0
    assert expected_tokens([1.0] * K) == K + 1
    a = 0.7
    assert expected_tokens([a] * K) == pytest.approx((1 - a ** (K + 1)) / (1 - a))
    assert expected_tokens([0.9, 0.5, 0.0]) == pytest.approx(1 + 0.9 + 0.45)


def test_verifier_scores_every_checked_position():
    """The LM head runs for each of the k + 1 positions a verifier checks, not just the last."""
    model = load_model("llama-3.1-8b")
    one = build_graph(model, StepShape(2, K + 1, 100, 1), Numerics())
    every = build_graph(model, StepShape(2, K + 1, 100, K + 1), Numerics())
    head = [op for op in one.ops if op.name == "lm_head"][0].flops
    assert [op for op in every.ops if op.name == "lm_head"][0].flops == pytest.approx((K + 1) * head)


def test_verifier_step_costs_more_than_a_plain_step_on_a_compute_bound_chip():
    """On the hardwired HC1 a step is compute-bound: k + 1 tokens take longer than one."""
    model, system = load_model("llama-3.1-8b"), load_system("taalas-hc1")
    plain = run(model, system, Workload(1, 32, 3)).metrics.tpot_ms
    verify = run(model, system, Workload(1, 32, 3, tokens_per_step=K + 1)).metrics.tpot_ms
    assert verify > plain


def _scenario(tmp_path, **changes):
    doc = {"kind": "speculative", "name": "t", "target": {"model": "llama-3.1-8b", "system": "h100-sxm"},
           "draft": {"model": "llama-3.1-8b", "system": "taalas-hc1"}, "draft_tokens": K, "acceptance": 0.6,
           "prompt": 32, "generate": 3}
    doc.update(changes)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_bounds_and_the_given_rate(tmp_path):
    out = run_scenario(_scenario(tmp_path))
    rows = {r["case"]: r for r in out.doc["rows"]}
    plain = rows["plain decoding"]
    zero = rows["speculative, acceptance 0 (bound)"]
    full = rows["speculative, acceptance 1 (bound)"]
    given = rows["speculative, acceptance 0.6"]
    assert zero["tokens_per_s_per_user"] < plain["tokens_per_s_per_user"]   # drafting is pure overhead
    assert full["tokens_per_round"] == K + 1                                 # k + 1 per verifier step
    assert full["tokens_per_s_per_user"] == pytest.approx(
        (K + 1) * 1000.0 / (K * out.doc["draft_tpot_ms"] + out.doc["verify_step_ms"]))
    assert zero["tokens_per_s_per_user"] < given["tokens_per_s_per_user"] < full["tokens_per_s_per_user"]
    assert out.doc["verify_step_ms"] >= out.doc["plain_tpot_ms"]


@pytest.mark.parametrize("changes, match", [
    ({"acceptance": 1.5}, "acceptance"),
    ({"acceptance": [0.9, 0.8]}, "2 rates for 3 drafted tokens"),
    ({"draft": {"model": "mistral-7b-v0.1", "system": "h100-sxm"}}, "vocabulary .*32,000.* differs"),
    ({"match_tokens_per_s": 1665}, "match_tokens_per_s needs a match_source"),
    ({"match_tokens_per_s": -1, "match_source": "x"}, "match_tokens_per_s"),
])
def test_bad_input_is_refused(tmp_path, changes, match):
    with pytest.raises(InputError, match=match):
        path = _scenario(tmp_path, **changes)
        load_scenario(path)
        run_scenario(path)


def test_verifier_runs_need_exact_mode():
    with pytest.raises(InputError, match="exact mode"):
        Workload(1, 32, 3, fast=True, tokens_per_step=4).check()


def test_implied_acceptance_inverts_the_expected_tokens():
    """The rate that yields E tokens a round is the one E was computed from; a round that must yield
    more than k + 1 is out of reach, and one token a round needs no accepted draft."""
    for a in (0.3, 0.8, 0.95):
        assert implied_acceptance(expected_tokens([a] * K), K) == pytest.approx(a, abs=1e-9)
    assert implied_acceptance(K + 1.01, K) is None
    assert implied_acceptance(K + 1, K) == pytest.approx(1.0)
    assert implied_acceptance(0.9, K) == 0.0


def test_a_measured_rate_implies_an_acceptance_per_draft_length(tmp_path):
    """match_tokens_per_s: for each k up to draft_tokens, the tokens a simulated round must yield to
    reach the measured rate, and the acceptance that yields them (None past k + 1)."""
    out = run_scenario(_scenario(tmp_path, match_tokens_per_s=400.0, match_source="a made-up figure"))
    m = out.doc["match"]
    assert [r["draft_tokens"] for r in m["rows"]] == list(range(1, K + 1))
    last = m["rows"][-1]
    assert last["round_ms"] == pytest.approx(K * out.doc["draft_tpot_ms"] + out.doc["verify_step_ms"])
    for r in m["rows"]:
        assert r["tokens_per_round_needed"] == pytest.approx(400.0 * r["round_ms"] / 1000)
        a = r["acceptance_needed"]
        if a is None:
            assert r["tokens_per_round_needed"] > r["draft_tokens"] + 1
        else:
            e = expected_tokens([a] * r["draft_tokens"])
            assert 1000 * e / r["round_ms"] == pytest.approx(400.0, rel=1e-6)
    needed = [r["acceptance_needed"] for r in m["rows"]]
    assert None in needed and any(a is not None and 0 < a < 1 for a in needed)   # both cases exercised
    assert "implied, not a check" in out.text
