"""Fuzz tier: hostile chip, system, model (config.json) and scenario files and CLI flags, through
the CLI in-process (click's CliRunner).

Each case starts from a valid description (a shipped preset, model or scenario, or a tiny one made
here) and breaks one to three things in it: a value replaced by a wrong type, 0, -1, NaN, ±inf,
1e-300, 1e300, a huge count, a deep nesting or a hostile string; a field deleted or added; the
file's bytes re-encoded or cut short. The CLI must then either exit 0 with every printed number
finite and non-negative (the ``--json`` document, ``results.json`` and the table's text), or exit 2
with a short ``error:`` paragraph (or click's usage error) - never an exception, never a hang of
10 s of CPU or more (measured as the process's CPU time, so a busy machine does not fake one; a run
that announced its estimate first, a ``note: this run simulates about ...`` line or a scenario's
``note: this scenario runs ...``, may take longer), never more memory than the machine can spare (an address-space limit turns that
into a MemoryError, which fails the case).

The quick tier (a few hundred derandomized cases, so every run tries the same ones) runs in the
normal ``pytest``; ``pytest -m slow tests/test_fuzz.py`` runs the slow tier, 10,000 random cases.
Figures are not drawn here (test_plots draws them); everything else ``asicsim run`` does is.
Nothing is written outside a temporary folder per case, and no example database is kept.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import math
import re
import resource
import signal
import tempfile
import time
import traceback
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicsim.cli import main
from asicsim.hardware.system import PRESETS_DIR
from asicsim.shipped import MODELS_DIR, SCENARIOS_DIR

CASE_LIMIT_S = 10   # CPU seconds a case may take
WALL_LIMIT_S = 600  # wall seconds: a backstop for a case that blocks without computing (a busy machine stretches wall time)
SPARE_BYTES = 3 << 30  # address space a case may add to the test process
QUICK = {"chip": 90, "system": 40, "model": 90, "scenario": 60, "flags": 60}
SLOW = {kind: 10_000 * n // sum(QUICK.values()) for kind, n in QUICK.items()}
SLOW["chip"] += 10_000 - sum(SLOW.values())  # 10,000 in all

TINY = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 1000,
        "max_position_embeddings": 4096}
SMALL_CHIP = {"name": "c", "mapping": "temporal", "op_overhead_ns": 100, "blocks": [
    {"kind": "matmul", "name": "mm", "units": 4, "rows": 8, "cols": 8, "clock_ghz": 1, "dtype_rate": {"bf16": 1}},
    {"kind": "vector", "name": "v", "lanes": 8, "clock_ghz": 1},
    {"kind": "hbm", "name": "hbm", "channels": 1, "bandwidth_gbps_per_channel": 10, "capacity_gb": 1},
    {"kind": "sram", "name": "s", "banks": 2, "capacity_mb_per_bank": 1, "bytes_per_cycle_per_bank": 16,
     "clock_ghz": 1, "holds": ["activations"]},
    {"kind": "dma", "name": "dma"}],
    "energy": {"pj_per_mac": {"bf16": 1}, "pj_per_byte": {"hbm": 20, "sram": 1}, "static_w": 1, "source": "made up"}}


def _preset(name: str) -> dict:
    return yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text())


def _deep(n: int, leaf=1, as_dict: bool = False):
    for _ in range(n):
        leaf = {"a": leaf} if as_dict else [leaf]
    return leaf


def _open_closed(systems: list[str]) -> dict:
    doc = yaml.safe_load((SCENARIOS_DIR / "open-vs-closed.yaml").read_text())
    doc["economics"]["chips"] = {k: v for k, v in doc["economics"]["chips"].items() if k in systems}
    return doc | {"prompt": 8, "generate": 2, "systems": systems, "max_batch": 4, "lifetimes_months": [6, 12]}


# (chip, the model that runs on it) pairs; "tiny" is TINY written beside the chip
CHIPS = [(SMALL_CHIP, "tiny"), (_preset("teaching-chip"), "tiny"), (_preset("h100-sxm"), "tiny"),
         (_preset("taalas-hc1"), "llama-3.1-8b"), (_preset("groq-lpu"), "tiny"), (_preset("tpu-v5e"), "tiny"),
         (_preset("cerebras-wse3"), "tiny")]
SYSTEMS = [_preset("dgx-h100"), _preset("tpu-v5e-8"), _preset("cerebras-cs3-4"), _preset("mi300x-8"),
           {"name": "pair", "chip": "chip.yaml", "count": 2,
            "network": {"topology": "ring", "bandwidth_gbps": 50, "latency_ns": 500, "efficiency": 0.8}},
           {"name": "box", "chip": "h100-sxm", "count": 4,
            "network": {"topology": "switch", "bandwidth_gbps": 450, "latency_ns": 700, "switch_latency_ns": 100,
                        "collective_overhead_ns": 3000, "in_switch_reduction": True}},
           {"name": "slice", "chip": "tpu-v5e", "count": 8,
            "network": {"topology": "torus", "dims": [2, 4], "wraparound": False, "bandwidth_gbps": 50}}]
MODELS = [TINY] + [json.loads(p.read_text()) for p in sorted(MODELS_DIR.glob("*.json"))]
SMALL_WORKLOAD = {"batch": 1, "prompt": 4, "generate": 2}
SCENARIOS = [
    {"name": "s", "model": "tiny.json", "workload": SMALL_WORKLOAD, "systems": ["h100-sxm", "chip.yaml"]},
    {"kind": "context-scaling", "name": "cs", "system": "h100-sxm", "models": ["tiny.json", "mamba2-2.7b"],
     "contexts": [16, 64], "batch": 1},
    {"kind": "sweep", "name": "sw", "model": "tiny.json", "system": "h100-sxm", "workload": SMALL_WORKLOAD,
     "grid": {"chip.hbm.bandwidth_gbps_per_channel": [100, 200]}, "store": "points.sqlite"},
    {"kind": "scale-out", "name": "so", "model": "tiny.json", "workload": SMALL_WORKLOAD,
     "setups": [{"system": "h100-sxm"}, {"system": "h100-sxm", "chips": 2, "label": "two"}],
     "link_sweep": {"setup": {"system": "dgx-h100"}, "bandwidth_gbps": [50, 900]}},
    _open_closed(["h100-sxm", "taalas-hc1"]),
]

NUMBERS = [0, -1, 1, 2, 3, 7, 0.5, 1e-300, -1e-300, 1e300, -1e300, math.nan, math.inf, -math.inf,
           10**6, 10**9, 10**12, 10**18, 2**31, 2**63, 10**30]
OTHERS = [True, False, None, "", "x", "1", "nan", ".inf", "../../x", "/tmp/x", "a\x00b", "\u202e\ufeffé",
          "é" * 3000, "{{}}", [], {}, [1, 2], [None], {"a": 1}, _deep(30), _deep(200), _deep(200, as_dict=True)]
hostile = st.sampled_from(NUMBERS + OTHERS).map(copy.deepcopy)  # a copy: later breaks may edit it


def _paths(node, prefix=()) -> list[tuple]:
    """Every place in a document: dict keys and list indices, nested."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@st.composite
