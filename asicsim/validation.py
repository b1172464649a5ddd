"""Predictions against public measurements of real chips.

``asicsim/data/measurements.csv`` holds measurements copied with their sources from the
project's validation sheet: end-to-end runs (decode tokens/s, time to first token, static-batch
throughput, on one chip or split over several), point-to-point link bandwidth and collective bus
bandwidth. Its ``role`` column keeps two groups apart: a *calibration* row sets one constant (it
says which), and can never also check it; every other row is a *check*, an out-of-sample
prediction that no parameter was fitted to. Presets otherwise take only datasheets and
microbenchmarks (GEMM, copy bandwidth).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from asicsim.api import collective_ns, predict
from asicsim.hardware import load_system, with_chips

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
    chips: int = 1
    role: str = "check"

    @property
    def calibrates(self) -> bool:
        return self.role.startswith("calibration")

    @property
    def error(self) -> float:
        """Relative error of the prediction, (predicted - measured) / measured."""
        return self.predicted / self.measured - 1


def measurements() -> list[dict]:
    with MEASUREMENTS.open() as f:
        return list(csv.DictReader(f))


def _size_bytes(metric: str) -> float:
    """The message size in a metric name such as ``allreduce_busbw_16GiB_gbps``."""
    m = re.search(r"_(\d+)(KiB|MiB|GiB)_", metric)
    return int(m.group(1)) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[m.group(2)]


def _network_prediction(row: dict) -> float:
    """Link and collective rows: GB/s as the benchmark reports it."""
    system = with_chips(load_system(row["chip"]), int(row["chips"]))
    metric = row["metric"]
    if metric.startswith("nvlink_p2p"):
        size = 1e9
        if "bidirectional" in metric:  # both directions of one pair at once
            return 2 * size / _both_ways_ns(system, size)
        return size / collective_ns(system, "send", size, ranks=[0, 1])
    n, size = len(system.chips), _size_bytes(metric)
    algorithm = "ring" if "in-switch reduction disabled" in row["conditions"] else None
    t = collective_ns(system, "all_reduce", size, algorithm=algorithm)
    return size / t * 2 * (n - 1) / n  # nccl-tests' bus bandwidth


def _both_ways_ns(system, size: float) -> float:
    from asicsim.compile.fabric import Fabric
    from asicsim.engine import simulate
    from asicsim.program import ProgramBuilder, StepRef

    b = ProgramBuilder()
    fabric = Fabric(b, system)
    op = b.add_op("p2p", -1, "collective", b.add_step(StepRef("prefill", 1, 1, 0)))
    fabric.send(0, 1, size, op, [])
    fabric.send(1, 0, size, op, [])
    return simulate(b.build()).makespan_ns


def _run_key(row: dict) -> tuple:
    """The run a row needs (a prefill-only row stops at the first token)."""
    generate = 1 if row["metric"] == "ttft_ms" else int(row["generate"])
    return (row["model"], row["chip"], int(row["chips"]), row["dtype"], int(row["batch"]), int(row["prompt"]),
            generate)


def _model_prediction(row: dict, runs: dict) -> float:
    """End-to-end rows, decode fast-forwarded (within 0.5 % of simulating every step). Static-
    batch throughput is the batch's output tokens over the whole run, prefill included."""
    key = _run_key(row)
    if key not in runs:
        model, chip, chips, dtype, batch, prompt, generate = key
        runs[key] = predict(model, chip, chips=chips if chips > 1 else None, dtype=dtype, batch=batch,
                            prompt=prompt, generate=generate, fast=True).metrics
    m = runs[key]
    if row["metric"] == "e2e_tokens_per_s":
        return int(row["batch"]) * int(row["generate"]) / (m.total_ms / 1e3)
    return getattr(m, row["metric"])


def run_checks(ids: set[str] | None = None) -> list[Check]:
    """Simulate every measured setup once (rows for the same setup share a run); ``ids``
    restricts it to those rows."""
    runs: dict[tuple, object] = {}
    checks = []
    for row in measurements():
        if ids is not None and row["id"] not in ids:
            continue
        if row["kind"] in ("link", "collective"):
            predicted = _network_prediction(row)
        else:
            predicted = _model_prediction(row, runs)
        checks.append(Check(row["id"], row["chip"], row["model"], row["metric"], float(row["value"]),
                            float(predicted), row["conditions"], row["source"], int(row["chips"] or 1),
                            row.get("role") or "check"))
    return checks


def table(checks: list[Check]) -> str:
    """Checking rows, then calibration rows (which reproduce the constant they set)."""
    head = (f"{'id':<6}{'chip':<15}{'chips':>5}  {'model':<14}{'metric':<36}{'measured':>10}{'predicted':>11}"
            f"{'error':>8}")
    out = []
    for title, group in (("checks (no constant was set from these)", [c for c in checks if not c.calibrates]),
                         ("calibration (each sets the constant named)", [c for c in checks if c.calibrates])):
        if not group:
            continue
        out += ["", title, head]
        for c in group:
            out.append(f"{c.id:<6}{c.chip:<15}{c.chips:>5}  {c.model or '-':<14}{c.metric:<36}{c.measured:>10.1f}"
                       f"{c.predicted:>11.1f}{c.error:>+8.0%}")
            if c.calibrates:
                out.append(f"{'':<6}{c.role}")
    errors = sorted(abs(c.error) for c in checks if not c.calibrates)
    if errors:
        out += ["", f"checks: {len(errors)}, median |error| {errors[len(errors) // 2]:.0%}, max {errors[-1]:.0%}"]
    return "\n".join(out).lstrip("\n")
