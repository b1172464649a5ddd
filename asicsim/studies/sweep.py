"""Study ``sweep``: one model on one system over a grid (or a zip) of field values.

A point sets fields by path: ``chip.<field path>`` (a chip field, blocks by name:
``chip.hbm.bandwidth_gbps_per_channel``), ``network.<field>`` (the network between chips),
``model.<config field>`` (a field of the model's config.json: ``model.num_hidden_layers``) and
``workload.<field>`` (``batch``, ``prompt``, ``tp`` ...). ``grid`` takes every combination;
``zip`` varies its fields together, and each zipped tuple is crossed with the grid; ``sample``
adds points drawn over ranges (a Latin hypercube or uniform, seeded), also crossed with the grid.
Points that cannot run (a model that does not fit, a layout that does not divide) are skipped,
counted and listed with the reason. With ``store`` (a SQLite file, relative to the scenario),
each finished point is kept under a hash of its full configuration and the simulator version; rerunning the
sweep, after an interruption, say, recomputes nothing that finished.

Points run one after another, on ``workers`` local processes, or on an existing Dask
distributed cluster (``scheduler: tcp://HOST:PORT``); each point is computed from its
configuration alone, so every way gives the same rows. Finished points are stored as they
arrive, one transaction each: a sweep killed at any moment loses at most the points in flight.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from asicsim import __version__
from asicsim.api import run
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.hardware.system import SystemSpec, build_system, merged_network, validation_error, with_chips
from asicsim.scenario import StudyOutput, WorkloadSpec, resolve_model, resolve_system, study
from asicsim.tables import Table, render_text

PREFIXES = ("chip.", "network.", "model.", "workload.")
WHOLE = ("model", "system")
SKIPS_SHOWN = 10  # skipped points whose reason the table's notes give  # grid keys that choose a whole model or system per point


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
    model: str | None = Field(None, description="A shipped model name or a config.json path (or sweep `model` "
                              "in the grid: whole models, e.g. model: [llama-3.1-8b, mixtral-8x7b]).")
    system: str | None = Field(None, description="A preset name or a chip/system YAML path (or sweep `system` in "
                               "the grid: whole systems).")
    chips: int | None = Field(None, ge=1, description="Chips of the system's kind (null: the system's).")
    workload: WorkloadSpec = WorkloadSpec()
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Field path -> values; every combination.")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="Field paths varied together (equal lengths).")
    sample: SampleSpec | None = Field(None, description="Points drawn from ranges, crossed with the grid.")
    store: str | None = Field(None, description="SQLite file keeping finished points (relative to the scenario).")
    pareto: list[str] = Field(default_factory=list, description="Two or three result columns, each "
                              "COLUMN:max or COLUMN:min (e.g. tokens_per_s_per_user:max, j_per_token.decode:min): "
                              "mark the points no other point beats on all of them at once.")
    sensitivity: str = Field("tpot_ms", description="The result column whose spread over each swept field's "
                                                    "values is tabulated (which field moves it most).")
    workers: int = Field(1, ge=1, le=256, description="Local processes running points at once.")
    scheduler: str | None = Field(None, description="Address of a Dask distributed scheduler "
                                                    "(tcp://HOST:PORT) to run the points on instead.")


def _points(spec: SweepSpec, path: Path) -> list[dict[str, Any]]:
    for where, fields in (("grid", spec.grid), ("zip", spec.zip)):
        for key, values in fields.items():
            if not key.startswith(PREFIXES) and key not in WHOLE:
                raise InputError(str(path), f"{where}.{key}", "a field path starts with chip., network., model. or "
                                 "workload. (or is model or system: whole models or systems)")
            if not values:
                raise InputError(str(path), f"{where}.{key}", "needs at least one value")
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        raise InputError(str(path), "zip", f"zipped fields need equal numbers of values, got {sorted(lengths)}")
    zipped = [dict(zip(spec.zip, vals)) for vals in zip(*spec.zip.values())] or [{}]
    grid = [dict(zip(spec.grid, vals)) for vals in itertools.product(*spec.grid.values())]
    drawn = _sampled(spec.sample, path) if spec.sample else [{}]
    return [z | d | g for z in zipped for d in drawn for g in grid]


def point_count(spec: SweepSpec, path: Path) -> int:
    """How many points the sweep has (for a progress bar's total and its ETA)."""
    return len(_points(spec, path))


def _sampled(sample: SampleSpec, path: Path) -> list[dict[str, Any]]:
    """The sample's points, the same for the same seed."""
    import numpy as np

    rng = np.random.default_rng(sample.seed)
    n, columns = sample.points, {}
    for key, (low, high) in sample.ranges.items():
        if not key.startswith(PREFIXES):
            raise InputError(str(path), f"sample.ranges.{key}", "a field path starts with chip., network., model. or workload.")
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
    base = resolve_system(path, _whole(spec, point, "system"), "system")
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
    except ValidationError as e:  # name the point's field and say why
        err = validation_error("workload", e)
        raise InputError(str(path), f"workload.{err.field}" if err.field else "workload", err.reason) from None
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


def point_row(spec_data: dict, path: str, point: dict[str, Any]) -> dict:
    """One point's row, from plain data alone (what a worker process or Dask worker runs): the
    run's results, and derived fields of the point's chip (its die area estimated by the area
    model, and the silicon of the chips the run took, where the model can estimate them)."""
    spec, where = SweepSpec.model_validate(spec_data), Path(path)
    try:
        model = _model(spec, where, point)
        system, workload = _configure(spec, where, point)
        result = run(model, system, workload)
        return {"point": point, "ok": True, **result.row(), **_derived(result.plan)}
    except InputError as e:
        return {"point": point, "ok": False, "reason": e.reason}


def _derived(plan) -> dict:
    from asicsim.hardware.area import estimate_area

    est = estimate_area(plan.chip)
    area = est.total_mm2 if est else None
    return {"area_mm2_estimate": area, "silicon_mm2_estimate": area * plan.chips if area else None}


def _model(spec: SweepSpec, path: Path, point: dict[str, Any]):
    changes = {k.removeprefix("model."): v for k, v in point.items() if k.startswith("model.")}
    if not changes:
        return resolve_model(path, _whole(spec, point, "model"))
    from asicsim.model import load_model
    from asicsim.scenario import _relative_to

    return load_model(_relative_to(path.parent, _whole(spec, point, "model")), changes)


def _whole(spec: SweepSpec, point: dict[str, Any], which: str) -> str:
    """The point's model or system: its own where the grid chooses one, else the sweep's."""
    return str(point.get(which, getattr(spec, which)))


def _check_whole(spec: SweepSpec, path: Path) -> None:
    """A model and a system for every point: named at the top or swept as whole values."""
    for which in WHOLE:
        swept = which in spec.grid or which in spec.zip
        if swept and getattr(spec, which) is not None:
            raise InputError(str(path), which, "is given both at the top and in the grid; keep one")
        if not swept and getattr(spec, which) is None:
            raise InputError(str(path), which, f"a sweep needs a {which}: name one, or sweep `{which}` in the grid")


def _validate(spec: SweepSpec, path: Path, points: list[dict[str, Any]]) -> None:
    """Every point's fields name fields and hold values their schemas take, before any runs."""
    if not points:
        raise InputError(str(path), "grid", "the sweep has no points")
    seen_model, seen_rest = set(), set()  # points share models and systems: check each once
    for point in points:
        mine = json.dumps({k: v for k, v in point.items() if k == "model" or k.startswith("model.")},
                          sort_keys=True, default=str)
        rest = json.dumps({k: v for k, v in point.items() if k != "model" and not k.startswith("model.")},
                          sort_keys=True, default=str)
        try:
            if mine not in seen_model:
                _model(spec, path, point)
                seen_model.add(mine)
            if rest not in seen_rest:
                _configure(spec, path, point)
                seen_rest.add(rest)
        except InputError as e:
            named = [k for k in point if e.field and k.endswith(e.field)]
            at = ", ".join(f"{k}={v}" for k, v in point.items())
            raise InputError(str(path), named[0] if named else e.field, f"{e.reason} (at the point {at})") from None


def _execute(spec: SweepSpec, path: Path, todo: list[tuple[int, dict]], done, progress) -> None:
    """Run ``todo`` (index, point) here, on local processes or on a Dask cluster; ``done(i, row)``
    as each finishes."""
    data = spec.model_dump(mode="json")
    by_index = dict(todo)
    if spec.scheduler:
        try:
            from dask.distributed import Client, as_completed
        except ImportError:
            raise InputError(str(path), "scheduler", "running on a Dask cluster needs dask[distributed]: "
                             "pip install 'asicsim[dask]'") from None
        try:
            client = Client(spec.scheduler, timeout=10)
        except OSError as e:
            raise InputError(str(path), "scheduler", f"cannot reach {spec.scheduler}: {e}") from None
        with client:
            futures = {client.submit(point_row, data, str(path), p, pure=False): i for i, p in todo}
            for fut in as_completed(futures):
                i = futures[fut]
                progress(", ".join(f"{k}={v}" for k, v in by_index[i].items()) or str(spec.system))
                done(i, fut.result())
        return
    if spec.workers > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed as finished

        with ProcessPoolExecutor(spec.workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(point_row, data, str(path), p): i for i, p in todo}
            for fut in finished(futures):
                i = futures[fut]
                progress(", ".join(f"{k}={v}" for k, v in by_index[i].items()) or str(spec.system))
                done(i, fut.result())
        return
    for i, point in todo:
        progress(", ".join(f"{k}={v}" for k, v in point.items()) or str(spec.system))
        done(i, point_row(data, str(path), point))


@study("sweep", SweepSpec)
def run_sweep(spec: SweepSpec, path: Path, progress) -> StudyOutput:
    _check_whole(spec, path)
    points = _points(spec, path)
    _validate(spec, path, points)
    _objectives(spec, path, [])  # the form of each pareto entry, before any point runs
    store = _Store(path.parent / spec.store if spec.store else None)
    rows: list[dict | None] = [None] * len(points)
    keys = [_key(spec, p) for p in points]
    todo = []
    for i, key in enumerate(keys):
        rows[i] = store.get(key)
        if rows[i] is None:
            todo.append((i, points[i]))
    reused = len(points) - len(todo)

    def done(i: int, row: dict) -> None:
        store.put(keys[i], row)
        rows[i] = row

    _execute(spec, path, todo, done, progress)
    objectives = _objectives(spec, path, rows)
    models = list(dict.fromkeys(_whole(spec, p, "model") for p in points))
    systems = list(dict.fromkeys(_whole(spec, p, "system") for p in points))
    doc = {"model": _names(models, "models"), "system": _names(systems, "systems"), "rows": rows, "reused": reused,
           "pareto": {"objectives": spec.pareto, "front": pareto_front(rows, objectives)},
           "sensitivity": {"metric": spec.sensitivity, "fields": sensitivity(rows, spec.sensitivity)}}
    return StudyOutput(render_text(tables(doc)), doc)


def _names(names: list[str], plural: str) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} {plural}"


