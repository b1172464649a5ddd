"""Decode fast-forward: which decode steps to simulate when not all of them are.

A decode step's cost is a function of its context length that is linear between *break points*:
where a sliding window fills (its keys and cache stop growing), and where the KV cache an
attention op streams crosses a chunk boundary of the lowering (a chunk more to load). Between
break points, the simulated steps are exact and the rest are interpolated by
:mod:`asicsim.metrics` (time, bytes, energy per step, piecewise linear in the step index).

Steps are simulated in *probes* of three consecutive steps, so that each probe's later steps
are measured after their predecessor (a pipeline in steady state): a probe at the start, one at
the end, one on each side of every break point, and two spread evenly between (between break
points a step's time is a straight line in its context, to within 0.1 % wherever measured: the
two check it rather than carry it; four were used until the Groq batch-256 bench showed them to be
most of a pipelined run's steps, and random pipelines stayed within 0.1 % of exact with two).

Where a step's sequences are pipelined one after another (micro-batches: a spatial chip's
batch, or a temporal pipeline's), the pipeline carries state from step to step: after the
prefill the later sequences catch up with the first over tens of steps, and a server's backlog
can grow for a dozen steps until the slack before it is spent and the period jumps (8 % in one
case). That depends on how many steps ran, not on context, so it cannot be interpolated. Two
things keep fast-forward within 0.5 % there (the tests hold it on generated Groq pipelines):
the run's first steps are simulated one after another until the pipeline has settled
(``head``: 6, grown fourfold while :func:`asicsim.metrics.head_settled` says it has not;
``asicsim.api.compile_and_simulate``), and the interpolated quantity is the first sequence's period, the spread
of the others behind it counted once (:func:`asicsim.metrics.decode_sample`). Before both,
Groq with 16 sequences and a 64-token prompt was 2.6 to 3.7 % off exact.
"""

from __future__ import annotations

from asicsim.compile.lower import CHUNK_BYTES, MAX_CHUNKS
from asicsim.compile.shard import kv_share
from asicsim.model.layers import ModelSpec
from asicsim.model.ops import Numerics

PROBE = 3            # consecutive steps per probe
SPREAD = 2           # probes spread evenly between the first and the last (see above)
ALL_BELOW = 16       # runs with at most this many decode steps are simulated whole


def _mixers(model: ModelSpec, num: Numerics) -> list:
    """One of each distinct cache-keeping mixer (same bytes per token, window and kind)."""
    out, seen = [], set()
    for block in model.blocks:
        mixer = block.mixer
        per_token = mixer.kv_bytes_per_token(num)
        key = (per_token, getattr(mixer, "window", None), type(mixer).__name__)
        if per_token and key not in seen:
            seen.add(key)
            out.append((mixer, per_token))
    return out


def _signature(mixers: list, context: int, batch: int, tp: int) -> tuple:
    """What a decode step at ``context`` looks like to the lowering, per distinct mixer: whether
    its window is full, and how many chunks its cache read takes."""
    sig = []
    for mixer, per_token in mixers:
        window = getattr(mixer, "window", None)
        cached = mixer.cached_tokens(context)
        nbytes = batch * cached * per_token * kv_share(mixer, tp)
        chunks = min(MAX_CHUNKS, max(1, int(-(-nbytes // CHUNK_BYTES))))
        sig.append((window is not None and context + 1 >= window, cached == context, chunks))
    return tuple(sig)


def break_points(model: ModelSpec, prompt: int, steps: int, batch: int, num: Numerics, tp: int = 1) -> list[int]:
    """Decode step indices (1-based; step ``j`` extends a context of ``prompt + j - 1``) whose
    shape differs from the step before; ``batch`` is the sequences one micro-batch holds."""
    mixers = _mixers(model, num)
    out = []
    prev = _signature(mixers, prompt, batch, tp)
    for j in range(2, steps + 1):
        sig = _signature(mixers, prompt + j - 1, batch, tp)
        if sig != prev:
            out.append(j)
        prev = sig
    return out


def sampled_steps(steps: int, breaks: list[int], head: int = PROBE) -> list[int]:
    """The decode step indices (1 ... ``steps``) to simulate, in order: the first ``head`` of
    them one after another (at least a probe), then the probes."""
    if steps <= max(ALL_BELOW, head):
        return list(range(1, steps + 1))
    starts = {1, steps - PROBE + 1}
    starts.update(range(1, head - PROBE + 2))
    starts.update(1 + round(k * (steps - PROBE) / (SPREAD + 1)) for k in range(1, SPREAD + 1))
    for b in breaks:
        starts.update((b - PROBE, b))  # the probe before ends at b-1; the one after starts at b
    chosen = {j for s in starts for j in range(max(1, s), min(steps, s + PROBE - 1) + 1)}
    return sorted(chosen)
