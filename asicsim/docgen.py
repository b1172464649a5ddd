"""Generate docs/reference.md from the pydantic schemas: ``python -m asicsim.docgen > docs/reference.md``.

The comparison scenario, the system and chip files, and every model they refer to get a section:
the class docstring, then a table of each field's name, type (with its bounds), default and, where
the schema gives one, description. A test regenerates the page and compares it with the committed file, so the
reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import types
from enum import Enum
from typing import Annotated, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from asicsim.hardware.spec import ChipSpec
from asicsim.hardware.system import SystemSpec

HEADER = """# Reference: scenario, system and chip files

Generated from the pydantic schemas by `python -m asicsim.docgen > docs/reference.md`; do not
edit by hand (`tests/test_docgen.py` fails when this page and the code disagree). Units are in
the field names (`_gbps` is GB/s, 1e9 bytes per second; `_ns` nanoseconds; `_mb` 1e6 bytes).
Every file is checked when it loads: an unknown field, a missing one or a value out of bounds is
an error naming the file and the field.
"""


def render() -> str:
    """The whole reference page as Markdown."""
    from asicsim.scenario import CompareSpec

    seen: set[type] = set()
    parts = [HEADER, "## Scenarios\n",
             ("A scenario file's `kind` picks its schema; `compare` (the default) is below. Other kinds are "
              "studies, each documented in its module under `asicsim/studies/`.\n")]
    parts += _sections(CompareSpec, seen, "`kind: compare`")
    parts.append("## Systems and chips\n")
    parts.append("`--system` and a scenario's `systems` take a preset name, a chip file (it has `blocks`: a "
                 "system of one chip) or a system file.\n")
    parts += _sections(SystemSpec, seen, "system file")
    parts += _sections(ChipSpec, seen, "chip file")
    return "\n".join(parts).rstrip() + "\n"


def _sections(model: type[BaseModel], seen: set[type], what: str | None = None) -> list[str]:
    """The section of ``model``, then those of the models its fields refer to, each once."""
    if model in seen:
        return []
    seen.add(model)
    title = f"### {model.__name__}" + (f" ({what})" if what else "")
    doc = inspect.cleandoc(model.__doc__ or "").replace("``", "`")
    described = any(info.description for info in model.model_fields.values())
    head = ["field", "type", "default"] + (["description"] if described else [])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    nested: list[type[BaseModel]] = []
    for name, info in model.model_fields.items():
        nested += [m for m in _models_in(info.annotation) if m not in nested]
        cells = [f"`{name}`", _type(info.annotation) + _bounds(info.metadata), _default(info)]
        cells += [info.description or ""] if described else []
        rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    out = [f"{title}\n", f"{doc}\n" if doc else "", "\n".join(rows) + "\n"]
    for m in nested:
        out += _sections(m, seen)
    return out


def _models_in(t) -> list[type[BaseModel]]:
    """The pydantic models a type annotation mentions, in order."""
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [t]
    found: list[type[BaseModel]] = []
    for a in get_args(t):
        found += [m for m in _models_in(a) if m not in found]
    return found


def _type(t) -> str:
    """A type annotation as a reader would say it: ``float > 0``, ``list of int``, ``"a" or "b"``."""
    origin, args = get_origin(t), get_args(t)
    if origin is Annotated:
        return _type(args[0]) + _bounds(args[1:])
    if t is str:
        return "text"
    if origin is Literal:
        return " or ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin in (list, tuple):
        inner = args[0] if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else None
        return f"list of {_type(inner)}" if inner is not None else "list"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1])}"
    if t is type(None):
        return "null"
    if isinstance(t, type) and issubclass(t, Enum):
        return " or ".join(f'"{m.value}"' for m in t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return f"[{t.__name__}](#{t.__name__.lower()})"
    return getattr(t, "__name__", str(t))


_COMPARISONS = {Gt: ("gt", ">"), Ge: ("ge", "≥"), Lt: ("lt", "<"), Le: ("le", "≤")}


def _bounds(metadata) -> str:
    """Constraints from pydantic/annotated-types metadata, e.g. `` > 0``, `` ≥ 1``."""
    parts = []
    for m in metadata:
        if isinstance(m, FieldInfo):
            parts.append(_bounds(m.metadata).strip())
        elif type(m) in _COMPARISONS:
            attr, symbol = _COMPARISONS[type(m)]
            parts.append(f"{symbol} {getattr(m, attr)}")
        elif isinstance(m, MinLen):
            parts.append(f"(at least {m.min_length} item{'s' if m.min_length > 1 else ''})")
        elif isinstance(m, MaxLen):
            parts.append(f"(at most {m.max_length} items)")
    text = ", ".join(p for p in parts if p)
    return f" {text}" if text else ""


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    return _value(value)


def _value(v) -> str:
    if isinstance(v, BaseModel):
        return f"all defaults of {type(v).__name__}"
    if isinstance(v, Enum):
        return f'`"{v.value}"`'
    if v is None:
        return "`null`"
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, (tuple, list)):
        return "`[" + ", ".join(_value(x).strip("`") for x in v) + "]`"
    return f"`{v!r}`"


if __name__ == "__main__":
    print(render(), end="")