def broken(draw, base):
    """``base`` (a dict) with one to three things changed in it: mostly a number (stretched by up
    to a million either way, scaled beyond reason, or replaced), else anything (replaced by a
    hostile value, deleted, or a field added)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = _paths(doc)
        if not paths:
            break
        numbers = [p for p in paths if _is_number(_at(doc, p))]
        path = draw(st.sampled_from(numbers if numbers and draw(st.booleans()) else paths))
        parent = _at(doc, path[:-1])
        key, old = path[-1], parent[path[-1]]
        how = draw(st.sampled_from(["stretch"] * 4 + ["scale", "scale", "number", "number", "other", "delete", "add"]))
        if how == "stretch" and _is_number(old):  # extreme but allowed: the results must stay finite
            f = draw(st.sampled_from([1e-6, 1e-3, 0.5, 2, 1e3, 1e6]))
            parent[key] = max(1, round(old * f)) if isinstance(old, int) and old > 0 else old * f
        elif how in ("stretch", "scale") and _is_number(old):
            parent[key] = old * draw(st.sampled_from([0, -1, 1e-300, 1e300, 10**9, 1.5, math.inf]))
        elif how in ("scale", "number"):
            parent[key] = draw(st.sampled_from(NUMBERS))
        elif how == "delete":
            del parent[key]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "Name", "count", "kind", "\x00"]))] = draw(hostile)
        else:
            parent[key] = draw(hostile)
    return doc


def _at(doc, path: tuple):
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def file_bytes(draw, doc, as_json: bool) -> bytes:
    """``doc`` written as JSON or YAML, sometimes with its bytes spoiled."""
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    how = draw(st.sampled_from(["plain"] * 25 + ["utf-16", "latin-1 byte", "bom", "cut", "duplicate"]))
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "latin-1 byte":
        at = draw(st.integers(0, len(text)))
        return text[:at].encode() + b"\xff\xfe" + text[at:].encode()
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if how == "cut":
        return text.encode()[:draw(st.integers(0, len(text)))]
    if how == "duplicate" and not as_json:
        first = text.splitlines(keepends=True)[:1]
        return (text + "".join(first)).encode()
    return text.encode()


INPUTS = {"scenario", "point"}  # what results.json echoes of the input (a sweep's point may be refused)


def _numbers(node, path=""):
    """Every number in a JSON document that the simulator computed, with where it is."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in INPUTS:
                yield from _numbers(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


def _no_constant(name):
    raise ValueError(f"{name} in output")


NOT_FINITE = re.compile(r"(?<![\w.])(nan|-?inf|infinity)\b", re.IGNORECASE)
NEGATIVE = re.compile(r"(?<![\w.])-\d")  # predict's table; a study's table may echo a refused input


OUTCOMES: collections.Counter = collections.Counter()  # exit codes seen, per kind of case


class Hang(Exception):
    pass


@contextlib.contextmanager
def _limits():
    """A hang is CASE_LIMIT_S of this process's CPU time (SIGPROF), so that other work on a busy
    machine does not turn a slow case into a false hang; a wall-clock backstop of WALL_LIMIT_S
    (SIGALRM) catches a case that blocks without computing. And an address-space limit
    SPARE_BYTES above the present."""
    def hang(signum, _frame):
        what = f"{CASE_LIMIT_S} s of CPU" if signum == signal.SIGPROF else f"{WALL_LIMIT_S} s of wall time"
        raise Hang(f"still running after {what}")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    cap = used + SPARE_BYTES if hard == resource.RLIM_INFINITY else min(hard, used + SPARE_BYTES)
    previous = {sig: signal.signal(sig, hang) for sig in (signal.SIGPROF, signal.SIGALRM)}
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_PROF, CASE_LIMIT_S)
    signal.setitimer(signal.ITIMER_REAL, WALL_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def problem(args: list[str], files: dict[str, bytes]) -> str | None:
    """Run ``asicsim ARGS`` in a fresh temporary folder holding ``files``; what is wrong with the
    outcome, or None."""
    with tempfile.TemporaryDirectory(prefix="asicsim-fuzz-") as here, contextlib.chdir(here):
        runner = CliRunner()
        for name, data in files.items():
            Path(here, name).write_bytes(data)
        t0 = time.process_time()
        try:
            with _limits():
                result = runner.invoke(main, args)
        except Hang as e:
            return str(e)
        took = time.process_time() - t0
        out = result.output
        OUTCOMES[args[0], result.exit_code] += 1
        announced = ("note: this run simulates about" in result.output  # one long run, or many short ones
                     or "note: this scenario runs" in result.output or "note: this scenario has run" in result.output)
        if isinstance(result.exception, Hang) and "of CPU" in str(result.exception) and announced:
            return None  # a long run that said so, with its estimate, before it started: not a hang
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(*result.exc_info))
            return f"exception {type(result.exception).__name__} (exit {result.exit_code}):\n{tb[-3000:]}"
        if took >= CASE_LIMIT_S and not announced:
            return f"took {took:.1f} s of CPU"
        if "Traceback" in out:
            return f"a traceback in the output:\n{out[-2000:]}"
        if result.exit_code == 2:
            if not (out.startswith("error: ") or "Error: " in out) or len(out) > 2500:
                return f"exit 2 without one short error paragraph ({len(out)} chars):\n{out[:2500]}"
            return None
        if result.exit_code != 0:
            return f"exit {result.exit_code}:\n{out[-2000:]}"
        docs = []
        if "--json" in args:
            try:
                docs.append(json.loads(out, parse_constant=_no_constant))
            except ValueError as e:
                return f"--json printed no valid JSON ({e}):\n{out[:1000]}"
        for path in Path(here).rglob("results.json"):
            try:
                docs.append(json.loads(path.read_text(), parse_constant=_no_constant))
            except ValueError as e:
                return f"{path.name} is not valid JSON: {e}"
        for doc in docs:
            bad = [(p, v) for p, v in _numbers(doc) if not math.isfinite(v) or v < 0]
            if bad:
                return f"non-finite or negative numbers: {bad[:5]}"
        table = out if "--json" not in args else ""
        m = NOT_FINITE.search(table) or (NEGATIVE.search(table) if args[0] == "predict" else None)
        if m:
            line = table[table.rfind("\n", 0, m.start()) + 1:table.find("\n", m.end())]
            return f"nonsense in the printed table: {line!r}"
    return None