def _objectives(spec: SweepSpec, path: Path, rows: list[dict]) -> list[tuple[str, bool]]:
    """(column, larger is better) for each ``pareto`` entry, checked against the rows' columns."""
    if not spec.pareto:
        return []
    if len(spec.pareto) not in (2, 3):
        raise InputError(str(path), "pareto", f"takes two or three COLUMN:max|min entries, got {len(spec.pareto)}")
    columns = {k for r in rows if r.get("ok") for k, v in r.items() if isinstance(v, (int, float))}
    out = []
    for i, entry in enumerate(spec.pareto):
        column, _, sense = entry.rpartition(":")
        if sense not in ("max", "min") or not column:
            raise InputError(str(path), f"pareto.{i}", f"takes COLUMN:max or COLUMN:min, got {entry!r}")
        if columns and column not in columns:
            import difflib

            near = difflib.get_close_matches(column, sorted(columns), n=3, cutoff=0.5)
            raise InputError(str(path), f"pareto.{i}", f"no numeric result column {column!r}"
                             + (f"; did you mean {', '.join(near)}?" if near else ""))
        out.append((column, sense == "max"))
    return out


def pareto_front(rows: list[dict], objectives: list[tuple[str, bool]]) -> list[int]:
    """Indices of the rows that ran and that no other such row matches or beats on every objective
    while beating it on one."""
    if not objectives:
        return []
    scored = [(i, [r[c] if up else -r[c] for c, up in objectives]) for i, r in enumerate(rows)
              if r.get("ok") and all(isinstance(r.get(c), (int, float)) for c, _ in objectives)]
    front = []
    for i, a in scored:
        beaten = any(all(y >= x for x, y in zip(a, b)) and any(y > x for x, y in zip(a, b)) for _, b in scored)
        if not beaten:
            front.append(i)
    return front


