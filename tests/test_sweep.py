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
