"""README's command table names every option of each command it lists (-q/-v have their own row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asicsim.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _row(name: str) -> str | None:
    rows = [line for line in README.splitlines() if line.startswith(f"| `asicsim {name} ")]
    return rows[0].split("` |")[0] if rows else None


@pytest.mark.parametrize("name", sorted(n for n in main.commands if _row(n) is not None))
def test_the_readme_row_of_a_command_names_each_of_its_options(name):
    row = _row(name)
    missing = [o for p in main.commands[name].params for o in (*p.opts, *p.secondary_opts)
               if o.startswith("--") and o not in ("--quiet", "--verbose") and o not in row]
    assert not missing, f"README's `asicsim {name}` row lacks {missing}"
