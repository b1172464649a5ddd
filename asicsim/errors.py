"""One error type for bad input, rendered as one paragraph.

Every user-facing failure (a malformed file, an unknown name, a model that does not fit) is an
:class:`InputError` naming where the problem is (a file and a field path) and why. The CLI prints
its message and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input: ``source`` is a file or name, ``field`` a dotted path inside it, ``reason`` prose."""

    def __init__(self, source: str, field: str | None, reason: str):
        self.source = str(source)
        self.field = field
        self.reason = reason.rstrip(".")
        where = f"{self.source}, field '{field}'" if field else self.source
        super().__init__(f"{where}: {self.reason}.")
