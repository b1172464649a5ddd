"""The CLI end to end: the README's quickstart, predict --json, bench, and bad input.

Bad input must give one paragraph naming the file, field and reason, exit status 2, and never a
traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from asicsim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_quickstart_scenario_prints_table_and_writes_results(tmp_path):
    result = invoke("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for text in ("TTFT (ms)", "TPOT (ms)", "tokens/s per user", "h100-sxm", "taalas-hc1", "decode bound"):
        assert text in result.output
    doc = json.loads((tmp_path / "results.json").read_text())
    by_system = {r["system"]: r for r in doc["results"]}
    assert set(by_system) == {"h100-sxm", "taalas-hc1"}
    assert by_system["h100-sxm"]["dominant_bound"]["decode"] == "memory"
    assert by_system["taalas-hc1"]["bytes_per_decode_step"]["hbm_read"] == 0
    assert by_system["taalas-hc1"]["tokens_per_s_per_user"] > by_system["h100-sxm"]["tokens_per_s_per_user"]


def test_predict_json_has_the_promised_keys():
    result = invoke("predict", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--prompt", "64",
                    "--generate", "4", "--batch", "2", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for key in ("ttft_ms", "tpot_ms", "tokens_per_s", "tokens_per_s_per_user"):
        assert out[key] > 0
    assert out["tokens_per_s"] == pytest.approx(2 * out["tokens_per_s_per_user"])


def test_bench_reports_rate_and_memory():
    result = invoke("bench", "--repeat", "1", "--workload", "quickstart")
    assert result.exit_code == 0, result.output
    assert "tasks/s" in result.output and "peak memory" in result.output
    assert "scale-out" not in result.output


def test_bench_json_parses_with_the_same_figures():
    import json

    records = json.loads(invoke("bench", "--repeat", "1", "--workload", "generate-10k", "--json").stdout)
    (r,) = records
    assert r["workload"] == "generate-10k" and r["tasks"] > 0 and r["wall_s"] > 0 and r["peak_mb"] > 0
    assert r["tasks_per_s"] == r["tasks"] / r["engine_s"]


BAD_CHIP = """name: broken
mapping: temporal
blocks:
  - {kind: matmul, name: mm, units: -4, rows: 8, cols: 8, clock_ghz: 1, dtype_rate: {bf16: 1}}
  - {kind: vector, name: v, lanes: 8, clock_ghz: 1}
  - {kind: hbm, name: hbm, channels: 1, bandwidth_gbps_per_channel: 10, capacity_gb: 1}
  - {kind: dma, name: dma}
"""


@pytest.mark.parametrize("args, must_say", [
    (["predict", "--model", "llama-3.1-8b", "--system", "no-such-chip"], ["unknown preset", "no-such-chip", "h100-sxm"]),
    (["predict", "--model", "no-such-model", "--system", "h100-sxm"], ["unknown model", "llama-3.1-8b"]),
    (["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--batch", "1000"],
     ["h100-sxm.yaml", "capacity_gb", "does not fit", "KV cache"]),
    (["predict", "--model", "llama-2-7b", "--system", "taalas-hc1"],
     ["taalas-hc1.yaml", "hardwires llama-3.1-8b", "llama-2-7b differs", "vocab 32000", "kv_heads=32"]),
    (["predict", "--model", "llama-3.1-8b", "--system", "taalas-hc1", "--batch", "8"],
     ["taalas-hc1.yaml", "kv_sram", "KV SRAM holds"]),
])
def test_bad_input_gets_one_clear_paragraph(args, must_say):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    message = result.output.strip()
    assert message.startswith("error: ") and "\n" not in message
    for text in must_say:
        assert text in message


@pytest.mark.parametrize("name, text, must_say", [
    ("chip.yaml", BAD_CHIP, ["chip.yaml", "blocks.0.matmul.units", "greater than or equal to 1"]),
    ("chip.yaml", "name: x\nblocks: [\n", ["chip.yaml", "not valid YAML", "line"]),
    ("chip.yaml", BAD_CHIP.replace("units: -4", "units: 4").replace("  - {kind: dma, name: dma}\n", "")
     .replace("{kind: hbm, name: hbm, channels: 1", "{kind: hbm, name: hbm, channels: 1, colour: red"),
     ["chip.yaml", "colour", "Extra inputs"]),
])
def test_bad_chip_files(tmp_path, name, text, must_say):
    path = tmp_path / name
    path.write_text(text)
    result = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    for t in must_say:
        assert t in result.output


def test_bad_scenario_names_the_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: llama-3.1-8b\nworkload: {batch: 0}\nsystems: [h100-sxm]\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "workload.batch" in result.output and "s.yaml" in result.output
    path.write_text("name: s\nmodel: llama-3.1-8b\nsystems: [nope]\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "systems.0" in result.output and "unknown preset" in result.output


def test_bad_model_config(tmp_path):
    cfg = json.loads((ROOT / "models" / "llama-3.1-8b.json").read_text())
    cfg["num_attention_heads"] = 30
    path = tmp_path / "my-model.json"
    path.write_text(json.dumps(cfg))
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--system", "h100-sxm"])
    assert result.exit_code == 2 and "my-model.json" in result.output
    assert "num_attention_heads" in result.output or "num_key_value_heads" in result.output


def test_runtime_profile_on_the_command_line_adds_its_request_cost_to_ttft():
    import json

    from asicsim.hardware import load_runtime

    bare = json.loads(invoke("predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--generate", "4",
                             "--json").stdout)
    trt = json.loads(invoke("predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--generate", "4",
                            "--runtime", "trtllm-0.5", "--json").stdout)
    profile = load_runtime("trtllm-0.5")
    assert bare["runtime"] == "bare" and trt["runtime"] == "trtllm-0.5" and profile.request_ns > 0
    assert trt["ttft_ms"] - bare["ttft_ms"] == pytest.approx(profile.request_ns / 1e6, rel=1e-6)
    bad = invoke("predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--runtime", "nope")
    assert bad.exit_code == 2 and "trtllm-0.5" in bad.output
