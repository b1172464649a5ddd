"""``asicsim sweep`` and ``asicsim results``: a sweep killed with SIGKILL resumes without
recomputing or losing a point; local processes and a Dask cluster give the same rows; bad field
paths are named with the nearest valid ones before anything runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from asicsim.cli import main

TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
        "num_key_value_heads": 1, "num_hidden_layers": 2, "vocab_size": 1024, "max_position_embeddings": 4096}


def _sweep(tmp_path: Path, grid: str, extra: str = "") -> Path:
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    path = tmp_path / "sweep.yaml"
    path.write_text("kind: sweep\nname: tiny\nmodel: tiny.json\nsystem: teaching-chip\n"
                    f"workload: {{prompt: 16, generate: 8}}\ngrid:\n{grid}{extra}")
    return path


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:  # created, no table yet
        return 0


def test_a_sweep_killed_mid_way_resumes_without_losing_or_repeating_a_point(tmp_path):
    grid = ("  workload.batch: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
            "  workload.prompt: [8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, "
            "160]\n")
    path, out = _sweep(tmp_path, grid), tmp_path / "out"
    store = out / "results.sqlite"
    child = subprocess.Popen([sys.executable, "-m", "asicsim.cli", "sweep", str(path), "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while _count(store) < 20 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    at_kill = _count(store)
    assert 20 <= at_kill < 200, at_kill  # killed part-way
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["reused"] >= at_kill and len(doc["rows"]) == 200
    with sqlite3.connect(store) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM points")]
    assert len(keys) == len(set(keys)) == 200
    points = [json.dumps(r["point"], sort_keys=True) for r in doc["rows"]]
    assert len(set(points)) == 200


def test_local_processes_and_a_dask_cluster_give_the_same_rows(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    grid = "  workload.batch: [1, 2, 4]\n  model.num_hidden_layers: [1, 2, 4]\n"
    path = _sweep(tmp_path, grid)
    serial = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "a"), "--json"])
    pool = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "b"), "--workers", "2", "--json"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        dask = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "c"), "--scheduler",
                                         c.scheduler_address, "--json"])
    rows = [json.loads(r.stdout)["rows"] for r in (serial, pool, dask)]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 9
    tpot = {(r["point"]["workload.batch"], r["point"]["model.num_hidden_layers"]): r["tpot_ms"] for r in rows[0]}
    assert tpot[(1, 1)] < tpot[(1, 2)] < tpot[(1, 4)]  # the config field really moved the model


@pytest.mark.parametrize("grid, field, hint", [
    ("  chip.hbm.bandwith_gbps_per_channel: [10]\n", "chip.hbm.bandwith_gbps_per_channel",
     "did you mean bandwidth_gbps_per_channel"),
    ("  model.num_hidden_layer: [1]\n", "model.num_hidden_layer", "did you mean num_hidden_layers"),
    ("  workload.batch: [two]\n", "workload", "batch"),
])
def test_a_bad_field_path_or_value_is_named_before_any_point_runs(tmp_path, grid, field, hint):
    path = _sweep(tmp_path, grid)
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and hint in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "results.sqlite").exists() or _count(tmp_path / "o" / "results.sqlite") == 0


def test_results_lists_filters_and_exports_a_store(tmp_path):
    pd = pytest.importorskip("pandas")
    path = _sweep(tmp_path, "  workload.batch: [1, 2, 3]\n")
    assert CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "o")]).exit_code == 0
    shown = CliRunner().invoke(main, ["results", str(tmp_path / "o"), "--where", "workload.batch=2"])
    assert shown.exit_code == 0 and len([ln for ln in shown.stdout.splitlines() if ln.strip()]) == 2
    csv = tmp_path / "rows.csv"
    assert CliRunner().invoke(main, ["results", str(tmp_path / "o"), "--csv", str(csv)]).exit_code == 0
    frame = pd.read_csv(csv)
    assert list(frame["workload.batch"]) == [1, 2, 3] and (frame["tpot_ms"] > 0).all()
    bad = CliRunner().invoke(main, ["results", str(tmp_path / "o"), "--where", "nosuch=1"])
    assert bad.exit_code == 2 and "workload.batch" in bad.output


def test_pareto_front_and_sensitivity_on_known_rows():
    from asicsim.studies.sweep import pareto_front, sensitivity

    rows = [{"ok": True, "point": {"a": a, "b": b}, "speed": s, "joules": j}
            for a, b, s, j in [(1, 1, 10, 5), (1, 2, 20, 6), (2, 1, 15, 4), (2, 2, 5, 9), (3, 1, 20, 7)]]
    rows.append({"ok": False, "point": {"a": 3, "b": 2}, "reason": "does not fit"})
    # (20, 6) beats (20, 7) on joules at equal speed; (15, 4) is cheapest; (10, 5) and (5, 9) are beaten
    assert pareto_front(rows, [("speed", True), ("joules", False)]) == [1, 2]
    sens = sensitivity(rows, "joules")
    # b moves the mean joules from 5.33 (b=1) to 7.5 (b=2), 1.41x; a from 5.5 (a=1) to 7 (a=3), 1.27x
    assert [(e["field"], e["low_at"], e["high_at"]) for e in sens] == [("b", 1, 2), ("a", 1, 3)]
    assert sens[0]["spread"] == pytest.approx(7.5 / (16 / 3))


def test_a_sweep_marks_its_pareto_front_and_draws_it(tmp_path):
    grid = "  workload.batch: [1, 4, 16]\n  chip.hbm.bandwidth_gbps_per_channel: [5, 10, 40]\n"
    path = _sweep(tmp_path, grid, "pareto: [tokens_per_s_per_user:max, tokens_per_s:max]\nsensitivity: tpot_ms\n")
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows, front = doc["rows"], doc["pareto"]["front"]
    assert front and all(rows[i]["point"]["chip.hbm.bandwidth_gbps_per_channel"] == 40 for i in front)
    assert doc["sensitivity"]["fields"][0]["field"] == "chip.hbm.bandwidth_gbps_per_channel"
    assert (tmp_path / "o" / "pareto.png").exists() and (tmp_path / "o" / "sensitivity.png").exists()
    bad = _sweep(tmp_path, "  workload.batch: [1]\n", "pareto: [tokens_per_s:fastest, tpot_ms:min]\n")
    refused = CliRunner().invoke(main, ["sweep", str(bad), "--out", str(tmp_path / "p")])
    assert refused.exit_code == 2 and "pareto.0" in refused.output
