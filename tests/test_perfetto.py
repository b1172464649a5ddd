"""The Chrome trace-event export: a real run written to JSON and checked the way a viewer reads it.

Perfetto's trace processor cannot be fetched here, so these tests check the format directly:
required fields and types, one slice per task on its block's track, proper nesting (also after
Perfetto's truncating µs -> ns conversion), paired flow arrows that bind to their slices,
bandwidth counters within each server's peak and conserving its bytes, and step-wise sampling.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter, defaultdict

import numpy as np
import pytest

from asicsim.compile import Workload, compile_run
from asicsim.engine import Trace, simulate
from asicsim.hardware import load_system
from asicsim.model import load_model
from asicsim.perfetto import write_chrome_trace

SYSTEMS = ("h100-sxm", "taalas-hc1")


def _run(system: str, generate: int = 4) -> Trace:
    program = compile_run(load_model("llama-3.1-8b"), load_system(system), Workload(batch=1, prompt=64,
                                                                                      generate=generate))
    return simulate(program)


@pytest.fixture(scope="module", params=SYSTEMS)
def written(request, tmp_path_factory):
    """A small run on each system, written once: (trace, summary, parsed document, path)."""
    trace = _run(request.param)
    path = tmp_path_factory.mktemp("trace") / f"{request.param}.json"
    summary = write_chrome_trace(trace, path)
    return trace, summary, json.loads(path.read_text()), path


def _by_ph(doc, ph):
    return [e for e in doc["traceEvents"] if e["ph"] == ph]


def _assert_nested(spans, tol=1e-6):
    """Sorted by start, each span starts at or after the previous one ends, or lies inside it."""
    stack = []
    for ts, end in sorted(spans):
        while stack and ts >= stack[-1] - tol:
            stack.pop()
        assert not stack or end <= stack[-1] + tol, f"slice [{ts}, {end}] crosses its parent's end"
        stack.append(end)


def _tracks(slices):
    """Per track, its slices as sorted (start, end, task) triples, for finding what a flow binds to."""
    tracks = defaultdict(list)
    for e in slices:
        tracks[e["pid"], e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["args"]["task"]))
    return {k: sorted(v) for k, v in tracks.items()}


def _bound_task(tracks, event):
    """The task whose slice a flow event lies in (the latest-starting one), or None."""
    spans = tracks.get((event["pid"], event["tid"]), [])
    i = bisect_right(spans, (event["ts"], float("inf"), float("inf"))) - 1
    return spans[i][2] if i >= 0 and spans[i][0] <= event["ts"] <= spans[i][1] else None


def test_document_shape_and_required_fields(written):
    _, _, doc, _ = written
    assert set(doc) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert doc["displayTimeUnit"] == "ns"
    for e in doc["traceEvents"]:
        assert isinstance(e["ph"], str) and isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0
            assert isinstance(e["cat"], str) and isinstance(e["args"], dict)
    assert {e["ph"] for e in doc["traceEvents"]} <= {"M", "X", "s", "f", "C", "i"}


def test_one_slice_per_task_with_its_op_and_args(written):
    trace, summary, doc, _ = written
    prog = trace.program
    slices = _by_ph(doc, "X")
    assert summary == {**summary, "slices": prog.n_tasks, "dropped": 0, "sampled": False}
    assert sorted(e["args"]["task"] for e in slices) == list(range(prog.n_tasks))
    assert doc["otherData"]["sampled"] is False and doc["otherData"]["total_tasks"] == prog.n_tasks
    step_of = prog.step_of_task()
    for e in slices[:: max(1, len(slices) // 500)]:
        t = e["args"]["task"]
        op = prog.ops[prog.op[t]]
        assert (e["name"], e["cat"]) == (op.name, op.kind)
        assert e["args"]["step"] == step_of[t] and e["args"]["phase"] == prog.steps[step_of[t]].phase
        assert e["args"]["flops"] == prog.flops[t] and e["args"]["nbytes"] == prog.nbytes[t]
        assert e["args"]["wait_ns"] == pytest.approx(trace.wait_ns[t], abs=1e-3)
        assert isinstance(e["args"]["level"], str)
        # µs from ns, rounded to the ns; the slice ends when the block is free (end - latency)
        assert abs(e["ts"] * 1000 - trace.start_ns[t]) <= 0.5 + 1e-6
        occupied_until = trace.end_ns[t] - prog.latency_ns[t]
        assert abs((e["ts"] + e["dur"]) * 1000 - occupied_until) <= 1.0 + 1e-6


def test_one_named_track_per_block_in_block_order(written):
    trace, _, doc, _ = written
    prog = trace.program
    meta = _by_ph(doc, "M")
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    order = {(e["pid"], e["tid"]): e["args"]["sort_index"] for e in meta if e["name"] == "thread_sort_index"}
    tracks = {(e["pid"], e["tid"]) for e in _by_ph(doc, "X")}
    assert set(names) == tracks == set(order)
    used = sorted(set(prog.block.tolist()))
    assert sorted(names.values()) == sorted(prog.blocks[b].name for b in used)
    assert [names[k] for k in sorted(order, key=order.get)] == [prog.blocks[b].name for b in used]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    for (pid, _), name in names.items():
        chip = next(b.chip for b in prog.blocks if b.name == name)
        assert procs[pid] == f"chip{chip}"


def test_slices_nest_on_every_track_also_in_perfettos_integer_ns(written):
    _, _, doc, _ = written
    tracks = defaultdict(list)
    for e in _by_ph(doc, "X"):
        tracks[e["pid"], e["tid"]].append(e)
    for events in tracks.values():
        _assert_nested([(e["ts"], e["ts"] + e["dur"]) for e in events])
        # Perfetto converts ts and dur separately with a truncating cast to whole ns
        ns = [(int(e["ts"] * 1000), int(e["ts"] * 1000) + int(e["dur"] * 1000)) for e in events]
        _assert_nested(ns, tol=0)
        assert ns == sorted(ns)


def test_flows_pair_up_cross_tracks_and_bind_to_their_slices(written):
    trace, summary, doc, _ = written
    prog = trace.program
    starts, finishes = _by_ph(doc, "s"), _by_ph(doc, "f")
    s_ids, f_ids = Counter(e["id"] for e in starts), Counter(e["id"] for e in finishes)
    assert set(s_ids.values()) <= {1} and set(f_ids.values()) <= {1} and s_ids == f_ids
    assert all(e["bp"] == "e" for e in finishes)
    cross = sum(int(prog.block[d] != prog.block[t]) for t in range(prog.n_tasks) for d in prog.deps(t))
    assert len(starts) == cross == summary["flows"] > 0
    tracks = _tracks(_by_ph(doc, "X"))
    task_of = {}
    for e in starts + finishes:  # each flow event sits inside a slice of its own track
        task_of[e["id"], e["ph"]] = _bound_task(tracks, e)
        assert task_of[e["id"], e["ph"]] is not None, f"flow {e['id']} binds to no slice"
    for fid in s_ids:
        src, dst = task_of[fid, "s"], task_of[fid, "f"]
        assert prog.block[src] != prog.block[dst] and src in prog.deps(dst)


def test_counters_stay_within_server_bandwidth_and_conserve_bytes(written):
    trace, _, doc, _ = written
    prog = trace.program
    series = defaultdict(list)
    for e in _by_ph(doc, "C"):
        assert set(e["args"]) == {"GB/s"}
        series[e["name"]].append((e["ts"], e["args"]["GB/s"]))
    assert set(series) == {s.name for s in prog.servers}
    for s, server in enumerate(prog.servers):
        points = series[server.name]
        times = [t for t, _ in points]
        assert times == sorted(times) and len(set(times)) == len(times)
        values = [v for _, v in points]
        assert min(values) >= 0 and max(values) <= server.gbps * (1 + 1e-6)
        assert values[0] == 0.0 and values[-1] == 0.0  # idle before the first and after the last hold
        holders = np.flatnonzero(np.isin(np.arange(prog.n_tasks),
                                         np.repeat(np.arange(prog.n_tasks), np.diff(prog.srv_ptr))[prog.srv_idx == s]))
        moved = sum(v * (t1 - t0) * 1000 for (t0, v), (t1, _) in zip(points, points[1:]))  # GB/s x ns = bytes
        expected = prog.nbytes[holders].sum()
        assert moved == pytest.approx(expected, rel=1e-6, abs=len(holders) * server.gbps * 1.0)


def test_output_is_deterministic(written, tmp_path):
    trace, _, _, path = written
    again = tmp_path / "again.json"
    write_chrome_trace(trace, again)
    assert again.read_bytes() == path.read_bytes()


def test_sampling_keeps_whole_steps_and_says_so(tmp_path):
    trace = _run("h100-sxm", generate=12)
    prog = trace.program
    step_of = prog.step_of_task()
    sizes = np.bincount(step_of, minlength=len(prog.steps))
    decode = [i for i, s in enumerate(prog.steps) if s.phase == "decode"]
    cap = int(sizes[0] + sizes[decode[0]] + sizes[decode[-1]] + 3.5 * sizes[decode[1]])
    summary = write_chrome_trace(trace, tmp_path / "s.json", max_slices=cap)
    doc = json.loads((tmp_path / "s.json").read_text())
    other = doc["otherData"]
    kept = other["kept_steps"]
    assert other["sampled"] is True and summary["sampled"] is True
    assert other["total_tasks"] == prog.n_tasks and other["max_slices"] == cap
    assert {0, decode[0], decode[-1]} <= set(kept) and len(kept) == 6 == summary["steps_kept"]
    gaps = np.diff(kept[1:])  # evenly spaced decode steps between the first and the last
    assert gaps.max() - gaps.min() <= 1
    slices = _by_ph(doc, "X")
    assert len(slices) == summary["slices"] == sizes[kept].sum() <= cap
    assert summary["dropped"] == prog.n_tasks - len(slices)
    assert sorted(e["args"]["task"] for e in slices) == np.flatnonzero(np.isin(step_of, kept)).tolist()
    tracks = _tracks(slices)
    for e in _by_ph(doc, "s") + _by_ph(doc, "f"):  # flows only among kept slices
        assert _bound_task(tracks, e) is not None
    assert Counter(e["id"] for e in _by_ph(doc, "s")) == Counter(e["id"] for e in _by_ph(doc, "f"))
    assert {(e["pid"], e["tid"]) for e in _by_ph(doc, "M") if e["name"] == "thread_name"} == set(tracks)


@pytest.mark.parametrize("choice, want", [("first:3", [1, 2, 3]), ("every:4", [1, 5, 9, 11]),
                                          ("all", list(range(1, 12)))])
def test_trace_steps_choose_whole_steps_and_the_trace_says_which(tmp_path, choice, want):
    trace = _run("h100-sxm", generate=12)
    prog = trace.program
    step_of = prog.step_of_task()
    decode = [i for i, s in enumerate(prog.steps) if s.phase == "decode"]
    prefill = [i for i, s in enumerate(prog.steps) if s.phase != "decode"]
    summary = write_chrome_trace(trace, tmp_path / "t.json", max_slices=None, steps=choice)
    doc = json.loads((tmp_path / "t.json").read_text())
    kept = prefill + [decode[n - 1] for n in want]
    assert doc["otherData"]["kept_steps"] == kept and doc["otherData"]["steps"] == choice
    slices = _by_ph(doc, "X")
    assert sorted(e["args"]["task"] for e in slices) == np.flatnonzero(np.isin(step_of, kept)).tolist()
    runs = {"first:3": "1-3", "every:4": "1, 5, 9, 11", "all": "1-11"}[choice]
    sentence = f"kept the prefill and decode steps {runs} of 11 ({choice})"
    assert summary["kept"] == doc["otherData"]["kept"] == sentence
    note = _by_ph(doc, "i")
    assert len(note) == 1 and note[0]["name"] == sentence and note[0]["s"] == "g" and note[0]["ts"] == 0
    assert summary["bytes"] == (tmp_path / "t.json").stat().st_size


def test_a_cap_on_chosen_steps_is_named_in_the_note(tmp_path):
    trace = _run("h100-sxm", generate=12)
    sizes = np.bincount(trace.program.step_of_task())
    summary = write_chrome_trace(trace, tmp_path / "t.json", max_slices=int(sizes[0] + 3 * sizes[1]),
                                 steps="every:2")
    assert summary["kept"].endswith(f"(every:2, then whole steps sampled to stay under {int(sizes[0] + 3 * sizes[1]):,} slices)")


def test_gz_trace_is_the_json_compressed_and_the_same_bytes_every_time(tmp_path):
    import gzip

    trace = _run("taalas-hc1")
    write_chrome_trace(trace, tmp_path / "t.json", steps="first:1")
    write_chrome_trace(trace, tmp_path / "a.json.gz", steps="first:1")
    write_chrome_trace(trace, tmp_path / "b.json.gz", steps="first:1")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.json.gz").read_bytes()) == (tmp_path / "t.json").read_bytes()
    assert (tmp_path / "a.json.gz").stat().st_size < (tmp_path / "t.json").stat().st_size / 4


@pytest.mark.parametrize("text", ["first:0", "every:", "some", "first:2x", "every:-1"])
def test_bad_trace_steps_are_refused_by_name(text):
    from asicsim.errors import InputError
    from asicsim.perfetto import parse_steps

    with pytest.raises(InputError, match="--trace-steps.*all, first:N or every:K"):
        parse_steps(text)


def test_cli_trace_steps(tmp_path):
    """predict writes the chosen steps, gzip on .gz, says what it kept on stderr; a bad choice or
    --trace-steps without --trace exits 2 before simulating."""
    from click.testing import CliRunner

    from asicsim.cli import main

    args = ["predict", "--model", "llama-3.1-8b", "--system", "taalas-hc1", "--prompt", "16", "--generate", "4"]
    ok = CliRunner().invoke(main, args + ["--trace", str(tmp_path / "t.json.gz"), "--trace-steps", "first:2"])
    assert ok.exit_code == 0, ok.output
    assert "kept the prefill and decode steps 1-2 of 3 (first:2)" in ok.output
    assert json.loads(gzip_text(tmp_path / "t.json.gz"))["otherData"]["steps"] == "first:2"
    for bad in (["--trace", str(tmp_path / "x.json"), "--trace-steps", "every:0"], ["--trace-steps", "all"]):
        result = CliRunner().invoke(main, args + bad)
        assert result.exit_code == 2 and "--trace-steps" in result.output and "Traceback" not in result.output
        assert not (tmp_path / "x.json").exists()


def gzip_text(path) -> str:
    import gzip

    return gzip.decompress(path.read_bytes()).decode()


def test_a_cap_below_one_step_still_keeps_one_whole_step(tmp_path):
    trace = _run("taalas-hc1")
    summary = write_chrome_trace(trace, tmp_path / "one.json", max_slices=10)
    doc = json.loads((tmp_path / "one.json").read_text())
    step_of = trace.program.step_of_task()
    assert doc["otherData"]["kept_steps"] == [0] and summary["slices"] == int((step_of == 0).sum())


def test_rounding_overlap_is_clamped_and_a_real_overlap_is_refused(tmp_path):
    trace = _run("taalas-hc1")
    prog = trace.program
    same = np.flatnonzero(prog.block[1:] == prog.block[:-1])
    a = int(same[0])  # tasks a and a + 1 run back to back on one block
    end = trace.end_ns.copy()
    end[a] = trace.start_ns[a + 1] + 1e-4  # float noise (1e-7 µs): clamped
    write_chrome_trace(Trace(prog, trace.start_ns, end, trace.wait_ns), tmp_path / "ok.json")
    spans = {e["args"]["task"]: e for e in _by_ph(json.loads((tmp_path / "ok.json").read_text()), "X")}
    assert spans[a]["ts"] + spans[a]["dur"] <= spans[a + 1]["ts"] + 1e-9
    end[a] = trace.start_ns[a + 1] + 0.01
    with pytest.raises(ValueError, match="malformed"):
        write_chrome_trace(Trace(prog, trace.start_ns, end, trace.wait_ns), tmp_path / "bad.json")


def test_two_chips_get_two_processes_and_a_link_counter(tmp_path):
    """A hand-built Program: chip 0 computes, sends over a link held by a DMA on chip 1, which
    feeds chip 1's compute; the link moves 1000 bytes at 100 GB/s, so it is busy for 10 ns."""
    from asicsim.program import Level, ProgramBuilder, StepRef

    b = ProgramBuilder()
    c0, dma1, c1 = b.add_block("chip0.mm", "matmul", 0), b.add_block("chip1.dma", "dma", 1), b.add_block(
        "chip1.mm", "matmul", 1)
    link = b.add_server("chip0-chip1.link", "link", 100.0)
    step = b.add_step(StepRef("prefill", 1, 1, 0))
    op = b.add_op("L0.send", 0, "matmul", step)
    t0 = b.task(c0, op, 5.0, flops=10.0)
    t1 = b.task(dma1, op, 10.0, [t0], latency_ns=3.0, nbytes=1000.0, level=Level.LINK, servers=((link, 10.0),))
    b.task(c1, op, 5.0, [t1], flops=10.0)
    trace = simulate(b.build())
    summary = write_chrome_trace(trace, tmp_path / "two.json")
    doc = json.loads((tmp_path / "two.json").read_text())
    procs = {e["pid"]: e["args"]["name"] for e in _by_ph(doc, "M") if e["name"] == "process_name"}
    assert sorted(procs.values()) == ["chip0", "chip1"]
    by_task = {e["args"]["task"]: e for e in _by_ph(doc, "X")}
    assert procs[by_task[0]["pid"]] == "chip0" and procs[by_task[2]["pid"]] == "chip1"
    assert by_task[1]["dur"] == 0.01 and by_task[1]["args"]["latency_ns"] == 3  # busy 10 ns, then 3 in flight
    assert by_task[2]["ts"] == 0.018 and summary["flows"] == 2
    counter = [(e["ts"], e["args"]["GB/s"]) for e in _by_ph(doc, "C")]
    assert counter == [(0.0, 0.0), (0.005, 100.0), (0.015, 0.0)]
    assert all(e["pid"] == by_task[1]["pid"] for e in _by_ph(doc, "C"))
