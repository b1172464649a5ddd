"""Command-line conventions: results on stdout, status on stderr, --json on run, --set overrides
(validated, the unknown field named), --quiet and --verbose, counts that say what they count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from asicsim.cli import _figure_count, main

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--set", "workload.prompt=16", "--set", "workload.generate=2", "--set", "systems=[taalas-hc1]"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def run_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "res"
    result = invoke("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(out), "--json",
                    "--set", "workload.batch=3", *QUICK)
    assert result.exit_code == 0, result.output
    return result, out


def test_run_json_is_the_results_document_on_stdout(run_json):
    result, out = run_json
    doc = json.loads(result.stdout)
    assert doc == json.loads((out / "results.json").read_text())
    assert doc["scenario"]["workload"]["batch"] == 3 and doc["results"][0]["batch"] == 3  # --set took effect
    assert doc["scenario"]["systems"] == ["taalas-hc1"]


def test_status_lines_go_to_stderr_and_count_figures_not_files(run_json):
    result, out = run_json
    assert "wrote" not in result.stdout
    assert f"wrote {out / 'results.json'} and results.csv" in result.stderr
    assert "wrote 3 figures (PNG+SVG)" in result.stderr
    assert len(list(out.glob("*.png"))) == len(list(out.glob("*.svg"))) == 3


def test_figure_count_names_the_formats():
    p = Path("f")
    assert _figure_count([p / "a.png", p / "a.svg", p / "b.png", p / "b.svg"]) == "2 figures (PNG+SVG)"
    assert _figure_count([p / "a.png", p / "a.svg", p / "c.png"]) == "2 figures (1 PNG+SVG, 1 PNG)"
    assert _figure_count([p / "c.png"]) == "1 figure (PNG)"


@pytest.mark.parametrize("override, words", [
    ("workload.bach=4", "field 'workload.bach': workload has no field 'bach'; its fields are: batch,"),
    ("modle=x", "field 'modle': the scenario has no field 'modle'"),
    ("workload.batch=0", "field 'workload.batch': Input should be greater than or equal to 1"),
    ("workload.batch", "takes FIELD.PATH=VALUE"),
])
def test_bad_overrides_name_the_field_and_exit_2(tmp_path, override, words):
    result = invoke("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path / "x"),
                    "--set", override)
    assert result.exit_code == 2 and "--set" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


def test_quiet_prints_results_only_and_verbose_times_stages(tmp_path):
    quiet = invoke("-q", "run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path / "q"), *QUICK)
    assert quiet.exit_code == 0 and quiet.stderr == "" and "TPOT (ms)" in quiet.stdout
    loud = invoke("-v", "report", str(tmp_path / "q"))
    assert loud.exit_code == 0 and "writing the report: " in loud.stderr and " s\n" in loud.stderr
    assert f"wrote {tmp_path / 'q' / 'report.html'}" in loud.stderr and loud.stdout == ""


def test_validate_json_parses(monkeypatch):
    """validate --json prints a JSON list, one object per measurement row (two simulated rows here,
    to stay quick: the command's output path is what is checked, not the whole table), then the
    pending rows with no prediction."""
    from functools import partial

    import asicsim.validation as validation

    monkeypatch.setattr(validation, "run_checks", partial(validation.run_checks, ids={"P19", "P20"}))
    result = invoke("validate", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    simulated = [r for r in rows if r["predicted"] is not None]
    assert [r["id"] for r in simulated] == ["P19", "P20"] and all(r["predicted"] > 0 for r in simulated)
    # pending rows follow, listed with their reason and no prediction
    assert all(r["role"].startswith("pending: ") and r["error"] is None for r in rows if r not in simulated)


def test_chips_json_parses():
    result = invoke("chips", "--json")
    assert result.exit_code == 0 and {"h100-sxm", "taalas-hc1"} <= {r["name"] for r in json.loads(result.stdout)}


def test_quiet_after_the_command_name_too(tmp_path):
    quiet = invoke("run", "-q", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path / "q"), *QUICK)
    assert quiet.exit_code == 0 and quiet.stderr == "" and "TPOT (ms)" in quiet.stdout
    loud = invoke("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path / "q"), "--force", *QUICK)
    assert "wrote" in loud.stderr  # the flag does not stick to the next command
