"""Metrics: latency, throughput, utilisation, bytes per memory level, and what bound each op.

Everything here is computed from a Trace (and the Program inside it) with numpy; nothing is
simulated again. Phases are 'prefill' (the prompt, ending with the first token) and 'decode'.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum

import numpy as np

from asicsim.program import Category, Level
from asicsim.engine import Trace


class Bound(str, Enum):
    """What an op's time went to."""

    COMPUTE = "compute"
    MEMORY = "memory"
    LINK = "link"
    OVERHEAD = "overhead"
    DEPENDENCY = "dependency wait"


@dataclass(frozen=True)
class Metrics:
    """One run's results. Times in ms; utilisation and bound shares are fractions in [0, 1]."""

    ttft_ms: float
    tpot_ms: float | None
    tokens_per_s: float | None
    tokens_per_s_per_user: float | None
    total_ms: float
    batch: int
    utilisation: dict[str, dict[str, float]]           # phase -> block kind -> mean utilisation
    block_utilisation: dict[str, dict[str, float]]     # phase -> block or server name -> utilisation
    bytes_by_level: dict[str, dict[str, float]]        # phase -> level -> bytes (whole phase)
    bytes_per_decode_step: dict[str, float]
    bound_share: dict[str, dict[str, float]]           # phase -> bound -> share of op time
    dominant_bound: dict[str, str]                     # phase -> bound
    ops: list[dict] = field(default_factory=list)      # each op of one representative step (its first micro-batch)

    def to_dict(self) -> dict:
        """A copy as plain dicts and lists (of numbers and strings: copied two levels deep)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = ({k: dict(x) if isinstance(x, dict) else x for k, x in v.items()} if isinstance(v, dict)
                           else [dict(x) for x in v] if isinstance(v, list) else v)
        return out


def step_ends(trace: Trace) -> np.ndarray:
    """When each step's last task ended, ns."""
    p = trace.program
    ends = np.zeros(len(p.steps))
    np.maximum.at(ends, p.step_of_task(), trace.end_ns)
    return ends


def lead_ends(trace: Trace) -> np.ndarray:
    """When each step's lead (its first micro-batch) ended, ns: its step's end where the step
    is one micro-batch (``StepRef.lead_tasks`` None)."""
    p = trace.program
    step_of = p.step_of_task()
    counts = [s.lead_tasks for s in p.steps]
    if all(c is None for c in counts):
        return step_ends(trace)
    n, n_steps = p.n_tasks, len(p.steps)
    if np.any(step_of[1:] < step_of[:-1]):  # not in step order (a Program built by hand)
        first = np.full(n_steps, n, np.int64)
        np.minimum.at(first, step_of, np.arange(n))
        limit = np.array([n if c is None else c for c in counts], np.int64)
        lead = np.arange(n) - first[step_of] < limit[step_of]
        ends = np.zeros(n_steps)
        np.maximum.at(ends, step_of[lead], trace.end_ns[lead])
        return ends
    # each step's tasks are a run, its lead's the first of them: a maximum over each lead's run
    bounds = np.searchsorted(step_of, np.arange(n_steps + 1))
    stop = np.minimum(bounds[1:], bounds[:-1] + np.array([n if c is None else c for c in counts], np.int64))
    cuts = np.empty(2 * n_steps, np.int64)
    cuts[0::2], cuts[1::2] = bounds[:-1], stop
    ends = np.maximum.reduceat(np.append(trace.end_ns, -np.inf), cuts)[0::2]
    ends[stop == bounds[:-1]] = 0.0  # a step without tasks
    return ends


@dataclass(frozen=True)
class DecodeSample:
    """How the simulated decode steps stand for the whole run's. A decode step is *measured* when
    the step before it in the run was simulated too. ``weights`` (one per Program step, zero for
    the prefill and unmeasured steps) say how many of the run's ``total`` decode steps each
    measured step stands for, by piecewise-linear interpolation in the step index; with every
    step simulated (``exact``) each weighs 1.

    ``durations`` are the lead's periods: per Program step, when its lead (first micro-batch)
    ended minus when the step before's did. ``decode_ns`` is the whole run's decode time: the
    weighted sum of the lead's measured periods, plus how far the run's end trails the last
    step's lead, less how far the prefill's end trails its lead. Where a step's micro-batches
    are pipelined one after another their spread (the trail) settles over the steps as the
    later ones catch up with the first; a step's own end (its last micro-batch's) carries that
    settling, which depends on how many steps ran rather than on context, so interpolating it
    would count it again for every step a measured one stands for; the lead's period does not
    carry it, and the spread is counted once. With one micro-batch a step its lead is the step
    and the trails are zero."""

    total: int
    exact: bool
    weights: np.ndarray
    durations: np.ndarray  # per Program step: its lead's end minus the previous step's lead's end, ns
    decode_ns: float       # the run's decode time (exact: the run's end minus the prefill's), ns

    def total_of(self, per_step: np.ndarray) -> float:
        """The whole run's decode sum of a per-step quantity (one value per Program step)."""
        return float(self.weights @ per_step)


