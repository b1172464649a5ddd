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
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator

from asicsim.api import Result, run
from asicsim.compile import Workload
from asicsim.compile.adapters import parse_lora
from asicsim.dtypes import DType, kv_dtype_problem
from asicsim.errors import InputError, clip
from asicsim.hardware import System, load_system
from asicsim.hardware.spec import Mapping, Spec
from asicsim.hardware.system import _read_yaml, validation_error
from asicsim.model import ModelSpec, load_model
from asicsim.safeio import exists, is_file


def _kv_format(kv: object) -> object:
    """A KV cache is held in a format of its own: a weight-only one is refused saying so (other
    values meet the field's list of KV formats)."""
    if isinstance(kv, str) and kv.lower() in {d.value for d in DType}:
        if problem := kv_dtype_problem(DType(kv.lower())):
            raise ValueError(problem)
    return kv


# a workload's kv_dtype field: one of the KV formats (dtypes.KV_DTYPES), read as a DType
KVFormat = Annotated[Literal["bf16", "fp16", "fp8", "int8"] | None, BeforeValidator(_kv_format),
                     AfterValidator(lambda kv: None if kv is None else DType(kv))]


class WorkloadSpec(Spec):
    """Batch size, prompt and generated tokens per sequence, and the number format."""

    batch: int = Field(1, ge=1, description="Sequences decoded together.")
    prompt: int = Field(512, ge=1, description="Prompt tokens per sequence (the prefill).")
    generate: int = Field(128, ge=1, description="Tokens generated per sequence; the first comes from the prefill.")
    dtype: DType = Field(DType.BF16, description="Number format of weights and compute: bf16, fp16, fp8, int8 "
                                                 "(W8A8), int4 or w8a16 (weight-only int8, products at bf16).")
    kv_dtype: KVFormat = Field(None, description="Number format of the KV cache: bf16, fp16, fp8 or int8 (null: "
                                                 "8-bit for fp8 and int8, else 16-bit).")

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
    lora: str | None = Field(None, description="LoRA-style adapters as RANK[:TARGETS], e.g. 16 or 8:qkv,o, as "
                                               "predict --lora (null: none).")

    @field_validator("lora")
    @classmethod
    def _lora_parses(cls, lora: str | None) -> str | None:
        if lora is not None:
            try:
                parse_lora(lora)
            except InputError as e:
                raise ValueError(e.reason) from None
        return lora

    runtime: str = Field("bare", description="The serving stack's profile (bare adds nothing; trtllm-0.5, "
                                             "lmdeploy-0.1, trtllm-bench, or a profile YAML path), as predict "
                                             "--runtime.")

    @field_validator("runtime")
    @classmethod
    def _runtime_known(cls, name: str) -> str:
        from asicsim.hardware import load_runtime

        try:
            load_runtime(name)
        except InputError as e:
            raise ValueError(e.reason) from None
        return name

    def workload(self) -> Workload:
        from asicsim.hardware import load_runtime

        data = self.model_dump()
        lora = data.pop("lora")
        runtime = load_runtime(data.pop("runtime"))
        return Workload(**data, adapters=parse_lora(lora) if lora is not None else None, runtime=runtime)


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


def load_scenario(path: str | Path, overrides: dict[str, object] | None = None) -> Spec:
    """Read and validate a scenario file (its ``kind`` picks the schema), with ``overrides``
    (dotted field path -> value, as ``run --set workload.batch=8``) applied first; an override
    of a field the kind does not have, or of a bad value, is an InputError naming ``--set``."""
    path = Path(path)
    if not is_file(path):
        raise InputError(str(path), None, "no such scenario file")
    data = _read_yaml(path)
    kind = data.get("kind", "compare")
    if not isinstance(kind, str) or kind not in STUDIES:  # a plain comparison needs no study module
        _import_studies()
    if not isinstance(kind, str) or kind not in STUDIES:
        raise InputError(str(path), "kind", f"unknown scenario kind {clip(kind)}; known: {', '.join(sorted(STUDIES))}")
    for key, value in (overrides or {}).items():
        _override(data, STUDIES[kind][0], key, value)
    try:
        spec = STUDIES[kind][0].model_validate(data)
    except ValidationError as e:
        err = validation_error(str(path), e)
        if err.field and any(err.field == k or err.field.startswith(k + ".") for k in overrides or {}):
            raise validation_error("--set", e) from None  # the value came from --set: no file line
        raise err from None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", spec.name):
        raise InputError(str(path), "name", f"names the output folder results/NAME, so it must be a plain name "
                         f"(letters, digits, '.', '_', '-'; at most 100), got {spec.name[:40]!r}")
    return spec


def _override(data: dict, schema: type, key: str, value: object) -> None:
    """Set ``data[a][b]... = value`` for ``key`` = "a.b...", after checking each name is a field
    of the schema there (into nested specs; a dict or list field takes any key or index below)."""
    import typing

    from pydantic import BaseModel

    parts = key.split(".")
    node, model = data, schema
    for i, name in enumerate(parts):
        here = ".".join(parts[:i + 1])
        if model is not None:
            fields = model.model_fields
            if name not in fields:
                raise InputError("--set", key, f"{'the scenario' if i == 0 else '.'.join(parts[:i])} has no field "
                                 f"{name!r}; its fields are: {', '.join(fields)}")
            ann = fields[name].annotation
            models = [a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
            model = models[0] if models else None
        if i == len(parts) - 1:
            if isinstance(node, list) and name.isdigit() and int(name) < len(node):
                node[int(name)] = value
            elif isinstance(node, dict):
                node[name] = value
            else:
                raise InputError("--set", key, f"{'.'.join(parts[:i]) or 'the scenario'} is not a mapping")
            return
        if isinstance(node, list) and name.isdigit() and int(name) < len(node):
            node = node[int(name)]
        elif isinstance(node, dict):
            if not isinstance(node.get(name), (dict, list)):
                node[name] = {}  # absent (the default) or null: the override starts it
            node = node[name]
        else:
            raise InputError("--set", key, f"{here} is not a mapping")


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


def run_scenario(path: str | Path, progress: Callable[[str], None] = lambda name: None,
                 overrides: dict[str, object] | None = None) -> StudyOutput:
    """Run the scenario at ``path`` (with ``overrides``, see :func:`load_scenario`);
    ``progress(label)`` is called before each simulation."""
    spec = load_scenario(path, overrides)
    return STUDIES[spec.kind][1](spec, Path(path), progress)


def write_results(spec: Spec, output: StudyOutput, out: Path) -> Path:
    """Write ``results.json`` (the scenario, then the study's document) into ``out``, and its
    records as tidy rows in ``results.csv`` (:mod:`asicsim.tidy`)."""
    from asicsim.tidy import write_csv

    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps({"scenario": spec.model_dump(mode="json"), **output.doc}, indent=2))
    write_csv(output.doc, out)
    return path


def study_tables(doc: dict) -> list:
    """The tables of a results document (``scenario`` and the study's own keys): the
    ``tables(doc, scenario)`` of the module that defines the runner of its kind, as the terminal
    showed them; [] for a kind without one."""
    _import_studies()
    scenario = doc.get("scenario") or {}
    entry = STUDIES.get(scenario.get("kind", "compare"))
    hook = getattr(sys.modules.get(entry[1].__module__), "tables", None) if entry else None
    return list(hook(doc, scenario)) if hook else []


def tables(doc: dict, scenario: dict | None = None) -> list:
    """The tables of a ``compare`` results document: its runs side by side."""
    from asicsim.report_text import comparison_tables

    return comparison_tables(doc["results"])


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
