"""The context-scaling scenario: full attention grows with context, windows and recurrences don't."""

from pathlib import Path

import pytest

from asicsim.scenario import run_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "context-scaling.yaml"


@pytest.fixture(scope="module")
def rows():
    out = run_scenario(SCENARIO)
    table = {}
    for r in out.doc["rows"]:
        table.setdefault(r["model"], {})[r["context"]] = r
    return table


def test_full_attention_grows_linearly(rows):
    llama = rows["llama-3.1-8b"]
    kv = {c: r["kv_bytes"] for c, r in llama.items()}
    assert kv[131072] == pytest.approx(128 * kv[1024])
    tpot = {c: r["tpot_ms"] for c, r in llama.items()}
    # the step's extra time over 1k context is the extra KV read: linear in context
    extra_64k, extra_128k = tpot[65536] - tpot[1024], tpot[131072] - tpot[1024]
    assert extra_128k == pytest.approx(extra_64k * (131072 - 1024) / (65536 - 1024), rel=0.05)


@pytest.mark.parametrize("model, longest", [("mistral-7b-v0.1", 32768), ("recurrentgemma-9b", 131072),
                                            ("mamba2-2.7b", 131072)])
def test_windowed_and_recurrent_models_flatten(rows, model, longest):
    r = rows[model]
    assert r[longest]["kv_bytes"] + r[longest]["state_bytes"] == r[16384]["kv_bytes"] + r[16384]["state_bytes"]
    assert r[longest]["tpot_ms"] == pytest.approx(r[16384]["tpot_ms"], rel=1e-9)
    assert r[longest]["tpot_ms"] < rows["llama-3.1-8b"][longest]["tpot_ms"]


def test_contexts_beyond_what_the_model_was_trained_for_are_refused(rows):
    # Mistral-7B-v0.1's config says max_position_embeddings 32768
    for context in (65536, 131072):
        row = rows["mistral-7b-v0.1"][context]
        assert row["tpot_ms"] is None and row["bound"] == "beyond its context"
        assert "32,768" in row["reason"] and row["kv_bytes"] is None
    assert rows["llama-3.1-8b"][131072]["tpot_ms"] > 0  # 131,072 is Llama-3.1's own limit: runs


def test_pure_ssm_has_no_kv_only_state(rows):
    r = rows["mamba2-2.7b"][1024]
    assert r["kv_bytes"] == 0 and r["state_bytes"] > 0