def sensitivity(rows: list[dict], metric: str) -> list[dict]:
    """For each swept field: the metric's mean over the points at each of its values, and the
    spread between the lowest and highest such mean (a main effect), largest first."""
    ran = [r for r in rows if r.get("ok") and isinstance(r.get(metric), (int, float))]
    out = []
    for f in dict.fromkeys(k for r in ran for k in r["point"]):
        by_value: dict[str, list[float]] = {}
        for r in ran:
            by_value.setdefault(json.dumps(r["point"].get(f)), []).append(r[metric])
        means = {v: sum(xs) / len(xs) for v, xs in by_value.items()}
        if len(means) > 1:
            low, high = min(means, key=means.get), max(means, key=means.get)
            out.append({"field": f, "low_at": json.loads(low), "low": means[low], "high_at": json.loads(high),
                        "high": means[high], "spread": means[high] / means[low] if means[low] else None})
    return sorted(out, key=lambda e: -(e["spread"] or 0))


def read_store(where: str | Path):
    """A sweep store's points as a pandas DataFrame: one row per point, its field values as
    columns, then the results (``ok``, ``reason`` for skipped points, TTFT, TPOT ...)."""
    import pandas as pd

    file = Path(where)
    if file.is_dir():
        file = file / "results.sqlite"
    if not file.is_file():
        raise InputError(str(file), None, "no such sweep store (a results.sqlite written by asicsim sweep)")
    try:
        db = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        found = db.execute("SELECT key, row FROM points ORDER BY rowid").fetchall()
        db.close()
    except sqlite3.DatabaseError as e:
        raise InputError(str(file), None, f"not a sweep store: {e}") from None
    rows, fields = [], {}
    for key, text in found:
        row = json.loads(text)
        point = row.pop("point", {})
        fields.update(dict.fromkeys(point))
        rows.append({**point, **{k: v for k, v in row.items() if not isinstance(v, (dict, list))}, "_key": key})
    frame = pd.DataFrame(rows)
    frame.attrs["point_fields"] = list(fields)
    return frame


