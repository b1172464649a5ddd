"""Scenarios: a YAML file naming a model, a workload and the systems to compare."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from asicsim.api import Result, run
from asicsim.compile import Workload
from asicsim.dtypes import DType
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.hardware.spec import Spec
from asicsim.hardware.system import _read_yaml, validation_error
from asicsim.model import load_model


class WorkloadSpec(Spec):
    """Batch size, prompt and generated tokens per sequence, and the number format."""

    batch: int = Field(1, ge=1)
    prompt: int = Field(512, ge=1)
    generate: int = Field(128, ge=1)
    dtype: DType = DType.BF16


class ScenarioSpec(Spec):
    """Run ``model`` with ``workload`` on each of ``systems`` (preset names or YAML paths)."""

    name: str
    description: str = ""
    model: str
    workload: WorkloadSpec = WorkloadSpec()
    systems: list[str] = Field(min_length=1)


def load_scenario(path: str | Path) -> ScenarioSpec:
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), None, "no such scenario file")
    try:
        return ScenarioSpec.model_validate(_read_yaml(path))
    except ValidationError as e:
        raise validation_error(str(path), e) from None


def _relative_to(base: Path, ref: str) -> str:
    """A system or model given as a relative path is read relative to the scenario file."""
    candidate = base / ref
    return str(candidate) if ref.endswith((".yaml", ".yml", ".json")) and candidate.exists() else ref


def run_scenario(path: str | Path, progress=None) -> tuple[ScenarioSpec, list[Result]]:
    """Run every system of the scenario at ``path``; ``progress(name)`` is called before each."""
    spec = load_scenario(path)
    base = Path(path).parent
    wl = Workload(**spec.workload.model_dump())
    try:
        model = load_model(_relative_to(base, spec.model))
    except InputError as e:
        raise InputError(str(path), "model", e.reason) from None
    results = []
    for i, name in enumerate(spec.systems):
        try:
            system = load_system(_relative_to(base, name))
        except InputError as e:
            raise InputError(str(path), f"systems.{i}", e.reason) from None
        if progress:
            progress(name)
        results.append(run(model, system, wl))
    return spec, results


def write_results(spec: ScenarioSpec, results: list[Result], out: Path) -> Path:
    """Write ``results.json`` (the scenario and one record per system) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    doc = {"scenario": spec.model_dump(mode="json"), "results": [r.summary() for r in results]}
    path.write_text(json.dumps(doc, indent=2))
    return path
