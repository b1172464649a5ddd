"""Hostile description files get one clear paragraph and exit status 2: not UTF-8, alias bombs,
runaway nesting, duplicate keys, non-finite numbers, scenario names that are paths."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from asicsim.cli import main

CHIP = """name: c
mapping: temporal
blocks:
  - {kind: matmul, name: mm, units: 4, rows: 8, cols: 8, clock_ghz: 1, dtype_rate: {bf16: 1}}
  - {kind: vector, name: v, lanes: 8, clock_ghz: 1}
  - {kind: hbm, name: hbm, channels: 1, bandwidth_gbps_per_channel: 10, capacity_gb: 1}
  - {kind: dma, name: dma}
"""
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def predict_with(system: str):
    return CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", system, "--generate", "2"],
                              catch_exceptions=False)


@pytest.mark.parametrize("content,words", [
    (b"name: \xff\xfe\n", "is not UTF-8"),
    (("a: &a 1\nb: [" + ", ".join(["*a"] * 300) + "]\n").encode(), "YAML aliases"),
    ((BOMB + "name: *i\n").encode(), "valid string"),  # a billion laughs as a value: clipped, quick
    (("x: " + "[" * 200 + "]" * 200 + "\n").encode(), "nests deeper than 64"),
    (CHIP.replace("name: c\n", "name: c\nname: d\n").encode(), "appears twice"),
    (CHIP.replace("clock_ghz: 1,", "clock_ghz: .inf,", 1).encode(), "finite number"),
    (CHIP.replace("clock_ghz: 1,", "clock_ghz: 1.0e-300,", 1).encode(), "line 4: '1.0e-300' is out of range"),
    (CHIP.replace("capacity_gb: 1}", "capacity_gb: 1.0e+300}", 1).encode(), "between 1e-09 and 1e+15 in size"),
])
def test_hostile_chip_files_exit_2_with_one_paragraph(tmp_path, content, words):
    path = tmp_path / "chip.yaml"
    path.write_bytes(content)
    result = predict_with(str(path))
    assert result.exit_code == 2
    assert str(path) in result.output and words in result.output, result.output
    assert "Traceback" not in result.output and len(result.output) < 1000


@pytest.mark.parametrize("content,words", [
    ('{"model_type": "llama", "hidden_size": NaN}', "not a number JSON allows"),
    ('{"model_type": "llama", "model_type": "gemma"}', "appears twice"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ('{"model_type": "llama", "hidden_size": 1e400}', "1e400 is not a finite number"),
])
def test_hostile_model_configs_exit_2(tmp_path, content, words):
    path = tmp_path / "config.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--system", "h100-sxm"], catch_exceptions=False)
    assert result.exit_code == 2 and words in result.output, result.output


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "a b", ""])
def test_scenario_names_are_names_not_paths(tmp_path, name):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: {name!r}\nmodel: llama-3.1-8b\nsystems: [h100-sxm]\n")
    result = CliRunner().invoke(main, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "field 'name'" in result.output and "plain name" in result.output


def test_a_scenario_kind_that_is_not_a_string(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("kind: [compare]\nname: x\n")
    result = CliRunner().invoke(main, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "unknown scenario kind" in result.output


@pytest.mark.parametrize("change,words", [
    ({"partial_rotary_factor": 0}, "finite number above 0"),
    ({"partial_rotary_factor": -0.5}, "finite number above 0"),
    ({"partial_rotary_factor": 1e400}, "not a number JSON allows"),  # written as Infinity
    ({"partial_rotary_factor": 1.5}, "is a share, at most 1"),
    ({"num_hidden_layers": 10**12}, "at most 10,000"),
])
def test_hostile_values_in_a_real_config(tmp_path, change, words):
    import json

    from asicsim.model.hf import MODELS_DIR

    name = "qwen3-next-80b-a3b" if "partial_rotary_factor" in change else "gpt-oss-20b"
    data = json.loads((MODELS_DIR / f"{name}.json").read_text())
    data.update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--system", "h100-sxm"], catch_exceptions=False)
    assert result.exit_code == 2 and words in result.output, result.output


def test_unwritable_outputs_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--prompt", "8",
                                       "--generate", "2", "--trace", str(blocker / "t.json")], catch_exceptions=False)
    assert result.exit_code == 2 and "--trace" in result.output and "cannot write" in result.output


def test_run_refuses_a_folder_that_is_not_empty_unless_forced(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: llama-3.1-8b\nworkload: {prompt: 8, generate: 2}\nsystems: [h100-sxm]\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.png").write_text("an earlier run's figure")
    refused = CliRunner().invoke(main, ["run", str(path), "--out", str(out)], catch_exceptions=False)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert f"{out}: is not empty" in refused.output and "--force" in refused.output
    assert sorted(p.name for p in out.iterdir()) == ["old.png"]  # refused before anything ran or was written
    forced = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--force"], catch_exceptions=False)
    assert forced.exit_code == 0 and (out / "results.json").is_file() and (out / "old.png").is_file()
    assert "is not empty" in CliRunner().invoke(main, ["run", str(path), "--out", str(out)]).output


TINY = ('{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, '
        '"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}')


def test_trace_files_of_several_systems_are_named_by_a_slug_of_each_system(tmp_path):
    (tmp_path / "tiny.json").write_text(TINY)
    (tmp_path / "chip.yaml").write_text(CHIP.replace("name: c", "name: ../../x/y"))
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodel: tiny.json\nworkload: {prompt: 8, generate: 2}\nsystems: [h100-sxm, chip.yaml]\n")
    (tmp_path / "t").mkdir()
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"),
                                       "--trace", str(tmp_path / "t" / "trace.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["trace.h100-sxm.json", "trace.x-y.json"]


def test_an_sram_too_small_for_any_system_is_refused_at_once(tmp_path):
    import yaml

    from asicsim.hardware.system import PRESETS_DIR

    chip = yaml.safe_load((PRESETS_DIR / "groq-lpu.yaml").read_text())
    for block in chip["blocks"]:
        if block["kind"] == "sram":
            block["capacity_mb_per_bank"] *= 1e-8  # just inside what a YAML number may be
    (tmp_path / "chip.yaml").write_text(yaml.safe_dump(chip))
    result = predict_with(str(tmp_path / "chip.yaml"))
    assert result.exit_code == 2 and "over 65,536 chips" in result.output, result.output



TINY = ('{"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, '
        '"num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 1000, "max_position_embeddings": 4096}')


def _groq_with_sram(tmp_path, scale: float) -> str:
    import yaml

    from asicsim.hardware.system import PRESETS_DIR

    chip = yaml.safe_load((PRESETS_DIR / "groq-lpu.yaml").read_text())
    for block in chip["blocks"]:
        if block["kind"] == "sram":
            block["capacity_mb_per_bank"] *= scale
    (tmp_path / "chip.yaml").write_text(yaml.safe_dump(chip))
    (tmp_path / "tiny.json").write_text(TINY)
    return str(tmp_path / "chip.yaml")


def test_a_model_cut_over_too_many_chip_pairs_is_refused_before_it_is_built(tmp_path, monkeypatch):
    """A tiny model on a Groq-like chip with a millionth of its SRAM takes ~5,000 chips, and each
    op's parts send to every part of the next: over the full mesh that is ~400,000 streams, each
    simulated (the fuzz tier found it: minutes and gigabytes, then MemoryError). Refused at once
    with the count; a ~1,000-chip cut (~52,000 pairs, within the limit: it runs, in ~6 s, too long
    for this test) is refused here only once the limit is lowered below its pairs."""
    import asicsim.compile as compile_

    args = ["predict", "--model", str(tmp_path / "tiny.json"), "--prompt", "4", "--generate", "2"]
    monkeypatch.setattr(compile_, "MAX_BLOCKS", 20_000)
    near = CliRunner().invoke(main, [*args, "--system", _groq_with_sram(tmp_path, 5e-6)], catch_exceptions=False)
    assert near.exit_code == 2 and re.search(r"between [\d,]+ pairs of chips", near.output), near.output
    monkeypatch.undo()
    far = CliRunner().invoke(main, [*args, "--system", _groq_with_sram(tmp_path, 1e-6)], catch_exceptions=False)
    assert far.exit_code == 2 and far.output.startswith("error: ") and "note:" not in far.output, far.output
    assert re.search(r"chip\.yaml, field 'blocks': tiny packed over 5,118 chips .* between over 100,000 pairs of "
                     r"chips .* more than the 100,000 simulated processes", far.output), far.output
    assert "Traceback" not in far.output


def test_chip_pairs_are_counted_from_where_each_op_sits():
    """Each part of an op receives from every part of each op it depends on, on other chips; the
    last op feeds the next step's first."""
    from types import SimpleNamespace as Op

    from asicsim.compile.packing import _pairs

    ops = [Op(name="a"), Op(name="b"), Op(name="c")]
    deps = [(), (0,), (0, 1)]
    where = {"a": (0, 1), "b": (2, 3, 4), "c": (4,)}
    # a->b: 2 x 3 (among them (0,4), (1,4), which a->c repeats); b->c: (2,4), (3,4); c->a (the next
    # step): (4,0), (4,1)
    assert _pairs(ops, deps, where) == 6 + 2 + 2
    assert _pairs(ops, deps, where, most=5) == 6  # counting stops past the limit


