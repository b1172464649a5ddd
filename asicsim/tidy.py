"""Results as tidy rows: ``results.csv`` beside ``results.json``, one row per run (a compared
system, an open-vs-closed system, a context or sweep point, a scale-out setup), one column per
scalar, so ``pandas.read_csv`` reads it as it is.

Nested objects become dotted columns (``utilisation.decode.matmul``, ``plan.tp``, ``point.batch``);
lists of plain values are joined with ``;`` (``zoo_runs``); lists of objects (per-op detail) stay
in results.json only. A study with a second list of records (the scale-out link sweep) gets it
in ``<key>.csv`` too. Floats are written in full (``repr``), so no digit is lost.
"""

from __future__ import annotations

import csv
from pathlib import Path

MAIN = ("results", "systems", "rows")  # the record list of compare, open-vs-closed, the others


def flatten(record: dict, prefix: str = "") -> dict:
    """One record as a flat dict of scalars (see the module's notes)."""
    out: dict = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value):
                out[name] = ";".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def record_lists(doc: dict) -> dict[str, list[dict]]:
    """The file stem and flat rows of each list of records in ``doc``: the study's main list
    as ``results``, any other as its own key."""
    out = {}
    for key, value in doc.items():
        if key in ("scenario", "figures") or not isinstance(value, list) or not value:
            continue
        if not all(isinstance(r, dict) for r in value):
            continue
        stem = "results" if key in MAIN and "results" not in out else key
        out[stem] = [flatten(r) for r in value]
    return out


def write_csv(doc: dict, folder: Path) -> list[Path]:
    """Write ``results.csv`` (and ``<key>.csv`` for other record lists) into ``folder``."""
    written = []
    for stem, rows in record_lists(doc).items():
        columns = list(dict.fromkeys(k for r in rows for k in r))
        path = Path(folder) / f"{stem}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            for r in rows:
                w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c]
                            for c in columns])
        written.append(path)
    return written
