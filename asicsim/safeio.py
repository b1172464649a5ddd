"""Reading users' files safely: UTF-8 text of bounded size, YAML without alias bombs, runaway
nesting or duplicate keys, JSON without duplicate keys, NaN or runaway nesting. Every problem is
an InputError naming the file (and the line, where there is one)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from asicsim.errors import InputError, clip

MAX_BYTES = 16_000_000   # no description, config or results file is anywhere near this
MAX_DEPTH = 64           # nesting of mappings and lists
MAX_ALIASES = 256        # YAML aliases (*name): enough for sharing, too few for a bomb
# Every number a description holds (a rate, size, time, energy, price, count) is 0 or between
# these in size: far beyond any real chip, and far enough from the float limits that products
# of a few of them (bytes / rate x energy) stay finite.
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-9, 1e15


def is_file(path: str | Path) -> bool:
    """``Path.is_file``, but False rather than an exception for a name the system cannot look up
    (too long, a NUL byte)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def exists(path: str | Path) -> bool:
    """``Path.exists``, but False rather than an exception for a name the system cannot look up."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def read_text(path: Path) -> str:
    """The file's text, or an InputError if it is too big or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(str(path), None, f"is {size:,} bytes; description files are limited to {MAX_BYTES:,}")
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(str(path), None, f"cannot be read: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(str(path), None, f"is not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None


# libyaml's parser (PyYAML's C extension) where PyYAML was built with it, about ten times the
# pure-Python one's speed; the same checks run on either (they are in the constructor, which is
# Python in both, and in the event pass of load_yaml).
_PARSER = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


class _Checks:
    """The safe constructor's checks on top of either parser: a key given twice in one mapping,
    a number that is not finite or is out of range."""

    path = "<yaml>"

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice (first on line {seen[key] + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
            except TypeError:  # an unhashable key: let the base class say so
                pass
        return super().construct_mapping(node, deep)

    def construct_yaml_float(self, node):
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):  # .inf, .nan, 1.0e+400: no description means these
            raise InputError(self.path, None, f"line {node.start_mark.line + 1}: {clip(node.value)} is not a "
                             "finite number; every number in a description must be finite")
        return self._in_range(value, node)

    def construct_yaml_int(self, node):
        return self._in_range(super().construct_yaml_int(node), node)

    def _in_range(self, value, node):
        if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
            raise InputError(self.path, None, f"line {node.start_mark.line + 1}: {clip(node.value)} is out of "
                             f"range; a number in a description is 0 or between {MIN_MAGNITUDE:g} and "
                             f"{MAX_MAGNITUDE:g} in size")
        return value


class _UniqueKeyLoader(_Checks, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader with the checks."""


class _CUniqueKeyLoader(_Checks, _PARSER):
    """The same on libyaml's parser (the pure one where PyYAML has no C extension)."""


for _cls in (_UniqueKeyLoader, _CUniqueKeyLoader):
    _cls.add_constructor("tag:yaml.org,2002:float", _cls.construct_yaml_float)
    _cls.add_constructor("tag:yaml.org,2002:int", _cls.construct_yaml_int)


def _yaml_error(path: Path, e: yaml.YAMLError) -> InputError:
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return InputError(str(path), None, f"is not valid YAML{where}: {getattr(e, 'problem', e)}")


def load_yaml(path: Path, pure: bool = False) -> Any:
    """Parse a YAML file, refusing alias bombs, deep nesting and duplicate keys (with libyaml's
    parser where PyYAML has it, unless ``pure``). The events are read first, counting nesting
    and aliases, so that nothing is built from a file that breaks those limits."""
    text = read_text(path)
    parser, loader_class = (yaml.SafeLoader, _UniqueKeyLoader) if pure else (_PARSER, _CUniqueKeyLoader)
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=parser):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise InputError(str(path), None, f"nests deeper than {MAX_DEPTH} levels "
                                     f"(line {event.start_mark.line + 1})")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise InputError(str(path), None, f"uses more than {MAX_ALIASES} YAML aliases "
                                     f"(line {event.start_mark.line + 1}); write the values out")
        loader = loader_class(text)
        loader.path = str(path)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from None


def yaml_line(path: str | Path, loc: tuple) -> int | None:
    """The line (1-based) of the YAML node at ``loc`` (keys and list indices; parts that name no
    key, such as a schema's union tags, are passed over), or of the deepest node on the way; None
    when the file cannot be read again. Called only to word an error."""
    try:
        node = yaml.compose(read_text(Path(path)), Loader=_PARSER)
    except (InputError, yaml.YAMLError, OSError):
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                         None)
            if found is not None:
                line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _unique(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice")
        out[k] = v
    return out


def load_json(path: Path) -> Any:
    """Parse a JSON file, refusing duplicate keys, NaN/Infinity and runaway nesting."""
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise InputError(str(path), None, f"is not valid JSON (line {e.lineno}: {e.msg})") from None
    except ValueError as e:
        raise InputError(str(path), None, f"is not valid JSON: {e}") from None
    except RecursionError:
        raise InputError(str(path), None, "nests too deeply to read") from None