def _dump(doc) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode()


PREDICT = ["predict", "--prompt", "4", "--generate", "2", "--json"]
TINY_FILE = json.dumps(TINY).encode()


@st.composite
def chip_cases(draw):
    chip, model = draw(st.sampled_from(CHIPS))
    data = draw(file_bytes(draw(broken(chip)), as_json=False))
    return [*PREDICT, "--model", "tiny.json" if model == "tiny" else model, "--system", "chip.yaml"], \
        {"chip.yaml": data, "tiny.json": TINY_FILE}


@st.composite
def system_cases(draw):
    system = draw(st.sampled_from(SYSTEMS))
    data = draw(file_bytes(draw(broken(system)), as_json=False))
    return [*PREDICT, "--model", "tiny.json", "--system", "system.yaml"], \
        {"system.yaml": data, "chip.yaml": _dump(SMALL_CHIP), "tiny.json": TINY_FILE}


@st.composite
def model_cases(draw):
    model = draw(st.sampled_from(MODELS))
    data = draw(file_bytes(draw(broken(model)), as_json=True))
    system = draw(st.sampled_from(["h100-sxm", "dgx-h200", "teaching-chip"]))
    return [*PREDICT, "--model", "config.json", "--system", system], {"config.json": data}


@st.composite
def scenario_cases(draw):
    scenario = draw(st.sampled_from(SCENARIOS))
    data = draw(file_bytes(draw(broken(scenario)), as_json=False))
    return ["run", "s.yaml", "--out", "out"], {"s.yaml": data, "tiny.json": TINY_FILE, "chip.yaml": _dump(SMALL_CHIP)}


