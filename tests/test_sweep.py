"""The sweep study: a grid over chip, network and workload fields, points that cannot run
skipped with the reason, and a SQLite store that a rerun resumes from."""

from __future__ import annotations

import json

from click.testing import CliRunner

from asicsim.cli import main

SWEEP = """kind: sweep
name: tiny-sweep
model: llama-3.1-8b
system: h100-sxm
workload: {{prompt: 32, generate: 20, fast: true}}
grid:
  chip.hbm.bandwidth_gbps_per_channel: {bandwidths}
  workload.batch: [1, 40000]
store: points.sqlite
"""


def _run(tmp_path, bandwidths):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(bandwidths=bandwidths))
    out = tmp_path / "out"
    # --force: a resumed sweep writes over the folder of its first run
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--force"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text()), result.output


def test_a_grid_runs_skips_what_cannot_run_and_resumes_from_its_store(tmp_path):
    doc, text = _run(tmp_path, "[335, 670]")
    rows = doc["rows"]
    assert len(rows) == 4 and doc["reused"] == 0
    ok = {r["point"]["chip.hbm.bandwidth_gbps_per_channel"]: r for r in rows if r["ok"]}
    assert set(ok) == {335, 670} and ok[670]["tpot_ms"] < 0.6 * ok[335]["tpot_ms"]
    assert all("does not fit" in r["reason"] for r in rows if not r["ok"]) and "2 skipped" in text
    again, _ = _run(tmp_path, "[335, 670, 1340]")  # the four finished points come from the store
    assert again["reused"] == 4 and len(again["rows"]) == 6
    assert [r["point"] for r in again["rows"][:4]] == [r["point"] for r in rows]


def test_a_bad_field_path_is_refused(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("kind: sweep\nname: s\nmodel: llama-3.1-8b\nsystem: h100-sxm\ngrid: {hbm.channels: [1]}\n")
    result = CliRunner().invoke(main, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "field 'grid.hbm.channels'" in result.output


def test_a_latin_hypercube_sample_covers_each_range_once_per_stratum(tmp_path):
    from asicsim.studies.sweep import SampleSpec, _sampled

    sample = SampleSpec(points=8, seed=3, ranges={"chip.hbm.bandwidth_gbps_per_channel": (100.0, 900.0),
                                                   "workload.batch": (1, 64)})
    points = _sampled(sample, tmp_path / "s.yaml")
    assert points == _sampled(sample, tmp_path / "s.yaml")  # seeded
    bw = sorted(p["chip.hbm.bandwidth_gbps_per_channel"] for p in points)
    assert [int((b - 100) // 100) for b in bw] == list(range(8))  # one point in each eighth
    assert all(isinstance(p["workload.batch"], int) and 1 <= p["workload.batch"] <= 64 for p in points)


def test_sampled_points_run_through_a_sweep(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("kind: sweep\nname: s\nmodel: llama-3.1-8b\nsystem: h100-sxm\n"
                    "workload: {prompt: 16, generate: 3}\n"
                    "sample: {points: 3, seed: 1, ranges: {chip.hbm.bandwidth_gbps_per_channel: [200, 700]}}\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0 and "3 ran, 0 skipped" in result.output, result.output


def test_whole_models_and_systems_are_grid_axes(tmp_path):
    """`model` and `system` in the grid choose a whole model or system per point: each point runs
    what it names (its row says so, and its time is that of a plain run of the same), a point
    that cannot run (the HC1 holds only Llama-3.1-8B) is skipped with the reason."""
    from asicsim.api import predict

    path = tmp_path / "zoo.yaml"
    path.write_text("kind: sweep\nname: zoo\nworkload: {prompt: 32, generate: 3}\n"
                    "grid:\n  model: [llama-3.1-8b, mamba2-2.7b]\n  system: [h100-sxm, taalas-hc1]\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert [(r["point"]["model"], r["point"]["system"]) for r in rows] == [
        ("llama-3.1-8b", "h100-sxm"), ("llama-3.1-8b", "taalas-hc1"), ("mamba2-2.7b", "h100-sxm"),
        ("mamba2-2.7b", "taalas-hc1")]
    ran = {(r["point"]["model"], r["point"]["system"]): r for r in rows if r["ok"]}
    assert set(ran) == {("llama-3.1-8b", "h100-sxm"), ("llama-3.1-8b", "taalas-hc1"), ("mamba2-2.7b", "h100-sxm")}
    assert ran["mamba2-2.7b", "h100-sxm"]["model"] == "mamba2-2.7b"
    plain = predict("mamba2-2.7b", "h100-sxm", prompt=32, generate=3).metrics.tpot_ms
    assert ran["mamba2-2.7b", "h100-sxm"]["tpot_ms"] == plain
    assert "hardwires llama-3.1-8b" in rows[3]["reason"]
    # both at the top and in the grid, or neither: refused
    path.write_text("kind: sweep\nname: zoo\nmodel: llama-3.1-8b\ngrid: {model: [mamba2-2.7b]}\nsystem: h100-sxm\n")
    result = CliRunner().invoke(main, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "both at the top and in the grid" in result.output
    path.write_text("kind: sweep\nname: zoo\nmodel: llama-3.1-8b\ngrid: {workload.batch: [1]}\n")
    result = CliRunner().invoke(main, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 2 and "needs a system" in result.output
