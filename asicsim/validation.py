"""Predictions against public measurements of real chips.

``asicsim/data/measurements.csv`` holds end-to-end measurements (decode tokens/s, time to first
token) copied from the project's validation sheet with their sources. None of them was used to
set any parameter: presets take only datasheets and microbenchmarks (GEMM, copy bandwidth), so
these rows are out-of-sample checks.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from asicsim.api import predict

MEASUREMENTS = Path(__file__).resolve().parent / "data" / "measurements.csv"


@dataclass(frozen=True)
class Check:
    """One measurement and what the simulator predicts for the same setup."""

    id: str
    chip: str
    model: str
    metric: str
    measured: float
    predicted: float
    conditions: str
    source: str

    @property
    def error(self) -> float:
        """Relative error of the prediction, (predicted - measured) / measured."""
        return self.predicted / self.measured - 1


def measurements() -> list[dict]:
    with MEASUREMENTS.open() as f:
        return list(csv.DictReader(f))


def run_checks() -> list[Check]:
    """Simulate every measured setup once (rows for the same setup share a run)."""
    runs: dict[tuple, object] = {}
    checks = []
    for row in measurements():
        key = (row["model"], row["chip"], row["dtype"], int(row["batch"]), int(row["prompt"]), int(row["generate"]))
        if key not in runs:
            runs[key] = predict(key[0], key[1], dtype=key[2], batch=key[3], prompt=key[4], generate=key[5]).metrics
        predicted = getattr(runs[key], row["metric"])
        checks.append(Check(row["id"], row["chip"], row["model"], row["metric"], float(row["value"]),
                            float(predicted), row["conditions"], row["source"]))
    return checks


def table(checks: list[Check]) -> str:
    lines = [f"{'id':<5}{'chip':<16}{'model':<13}{'metric':<24}{'measured':>10}{'predicted':>11}{'error':>8}"]
    for c in checks:
        lines.append(f"{c.id:<5}{c.chip:<16}{c.model:<13}{c.metric:<24}{c.measured:>10.1f}{c.predicted:>11.1f}"
                     f"{c.error:>+8.0%}")
    return "\n".join(lines)
