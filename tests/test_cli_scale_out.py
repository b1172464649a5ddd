"""The scale-out CLI: --chips and --tp on predict, the plan and link utilisation in --json, and
one-paragraph refusals (exit status 2) for layouts and networks that cannot work."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asicsim.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_predict_json_carries_the_plan_and_link_utilisation():
    result = invoke("predict", "--model", "llama-3.1-70b", "--system", "h100-sxm", "--chips", "4",
                    "--prompt", "32", "--generate", "3", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    plan = out["plan"]
    assert (plan["chips"], plan["tp"], plan["pp"], plan["topology"]) == (4, 4, 1, "switch")
    assert out["chips"] == 4 and plan["weight_bytes_per_chip"] < 80e9
    links = out["link_utilisation"]["prefill"]
    assert {"chip0->switch", "switch->chip3"} <= set(links) and all(0 < u <= 1 for u in links.values())
    assert out["bytes_per_decode_step"]["link"] > 0


def test_a_pipeline_layout_from_the_command_line():
    result = invoke("predict", "--model", "llama-3.1-70b", "--system", "dgx-h100", "--tp", "4", "--pp", "2",
                    "--batch", "2", "--prompt", "16", "--generate", "3")
    assert result.exit_code == 0, result.output
    assert "tp 4 × pp 2 (switch)" in result.output


def _bad(tmp_path, text: str) -> str:
    path = tmp_path / "system.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("args,words", [
    (["--system", "dgx-h100", "--tp", "3"], ["parallel layout", "'tp'", "must equal the chip count"]),
    (["--system", "dgx-h100", "--tp", "2", "--pp", "4", "--batch", "3", "--micro-batches", "2"],
     ["'micro_batches'", "do not divide batch 3"]),
    (["--system", "h100-sxm", "--chips", "3"], ["'tp'", "64 attention heads", "does not divide"]),
    (["--system", "taalas-hc1", "--tp", "2"], ["runs spatially"]),
])
def test_impossible_layouts_exit_2_with_one_paragraph(args, words):
    model = "llama-3.1-8b" if "taalas-hc1" in args else "llama-3.1-70b"
    result = invoke("predict", "--model", model, "--prompt", "16", "--generate", "2", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    for w in words:
        assert w in result.output, result.output


def test_a_model_too_big_even_split_exits_2_with_the_numbers():
    result = invoke("predict", "--model", "llama-3.1-405b", "--system", "dgx-h100", "--generate", "2")
    assert result.exit_code == 2
    assert "dgx-h100.yaml, field 'blocks.hbm.capacity_gb'" in result.output
    assert "at least 11 chips" in result.output


@pytest.mark.parametrize("network,field,words", [
    ("{topology: custom, bandwidth_gbps: 100, edges: [{a: chip0, b: chip1}]}", "network",
     "chip2, chip3 disconnected from chip0"),
    ("{bandwidth_gbps: 0}", "network.bandwidth_gbps", "greater than 0"),
    ("{topology: torus, dims: [2, 3]}", "network.dims", "a 2x3 torus holds 6 chips, not 4"),
    ("{topology: ring, in_switch_reduction: true}", "network", "in_switch_reduction needs a switch"),
])
def test_bad_networks_exit_2_naming_file_and_field(tmp_path, network, field, words):
    path = _bad(tmp_path, f"name: four\nchip: h100-sxm\ncount: 4\nnetwork: {network}\n")
    result = invoke("predict", "--model", "llama-3.1-8b", "--system", path, "--generate", "2")
    assert result.exit_code == 2
    assert f"{path}, field '{field}'" in result.output and words in result.output, result.output


def test_chips_lists_every_preset_with_its_network():
    from asicsim.hardware import preset_names

    out = json.loads(invoke("chips", "--json").output)
    assert [r["name"] for r in out] == preset_names()
    dgx = next(r for r in out if r["name"] == "dgx-h100")
    assert dgx["kind"] == "system" and dgx["chips"] == 8 and dgx["network"]["in_switch_reduction"]
    assert next(r for r in out if r["name"] == "tpu-v5e-8")["network"]["topology"] == "2x4 mesh"
    table = invoke("chips").output
    assert "dgx-h100" in table and "switch, 450, in-switch reduction" in table


def test_short_help_flag():
    result = invoke("-h")
    assert result.exit_code == 0 and "chips" in result.output
    assert invoke("predict", "-h").exit_code == 0