def test_the_run_time_estimate_counts_blocks_and_streams(monkeypatch):
    """A run of few tasks over very many blocks and link streams is announced: each costs set-up."""
    import warnings

    import asicsim.compile as compile_
    from asicsim.compile import LongRun, Workload

    wl = Workload(batch=1, prompt=4, generate=2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        compile_._note_long(1000, 2, 10, wl)
        assert not seen
        compile_._note_long(1000, 2, int(2 * compile_.NOTE_S / compile_.PROCESS_S), wl)
    assert len(seen) == 1 and issubclass(seen[0].category, LongRun)
    assert "blocks and servers" in str(seen[0].message) and "--fast" not in str(seen[0].message)


def test_a_scenario_of_many_runs_is_announced_once_the_first_has_run(tmp_path, monkeypatch):
    """Each run of a comparison may be short while all of them are long: once the first has taken
    its time, the scenario says how long all should take (threshold lowered to stand in)."""
    import asicsim.compile as compile_
    import asicsim.plots

    monkeypatch.setattr(asicsim.plots, "write_plots", lambda output, folder: [])  # figures are not the point here
    (tmp_path / "s.yaml").write_text("name: s\nmodel: llama-3.1-8b\nworkload: {batch: 1, prompt: 16, generate: 2}\n"
                                     "systems: [h100-sxm, h200]\n")
    args = ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]
    quiet = CliRunner().invoke(main, args, catch_exceptions=False)
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr, quiet.output
    monkeypatch.setattr(compile_, "NOTE_S", 0.0)
    loud = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "out2")], catch_exceptions=False)
    assert loud.exit_code == 0, loud.output
    assert len(re.findall(r"note: this scenario runs 2 simulations; the first took [\d.]+ s, so about \d+ s in all",
                          loud.stderr)) == 1, loud.stderr


