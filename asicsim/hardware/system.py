"""A System: chips and the links between them, as frozen specs and a networkx graph.

Nodes are block instances named ``chip{i}.{block}`` (``chip0.tensor``; a block with
``count > 1`` gives ``chip0.layer_array[3]``); edges are links carrying ``bandwidth_gbps`` and
``latency_ns``. Within a chip, blocks without an explicit link are joined by the on-chip fabric,
which is not a bottleneck at this level of detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import yaml
from pydantic import ValidationError

from asicsim.errors import InputError
from asicsim.hardware.spec import ChipSpec, LinkSpec, Spec

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class SystemSpec(Spec):
    """``count`` copies of one chip on a ring, each joined to the next by an ``interconnect`` link."""

    name: str
    chip: str | ChipSpec
    count: int = 1
    interconnect: LinkSpec | None = None


@dataclass(frozen=True)
class System:
    """A built system: its chips in order, the system-level links, and the topology graph."""

    name: str
    chips: tuple[ChipSpec, ...]
    source: str
    graph: nx.Graph = field(compare=False, repr=False)

    @property
    def chip(self) -> ChipSpec:
        return self.chips[0]


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(str(path), None, f"is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), None, "must hold a YAML mapping at the top level")
    return data


def validation_error(source: str, err: ValidationError) -> InputError:
    """Turn pydantic's report into our one-paragraph error (first problem, plus a count)."""
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"] if not str(x).startswith("function-after"))
    more = len(err.errors()) - 1
    reason = first["msg"].removeprefix("Value error, ")
    if first.get("input") is not None and first["type"] not in ("missing", "value_error"):
        reason += f" (got {first['input']!r})"
    if more:
        reason += f"; {more} more problem{'s' if more > 1 else ''} in this file"
    return InputError(source, loc or None, reason)


def _resolve(name_or_path: str, what: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise InputError(str(p), None, f"no such {what} file")
        return p
    candidate = PRESETS_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        raise InputError(f"--{what}", None, f"unknown preset '{name_or_path}'; presets are: "
                         + ", ".join(preset_names()))
    return candidate


def load_chip(name_or_path: str) -> ChipSpec:
    """A chip preset by name, or a chip YAML by path."""
    path = _resolve(name_or_path, "chip")
    try:
        return ChipSpec.model_validate(_read_yaml(path))
    except ValidationError as e:
        raise validation_error(str(path), e) from None


def load_system(name_or_path: str) -> System:
    """A system YAML by path, or a chip preset name or chip YAML (a one-chip system)."""
    path = _resolve(name_or_path, "system")
    data = _read_yaml(path)
    if "blocks" in data:  # a chip file: a system of one
        try:
            chip = ChipSpec.model_validate(data)
        except ValidationError as e:
            raise validation_error(str(path), e) from None
        return build_system(SystemSpec(name=chip.name, chip=chip), str(path))
    try:
        spec = SystemSpec.model_validate(data)
    except ValidationError as e:
        raise validation_error(str(path), e) from None
    return build_system(spec, str(path))


def build_system(spec: SystemSpec, source: str = "<python>") -> System:
    """Expand a SystemSpec into chips and a topology graph."""
    chip = spec.chip if isinstance(spec.chip, ChipSpec) else load_chip(spec.chip)
    if spec.count < 1:
        raise InputError(source, "count", f"must be at least 1, got {spec.count}")
    if spec.count > 1 and spec.interconnect is None:
        raise InputError(source, "interconnect", "a system of several chips needs an interconnect link")
    chips = (chip,) * spec.count
    g = nx.Graph()
    for ci, c in enumerate(chips):
        for b in c.blocks:
            for inst in range(getattr(b, "count", 1)):
                g.add_node(instance_name(ci, b.name, inst, getattr(b, "count", 1)), chip=ci, spec=b)
        for link in c.links:
            g.add_edge(instance_name(ci, link.a, 0, 1), instance_name(ci, link.b, 0, 1), spec=link)
    for a in range(spec.count - 1):  # neighbours on a ring: each chip talks to the next
        g.add_edge(f"chip{a}", f"chip{a + 1}", spec=spec.interconnect)
    if spec.count > 2:
        g.add_edge(f"chip{spec.count - 1}", "chip0", spec=spec.interconnect)
    return System(spec.name, chips, source, g)


def instance_name(chip: int, block: str, index: int, count: int) -> str:
    return f"chip{chip}.{block}" if count == 1 else f"chip{chip}.{block}[{index}]"