def tables(doc: dict, scenario: dict | None = None) -> list[Table]:
    """One row per point: its field values, then TTFT, TPOT and tokens/s (or why it was skipped)."""
    rows = doc["rows"]
    fields = list(dict.fromkeys(f for r in rows for f in r["point"]))
    area = any(r.get("area_mm2_estimate") for r in rows)
    header = [f.split(".")[-1][:18] for f in fields] + ["TTFT ms", "TPOT ms", "tok/s"] + (["mm² est"] if area else [])
    body, notes = [], []
    for r in rows:
        cells = [str(r["point"][f]) for f in fields]
        if r["ok"]:
            tpot = f"{r['tpot_ms']:.3f}" if r["tpot_ms"] is not None else "-"
            tps = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] is not None else "-"
            body.append(cells + [f"{r['ttft_ms']:.2f}", tpot, tps]
                        + ([f"{r['area_mm2_estimate']:,.0f}" if r.get("area_mm2_estimate") else "-"] if area else []))
        else:
            body.append(cells + ["skipped", "-", "-"] + (["-"] if area else []))
            notes.append(f"skipped {', '.join(cells)}: {r['reason'][:100]}")
    skipped = sum(not r["ok"] for r in rows)
    if len(notes) > SKIPS_SHOWN:  # a large sweep: the first reasons, then how to list them all
        notes = notes[:SKIPS_SHOWN] + [f"... and {len(notes) - SKIPS_SHOWN:,} more skipped points (every reason: "
                                       "results.json, or asicsim results OUT --where ok=False)"]
    notes.append(f"{len(rows) - skipped} ran, {skipped} skipped (cannot run), "
                 f"{doc.get('reused', 0)} taken from the store")
    front = set(doc.get("pareto", {}).get("front", []))
    if front:
        header.append("front")
        for i, cells in enumerate(body):
            cells.append("*" if i in front else "")
        objectives = " vs ".join(doc["pareto"]["objectives"])
        notes.append(f"front: the {len(front)} points no other point beats on {objectives} at once")
    out = [Table(f"{doc['model']} on {doc['system']}: {len(rows)} points", header, body, notes, labels=0)]
    sens = doc.get("sensitivity", {})
    if sens.get("fields"):
        metric = sens["metric"]
        out.append(Table(f"what moves {metric} most (mean over the points at each value)",
                         ["field", "lowest at", metric, "highest at", metric, "high / low"],
                         [[e["field"], str(e["low_at"]), f"{e['low']:,.4g}", str(e["high_at"]), f"{e['high']:,.4g}",
                           f"{e['spread']:.2f}x" if e["spread"] else "-"] for e in sens["fields"]]))
    return out


