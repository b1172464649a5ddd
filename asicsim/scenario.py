"""Scenarios: YAML files that say what to run. Each has a ``kind`` naming a study:

- ``compare`` (the default): one model and workload on each of several systems, side by side.

Other studies register themselves with :func:`study` (their own spec class and runner), so a new
kind of experiment is a new module, not a new branch here.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from asicsim.api import Result, run
from asicsim.compile import Workload
from asicsim.dtypes import DType
from asicsim.errors import InputError, clip
from asicsim.hardware import System, load_system
from asicsim.hardware.spec import Mapping, Spec
from asicsim.hardware.system import _read_yaml, validation_error
from asicsim.model import ModelSpec, load_model
from asicsim.safeio import exists, is_file


class WorkloadSpec(Spec):
    """Batch size, prompt and generated tokens per sequence, and the number format."""

    batch: int = Field(1, ge=1, description="Sequences decoded together.")
    prompt: int = Field(512, ge=1, description="Prompt tokens per sequence (the prefill).")
    generate: int = Field(128, ge=1, description="Tokens generated per sequence; the first comes from the prefill.")
    dtype: DType = Field(DType.BF16, description="Number format of weights, KV cache and compute.")
    mapping: Mapping | None = Field(None, description="temporal or spatial, overriding each chip's own "
                                                      "(null: the chip's).")
    tp: int | None = Field(None, ge=1, description="Tensor-parallel ranks per layer on several temporal chips "
                                                   "(null: the chips the other degrees leave).")
    pp: int | None = Field(None, ge=1, description="Pipeline stages (null: 1).")
    ep: int | None = Field(None, ge=1, description="Expert-parallel ranks, 1 or equal to tp (null: 1).")
    dp: int | None = Field(None, ge=1, description="Data-parallel replicas (null: 1).")
    micro_batches: int | None = Field(None, ge=1, description="Micro-batches through the pipeline "
                                                              "(null: min(batch, pp)).")
    fast: bool = Field(False, description="Simulate the prefill and sampled decode steps and interpolate the "
                                          "rest (within 0.5 %); false simulates every step.")

    def workload(self) -> Workload:
        return Workload(**self.model_dump())


class CompareSpec(Spec):
    """Run ``model`` with ``workload`` on each of ``systems`` (preset names or YAML paths)."""

    kind: Literal["compare"] = Field("compare", description="Which study this file is; compare when absent.")
    name: str = Field(description="Names the default output folder, results/NAME.")
    description: str = Field("", description="One line shown atop the report.")
    model: str = Field(description="A shipped model name (models/NAME.json) or a config.json path.")
    workload: WorkloadSpec = Field(WorkloadSpec(), description="What each system runs.")
    systems: list[str] = Field(min_length=1, description="Preset names, chip or system YAML paths.")


@dataclass
class StudyOutput:
    """What a study hands back: a terminal table, the results.json document, and its runs."""

    text: str
    doc: dict
    results: list[Result] = field(default_factory=list)


Runner = Callable[[Spec, Path, Callable[[str], None]], StudyOutput]
STUDIES: dict[str, tuple[type[Spec], Runner]] = {}


def study(kind: str, spec_class: type[Spec]) -> Callable[[Runner], Runner]:
    """Register the runner of a scenario ``kind``."""
    def register(fn: Runner) -> Runner:
        STUDIES[kind] = (spec_class, fn)
        return fn
    return register


def load_scenario(path: str | Path) -> Spec:
    """Read and validate a scenario file (its ``kind`` picks the schema)."""
    path = Path(path)
    if not is_file(path):
        raise InputError(str(path), None, "no such scenario file")
    data = _read_yaml(path)
    _import_studies()
    kind = data.get("kind", "compare")
    if not isinstance(kind, str) or kind not in STUDIES:
        raise InputError(str(path), "kind", f"unknown scenario kind {clip(kind)}; known: {', '.join(sorted(STUDIES))}")
    try:
        spec = STUDIES[kind][0].model_validate(data)
    except ValidationError as e:
        raise validation_error(str(path), e) from None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", spec.name):
        raise InputError(str(path), "name", f"names the output folder results/NAME, so it must be a plain name "
                         f"(letters, digits, '.', '_', '-'; at most 100), got {spec.name[:40]!r}")
    return spec


def resolve_model(path: Path, ref: str, field_name: str = "model") -> ModelSpec:
    """A model named in a scenario: a shipped name, or a path relative to the scenario file."""
    try:
        return load_model(_relative_to(path.parent, ref))
    except InputError as e:
        raise InputError(str(path), field_name, e.reason) from None


def resolve_system(path: Path, ref: str, field_name: str) -> System:
    """A system named in a scenario: a preset name, or a path relative to the scenario file."""
    try:
        return load_system(_relative_to(path.parent, ref))
    except InputError as e:
        raise InputError(str(path), field_name, e.reason) from None


def _relative_to(base: Path, ref: str) -> str:
    candidate = base / ref
    return str(candidate) if ref.endswith((".yaml", ".yml", ".json")) and exists(candidate) else ref


def run_scenario(path: str | Path, progress: Callable[[str], None] = lambda name: None) -> StudyOutput:
    """Run the scenario at ``path``; ``progress(label)`` is called before each simulation."""
    spec = load_scenario(path)
    return STUDIES[spec.kind][1](spec, Path(path), progress)


def write_results(spec: Spec, output: StudyOutput, out: Path) -> Path:
    """Write ``results.json`` (the scenario, then the study's document) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps({"scenario": spec.model_dump(mode="json"), **output.doc}, indent=2))
    return path


def study_figures(spec: Spec, doc: dict, folder: Path) -> list[Path]:
    """A study's own figures: the optional ``write_figures(doc, folder)`` of the module that
    defines its runner (a comparison has none; its per-run figures come from asicsim.plots)."""
    runner = STUDIES[spec.kind][1]
    hook = getattr(sys.modules.get(runner.__module__), "write_figures", None)
    return list(hook(doc, folder)) if hook else []


@study("compare", CompareSpec)
def run_compare(spec: CompareSpec, path: Path, progress: Callable[[str], None]) -> StudyOutput:
    from asicsim.report_text import comparison_table

    model = resolve_model(path, spec.model)
    systems = [resolve_system(path, name, f"systems.{i}") for i, name in enumerate(spec.systems)]
    results = []
    for name, system in zip(spec.systems, systems):
        progress(name)
        results.append(run(model, system, spec.workload.workload()))
    return StudyOutput(comparison_table(results), {"results": [r.summary() for r in results]}, results)


def _import_studies() -> None:
    """Studies defined in other modules register on import."""
    import importlib

    for module in ("asicsim.studies",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
