"""One error type for bad input, rendered as one paragraph.

Every user-facing failure (a malformed file, an unknown name, a model that does not fit) is an
:class:`InputError` naming where the problem is (a file and a field path) and why. The CLI prints
its message and exits non-zero; it never shows a traceback for these. A message never grows with
the input: values are quoted through :func:`clip`, and each part is cut to a readable length.
"""

from __future__ import annotations

import reprlib

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 3, 6, 6, 6
MAX_SOURCE = 200      # characters of a file name or field path
MAX_REASON = 1200     # characters of the reason (a list of every preset fits)


def clip(value) -> str:
    """``repr(value)``, shortened with '...' where it is long or deeply nested."""
    return _REPR.repr(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


class InputError(Exception):
    """Bad input: ``source`` is a file or name, ``field`` a dotted path inside it, ``reason`` prose."""

    def __init__(self, source: str, field: str | None, reason: str):
        self.source = _cut(str(source), MAX_SOURCE)
        self.field = None if field is None else _cut(str(field), MAX_SOURCE)
        self.reason = _cut(reason.rstrip("."), MAX_REASON)
        where = f"{self.source}, field '{self.field}'" if self.field else self.source
        super().__init__(f"{where}: {self.reason}.")