FLAG_VALUES = ["0", "-1", "1", "2", "3", "8", "64", "1.5", "1e3", "nan", "inf", "x", "", " 2", "10000000000",
               "99999999999999999999999"]
FLAGS = ["--batch", "--prompt", "--generate", "--chips", "--tp", "--pp", "--ep", "--dp", "--micro-batches",
         "--dtype", "--mapping", "--model", "--system"]


@st.composite
def flag_cases(draw):
    args = {"--model": draw(st.sampled_from(["tiny.json", "llama-3.1-8b", "qwen3-30b-a3b", "mamba2-2.7b"])),
            "--system": draw(st.sampled_from(["h100-sxm", "dgx-h100", "tpu-v5e-8", "teaching-chip", "taalas-hc1"])),
            "--prompt": "4", "--generate": "2"}
    for flag in draw(st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3)):
        if flag == "--dtype":
            args[flag] = draw(st.sampled_from(["bf16", "fp8", "int4", "fp64", ""]))
        elif flag == "--mapping":
            args[flag] = draw(st.sampled_from(["temporal", "spatial", "both"]))
        elif flag in ("--model", "--system"):
            args[flag] = draw(st.sampled_from(["", ".", "..", "/", "nope", "tiny", "chip.yaml", "/dev/null",
                                               "tiny.json/x"]))
        else:
            args[flag] = draw(st.sampled_from(FLAG_VALUES))
    extra = draw(st.sampled_from([[], ["--fast"], ["--exact"], ["--json"], ["--bogus"]]))
    return ["predict", *[x for kv in args.items() for x in kv], *extra], {"tiny.json": TINY_FILE}


