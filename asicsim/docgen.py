"""Generate docs/reference.md from the pydantic schemas: ``python -m asicsim.docgen > docs/reference.md``.

Every scenario kind (``compare`` and each registered study), the system and chip files, and every
model they refer to get a section:
the class docstring, then a table of each field's name, type (with its bounds), default and, where
the schema gives one, description. A test regenerates the page and compares it with the committed file, so the
reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from pathlib import Path
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
    from asicsim.scenario import STUDIES, _import_studies

    _import_studies()
    seen: set[type] = set()
    kinds = ["compare"] + sorted(k for k in STUDIES if k != "compare")
    parts = [HEADER, "## Scenarios\n",
             ("A scenario file's `kind` picks its schema: " + ", ".join(f"`{k}`" for k in kinds)
              + " (`compare` when absent). `asicsim run FILE --set FIELD.PATH=VALUE` overrides any field "
              "below (e.g. `--set workload.batch=8`).\n")]
    for kind in kinds:
        parts += _sections(STUDIES[kind][0], seen, f"`kind: {kind}`")
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


# --- printed outputs in the docs -----------------------------------------------------------------
#
# A ```text block that follows a ```bash or ```python block with nothing but blank lines between
# is that block's printed output (stdout and stderr, as a terminal shows them). It may be an
# excerpt: any of its lines, in order, each the whole or a part of an output line, with "..."
# standing for text left out. tests/test_docs.py runs every block and holds each shown line to
# the output; ``python -m asicsim.docgen --update-outputs`` reruns the blocks and rewrites the
# numbers of every shown line from a fresh run (the cost model moves them all at once).

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->\s*$")
INSTALL = re.compile(r"(python -m )?pip install [^&;\n]*(&&|;)?[ \t]*")
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"


@dataclass(frozen=True)
class Block:
    """A fenced block of a page: its language, text, where it starts (line and character
    span of its body), the reason it is skipped (or None), and the text block that shows its
    output (or None)."""

    lang: str
    code: str
    line: int
    span: tuple[int, int]
    skip: str | None
    shown: Block | None = None


def page_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, each runnable one paired with the text block right
    after it (only blank lines between), if any."""
    found = list(FENCE.finditer(text))
    out = []
    for i, m in enumerate(found):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        shown = None
        nxt = found[i + 1] if i + 1 < len(found) else None
        if (m.group(1) in ("bash", "python") and nxt and nxt.group(1) == "text"
                and not text[m.end():nxt.start()].strip()):
            shown = Block("text", nxt.group(2), text.count("\n", 0, nxt.start()) + 1, nxt.span(2), None)
        out.append(Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, m.span(2),
                         skip.group(1) if skip else None, shown))
    return out


# A number that a run may change: not part of a name (h100-sxm, llama-3.1-8b, 1x H100 keep theirs).
_VALUE = re.compile(r"(?<![A-Za-z_\-\d.,])" + _NUMBER + r"(?![A-Za-z\d])")
_TOKEN = re.compile(r"\.\.\.|…|\s+|" + _VALUE.pattern)
_RULE = re.compile(r"[-─━═ ]*[-─━═][-─━═ ]*")


def _pattern(line: str, capture: bool = False) -> re.Pattern:
    """A shown line as a regex over an output line: runs of spaces match any run, "..." any
    text, and a number is not part of a longer one; with ``capture``, numbers are groups. A
    table's rule (dashes or box lines) matches any rule."""
    if _RULE.fullmatch(line.strip()):
        return re.compile(r"^\s*[-─━═][-─━═ ]*$")
    parts, at = [], 0
    text = line.strip()
    for m in _TOKEN.finditer(text):
        parts.append(re.escape(text[at:m.start()]))
        piece, at = m.group(0), m.end()
        if piece in ("...", "…"):
            parts.append(".*?")
        elif piece.isspace():
            parts.append(r"\s+")
        else:
            parts.append(f"({_NUMBER})" if capture else re.escape(piece))
    parts.append(re.escape(text[at:]))
    return re.compile(r"(?<![\d.,])" + "".join(parts) + r"(?!\d|[.,]\d)")


def _wanted(line: str) -> bool:
    return bool(line.strip()) and line.strip() not in ("...", "…")


