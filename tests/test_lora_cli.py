"""``asicsim predict --lora RANK[:TARGETS]``: adapters from the command line, simulated as the
Python API's ``Adapters`` are; bad ranks and targets are one-paragraph errors with exit status 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asicsim.cli import main
from asicsim.compile.adapters import DEFAULT_TARGETS, Adapters, parse_lora
from asicsim.errors import InputError

ARGS = ["predict", "--model", "llama-3.1-8b", "--system", "taalas-hc1", "--prompt", "32", "--generate", "3", "--json"]


def test_parse_lora():
    assert parse_lora("16") == Adapters(16, DEFAULT_TARGETS)
    assert parse_lora("8:qkv, o") == Adapters(8, ("qkv", "o"))
    assert parse_lora("4:").targets == DEFAULT_TARGETS
    for bad in ("x", "0", "-3:qkv"):
        with pytest.raises(InputError):
            parse_lora(bad)


def _run(*extra):
    return CliRunner().invoke(main, ARGS + list(extra))


def test_lora_on_the_command_line_is_simulated():
    plain, lora = _run(), _run("--lora", "16:qkv,o")
    assert plain.exit_code == lora.exit_code == 0, lora.output
    a, b = json.loads(plain.output), json.loads(lora.output)
    assert b["adapters"] == {"rank": 16, "targets": ["qkv", "o"]} and a["adapters"] is None
    assert b["tpot_ms"] > a["tpot_ms"]  # the adapters' products run on the programmable array


@pytest.mark.parametrize("value, match", [
    ("x:qkv", "expected RANK or RANK:TARGET"),
    ("8:foo", "match no weight matmul"),
    ("4096", "adapters.*lower the batch or the context or the adapter rank"),
])
def test_bad_lora_is_a_clear_error(value, match):
    import re

    out = _run("--lora", value)
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert re.search(match, out.output), out.output


def test_a_same_shape_fine_tune_is_refused_on_a_hardwired_chip(tmp_path):
    """A copy of the base config under another name has the base's fingerprint and shape, but the
    hardwired chip's weights are the base's: it must come as adapters on the base."""
    import shutil
    from pathlib import Path

    from asicsim.compile.placement import model_fingerprint
    from asicsim.model import load_model

    base = Path(__file__).resolve().parents[1] / "models" / "llama-3.1-8b.json"
    tune = tmp_path / "my-finetune.json"
    shutil.copy(base, tune)
    assert model_fingerprint(load_model(str(tune))) == model_fingerprint(load_model("llama-3.1-8b"))
    assert model_fingerprint(load_model("llama-3.1-70b")) != model_fingerprint(load_model("llama-3.1-8b"))
    out = CliRunner().invoke(main, ["predict", "--model", str(tune), "--system", "taalas-hc1", "--prompt", "16",
                                    "--generate", "2"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    fp = model_fingerprint(load_model("llama-3.1-8b"))
    for text in ("hardwires llama-3.1-8b", f"fingerprint {fp}", "my-finetune has the same shape", "--lora"):
        assert text in out.output, out.output


def test_lora_in_a_scenario_workload(tmp_path):
    from asicsim.scenario import load_scenario, run_scenario

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: llama-3.1-8b\nsystems: [taalas-hc1]\n"
                    "workload: {prompt: 16, generate: 2, lora: '8:qkv'}\n")
    out = run_scenario(path)
    assert out.results[0].workload.adapters == Adapters(8, ("qkv",))
    path.write_text(path.read_text().replace("'8:qkv'", "'eight'"))
    with pytest.raises(InputError, match="expected RANK") as e:
        load_scenario(path)
    assert e.value.field == "workload.lora" and e.value.source == str(path)
