"""``asicsim bench``: how fast the simulator runs the quickstart workload.

Wall time covers loading, compiling, simulating and measuring both quickstart systems; the
engine rate counts only ``simulate``. Medians over ``repeat`` runs; peak memory is the process's
maximum resident set size.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

from asicsim.compile import compile_run
from asicsim.engine import simulate
from asicsim.metrics import compute_metrics

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


def _one_run() -> tuple[float, int, float]:
    from asicsim.hardware import load_system
    from asicsim.model import load_model
    from asicsim.scenario import load_scenario

    t0 = time.perf_counter()
    spec = load_scenario(QUICKSTART)
    model = load_model(spec.model)
    wl = spec.workload.workload()
    tasks, engine_s = 0, 0.0
    for name in spec.systems:
        program = compile_run(model, load_system(name), wl)
        t1 = time.perf_counter()
        trace = simulate(program)
        engine_s += time.perf_counter() - t1
        compute_metrics(trace)
        tasks += program.n_tasks
    return time.perf_counter() - t0, tasks, engine_s


def run_bench(repeat: int = 3) -> str:
    runs = [_one_run() for _ in range(repeat)]
    wall = statistics.median(r[0] for r in runs)
    engine = statistics.median(r[2] for r in runs)
    tasks = runs[0][1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = rss / 1e6 if sys.platform == "darwin" else rss / 1e3
    return "\n".join([
        f"quickstart ({QUICKSTART.name}), median of {repeat}:",
        f"  wall time        {wall:.2f} s (load + compile + simulate + metrics, both systems)",
        f"  tasks simulated  {tasks:,}",
        f"  engine           {engine:.2f} s, {tasks / engine:,.0f} tasks/s",
        f"  peak memory      {peak_mb:,.0f} MB (max RSS of this process)",
    ])