CASES = {"chip": chip_cases(), "system": system_cases(), "model": model_cases(), "scenario": scenario_cases(),
         "flags": flag_cases()}


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures take seconds each and are tested in test_plots: not drawn here."""
    import asicsim.plots
    import asicsim.scenario

    monkeypatch.setattr(asicsim.plots, "write_plots", lambda output, folder: [])
    monkeypatch.setattr(asicsim.scenario, "study_figures", lambda spec, doc, folder: [])


def _tier(kind: str, examples: int, derandomize: bool):
    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=not derandomize)
    @given(case=CASES[kind])
    def check(case):
        args, files = case
        found = problem(args, files)
        assert found is None, f"asicsim {' '.join(map(repr, args))}\n{found}"
    return check


def test_every_starting_point_runs_as_given():
    """The cases break valid descriptions: each must run unbroken, or the fuzzer tests only refusals."""
    for chip, model in CHIPS:
        assert problem([*PREDICT, "--model", "tiny.json" if model == "tiny" else model, "--system", "chip.yaml"],
                       {"chip.yaml": _dump(chip), "tiny.json": TINY_FILE}) is None
    for system in SYSTEMS:
        assert problem([*PREDICT, "--model", "tiny.json", "--system", "system.yaml"],
                       {"system.yaml": _dump(system), "chip.yaml": _dump(SMALL_CHIP), "tiny.json": TINY_FILE}) is None
    for model in MODELS:
        assert problem([*PREDICT, "--model", "config.json", "--system", "dgx-b200"],
                       {"config.json": json.dumps(model).encode()}) is None
    for scenario in SCENARIOS:
        assert problem(["run", "s.yaml", "--out", "out"],
                       {"s.yaml": _dump(scenario), "tiny.json": TINY_FILE, "chip.yaml": _dump(SMALL_CHIP)}) is None
    assert sum(n for (_, code), n in OUTCOMES.items() if code != 0) == 0


def _ran() -> int:
    return sum(n for (_, code), n in OUTCOMES.items() if code == 0)


@pytest.mark.parametrize("kind", list(QUICK))
def test_fuzz_quick(kind):
    ran = _ran()
    _tier(kind, QUICK[kind], derandomize=True)()
    # not only refusals: a tenth of the cases at least get through validation and simulate
    assert _ran() - ran >= QUICK[kind] // 10


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(SLOW))
def test_fuzz_slow(kind):
    _tier(kind, SLOW[kind], derandomize=False)()