def write_figures(doc: dict, folder: Path) -> list[Path]:
    """The Pareto front of the first two objectives over every point that ran (when asked for),
    and the sensitivity of the chosen metric to each swept field (when more than one varies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    sens = (doc.get("sensitivity") or {}).get("fields") or []
    if len(sens) > 1:
        metric = doc["sensitivity"]["metric"]
        fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.45 * len(sens)))
        names = [e["field"] for e in sens][::-1]
        ax.barh(names, [e["spread"] or 1.0 for e in sens][::-1], color="C0")
        ax.axvline(1.0, color="0.4", lw=0.8)
        ax.set_xlabel("highest / lowest mean over the field's values")
        ax.set_title(f"what moves {metric} most")
        fig.tight_layout()
        for p in (folder / "sensitivity.png", folder / "sensitivity.svg"):
            fig.savefig(p, dpi=110)
            paths.append(p)
        plt.close(fig)
    pareto = doc.get("pareto") or {}
    if len(pareto.get("objectives", [])) < 2:
        return paths

    (cx, _), (cy, _) = (o.rpartition(":")[::2] for o in pareto["objectives"][:2])
    ran = [(i, r) for i, r in enumerate(doc["rows"]) if r.get("ok") and isinstance(r.get(cx), (int, float))
           and isinstance(r.get(cy), (int, float))]
    front = sorted((r[cx], r[cy]) for i, r in ran if i in set(pareto["front"]))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([r[cx] for _, r in ran], [r[cy] for _, r in ran], s=14, color="0.6", label="points")
    if front:
        ax.plot(*zip(*front), "o-", color="C3", label="Pareto front")
    ax.set_xlabel(cx)
    ax.set_ylabel(cy)
    ax.set_title(f"{doc['model']} on {doc['system']}: {len(ran)} points")
    ax.legend(loc="best")
    fig.tight_layout()
    for p in (folder / "pareto.png", folder / "pareto.svg"):
        fig.savefig(p, dpi=110)
        paths.append(p)
    plt.close(fig)
    return paths