@pytest.mark.parametrize("text,words", [
    ("kind: sweep\nname: s\nmodel: llama-3.1-8b\nsystem: h100-sxm\ngrid: {workload.batch: [1, .nan]}\n",
     "line 5: '.nan' is not a finite number"),
    ("kind: sweep\nname: s\nmodel: llama-3.1-8b\nsystem: h100-sxm\ngrid: {workload.batch: [1.0e+400]}\n",
     "'1.0e+400' is not a finite number"),
    ("kind: context-scaling\nname: s\nsystem: h100-sxm\nmodels: [llama-3.1-8b]\ncontexts: [-16]\n",
     "field 'contexts.0'"),
    ("kind: scale-out\nname: s\nmodel: llama-3.1-8b\nsetups: [{system: h100-sxm}]\n"
     "link_sweep: {setup: {system: dgx-h100}, bandwidth_gbps: [0]}\n", "field 'link_sweep.bandwidth_gbps.0'"),
    ("kind: scale-out\nname: s\nmodel: llama-3.1-8b\nworkload: {generate: 1}\nsetups: [{system: h100-sxm}]\n",
     "generate must be at least 2"),
])
def test_numbers_a_study_cannot_use_are_refused_when_read(tmp_path, text, words):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 2 and words in result.output, result.output