def decode_sample(trace: Trace, ends: np.ndarray | None = None) -> DecodeSample:
    """The decode steps of ``trace``'s Program and what each stands for."""
    p = trace.program
    ends = step_ends(trace) if ends is None else ends
    index = np.array([s.index if s.index is not None else i for i, s in enumerate(p.steps)])
    decode = np.array([s.phase == "decode" for s in p.steps])
    total = int(p.meta.get("decode_steps", int(decode.sum())))
    weights = np.zeros(len(p.steps))
    measured = decode.copy()
    measured[1:] &= index[1:] == index[:-1] + 1
    measured[0] = False
    exact = bool(decode.sum() == total and measured[decode].all())
    prefill_end = float(ends[~decode].max()) if (~decode).any() else 0.0
    if exact:
        weights[decode] = 1.0
        lead = ends
    else:
        lead = lead_ends(trace)
    durations = np.zeros(len(p.steps))
    durations[1:] = lead[1:] - lead[:-1]
    if exact:
        decode_ns = float(ends.max()) - prefill_end if decode.any() else 0.0
    else:
        if measured.any():
            xs = index[measured].astype(float)
            js = np.arange(1, total + 1, dtype=float)
            basis = np.eye(len(xs))
            weights[measured] = [np.interp(js, xs, basis[k]).sum() for k in range(len(xs))]
        lead_prefill = float(lead[~decode].max()) if (~decode).any() else 0.0
        decode_ns = (float(weights @ durations) + (float(ends.max()) - float(lead[-1]))
                     - (prefill_end - lead_prefill))
    return DecodeSample(total, exact, weights, durations, decode_ns)


SETTLED = 1e-4  # a pipeline is settled when no task moves more than this share of a step against its lead


def head_settled(trace: Trace) -> bool:
    """Whether the decode steps a fast-forwarded Program simulates one after another from the
    first (its *head*) end in a settled pipeline: every task of the head's last step ends at the
    same time after that step's lead as its counterpart in the step before did, within
    ``SETTLED`` of a step. Sequences pipelined one after another settle over many steps after
    the prefill (a later one catching up with the first; a server's backlog growing until the
    slack before it is spent): until they have, a step's time depends on how many steps ran
    before it, not only on its context, and samples taken after skipping steps would see a
    pipeline the whole run has long left behind. True where the head cannot be compared (its
    last two steps differ in tasks) or there is no head to compare."""
    p = trace.program
    index = [s.index if s.index is not None else i for i, s in enumerate(p.steps)]
    last = 0
    while last + 1 < len(index) and index[last + 1] == index[last] + 1:
        last += 1
    if last < 2:  # the prefill and one decode step: nothing to compare
        return True
    step_of = p.step_of_task()
    first = np.searchsorted(step_of, [last - 1, last, last + 1])
    a, b = slice(first[0], first[1]), slice(first[1], first[2])
    if first[1] - first[0] != first[2] - first[1]:
        return True
    lead = lead_ends(trace)
    moved = np.abs((trace.end_ns[b] - lead[last]) - (trace.end_ns[a] - lead[last - 1]))
    return bool(moved.max(initial=0.0) <= SETTLED * (lead[last] - lead[last - 1]))


