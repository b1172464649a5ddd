"""Study ``sweep``: one model on one system over a grid (or a zip) of field values.

A point sets fields by path: ``chip.<field path>`` (a chip field, blocks by name:
``chip.hbm.bandwidth_gbps_per_channel``), ``network.<field>`` (the network between chips), and
``workload.<field>`` (``batch``, ``prompt``, ``tp`` ...). ``grid`` takes every combination;
``zip`` varies its fields together, and each zipped tuple is crossed with the grid; ``sample``
adds points drawn over ranges (a Latin hypercube or uniform, seeded), also crossed with the grid.
Points that cannot run (a model that does not fit, a layout that does not divide) are skipped,
counted and listed with the reason. With ``store`` (a SQLite file, relative to the scenario),
each finished point is kept under a hash of its full configuration and the simulator version; rerunning the
sweep, after an interruption, say, recomputes nothing that finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from asicsim import __version__
from asicsim.api import run
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.hardware.system import SystemSpec, build_system, merged_network, with_chips
from asicsim.scenario import StudyOutput, WorkloadSpec, resolve_model, resolve_system, study
from asicsim.tables import Table, render_text

PREFIXES = ("chip.", "network.", "workload.")


class SampleSpec(Spec):
    """``points`` drawn over ``ranges`` (field path -> [low, high]), seeded: ``latin`` (a Latin
    hypercube: each range cut into ``points`` strata, each stratum used once) or ``random``
    (uniform). A range of two integers draws integers."""

    method: Literal["latin", "random"] = "latin"
    points: int = Field(ge=1, le=100_000)
    seed: int = 0
    ranges: dict[str, tuple[int | float, int | float]] = Field(min_length=1)


class SweepSpec(Spec):
    """``model`` on ``system`` at every point of ``grid`` × ``zip``."""

    kind: Literal["sweep"]
    name: str
    description: str = ""
    model: str = Field(description="A shipped model name or a config.json path.")
    system: str = Field(description="A preset name or a chip/system YAML path.")
    chips: int | None = Field(None, ge=1, description="Chips of the system's kind (null: the system's).")
    workload: WorkloadSpec = WorkloadSpec()
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Field path -> values; every combination.")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="Field paths varied together (equal lengths).")
    sample: SampleSpec | None = Field(None, description="Points drawn from ranges, crossed with the grid.")
    store: str | None = Field(None, description="SQLite file keeping finished points (relative to the scenario).")


def _points(spec: SweepSpec, path: Path) -> list[dict[str, Any]]:
    for where, fields in (("grid", spec.grid), ("zip", spec.zip)):
        for key, values in fields.items():
            if not key.startswith(PREFIXES):
                raise InputError(str(path), f"{where}.{key}", "a field path starts with chip., network. or workload.")
            if not values:
                raise InputError(str(path), f"{where}.{key}", "needs at least one value")
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        raise InputError(str(path), "zip", f"zipped fields need equal numbers of values, got {sorted(lengths)}")
    zipped = [dict(zip(spec.zip, vals)) for vals in zip(*spec.zip.values())] or [{}]
    grid = [dict(zip(spec.grid, vals)) for vals in itertools.product(*spec.grid.values())]
    drawn = _sampled(spec.sample, path) if spec.sample else [{}]
    return [z | d | g for z in zipped for d in drawn for g in grid]


def _sampled(sample: SampleSpec, path: Path) -> list[dict[str, Any]]:
    """The sample's points, the same for the same seed."""
    import numpy as np

    rng = np.random.default_rng(sample.seed)
    n, columns = sample.points, {}
    for key, (low, high) in sample.ranges.items():
        if not key.startswith(PREFIXES):
            raise InputError(str(path), f"sample.ranges.{key}", "a field path starts with chip., network. or workload.")
        if not high >= low:
            raise InputError(str(path), f"sample.ranges.{key}", f"needs low <= high, got [{low}, {high}]")
        if sample.method == "latin":  # one draw in each of n strata, strata shuffled per field
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        values = low + u * (high - low)
        integral = isinstance(low, int) and isinstance(high, int)
        columns[key] = [int(round(v)) for v in values] if integral else [float(v) for v in values]
    return [{k: columns[k][i] for k in columns} for i in range(n)]