def test_an_energy_section_without_mac_energies_is_refused(tmp_path):
    path = tmp_path / "chip.yaml"
    path.write_text(CHIP + "energy: {pj_per_mac: {}, pj_per_byte: {hbm: 1}, static_w: 1}\n")
    result = predict_with(str(path))
    assert result.exit_code == 2 and "energy.pj_per_mac" in result.output, result.output


def test_long_or_deep_values_are_clipped_in_messages(tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": "é" * 5000, "num_attention_heads": [[[[[[1]]]]]]}))
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--system", "h100-sxm"], catch_exceptions=False)
    assert result.exit_code == 2 and "hidden_size" in result.output and len(result.output) < 500, result.output


def test_a_run_too_large_is_refused_at_once_with_its_memory_and_time():
    result = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm",
                                       "--generate", "100000", "--exact"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert re.search(r"about 238,\d{3},\d{3} tasks, taking about \d+ GB of memory and \d+ minutes", result.output)
    assert "--fast" in result.output and "generate fewer tokens" in result.output


def test_without_exact_a_run_too_large_for_every_step_is_sampled_with_a_note():
    import json

    result = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm",
                                       "--generate", "10000", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "note: every step would be too many" in result.stderr and "23,8" in result.stderr
    out = json.loads(result.stdout)
    assert out["fast"] is True and out["decode_steps"] == 9999 and 2 < out["decode_steps_simulated"] < 200
    # a run that fits is simulated step by step, as before
    small = json.loads(CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm",
                                                 "--generate", "4", "--json"]).stdout)
    assert small["fast"] is False and small["decode_steps_simulated"] == small["decode_steps"] == 3


@pytest.mark.parametrize("args,words", [
    (["--generate", "10000000000"], "at most 16,777,216"),
    (["--batch", "2000000"], "at most 1,048,576 sequences"),
    (["--tp", "100000"], "at most 65,536 chips"),
])
def test_workloads_beyond_any_model_are_refused_before_anything_is_built(args, words):
    result = CliRunner().invoke(main, ["predict", "--model", "mamba2-2.7b", "--system", "dgx-h100", *args],
                                catch_exceptions=False)
    assert result.exit_code == 2 and words in result.output, result.output


def test_a_name_too_long_for_the_file_system_is_an_unknown_name_not_a_crash():
    result = predict_with("x" * 5000)
    assert result.exit_code == 2 and "unknown preset" in result.output and len(result.output) < 1500, result.output


@pytest.mark.parametrize("multiplier", [1e300, 1e-300])
def test_a_width_multiplier_must_leave_a_size(tmp_path, multiplier):
    import json

    from asicsim.model.hf import MODELS_DIR

    data = json.loads((MODELS_DIR / "lfm2-1.2b.json").read_text()) | {"block_ffn_dim_multiplier": multiplier}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["predict", "--model", str(path), "--system", "h100-sxm"], catch_exceptions=False)
    assert result.exit_code == 2 and "field 'block_ffn_dim_multiplier'" in result.output, result.output
    assert "sizes are 1 to 2,147,483,648" in result.output


def test_a_system_of_too_many_blocks_is_refused_before_it_is_built(tmp_path):
    path = tmp_path / "system.yaml"
    path.write_text("name: s\nchip: cerebras-wse3\ncount: 4000\n")  # the slow fuzz tier: a hang past 10 s
    result = predict_with(str(path))
    assert result.exit_code == 2 and "blocks; at most 100,000 are simulated" in result.output, result.output


