"""Runtime profiles: the serving software beside the chip.

A chip preset says what the hardware does with a captured step (one graph launch per step, a
node's launch per op). A *runtime profile* names the software stack around it and what it adds:
``request_ns`` once per request before its first step (scheduling, tokenisation, set-up of the
request's state, and for a first token its sampling and return), ``step_ns`` on every step
(host work between captured graphs) and ``sequence_step_ns`` on every step for each sequence
in it (host work per token produced: the batch manager's bookkeeping, sampling, stop checks,
detokenising), so a step of B sequences pays ``step_ns + B * sequence_step_ns``. ``bare`` (the
default) adds nothing: the hardware-only answer. Each number is sourced or set from one
calibration row of asicsim/data/measurements.csv.

A profile can also say how its server shapes the steps the serving model (asicsim/serving.py,
continuous scheduler) runs, where that differs from packing the live sequences:
``prefill_one_at_a_time`` (each admitted prompt prefills alone, batch 1, on the chips that
decode), ``prefill_buckets`` (a prompt is padded up to the next of these lengths before its
prefill, for static compilation), ``decode_full_batch`` (every decode step computes all of the
batch cap's slots, live or not: a fixed-shape step) and ``cache_tokens`` (every decode step's
attention runs over this many cache positions of each slot, whatever its context: a cache
reserved per slot and masked, not read up to each sequence's length; the whole cache of every
slot is allocated at start, so it must fit beside the weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator

from asicsim.errors import InputError
from asicsim.hardware.spec import Spec
from asicsim.safeio import load_yaml

RUNTIMES_DIR = Path(__file__).resolve().parent / "runtimes"


class RuntimeSpec(Spec):
    """A serving stack's costs outside the simulated hardware, in ns."""

    name: str
    description: str = ""
    request_ns: Annotated[float, Field(ge=0)] = 0.0
    step_ns: Annotated[float, Field(ge=0)] = 0.0
    sequence_step_ns: Annotated[float, Field(ge=0)] = 0.0  # per sequence in a step (× the step's batch)
    prefill_one_at_a_time: bool = False  # each prompt prefills alone (batch 1)
    prefill_buckets: tuple[Annotated[int, Field(ge=1)], ...] = ()  # prompts padded up to the next; ascending
    decode_full_batch: bool = False  # every decode step costs the batch cap's slots, live or not
    cache_tokens: Annotated[int, Field(ge=1)] | None = None  # decode attention spans this many positions per slot
    source: str = ""

    @field_validator("prefill_buckets")
    @classmethod
    def _ascending(cls, v):
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"must be strictly ascending token counts, got {list(v)}")
        return v

    @property
    def shapes_steps(self) -> bool:
        """Whether the profile changes the serving model's step shapes (not only adds costs)."""
        return (self.prefill_one_at_a_time or bool(self.prefill_buckets) or self.decode_full_batch
                or self.cache_tokens is not None)

    def kept_prompt(self, tokens: int) -> int:
        """How much of a ``tokens``-long prompt the server keeps: a prompt longer than the
        largest prefill bucket is cut to it (JetStream keeps its last tokens); no buckets: all."""
        return min(tokens, self.prefill_buckets[-1]) if self.prefill_buckets else tokens

    def padded_prompt(self, tokens: int) -> int:
        """The length ``tokens`` prefills as: what is kept of it, padded up to the next prefill
        bucket; no buckets: the prompt itself."""
        kept = self.kept_prompt(tokens)
        return next((b for b in self.prefill_buckets if b >= kept), kept)


BARE = RuntimeSpec(name="bare", description="hardware only: no serving-stack costs")


def runtime_names() -> list[str]:
    return sorted(p.stem for p in RUNTIMES_DIR.glob("*.yaml"))


def load_runtime(name_or_path: str | RuntimeSpec | None) -> RuntimeSpec:
    """A runtime profile by name (``bare``, ``trtllm-0.5``, ...) or YAML path; None is ``bare``."""
    if name_or_path is None:
        return BARE
    if isinstance(name_or_path, RuntimeSpec):
        return name_or_path
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = RUNTIMES_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise InputError("--runtime", None, f"unknown runtime profile '{name_or_path}'; profiles are: "
                             + ", ".join(runtime_names()))
    elif not p.is_file():
        raise InputError(str(p), None, "no such runtime file")
    data = load_yaml(p)
    if not isinstance(data, dict):
        raise InputError(str(p), None, "must hold a YAML mapping at the top level")
    try:
        return RuntimeSpec.model_validate(data)
    except ValidationError as e:
        from asicsim.hardware.system import validation_error

        raise validation_error(str(p), e) from None
