"""``asicsim bench``: how fast the simulator runs two reference workloads.

- ``quickstart``: the quickstart scenario (Llama-3.1-8B, prompt 512 + 128 generated, on an H100
  and on a Taalas HC1);
- ``scale-out``: Llama-3.1-70B tensor-parallel over the eight H100s of ``dgx-h100``, prompt
  2048 + 128 generated;
- ``generate-10k``: Llama-3.1-8B on an H100, prompt 512 + 10,000 generated, decode
  fast-forwarded (``--fast``);
- ``groq-256``: Llama-3.1-8B on as many Groq LPUs as it needs, batch 256 (256 sequences
  pipelined through the chips), prompt 512 + 128 generated, fast-forwarded;
- ``sweep-500`` (only when asked for): 500 design points of Llama-3.1-8B decode on H100-class
  chips, one after another in one process: HBM bandwidth per channel (10 values) × batch (10) ×
  prompt (5), 128 generated, fast-forwarded; points that do not fit are refused and counted;
- ``serve-1k``: 1,000 requests of Llama-3.1-8B on one H100 arriving at 20 per second (Poisson,
  seeded), prompts 128-1,024 and outputs 32-512 tokens, continuous batching (``asicsim serve``);
- ``gpt3-block`` (only when asked for): one GPT-3 175B decoder block (Brown et al. 2020: d_model
  12,288, 96 heads of 128, a 4 × d_model MLP; with its 50,257-token embedding and LM head, which the
  model always carries) on the A100 preset at batch 8, prefill of 128 and of 2,048 tokens and one
  decode step each, every step simulated: the block LLMCompass (ISCA 2024) reports on; its paper
  quotes 16 minutes on commodity hardware for a 4-A100 GPT-3 175B inference, 26,400 mapper rounds
  included (a whole run, not one block: a scale, not a like-for-like ratio).

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

from asicsim.api import compile_and_simulate
from asicsim.compile import Workload, plan_run
from asicsim.errors import InputError
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


def _groq() -> list[tuple]:
    from asicsim.hardware import load_system
    from asicsim.model import load_model

    return [(load_model("llama-3.1-8b"), load_system("groq-lpu"),
             Workload(batch=256, prompt=512, generate=128, fast=True))]


GPT3_BLOCK = {"model_type": "gpt2", "n_embd": 12288, "n_head": 96, "n_layer": 1, "n_positions": 2048,
              "vocab_size": 50257}  # GPT-3 175B's shape (Brown et al. 2020, Table 2.1), one block


def _gpt3_block() -> list[tuple]:
    from asicsim.hardware import load_system
    from asicsim.model.hf import LOADERS, Config

    model = LOADERS["gpt2"](Config(GPT3_BLOCK, "GPT-3 175B, Brown et al. 2020 (one block)", "gpt-3-175b-block"))
    system = load_system("a100-sxm-80gb")
    return [(model, system, Workload(batch=8, prompt=p, generate=2)) for p in (128, 2048)]


def _sweep() -> list[tuple]:
    from asicsim.hardware import load_chip
    from asicsim.hardware.system import SystemSpec, build_system
    from asicsim.model import load_model

    model, base = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    out = []
    for gbps in (100, 150, 200, 250, 335, 400, 500, 670, 1000, 1340):
        system = build_system(SystemSpec(name=f"h100 {gbps}", chip=base.with_(
            **{"hbm.bandwidth_gbps_per_channel": gbps})))
        out += [(model, system, Workload(batch=b, prompt=p, generate=128, fast=True))
                for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) for p in (128, 512, 1024, 2048, 4096)]
    return out


WORKLOADS = {
    "quickstart": ("quickstart.yaml: llama-3.1-8b on h100-sxm and taalas-hc1, prompt 512 + 128", _quickstart),
    "scale-out": ("llama-3.1-70b TP8 on dgx-h100, prompt 2048 + 128", _scale_out),
    "generate-10k": ("llama-3.1-8b on h100-sxm, prompt 512 + 10,000, fast-forwarded", _long),
    "groq-256": ("llama-3.1-8b on groq-lpu, batch 256, prompt 512 + 128, fast-forwarded", _groq),
    "sweep-500": ("500 points of llama-3.1-8b decode on h100-sxm variants, fast-forwarded", _sweep),
    "serve-1k": ("1,000 requests of llama-3.1-8b on h100-sxm at 20/s, continuous batching", None),
    "gpt3-block": ("one GPT-3 175B block on a100-sxm-80gb, batch 8, prefill 128 and 2048 + 1 decode step",
                   _gpt3_block),
}
DEFAULT = ("quickstart", "scale-out", "generate-10k", "groq-256", "serve-1k")


def _serve_run() -> tuple[float, int, float, int, int]:
    """The serving workload: its step shapes are simulated (and counted as tasks) as it meets them."""
    from asicsim import serving

    t0 = time.perf_counter()
    wl = serving.poisson(20.0, 1000, prompt=(128, 1024), output=(32, 512), seed=0)
    result = serving.serve("llama-3.1-8b", "h100-sxm", wl)
    return time.perf_counter() - t0, 0, 0.0, len(result.records), 0


def _one_run(name: str) -> tuple[float, int, float, int, int]:
    if WORKLOADS[name][1] is None:
        return _serve_run()
    t0 = time.perf_counter()
    tasks, engine_s = 0, 0.0
    refused = 0
    points = WORKLOADS[name][1]()

    def engine(program):  # every Program simulated counts (fast-forward may run more than one)
        nonlocal engine_s, tasks
        t1 = time.perf_counter()
        trace = simulate(program)
        engine_s += time.perf_counter() - t1
        tasks += program.n_tasks
        return trace

    for model, system, wl in points:
        try:
            program, trace = compile_and_simulate(plan_run(model, system, wl), model, wl, engine)
        except InputError:  # a design point that does not fit
            refused += 1
            continue
        compute_metrics(trace)
    return time.perf_counter() - t0, tasks, engine_s, len(points), refused


def _measure(name: str, repeat: int, out) -> None:
    runs = [_one_run(name) for _ in range(repeat)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((runs, rss / 1e6 if sys.platform == "darwin" else rss / 1e3))


def measure(repeat: int = 3, names: tuple[str, ...] = DEFAULT) -> list[dict]:
    """Each workload's medians over ``repeat`` runs, as plain records (``bench --json``)."""
    out = []
    ctx = multiprocessing.get_context("fork")
    for name in names:
        queue = ctx.Queue()
        child = ctx.Process(target=_measure, args=(name, repeat, queue))
        child.start()
        runs, peak_mb = queue.get()
        child.join()
        wall = statistics.median(r[0] for r in runs)
        engine = statistics.median(r[2] for r in runs)
        tasks, points, refused = runs[0][1], runs[0][3], runs[0][4]
        out.append({"workload": name, "description": WORKLOADS[name][0], "repeat": repeat, "wall_s": wall,
                    "tasks": tasks or None, "engine_s": engine if tasks else None,
                    "tasks_per_s": tasks / engine if tasks and engine else None, "peak_mb": peak_mb,
                    "requests": points if WORKLOADS[name][1] is None else None,
                    "points": points if WORKLOADS[name][1] is not None and points > 2 else None,
                    "refused": refused if points > 2 else None})
    return out


def run_bench(repeat: int = 3, names: tuple[str, ...] = DEFAULT) -> str:
    return render(measure(repeat, names))


def render(records: list[dict]) -> str:
    """The records as the text ``asicsim bench`` prints."""
    lines = []
    for r in records:
        wall = r["wall_s"]
        lines += [f"{r['workload']} ({r['description']}), median of {r['repeat']}:",
                  f"  wall time        {wall:.2f} s (load + compile + simulate + metrics)"]
        if r["tasks"]:
            lines += [f"  tasks simulated  {r['tasks']:,}",
                      f"  engine           {r['engine_s']:.2f} s, {r['tasks_per_s']:,.0f} tasks/s"]
        lines.append(f"  peak memory      {r['peak_mb']:,.0f} MB (max RSS of its process)")
        if r["requests"] is not None:
            lines.append(f"  requests         {r['requests']:,} served, {r['requests'] / wall:,.0f} requests/s of wall time")
        elif r["points"] is not None:
            lines.append(f"  points           {r['points']:,} ({r['refused']:,} refused at once as not fitting), "
                         f"{r['points'] / wall:.2f} points/s, {wall / r['points'] * 1e3:,.0f} ms a point")
    return "\n".join(lines)