def test_a_misspelt_field_shows_the_missing_one_and_the_unknown_one_with_their_lines(tmp_path):
    path = tmp_path / "chip.yaml"
    path.write_text("name: x\ndescription: y\nmapping: temporal\nblocks:\n  - name: mm\n    kind: matmul\n"
                    "    unitz: 4\n    rows: 8\n    cols: 8\n    clock_ghz: 1\n    dtype_rate: {bf16: 1}\n")
    result = predict_with(str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "line 5, field 'blocks.0.matmul.units': Field required" in result.output
    assert "line 7, field 'blocks.0.matmul.unitz': Extra inputs are not permitted" in result.output


def test_a_system_files_chip_path_is_taken_relative_to_the_system_file(tmp_path, monkeypatch):
    from pathlib import Path

    from asicsim.hardware import load_system

    preset = Path(__file__).resolve().parents[1] / "asicsim" / "hardware" / "presets" / "h100-sxm.yaml"
    (tmp_path / "boxes" / "chips").mkdir(parents=True)
    (tmp_path / "boxes" / "chips" / "mine.yaml").write_text(preset.read_text())
    (tmp_path / "boxes" / "pair.yaml").write_text("name: pair\nchip: chips/mine.yaml\ncount: 2\n")
    (tmp_path / "boxes" / "bad.yaml").write_text("name: bad\nchip: chips/none.yaml\ncount: 2\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert len(load_system(str(tmp_path / "boxes" / "pair.yaml")).chips) == 2
    result = predict_with(str(tmp_path / "boxes" / "bad.yaml"))
    assert result.exit_code == 2 and "field 'chip'" in result.output and "none.yaml" in result.output


def test_a_gemm_kernel_with_more_cores_than_the_block_has_macs_is_refused(tmp_path):
    # found by the slow fuzz tier: the h100 preset with its tensor block shrunk to 16 MACs kept a
    # 132-core kernel model and divided by zero
    import yaml

    from asicsim.hardware.system import PRESETS_DIR

    chip = yaml.safe_load((PRESETS_DIR / "h100-sxm.yaml").read_text())
    for block in chip["blocks"]:
        if block["kind"] == "matmul":
            block.update(units=1, rows=4, cols=4)
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(chip))
    result = CliRunner().invoke(main, ["predict", "--model", "llama-3.1-8b", "--system", str(path), "--prompt", "4",
                                       "--generate", "2"], catch_exceptions=False)
    assert result.exit_code == 2 and "kernel.cores is 132 but the block has 16 MACs" in result.output, result.output


def test_a_long_run_is_announced_with_its_estimate_before_it_starts(monkeypatch):
    """A run estimated above compile.NOTE_S seconds says so (tasks, steps, time, how to shorten it)
    on stderr before it is simulated; a shorter one says nothing. The threshold is lowered here so
    that a short run stands in for a long one."""
    import asicsim.compile as compile_

    args = ["predict", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--prompt", "16", "--generate", "4"]
    quiet = CliRunner().invoke(main, args, catch_exceptions=False)
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr
    monkeypatch.setattr(compile_, "NOTE_S", 0.001)
    loud = CliRunner().invoke(main, args, catch_exceptions=False)
    assert loud.exit_code == 0, loud.output
    assert re.search(r"note: this run simulates about [\d,]+ tasks in 4 steps, about \d+ s", loud.stderr)
    assert "--fast" in loud.stderr and loud.stdout == quiet.stdout  # the same result, announced
    assert "note:" not in CliRunner().invoke(main, ["-q", *args]).stderr  # --quiet keeps only results


YAML_REFUSALS = [  # (file bytes, words every parser's refusal carries)
    (b"name: \xff\xfe\n", "is not UTF-8"),
    (("a: &a 1\nb: [" + ", ".join(["*a"] * 300) + "]\n").encode(), "YAML aliases"),
    (("x: " + "[" * 200 + "]" * 200 + "\n").encode(), "nests deeper than 64 levels (line 1)"),
    (CHIP.replace("name: c\n", "name: c\nname: d\n").encode(), "'name' appears twice (first on line 1)"),
    (CHIP.replace("clock_ghz: 1,", "clock_ghz: .inf,", 1).encode(), "line 4: '.inf' is not a finite number"),
    (CHIP.replace("clock_ghz: 1,", "clock_ghz: 1.0e-300,", 1).encode(), "line 4: '1.0e-300' is out of range"),
    (b"name: x\nblocks: [1, 2\n", "is not valid YAML (line 3, column 1)"),
    (b"a: 1\n  b: 2\n", "is not valid YAML (line 2, column 4): mapping values are not allowed"),
    (b"a: \x07\n", "unacceptable character #x0007"),
]


@pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure"])
@pytest.mark.parametrize("content,words", YAML_REFUSALS)
def test_either_yaml_parser_refuses_hostile_files_alike(tmp_path, content, words, pure):
    """libyaml's parser (used where PyYAML has it, ten times the pure one's speed) keeps every
    check of the pure one: the event pass and the constructor are the same code on both."""
    from asicsim.errors import InputError
    from asicsim.safeio import load_yaml

    path = tmp_path / "chip.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_yaml(path, pure=pure)
    assert str(path) in str(e.value) and words in str(e.value), str(e.value)


def test_the_c_yaml_parser_reads_every_shipped_file_as_the_pure_one_does():
    import yaml

    from asicsim import safeio
    from asicsim.hardware.system import PRESETS_DIR
    from asicsim.shipped import SCENARIOS_DIR

    if yaml.__with_libyaml__:
        assert issubclass(safeio._CUniqueKeyLoader, yaml.CSafeLoader)
    files = sorted(PRESETS_DIR.rglob("*.yaml")) + sorted(SCENARIOS_DIR.rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        assert safeio.load_yaml(path) == safeio.load_yaml(path, pure=True), path


def test_without_libyaml_the_pure_parser_is_used(monkeypatch, tmp_path):
    import importlib

    import yaml

    from asicsim import safeio

    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    try:
        fresh = importlib.reload(safeio)
        assert fresh._PARSER is yaml.SafeLoader and issubclass(fresh._CUniqueKeyLoader, yaml.SafeLoader)
        path = tmp_path / "chip.yaml"
        path.write_text(CHIP.replace("name: c\n", "name: c\nname: d\n"))
        with pytest.raises(fresh.InputError, match="appears twice"):
            fresh.load_yaml(path)
        path.write_text(CHIP)
        assert fresh.load_yaml(path)["name"] == "c"
    finally:
        monkeypatch.undo()
        importlib.reload(safeio)


@pytest.mark.parametrize("text", [
    "kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [{system: h100-sxm, replicas: true}]\nrates: [1]\n",
    "kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [{system: h100-sxm, tp: false}]\nrates: [1]\n",
])
def test_a_yes_no_value_where_a_number_belongs_is_refused_not_read_as_one(tmp_path, text):
    """YAML's true/false in a count (pydantic would take true as 1): refused, naming the field."""
    (tmp_path / "s.yaml").write_text(text)
    out = CliRunner().invoke(main, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")])
    assert out.exit_code == 2 and out.output.startswith("error: ") and "a yes/no value" in out.output, out.output


def test_a_chip_count_given_as_true_is_refused(tmp_path):
    import yaml

    from asicsim.hardware.system import PRESETS_DIR

    chip = yaml.safe_load((PRESETS_DIR / "h100-sxm.yaml").read_text())
    next(b for b in chip["blocks"] if b["kind"] == "matmul")["units"] = True
    (tmp_path / "chip.yaml").write_text(yaml.safe_dump(chip))
    out = predict_with(str(tmp_path / "chip.yaml"))
    assert out.exit_code == 2 and "field 'units' is true, a yes/no value" in out.output, out.output
