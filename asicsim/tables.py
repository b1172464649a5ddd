"""Tables as plain values, drawn two ways: as text for the terminal (with ``rich``) and as HTML in
the report (:mod:`asicsim.report_html`). A study builds its :class:`Table` list from its results
document, so ``asicsim run`` and ``asicsim report`` show the same cells, titles and notes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

# Wide enough that no table of ours wraps: the text is the same on every terminal (the docs show
# it verbatim), and a table wider than the window scrolls as plain text does.
TEXT_WIDTH = 250


@dataclass(frozen=True)
class Table:
    """A grid of formatted cells. The first ``labels`` columns, and those listed in ``left``, are
    left-aligned text; the rest right-aligned values. ``notes`` are sentences printed under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    labels: int = 1
    left: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table {self.title!r}: a row of {len(row)} cells under {len(self.header)} columns")

    def align(self, i: int) -> str:
        return "left" if i < self.labels or i in self.left else "right"


def render_text(tables: list[Table], trailer: list[str] = ()) -> str:
    """The tables as text: each title, the grid under a header rule, then its notes; then
    ``trailer`` lines. Trailing spaces are stripped, so the text is stable to compare."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    buf = io.StringIO()
    console = Console(file=buf, width=TEXT_WIDTH, color_system=None, force_terminal=False,
                      highlight=False, emoji=False, markup=False)
    for n, t in enumerate(tables):
        if n:
            console.print()
        if t.title:
            console.print(t.title, soft_wrap=True)
        grid = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
        for i, h in enumerate(t.header):
            grid.add_column(h, justify=t.align(i), no_wrap=True)
        for row in t.rows:
            grid.add_row(*row)
        console.print(grid)
        for note in t.notes:
            console.print(note, soft_wrap=True)
    if trailer:
        console.print()
        for line in trailer:
            console.print(line, soft_wrap=True)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))
