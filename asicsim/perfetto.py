"""Export a Trace as Chrome trace-event JSON, the format ui.perfetto.dev and chrome://tracing open.

Layout: one process per chip, one thread track per block (in block order), one slice per task,
flow arrows for dependencies that cross tracks, and one bandwidth counter per server (HBM, SRAM,
links) in GB/s. A slice spans the time a task *occupies its block*, from ``start_ns`` to
``end_ns - latency_ns``: a pipelined unit such as a DMA engine issues its next transfer while the
last one is still in flight, so the full ``[start, end]`` spans of one block overlap and could not
nest on one track; the latency is kept in the slice's args, and the flow arrow to a dependent
shows the gap.

Which steps go in is the caller's choice (:func:`parse_steps`: ``all``, ``first:N``, ``every:K``;
the command line's default is ``first:8``, the prefill and eight decode steps, a few MB that a
browser tab opens in seconds); a path ending in ``.gz`` is written gzip-compressed (Perfetto
opens it as it is). The trace says what it kept: ``otherData.kept`` and a global instant event at
time 0 carry one sentence such as "kept the prefill and decode steps 1-8 of 127 (first:8)".

Times are rounded to whole ns (Perfetto's own resolution) before they become microseconds, and
each microsecond value is nudged up by at most one ulp where ``value * 1000`` would otherwise
truncate to the ns below (Perfetto converts with a truncating cast). Rounding is monotone, so
slices that did not overlap in ns still do not overlap after it.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asicsim.program import Level
from asicsim.engine import Trace

_LEVELS = {int(lv): lv.name for lv in Level}
_FLOW = "dep"  # name and category of every flow event
DEFAULT_STEPS = "first:8"  # what the command line writes unless told: small enough to open quickly


@dataclass(frozen=True)
class Steps:
    """Which steps a trace keeps: ``all``; ``first`` (the prefill and the first ``n`` decode
    steps); ``every`` (the prefill, every ``n``-th decode step from the first, and the last)."""

    mode: str = "all"
    n: int = 0

    def __str__(self) -> str:
        return self.mode if self.mode == "all" else f"{self.mode}:{self.n}"


def parse_steps(text: str, where: str = "--trace-steps") -> Steps:
    """``all``, ``first:N`` or ``every:K`` (N, K ≥ 1) as a :class:`Steps`; anything else is an
    InputError naming ``where``."""
    from asicsim.errors import InputError

    m = re.fullmatch(r"\s*(all|first:(\d+)|every:(\d+))\s*", str(text))
    if not m or (m.group(1) != "all" and int(m.group(2) or m.group(3)) < 1):
        raise InputError(where, None, f"must be all, first:N or every:K with N, K at least 1 "
                         f"(e.g. first:8, every:16), got {str(text)[:40]!r}")
    if m.group(1) == "all":
        return Steps()
    return Steps("first", int(m.group(2))) if m.group(2) else Steps("every", int(m.group(3)))


def select_steps(prog, choice: Steps) -> list[int]:
    """The indices of ``prog.steps`` that ``choice`` keeps, in run order."""
    decode = [i for i, st in enumerate(prog.steps) if st.phase == "decode"]
    other = [i for i, st in enumerate(prog.steps) if st.phase != "decode"]
    if choice.mode == "first":
        decode = decode[:choice.n]
    elif choice.mode == "every":
        decode = sorted(set(decode[::choice.n] + decode[-1:]))
    return sorted(other + decode)


def write_chrome_trace(trace: Trace, path: str | Path, max_slices: int | None = 200_000,
                       steps: Steps | str = "all") -> dict:
    """Write ``trace`` to ``path`` as Chrome trace-event JSON (gzip-compressed when the name ends
    in ``.gz``) and return a short summary.

    ``steps`` chooses the steps to keep (a :class:`Steps` or its text, see :func:`parse_steps`);
    the cap below then applies to those (``max_slices=None``: no cap).

    Every task becomes one complete event on its block's track, named after its op, with the
    op kind as category and the task id, step, phase, flops, bytes, memory level and server wait
    as args. Dependencies between tasks on different tracks become flow arrows (a dependency on
    the same track is already shown by order). Each server gets a counter of the bandwidth its
    holders use, stepping at every hold boundary and dropping to zero when it is idle.

    A run with more than ``max_slices`` tasks is sampled by whole steps, never by parts of one:
    prefill, the first and last decode steps, then as many evenly spaced decode steps between
    them as still fit under the cap. Flows and counters then come from the kept tasks only, and
    ``otherData`` records that the trace is sampled, which steps were kept and the total number
    of tasks. The same trace always gives a byte-identical file.

    The summary has ``slices`` (written), ``dropped``, ``sampled``, ``steps_kept``, ``flows``,
    ``counter_samples``, ``kept`` (the sentence the trace carries) and ``bytes`` (the file's size).
    """
    choice = parse_steps(steps) if isinstance(steps, str) else steps
    prog = trace.program
    step_of = prog.step_of_task()
    chosen = select_steps(prog, choice)
    kept_steps = _choose_steps(prog, step_of, max_slices, chosen)
    keep = np.isin(step_of, kept_steps)
    tasks = np.flatnonzero(keep)
    lo, hi = _slice_bounds(trace, tasks)
    start_q = np.zeros(prog.n_tasks, np.int64)
    end_q = np.zeros(prog.n_tasks, np.int64)
    start_q[tasks], end_q[tasks] = lo, hi

    chips = sorted({b.chip for b in prog.blocks})
    pid = [chips.index(b.chip) + 1 for b in prog.blocks]
    tid = [len(chips) + 1 + i for i in range(len(prog.blocks))]  # never equal to a pid
    events = _metadata(prog, chips, pid, tid, np.unique(prog.block[tasks]))
    events += _slices(trace, tasks, start_q, end_q, step_of, pid, tid)
    flows = _flows(prog, keep, start_q, end_q, pid, tid)
    counters = _counters(trace, keep, pid, tid)
    events += flows + counters

    sampled = len(tasks) < prog.n_tasks
    has_tasks = np.bincount(step_of, minlength=len(prog.steps)) > 0
    capped = len(kept_steps) < int(has_tasks[chosen].sum())
    kept = _kept_sentence(prog, kept_steps, choice, capped, max_slices)
    events.append({"ph": "i", "s": "g", "name": kept, "pid": 1, "tid": 1, "ts": 0})
    other = {"generator": "asicsim.perfetto", **prog.meta, "total_tasks": prog.n_tasks,
             "slices": len(tasks), "max_slices": max_slices, "sampled": sampled, "steps": str(choice),
             "kept": kept, "kept_steps": [int(s) for s in kept_steps], "total_steps": len(prog.steps),
             "slice_span": "block occupancy: start_ns to end_ns - latency_ns, rounded to 1 ns"}
    doc = {"traceEvents": events, "displayTimeUnit": "ns", "otherData": other}
    # json.dumps is json.dump's exact output, through the C encoder (dump streams in pure Python).
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)  # no time or name inside: same bytes each run
    Path(path).write_bytes(data)
    return {"slices": len(tasks), "dropped": prog.n_tasks - len(tasks), "sampled": sampled,
            "steps_kept": len(kept_steps), "flows": len(flows) // 2, "counter_samples": len(counters),
            "kept": kept, "bytes": len(data)}


def _kept_sentence(prog, kept: list[int], choice: Steps, capped: bool, max_slices: int | None) -> str:
    """What the trace holds, in words: "kept the prefill and decode steps 1-8 of 127 (first:8)"."""
    decode = [i for i, st in enumerate(prog.steps) if st.phase == "decode"]
    rank = {step: n + 1 for n, step in enumerate(decode)}
    nums = [rank[i] for i in kept if i in rank]
    runs, start = [], None
    for k, n in enumerate(nums):
        start = n if start is None else start
        if k + 1 == len(nums) or nums[k + 1] != n + 1:
            runs.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    prefill = any(prog.steps[i].phase != "decode" for i in kept)
    parts = (["the prefill"] if prefill else []) + (
        [f"decode step{'s' if len(nums) > 1 else ''} {', '.join(runs)} of {len(decode)}"] if nums else [])
    why = f"{choice}" + (f", then whole steps sampled to stay under {max_slices:,} slices" if capped else "")
    return f"kept {' and '.join(parts) or 'no step'} ({why})"


def _choose_steps(prog, step_of: np.ndarray, max_slices: int | None, chosen: list[int] | None = None) -> list[int]:
    """Whole steps to keep, from ``chosen`` (default: all): all of them if they fit, else prefill,
    first and last decode, then evenly spaced decode steps between those two; the first of those
    is kept even if too big."""
    sizes = np.bincount(step_of, minlength=len(prog.steps))
    pool = set(range(len(prog.steps)) if chosen is None else chosen)
    everything = [i for i in range(len(prog.steps)) if sizes[i] and i in pool]
    if max_slices is None or sizes[everything].sum() <= max_slices:
        return everything
    decode = [i for i in everything if prog.steps[i].phase == "decode"]
    core = [i for i in everything if prog.steps[i].phase != "decode"] + decode[:1] + decode[-1:]
    kept: list[int] = []
    budget = max_slices
    for i in dict.fromkeys(core):
        if sizes[i] <= budget or not kept:
            kept.append(i)
            budget -= sizes[i]
    inner = decode[1:-1]
    m = min(len(inner), int(budget // max(1, min((sizes[i] for i in inner), default=1))))
    while m > 0:
        pos = np.unique(np.round(np.linspace(0, len(decode) - 1, m + 2)[1:-1]).astype(np.int64))
        pick = [decode[j] for j in pos]
        if sizes[pick].sum() <= budget:
            kept += pick
            break
        m -= 1
    return sorted(kept)


def _slice_bounds(trace: Trace, tasks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole-ns [start, end) of each task's block occupancy; on each block these never overlap.

    A block runs its tasks in id order and is free again at ``end - latency``, so consecutive
    spans at most touch. An end past the next start by float noise (under 1e-3 ns) is clamped;
    anything more means the trace is not one the engine could have made.
    """
    prog = trace.program
    start, busy_end = trace.start_ns[tasks], trace.end_ns[tasks] - prog.latency_ns[tasks]
    order = np.lexsort((tasks, prog.block[tasks]))  # by block, then id (run order)
    same = prog.block[tasks][order][1:] == prog.block[tasks][order][:-1]
    a, b = order[:-1][same], order[1:][same]
    over = busy_end[a] - start[b]
    if np.any(start[b] < start[a]) or np.any(over > 1e-3):
        t = int(tasks[a][np.argmax(np.maximum(over, start[a] - start[b]))])
        raise ValueError(f"task {t} overlaps the next task on its block by {over.max():.3f} ns: "
                         "the trace is malformed")
    lo = np.rint(start).astype(np.int64)
    hi = np.maximum(np.rint(busy_end).astype(np.int64), lo)
    hi[a] = np.minimum(hi[a], lo[b])
    return lo, hi


def _us(ns) -> list[float]:
    """Whole ns to µs floats that a truncating ``value * 1000`` maps back to the same ns."""
    ns = np.asarray(ns, dtype=np.int64)
    us = ns / 1000.0
    low = us * 1000.0 < ns
    us[low] = np.nextafter(us[low], np.inf)
    return us.tolist()


def _metadata(prog, chips, pid, tid, used_blocks) -> list[dict]:
    events = []
    for c in chips:
        p = chips.index(c) + 1
        events.append({"ph": "M", "name": "process_name", "pid": p, "tid": p, "ts": 0,
                       "args": {"name": f"chip{c}"}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": p, "tid": p, "ts": 0,
                       "args": {"sort_index": p}})
    for b in used_blocks.tolist():
        for key, value in (("thread_name", prog.blocks[b].name), ("thread_sort_index", b)):
            events.append({"ph": "M", "name": key, "pid": pid[b], "tid": tid[b], "ts": 0,
                           "args": {"name" if key == "thread_name" else "sort_index": value}})
    return events


def _nums(x: np.ndarray) -> list:
    """Floats as JSON numbers, whole ones written as ints (shorter, same value)."""
    whole = (x == np.floor(x)) & (np.abs(x) < 2.0**53)
    out = x.astype(object)
    out[whole] = x[whole].astype(np.int64).astype(object)
    return out.tolist()


def _slices(trace, tasks, start_q, end_q, step_of, pid, tid) -> list[dict]:
    prog = trace.program
    ops, steps = prog.ops, prog.steps
    ts, dur = _us(start_q[tasks]), _us(end_q[tasks] - start_q[tasks])
    cols = (tasks.tolist(), prog.block[tasks].tolist(), prog.op[tasks].tolist(), step_of[tasks].tolist(),
            _nums(prog.flops[tasks]), _nums(prog.nbytes[tasks]), prog.level[tasks].tolist(),
            _nums(np.round(trace.wait_ns[tasks], 3)), _nums(prog.latency_ns[tasks]))
    events = []
    for k, (t, b, o, s, fl, nb, lv, w, lat) in enumerate(zip(*cols)):
        args = {"task": t, "step": s, "phase": steps[s].phase, "flops": fl, "nbytes": nb,
                "level": _LEVELS[lv], "wait_ns": w}
        if lat:
            args["latency_ns"] = lat
        events.append({"ph": "X", "name": ops[o].name, "cat": ops[o].kind, "pid": pid[b], "tid": tid[b],
                       "ts": ts[k], "dur": dur[k], "args": args})
    return events


def _flows(prog, keep, start_q, end_q, pid, tid) -> list[dict]:
    """An s/f pair per dependency between kept tasks on different blocks, each event at the
    middle of its slice so that it binds to that slice and no neighbour."""
    owner = prog.dependent_task()
    dep = prog.dep_idx
    mask = keep[owner] & keep[dep] & (prog.block[owner] != prog.block[dep])
    src, dst = dep[mask], owner[mask]
    mid = start_q + (end_q - start_q) // 2
    src_ts, dst_ts = _us(mid[src]), _us(mid[dst])
    events = []
    for k, (s, d) in enumerate(zip(prog.block[src].tolist(), prog.block[dst].tolist())):
        events.append({"ph": "s", "id": k + 1, "name": _FLOW, "cat": _FLOW, "pid": pid[s], "tid": tid[s],
                       "ts": src_ts[k]})
        events.append({"ph": "f", "bp": "e", "id": k + 1, "name": _FLOW, "cat": _FLOW, "pid": pid[d],
                       "tid": tid[d], "ts": dst_ts[k]})
    return events


def _counters(trace, keep, pid, tid) -> list[dict]:
    """Per server, the GB/s its kept holders use: a holder moves ``nbytes`` evenly over its hold,
    which starts once the task has waited out its fixed overhead and its queue (as the engine)."""
    prog = trace.program
    owner = prog.holding_task()
    srv, hold = prog.srv_idx, prog.srv_hold_ns
    begin = trace.start_ns[owner] + prog.fixed_ns[owner] + trace.wait_ns[owner]
    t0, t1 = np.rint(begin).astype(np.int64), np.rint(begin + hold).astype(np.int64)
    rate = np.divide(prog.nbytes[owner], hold, out=np.zeros_like(hold), where=hold > 0)
    live = keep[owner] & (t1 > t0) & (rate > 0)
    any_holder = {int(s): int(prog.block[o]) for o, s in zip(owner[::-1].tolist(), srv[::-1].tolist())}
    events = []
    for s, server in enumerate(prog.servers):
        b = any_holder.get(s, 0)
        sel = live & (srv == s)
        times, values = _step_function(t0[sel], t1[sel], rate[sel])
        for ts, v in zip(_us(times), values):
            events.append({"ph": "C", "name": server.name, "pid": pid[b], "tid": tid[b], "ts": ts,
                           "args": {"GB/s": v}})
    return events


def _step_function(t0: np.ndarray, t1: np.ndarray, rate: np.ndarray) -> tuple[list[int], list[float]]:
    """Sum of ``rate`` over intervals [t0, t1) as (time, value) changes, starting at 0 at time 0."""
    times = np.concatenate([t0, t1])
    order = np.argsort(times, kind="stable")
    times = times[order]
    level = np.cumsum(np.concatenate([rate, -rate])[order])
    active = np.cumsum(np.concatenate([np.ones_like(t0), -np.ones_like(t1)])[order])
    last = np.r_[times[1:] != times[:-1], True] if len(times) else np.zeros(0, bool)
    times, level, active = times[last], level[last], active[last]
    level = np.where(active > 0, np.maximum(np.round(level, 6), 0.0), 0.0)
    out_t, out_v = [0], [0.0]
    for t, v in zip(times.tolist(), level.tolist()):
        if v != out_v[-1]:
            if t == out_t[-1]:
                out_v[-1] = v
            else:
                out_t.append(t)
                out_v.append(v)
    return out_t, out_v


def write_serving_trace(result, path: str | Path, title: str) -> dict:
    """A serving run (:class:`asicsim.serving.ServeResult`) as counter tracks: the KV cache held
    (GB) and the requests admitted, at every step's start and end (``ServeResult.kv_log``; a
    disaggregated pair's decode group; several replicas summed), and the decode batch of each step
    (one track per replica when there are several). Samples at one ns keep
    the last, and consecutive equal values are dropped, so the file stays small; ``.gz`` is
    written gzip-compressed."""
    events: list[dict] = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": title}}]
    series = {"KV cache held (GB)": [(t, kv / 1e9) for t, kv, _ in result.kv_log],
              "requests admitted": [(t, n) for t, _, n in result.kv_log]}
    owners = getattr(result, "step_replicas", None) or [None] * len(result.steps)
    for (s0, dt, b, _), k in zip(result.steps, owners):  # several replicas: a decode batch track each
        series.setdefault("decode batch" if k is None else f"decode batch (replica {k})", []).extend(
            ((s0, b), (s0 + dt, 0)))
    if not result.steps:
        series["decode batch"] = []
    samples = 0
    for name, points in series.items():
        points.sort(key=lambda p: p[0])  # stable: at one time, the last sample stands
        last = {round(t): v for t, v in points}  # whole ns, as the trace's times are
        kept: list[tuple[float, float]] = []
        for t, v in last.items():
            if not kept or kept[-1][1] != v:
                kept.append((t, v))
        ts = _us(np.array([t for t, _ in kept], dtype=np.int64))
        events += [{"ph": "C", "name": name, "pid": 1, "ts": u, "args": {"value": v}}
                   for u, (_, v) in zip(ts, kept)]
        samples += len(kept)
    doc = {"traceEvents": events, "displayTimeUnit": "ns",
           "otherData": {"generator": "asicsim.perfetto", "title": title, "counter_samples": samples}}
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    Path(path).write_bytes(data)
    return {"counter_samples": samples, "bytes": len(data)}
