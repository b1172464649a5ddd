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
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

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
    source: str = ""


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