def mismatches(shown: str, output: str) -> list[str]:
    """The shown lines that are not, in order, (part of) a line of ``output``."""
    lines = output.splitlines()
    pos, bad = 0, []
    for line in filter(_wanted, shown.splitlines()):
        pat = _pattern(line)
        hit = next((i for i in range(pos, len(lines)) if pat.search(lines[i])), None)
        if hit is None:
            bad.append(line)
        else:
            pos = hit  # the next shown line may continue the same output line (a wrapped paragraph)
    return bad


def updated(shown: str, output: str) -> tuple[str, list[str]]:
    """``shown`` with each line's numbers taken from the ``output`` line it stands for (the
    first, in order, with the same words); a shown line that stands for a whole output line
    becomes that line, as printed (so a table keeps the output's alignment). Returns the new text and the lines no output line matched (left as they were)."""
    lines = output.splitlines()
    pos, out, lost = 0, [], []
    for line in shown.splitlines():
        if not _wanted(line):
            out.append(line)
            continue
        exact = _pattern(line)
        hit = next((i for i in range(pos, len(lines)) if exact.search(lines[i])), None)
        if hit is not None:  # still true: the output's own line if it is all of one, else as it was
            whole = exact.search(lines[hit]).group(0).strip() == lines[hit].strip()
            out.append(lines[hit].rstrip() if whole else line)
            pos = hit + whole
            continue
        pat = _pattern(line, capture=True)
        for i in range(pos, len(lines)):
            m = pat.search(lines[i])
            if m:
                whole = m.group(0).strip() == lines[i].strip()
                pos = i + whole  # a whole line is used up; a part may continue on the next shown line
                if whole:
                    out.append(lines[i].rstrip())
                else:
                    numbers = iter(m.groups())
                    out.append(_VALUE.sub(lambda _, it=numbers: next(it), line, count=len(m.groups())))
                break
        else:
            out.append(line)
            lost.append(line)
    return "\n".join(out) + ("\n" if shown.endswith("\n") else ""), lost


def run_block(block: Block, root: Path, timeout_s: float = 600) -> str:
    """Run a bash or python block from ``root`` (install commands left out) and return what it
    printed, stdout and stderr together."""
    import contextlib
    import io
    import os
    import subprocess

    if block.lang == "bash":
        code = INSTALL.sub("", block.code)
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", code], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout_s, check=False,
                              env={**os.environ, "MPLBACKEND": "Agg"})
        if done.returncode:
            raise RuntimeError(f"exited {done.returncode}:\n{done.stdout[-3000:]}")
        return done.stdout
    buf = io.StringIO()
    here = os.getcwd()
    try:
        os.chdir(root)
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(block.code, f"block at line {block.line}", "exec"), {"__name__": "__docs__"})  # noqa: S102
    finally:
        os.chdir(here)
    return buf.getvalue()


def update_outputs(pages: list[Path], root: Path, log=print) -> int:
    """Rerun every block of ``pages`` in order and rewrite the numbers of the text blocks that show
    their output; returns the count of shown lines that matched no output line (to edit by hand)."""
    import shutil
    import tempfile

    lost_total = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        edits = []
        # each page runs in its own copy of the checkout, as the docs test runs it: what one page's
        # blocks write (results/quickstart ...) is not in the way of the next page's
        with tempfile.TemporaryDirectory(prefix="asicsim-docgen-") as scratch:
            here = Path(scratch) / "checkout"
            shutil.copytree(root, here, ignore=shutil.ignore_patterns(".git", ".venv", "results", "__pycache__",
                                                                      "*.egg-info", "build", "dist"))
            for b in page_blocks(text):
                if b.skip or b.lang not in ("bash", "python"):
                    continue
                output = run_block(b, here)
                if b.shown is None:
                    continue
                new, lost = updated(b.shown.code, output)
                for line in lost:
                    log(f"{page}:{b.shown.line}: no output line matches (edit by hand): {line.strip()[:100]}")
                lost_total += len(lost)
                if new != b.shown.code:
                    edits.append((b.shown.span, new))
        for (start, end), new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        if edits:
            page.write_text(text, encoding="utf-8")
            log(f"{page}: rewrote {len(edits)} output block{'s' if len(edits) != 1 else ''}")
    return lost_total


def main(argv: list[str] | None = None) -> int:
    """``python -m asicsim.docgen`` prints the reference page; ``--update-outputs [PAGE ...]``
    rewrites the printed outputs of README.md and docs/**/*.md (or the pages named) from a run."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["--update-outputs"]:
        print(render(), end="")
        return 0
    root = Path.cwd()
    pages = [Path(p) for p in args[1:]] or [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    lost = update_outputs(pages, root)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