def op_bounds(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """Per op: its span (first start to last end, ns) and its Bound index (order of ``Bound``)."""
    p = trace.program
    n_ops = len(p.ops)
    first = np.full(n_ops, np.inf)
    np.minimum.at(first, p.op, trace.start_ns)
    span = np.zeros(n_ops)
    np.maximum.at(span, p.op, trace.end_ns)
    span -= first  # last end - first start, and 0 for an op with no tasks (its first is inf)
    span[~np.isfinite(first)] = 0.0
    del first  # an array per op: keep few of them alive at once (millions of ops in a large run)
    best = np.zeros(n_ops)  # the largest part so far, and which (the first of equal ones)
    bound = np.zeros(n_ops, dtype=np.int8)
    for row, cat in enumerate((Category.COMPUTE, Category.MEMORY, Category.LINK, None)):
        # each op's sum over its tasks of one category (zero for the others: the same sums, in
        # the same order, as adding the selected tasks only, without copying them out)
        if cat is None:
            weights = p.fixed_ns
        else:
            weights = p.service_ns + trace.wait_ns  # a task's time on its block and servers
            weights[p.category != cat] = 0.0
        part = np.bincount(p.op, weights=weights, minlength=n_ops)
        del weights
        larger = part > best
        bound[larger] = row
        best[larger] = part[larger]
        del part, larger
    bound[span - best > best] = 4  # mostly waiting on other ops
    return span, bound


def _phase_tasks(task_phase: np.ndarray, code: int) -> slice | np.ndarray | None:
    """The tasks of one phase: a slice where they are one run (a compiled Program lists its
    steps in order, so indexing with it copies nothing), else a mask; None where it has none."""
    sel = task_phase == code
    hits = np.flatnonzero(sel)
    if not len(hits):
        return None
    if hits[-1] - hits[0] + 1 == len(hits):
        return slice(int(hits[0]), int(hits[-1]) + 1)
    return sel


def compute_metrics(trace: Trace) -> Metrics:
    """All metrics of a run."""
    p = trace.program
    ends = step_ends(trace)
    phases = np.array([s.phase for s in p.steps])
    batch = p.steps[0].batch
    prefill_end = float(ends[phases == "prefill"].max())
    decode_steps = np.flatnonzero(phases == "decode")
    sample = decode_sample(trace, ends)
    if not len(decode_steps):
        tpot = None
    elif sample.exact:
        tpot = (float(ends[-1]) - prefill_end) / len(decode_steps)
    else:  # fast-forwarded: the run's decode time from the measured steps
        tpot = sample.decode_ns / sample.total
    task_step = p.step_of_task()
    codes = {phase: k for k, phase in enumerate(dict.fromkeys(s.phase for s in p.steps))}
    step_code = np.array([codes[s.phase] for s in p.steps], np.int8)  # a byte a task, not a string
    task_phase = step_code[task_step]
    span, bound = op_bounds(trace)
    op_phase = step_code[np.fromiter((o.step for o in p.ops), np.int64, len(p.ops))]

    util, block_util, by_level, shares, dominant = {}, {}, {}, {}, {}
    block_copies = np.array([b.copies for b in p.blocks], dtype=np.float64)
    for phase in ("prefill", "decode"):
        sel = _phase_tasks(task_phase, codes[phase]) if phase in codes else None
        if sel is None:
            continue
        window = float(trace.end_ns[sel].max() - trace.start_ns[sel].min())
        blocks = p.block[sel]  # the per-task arrays below hold the phase's tasks only (memory)
        busy = p.fixed_ns[sel] + p.service_ns[sel]
        busy += trace.wait_ns[sel]
        per_block = np.bincount(blocks, weights=busy, minlength=len(p.blocks)) / window
        del busy
        weighted = block_copies[blocks]  # identical tensor-parallel ranks count once per rank
        weighted *= p.nbytes[sel]
        del blocks
        names = {b.name: float(u) for b, u in zip(p.blocks, per_block)}
        kinds: dict[str, list[float]] = {}
        for b, u in zip(p.blocks, per_block):
            kinds.setdefault(b.kind, []).append(float(u))
        srv_busy = _server_busy(trace, sel) / window
        for s, u in zip(p.servers, srv_busy):
            names[s.name] = float(u)
            kinds.setdefault(s.kind, []).append(float(u))
        util[phase] = {k: float(np.mean(v)) for k, v in kinds.items()}
        block_util[phase] = names
        if phase == "decode" and not sample.exact:  # per-step bytes, weighted over the run
            per = np.zeros((len(p.steps), len(Level)))
            np.add.at(per, (task_step[sel], p.level[sel]), weighted)
            lev = sample.weights @ per
        else:
            lev = np.bincount(p.level[sel], weights=weighted, minlength=len(Level))
        by_level[phase] = {Level(i).name.lower(): float(v) for i, v in enumerate(lev) if i}
        osel = op_phase == codes[phase]
        totals = np.bincount(bound[osel], weights=span[osel], minlength=len(Bound))
        shares[phase] = {b.value: float(t / totals.sum()) if totals.sum() else 0.0
                         for b, t in zip(Bound, totals)}
        dominant[phase] = list(Bound)[int(totals.argmax())].value

    per_step = ({k: v / sample.total for k, v in by_level["decode"].items()}
                if len(decode_steps) else {})
    rep_step = int(decode_steps[-1]) if len(decode_steps) else 0
    ops, seen = [], set()  # the first micro-batch's ops (the others repeat their names)
    for i, o in enumerate(p.ops):
        if o.step == rep_step and o.name not in seen:
            seen.add(o.name)
            ops.append({"name": o.name, "kind": o.kind, "span_us": float(span[i]) / 1e3,
                        "bound": list(Bound)[bound[i]].value})
    return Metrics(
        ttft_ms=prefill_end / 1e6, tpot_ms=tpot / 1e6 if tpot else None,
        tokens_per_s=batch / tpot * 1e9 if tpot else None,
        tokens_per_s_per_user=1e9 / tpot if tpot else None,
        total_ms=(float(trace.makespan_ns) if sample.exact or tpot is None
                  else prefill_end + tpot * sample.total) / 1e6, batch=batch, utilisation=util, block_utilisation=block_util,
        bytes_by_level=by_level, bytes_per_decode_step=per_step, bound_share=shares, dominant_bound=dominant,
        ops=ops)


def _server_busy(trace: Trace, sel: slice | np.ndarray) -> np.ndarray:
    """Total hold time of each server by the selected tasks (a slice or a mask), ns."""
    p = trace.program
    if isinstance(sel, slice):  # a run of tasks holds a run of servers
        keep = slice(int(p.srv_ptr[sel.start]), int(p.srv_ptr[sel.stop]))
    else:
        keep = np.repeat(sel, np.diff(p.srv_ptr))  # for each hold, whether its task is selected
    return np.bincount(p.srv_idx[keep], weights=p.srv_hold_ns[keep], minlength=len(p.servers))