def _configure(spec: SweepSpec, path: Path, point: dict[str, Any]):
    """The system and workload of one point."""
    base = resolve_system(path, spec.system, "system")
    chip_changes = {k.removeprefix("chip."): v for k, v in point.items() if k.startswith("chip.")}
    net_changes = {k.removeprefix("network."): v for k, v in point.items() if k.startswith("network.")}
    work_changes = {k.removeprefix("workload."): v for k, v in point.items() if k.startswith("workload.")}
    chip = base.chip.with_(**chip_changes) if chip_changes else base.chip
    system = base
    if chip_changes or net_changes:
        net = base.network.model_dump(exclude_defaults=True) if base.network else {}
        network = merged_network(chip, {**net, **net_changes}, str(path)) if (net or net_changes) else None
        system = build_system(SystemSpec(name=base.name, chip=chip, count=len(base.chips), network=network),
                              str(path))
    if spec.chips:
        system = with_chips(system, spec.chips)
    try:
        workload = WorkloadSpec.model_validate(spec.workload.model_dump() | work_changes).workload()
    except Exception as e:  # a pydantic ValidationError: name the point's field
        raise InputError(str(path), "workload", str(e).splitlines()[0]) from None
    return system, workload


def _key(spec: SweepSpec, point: dict[str, Any]) -> str:
    full = {"model": spec.model, "system": spec.system, "chips": spec.chips,
            "workload": spec.workload.model_dump(mode="json"), "point": point, "version": __version__}
    return hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()


class _Store:
    """Finished points by key, in SQLite (or only in memory)."""

    def __init__(self, file: Path | None):
        self.db = sqlite3.connect(str(file) if file else ":memory:")
        self.db.execute("CREATE TABLE IF NOT EXISTS points (key TEXT PRIMARY KEY, row TEXT NOT NULL)")

    def get(self, key: str) -> dict | None:
        found = self.db.execute("SELECT row FROM points WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def put(self, key: str, row: dict) -> None:
        with self.db:  # one transaction per point: a killed sweep loses at most the point it was on
            self.db.execute("INSERT OR REPLACE INTO points VALUES (?, ?)", (key, json.dumps(row)))


@study("sweep", SweepSpec)
def run_sweep(spec: SweepSpec, path: Path, progress) -> StudyOutput:
    model = resolve_model(path, spec.model)
    points = _points(spec, path)
    store = _Store(path.parent / spec.store if spec.store else None)
    rows, reused = [], 0
    for point in points:
        key = _key(spec, point)
        row = store.get(key)
        if row is not None:
            reused += 1
        else:
            progress(", ".join(f"{k}={v}" for k, v in point.items()) or spec.system)
            try:
                system, workload = _configure(spec, path, point)
                row = {"point": point, "ok": True, **run(model, system, workload).row()}
            except InputError as e:
                row = {"point": point, "ok": False, "reason": e.reason}
            store.put(key, row)
        rows.append(row)
    doc = {"model": model.name, "system": spec.system, "rows": rows, "reused": reused}
    return StudyOutput(render_text(tables(doc)), doc)


def tables(doc: dict, scenario: dict | None = None) -> list[Table]:
    """One row per point: its field values, then TTFT, TPOT and tokens/s (or why it was skipped)."""
    rows = doc["rows"]
    fields = list(dict.fromkeys(f for r in rows for f in r["point"]))
    header = [f.split(".")[-1][:18] for f in fields] + ["TTFT ms", "TPOT ms", "tok/s"]
    body, notes = [], []
    for r in rows:
        cells = [str(r["point"][f]) for f in fields]
        if r["ok"]:
            tpot = f"{r['tpot_ms']:.3f}" if r["tpot_ms"] is not None else "-"
            tps = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] is not None else "-"
            body.append(cells + [f"{r['ttft_ms']:.2f}", tpot, tps])
        else:
            body.append(cells + ["skipped", "-", "-"])
            notes.append(f"skipped {', '.join(cells)}: {r['reason'][:100]}")
    skipped = sum(not r["ok"] for r in rows)
    notes.append(f"{len(rows) - skipped} ran, {skipped} skipped (cannot run), "
                 f"{doc.get('reused', 0)} taken from the store")
    return [Table(f"{doc['model']} on {doc['system']}: {len(rows)} points", header, body, notes, labels=0)]
