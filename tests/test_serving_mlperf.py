"""scenarios/mlperf-llama2-70b.yaml, cheaply: the shipped file with few requests at one load (the
whole scenario takes about 75 s; docs/serving.md shows its table)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from asicsim.cli import main

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "mlperf-llama2-70b.yaml"


def test_the_mlperf_scenario_runs_its_systems_as_the_submissions_split_them(tmp_path):
    out = CliRunner().invoke(main, ["run", str(SCENARIO), "--out", str(tmp_path / "o"), "--json",
                                    "--set", "requests=40", "--set", "rates=[70]"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    rows = {r["system"]: r for r in doc["rows"]}
    assert set(rows) == {"8x h100-sxm (4 x tp2)", "8x h100-sxm (tp8)", "8x h200 (8 x tp1)"}
    h100, tp8, h200 = rows["8x h100-sxm (4 x tp2)"], rows["8x h100-sxm (tp8)"], rows["8x h200 (8 x tp1)"]
    assert h100["replicas"] == 4 and h200["replicas"] == 8 and "replicas" not in tp8
    assert all(r["fits"] and r["kv_cache"] == "paged" and r["page_tokens"] == 32 for r in rows.values())
    assert all(r["steady_tokens_per_s"] >= 0 for r in rows.values())
    assert doc["slo"] == {"ttft_ms": 2000.0, "tpot_ms": 200.0, "within": "p99"}
    assert doc["step_costs"] == "interpolated"
    # the FP8 weights (about 69 GB) fit one H200 (141 GB) and a TP2 pair of H100s (2 x 80 GB): the KV cache
    # is the rest of each replica's memory
    assert 60 < h200["kv_capacity_gb"] < 141 - 60 and 80 < h100["kv_capacity_gb"] < 160 - 60
    assert h100["chips"] == 2 and h100["tp"] == 2 and tp8["tp"] == 8
