"""``kind: serving``: one model on several systems over offered loads, with the SLO headline."""

from __future__ import annotations

import json

from click.testing import CliRunner

from asicsim.cli import main
from asicsim.studies.serving_curve import best_loads


def test_a_serving_scenario_sweeps_load_and_finds_where_the_slo_breaks(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [h100-sxm, taalas-hc1]\n"
                    "rates: [1, 400]\nrequests: 40\nprompt: [64, 512]\noutput: [8, 64]\nbucket: 512\n"
                    "slo: {ttft_ms: 300, tpot_ms: 50}\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {(r["system"], r["rate"]): r for r in doc["rows"]}
    # more load, more tokens per second and longer queues, on both
    for system in ("h100-sxm", "taalas-hc1"):
        lo, hi = rows[system, 1.0], rows[system, 400.0]
        assert hi["throughput_tokens_per_s"] > lo["throughput_tokens_per_s"]
        assert hi["queue_p99_ms"] >= lo["queue_p99_ms"]
    # the HC1's 264 MB of KV SRAM holds three of the longest requests (576 tokens x 128 KiB): at 400
    # requests/s they queue and first tokens wait past 300 ms
    hc1 = rows["taalas-hc1", 400.0]
    assert 1 < hc1["mean_batch"] <= 3 and hc1["slo_attainment"] < 1
    assert doc["best"]["taalas-hc1"] == 1.0
    assert (tmp_path / "o" / "serving.png").exists()


def test_best_loads_takes_the_highest_load_with_every_request_in_the_slo():
    rows = [{"system": "a", "rate": r, "fits": True, "slo_attainment": s} for r, s in ((1, 1.0), (2, 1.0), (4, 0.9))]
    rows += [{"system": "b", "rate": 1, "fits": True, "slo_attainment": 0.5},
             {"system": "c", "rate": None, "fits": False, "reason": "x"}]
    assert best_loads(rows) == {"a": 2, "b": None, "c": None}


def test_a_non_positive_load_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [h100-sxm]\nrates: [0]\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "rates.0" in result.output
