"""Every command in the docs runs: each ```bash and ```python block of README.md and docs/**/*.md.

Bash blocks run with ``bash -eo pipefail`` in the repository root; Python blocks run with
``exec`` in a fresh namespace, also from the root. Output shown in the docs sits in ```text
blocks, which are not run. Two rules keep this honest and quick:

- a block right after the line ``<!-- docs-test: skip (reason) -->`` is not run; only the
  README's ``pytest`` (this very suite) uses it;
- a block whose text already ran successfully in this session (the README's quickstart, repeated
  in getting-started.md) is not run again;
- ``pip install`` commands are not run (the rest of their block is): the suite already runs in
  the environment they would make, and a test must not change the environment it runs in.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->\s*$")
TIMEOUT_S = 240
_done: set[str] = set()


def blocks(page: Path) -> list[tuple[str, str, int, str | None]]:
    """(language, code, line, skip reason) of each fenced block of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append((m.group(1), m.group(2), line, skip.group(1) if skip else None))
    return out


def test_docs_have_no_unlabelled_blocks():
    """A fence without a language is ambiguous: commands are bash or python, output is text."""
    bare = [f"{p.relative_to(ROOT)}:{line}" for p in PAGES for lang, _, line, _ in blocks(p) if not lang]
    assert not bare, "label these blocks (```bash, ```python or ```text): " + ", ".join(bare)


def test_only_the_test_suite_itself_is_skipped():
    skipped = [(p.name, code.strip()) for p in PAGES for _, code, _, why in blocks(p) if why]
    assert skipped == [("README.md", "pytest")]


INSTALL = re.compile(r"^\s*(python -m )?pip install [^\n&;]*(&&\s*|;\s*|$)", re.MULTILINE)


def without_installs(code: str) -> str:
    """A bash block with its ``pip install ...`` commands taken out (and the ``&&`` after them)."""
    return INSTALL.sub("", code)


def test_install_commands_are_taken_out_and_nothing_else():
    assert without_installs("pip install -e '.[dev]' && asicsim run x.yaml\n") == "asicsim run x.yaml\n"
    assert without_installs("echo a\npip install foo\necho b\n") == "echo a\n\necho b\n"
    assert without_installs("asicsim models\n") == "asicsim models\n"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_code_block_runs(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    for lang, code, line, skip in blocks(page):
        if skip or lang not in ("bash", "python") or code in _done:
            continue
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang == "bash":
            runnable = without_installs(code)
            done = subprocess.run(["bash", "-eo", "pipefail", "-c", runnable], cwd=ROOT, capture_output=True,
                                  text=True, timeout=TIMEOUT_S, env={**os.environ, "MPLBACKEND": "Agg"},
                                  check=False)
            assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        else:
            exec(compile(code, where, "exec"), {"__name__": "__docs__"})  # noqa: S102 (our own docs)
        _done.add(code)
