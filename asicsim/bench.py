"""``asicsim bench``: how fast the simulator runs two reference workloads.

- ``quickstart``: the quickstart scenario (Llama-3.1-8B, prompt 512 + 128 generated, on an H100
  and on a Taalas HC1);
- ``scale-out``: Llama-3.1-70B tensor-parallel over the eight H100s of ``dgx-h100``, prompt
  2048 + 128 generated;
- ``generate-10k``: Llama-3.1-8B on an H100, prompt 512 + 10,000 generated, decode
  fast-forwarded (``--fast``).

Wall time covers loading, compiling, simulating and measuring; the engine rate counts only
``simulate``. Medians over ``repeat`` runs. Each workload runs in a process of its own (forked),
so its peak memory (maximum resident set size) is its own.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time

from asicsim.compile import Workload, compile_run
from asicsim.engine import simulate
from asicsim.metrics import compute_metrics
from asicsim.shipped import SCENARIOS_DIR

QUICKSTART = SCENARIOS_DIR / "quickstart.yaml"


def _quickstart() -> list[tuple]:
    from asicsim.hardware import load_system
    from asicsim.model import load_model
    from asicsim.scenario import load_scenario

    spec = load_scenario(QUICKSTART)
    return [(load_model(spec.model), load_system(name), spec.workload.workload()) for name in spec.systems]


def _scale_out() -> list[tuple]:
    from asicsim.hardware import load_system
    from asicsim.model import load_model

    return [(load_model("llama-3.1-70b"), load_system("dgx-h100"), Workload(batch=1, prompt=2048, generate=128))]


def _long() -> list[tuple]:
    from asicsim.hardware import load_system
    from asicsim.model import load_model

    return [(load_model("llama-3.1-8b"), load_system("h100-sxm"),
             Workload(batch=1, prompt=512, generate=10_000, fast=True))]


WORKLOADS = {
    "quickstart": ("quickstart.yaml: llama-3.1-8b on h100-sxm and taalas-hc1, prompt 512 + 128", _quickstart),
    "scale-out": ("llama-3.1-70b TP8 on dgx-h100, prompt 2048 + 128", _scale_out),
    "generate-10k": ("llama-3.1-8b on h100-sxm, prompt 512 + 10,000, fast-forwarded", _long),
}


def _one_run(name: str) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    tasks, engine_s = 0, 0.0
    for model, system, wl in WORKLOADS[name][1]():
        program = compile_run(model, system, wl)
        t1 = time.perf_counter()
        trace = simulate(program)
        engine_s += time.perf_counter() - t1
        compute_metrics(trace)
        tasks += program.n_tasks
    return time.perf_counter() - t0, tasks, engine_s


def _measure(name: str, repeat: int, out) -> None:
    runs = [_one_run(name) for _ in range(repeat)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((runs, rss / 1e6 if sys.platform == "darwin" else rss / 1e3))


def run_bench(repeat: int = 3, names: tuple[str, ...] = tuple(WORKLOADS)) -> str:
    lines = []
    ctx = multiprocessing.get_context("fork")
    for name in names:
        queue = ctx.Queue()
        child = ctx.Process(target=_measure, args=(name, repeat, queue))
        child.start()
        runs, peak_mb = queue.get()
        child.join()
        wall = statistics.median(r[0] for r in runs)
        engine = statistics.median(r[2] for r in runs)
        tasks = runs[0][1]
        lines += [
            f"{name} ({WORKLOADS[name][0]}), median of {repeat}:",
            f"  wall time        {wall:.2f} s (load + compile + simulate + metrics)",
            f"  tasks simulated  {tasks:,}",
            f"  engine           {engine:.2f} s, {tasks / engine:,.0f} tasks/s",
            f"  peak memory      {peak_mb:,.0f} MB (max RSS of its process)",
        ]
    return "\n".join(lines)
