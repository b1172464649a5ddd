"""Study ``speculative``: a draft model proposes ``k`` tokens, the target verifies them in one step.

Each round, per sequence, the draft runs ``k`` decode steps on its system, then the target runs
one verifier step that adds ``k + 1`` tokens (the drafted ones and one of its own) and scores all
of them. Drafted token ``i`` is kept when it and every one before it are accepted; the verifier
always contributes one more token (its correction, or the next token when all ``k`` were kept).
With per-position acceptance rates ``a_1 .. a_k`` (the chance that token ``i`` is accepted given
that those before it were) the tokens a round yields are, in expectation,

    E = 1 + a_1 + a_1 a_2 + ... + a_1 ⋯ a_k       (a fixed rate a: (1 − a^(k+1)) / (1 − a))

so acceptance 0 gives one token per round and acceptance 1 gives ``k + 1`` (Leviathan, Kalman and
Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023). A round takes
``k × t_draft + t_verify``: the draft's mean decode step (simulated on its system) and the
target's mean verifier step (simulated with ``k + 1`` tokens per decode step). Draft and target
run one after the other for a sequence, whether on one chip or two; moving the drafted tokens
between chips is not charged (a few bytes per token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from asicsim.api import run
from asicsim.compile import Workload
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.scenario import StudyOutput, resolve_model, resolve_system, study

Rate = Annotated[float, Field(ge=0, le=1)]


class Side(Spec):
    """A model on a system (a preset name or a file relative to the scenario)."""

    model: str
    system: str


class SpeculativeSpec(Spec):
    """``draft`` proposes ``draft_tokens`` tokens per round, ``target`` verifies them. ``acceptance``
    is one rate for every position, or one rate per drafted position (each the chance that token
    ``i`` is accepted given that the tokens before it were). ``match_tokens_per_s``, a measured
    tokens/s per user (cited in ``match_source``), adds what it implies: for each draft length up
    to ``draft_tokens``, the one acceptance rate at which the simulated rounds reach it."""

    kind: Literal["speculative"]
    name: str
    description: str = ""
    target: Side
    draft: Side
    draft_tokens: int = Field(ge=1, le=64)
    acceptance: Rate | list[Rate]
    batch: int = Field(1, ge=1)
    prompt: int = Field(512, ge=1)
    generate: int = Field(8, ge=2)
    dtype: DType = DType.BF16
    match_tokens_per_s: float | None = Field(None, gt=0)
    match_source: str = ""

    @model_validator(mode="after")
    def _one_rate_per_position(self) -> SpeculativeSpec:
        if isinstance(self.acceptance, list) and len(self.acceptance) != self.draft_tokens:
            raise ValueError(f"acceptance lists {len(self.acceptance)} rates for {self.draft_tokens} drafted "
                             "tokens; give one per drafted position, or one rate for all")
        if self.match_tokens_per_s is not None and not self.match_source:
            raise ValueError("match_tokens_per_s needs a match_source: where the measured figure comes from")
        return self

    def rates(self) -> list[float]:
        a = self.acceptance
        return list(a) if isinstance(a, list) else [a] * self.draft_tokens


def expected_tokens(rates: list[float]) -> float:
    """Tokens one round yields in expectation: 1 plus the chance each drafted prefix survives."""
    total, survive = 1.0, 1.0
    for a in rates:
        survive *= a
        total += survive
    return total


def implied_acceptance(tokens_per_round: float, k: int) -> float | None:
    """The one acceptance rate ``a`` (the same at every position) at which ``k`` drafted tokens yield
    ``tokens_per_round`` in expectation; None when even ``a = 1`` yields fewer (``k + 1``), 0 when
    one token a round (no draft accepted) is enough. Bisection: E grows with ``a``."""
    if tokens_per_round <= 1.0:
        return 0.0
    if tokens_per_round > k + 1:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if expected_tokens([mid] * k) < tokens_per_round:
            lo = mid
        else:
            hi = mid
    return hi


def round_ms(k: int, draft_tpot_ms: float, verify_ms: float) -> float:
    """One round: ``k`` draft steps, then one verifier step."""
    return k * draft_tpot_ms + verify_ms


@study("speculative", SpeculativeSpec)
def run_speculative(spec: SpeculativeSpec, path: Path, progress) -> StudyOutput:
    """Simulate plain decoding and the verifier on the target, the draft on its system; combine."""
    target = resolve_model(path, spec.target.model, "target.model")
    draft = resolve_model(path, spec.draft.model, "draft.model")
    if draft.vocab != target.vocab:
        raise InputError(str(path), "draft.model", f"{draft.name}'s vocabulary ({draft.vocab:,} tokens) differs "
                         f"from {target.name}'s ({target.vocab:,}): a verifier can only check tokens of its own "
                         "vocabulary")
    t_sys = resolve_system(path, spec.target.system, "target.system")
    d_sys = resolve_system(path, spec.draft.system, "draft.system")
    k = spec.draft_tokens
    wl = Workload(spec.batch, spec.prompt, spec.generate, spec.dtype)
    progress(f"{target.name} on {spec.target.system}")
    plain = run(target, t_sys, wl)
    verifies = {}
    for j in (range(1, k + 1) if spec.match_tokens_per_s is not None else (k,)):
        progress(f"{target.name} verifying {j + 1} tokens a step")
        verifies[j] = run(target, t_sys, Workload(spec.batch, spec.prompt, spec.generate, spec.dtype,
                                                  tokens_per_step=j + 1))
    verify = verifies[k]
    progress(f"{draft.name} on {spec.draft.system}")
    drafted = run(draft, d_sys, wl)
    plain_ms, verify_ms, draft_ms = plain.metrics.tpot_ms, verify.metrics.tpot_ms, drafted.metrics.tpot_ms
    step = round_ms(k, draft_ms, verify_ms)
    rows = [{"case": "plain decoding", "tokens_per_round": 1.0, "round_ms": plain_ms,
             "tokens_per_s_per_user": 1000.0 / plain_ms}]
    for label, rates in ((f"speculative, acceptance {_rates_text(spec)}", spec.rates()),
                         ("speculative, acceptance 0 (bound)", [0.0] * k),
                         ("speculative, acceptance 1 (bound)", [1.0] * k)):
        e = expected_tokens(rates)
        rows.append({"case": label, "tokens_per_round": e, "round_ms": step,
                     "tokens_per_s_per_user": 1000.0 * e / step})
    for r in rows:
        r["speedup"] = r["tokens_per_s_per_user"] / rows[0]["tokens_per_s_per_user"]
        r["tokens_per_s"] = r["tokens_per_s_per_user"] * spec.batch
    doc = {"target": {"model": target.name, "system": t_sys.name}, "draft": {"model": draft.name, "system": d_sys.name},
           "draft_tokens": k, "acceptance": spec.rates(), "batch": spec.batch, "prompt": spec.prompt,
           "generate": spec.generate, "dtype": spec.dtype.value, "plain_tpot_ms": plain_ms,
           "verify_step_ms": verify_ms, "draft_tpot_ms": draft_ms, "rows": rows}
    if spec.match_tokens_per_s is not None:
        doc["match"] = _implied(spec, plain_ms, draft_ms, {j: r.metrics.tpot_ms for j, r in verifies.items()})
    return StudyOutput(_table(doc), doc, [plain, *verifies.values(), drafted])


def _implied(spec: SpeculativeSpec, plain_ms: float, draft_ms: float, verify_ms: dict[int, float]) -> dict:
    """What ``match_tokens_per_s`` asks of the simulated rounds, per draft length: the tokens a round
    must yield and the one acceptance rate that yields them (None: unreachable at that length)."""
    target = spec.match_tokens_per_s
    rows = []
    for j, v_ms in sorted(verify_ms.items()):
        step = round_ms(j, draft_ms, v_ms)
        need = target * step / 1000.0
        rows.append({"draft_tokens": j, "round_ms": step, "tokens_per_round_needed": need,
                     "acceptance_needed": implied_acceptance(need, j)})
    return {"tokens_per_s_per_user": target, "source": spec.match_source,
            "plain_tokens_per_s_per_user": 1000.0 / plain_ms, "rows": rows}


def _rates_text(spec: SpeculativeSpec) -> str:
    a = spec.acceptance
    return "/".join(f"{x:g}" for x in a) if isinstance(a, list) else f"{a:g}"


def _table(doc: dict) -> str:
    t, d, k = doc["target"], doc["draft"], doc["draft_tokens"]
    lines = [f"speculative decoding: {t['model']} on {t['system']} verifies {k} tokens drafted by {d['model']} "
             f"on {d['system']}; batch {doc['batch']}, prompt {doc['prompt']}",
             f"target step {doc['plain_tpot_ms']:.3f} ms plain, {doc['verify_step_ms']:.3f} ms verifying {k + 1} "
             f"tokens; draft step {doc['draft_tpot_ms']:.3f} ms", ""]
    head = f"{'case':<44}{'tokens/round':>13}{'round ms':>10}{'tok/s/user':>12}{'speed-up':>10}"
    lines += [head, "-" * len(head)]
    for r in doc["rows"]:
        lines.append(f"{r['case']:<44}{r['tokens_per_round']:>13.2f}{r['round_ms']:>10.3f}"
                     f"{r['tokens_per_s_per_user']:>12,.0f}{r['speedup']:>9.2f}x")
    lines += ["", "a round: k draft steps then one verifier step; tokens/round = 1 + a1 + a1*a2 + ... "
              "(docs/speculative.md)"]
    m = doc.get("match")
    if m:
        lines += ["", f"implied, not a check: to reach the measured {m['tokens_per_s_per_user']:,.0f} tok/s per user "
                  f"({m['source']}), simulated plain decoding {m['plain_tokens_per_s_per_user']:,.0f}:", ""]
        head = f"{'k':>3}{'round ms':>10}{'tokens/round needed':>21}{'acceptance needed':>19}"
        lines += [head, "-" * len(head)]
        for r in m["rows"]:
            a = r["acceptance_needed"]
            lines.append(f"{r['draft_tokens']:>3}{r['round_ms']:>10.3f}{r['tokens_per_round_needed']:>21.2f}"
                         f"{'unreachable' if a is None else f'{a:.3f}':>19}")
    return "\n".join(lines)
