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
from asicsim.studies.speculative import expected_tokens

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
])
def test_bad_input_is_refused(tmp_path, changes, match):
    with pytest.raises(InputError, match=match):
        path = _scenario(tmp_path, **changes)
        load_scenario(path)
        run_scenario(path)


def test_verifier_runs_need_exact_mode():
    with pytest.raises(InputError, match="exact mode"):
        Workload(1, 32, 3, fast=True, tokens_per_step=4).check()
