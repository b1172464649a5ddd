"""Every command in the docs runs: each ```bash and ```python block of README.md and docs/**/*.md.

Bash blocks run with ``bash -eo pipefail`` in a copy of the repository made for this session in a
temporary folder (what they write, such as ``results/``, lands there: the checkout is left as it
was, and a later session finds no results folder of this one); Python blocks run with ``exec`` in a
fresh namespace, also from that copy. Output shown in the docs sits in ```text
blocks, which are not run. Two rules keep this honest and quick:

- a block right after the line ``<!-- docs-test: skip (reason) -->`` is not run; only the
  README's ``pytest`` (this very suite) uses it;
- a block whose text already ran successfully in this session (the README's quickstart, repeated
  in getting-started.md) is not run again;
- a ```text block right after a run block (only blank lines between) shows its output: each of
  its lines, in order, must be (part of) a line the block printed, "..." standing for text left
  out, so a printed number that moved fails the test. ``python -m asicsim.docgen
  --update-outputs`` rewrites those numbers from a fresh run;
- a block with an install command (the README's ``pip install -e '.[dev]'``) runs in a throwaway
  virtual environment made for this session in a temporary folder, which sees the running
  environment's packages through a ``.pth`` file: the install goes there, the block's commands run
  from there, and the environment running the suite is left as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->\s*$")
TIMEOUT_S = 240
_done: dict[str, str] = {}  # code -> what it printed


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


INSTALLS = re.compile(r"^\s*(python -m )?pip install ", re.MULTILINE)


@pytest.fixture(scope="session")
def throwaway_env(tmp_path_factory) -> dict[str, str]:
    """The environment variables that put a fresh venv (in a temporary folder) first on PATH.
    The venv reaches the running environment's packages through a ``.pth`` file, so an install
    there needs nothing new but its build backend, and changes nothing outside the folder."""
    root = tmp_path_factory.mktemp("docs-venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    site_dir = next(root.glob("lib/python*/site-packages"))
    (site_dir / "running-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return {**os.environ, "VIRTUAL_ENV": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}


LOCAL = {".git", ".venv", "results", "out", "build", ".hypothesis", ".pytest_cache"}


@pytest.fixture
def checkout_copy(tmp_path_factory) -> Path:
    """The repository's files (not its git history, environments, build or output folders) in a
    temporary folder of each page's own, as a reader who starts the page from a fresh clone has
    them (two pages may both run the quickstart into results/quickstart)."""
    root = tmp_path_factory.mktemp("docs-checkout")

    def local(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skip | (LOCAL & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, root, ignore=local, dirs_exist_ok=True)
    return root


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_code_block_runs_and_prints_what_the_page_shows(page, monkeypatch, request, checkout_copy):
    from asicsim.docgen import mismatches, page_blocks

    monkeypatch.chdir(checkout_copy)
    stale = []
    for b in page_blocks(page.read_text(encoding="utf-8")):
        if b.skip or b.lang not in ("bash", "python"):
            continue
        where = f"{page.relative_to(ROOT)}:{b.line}"
        if b.code not in _done:
            _done[b.code] = _run(b.lang, b.code, where, request, checkout_copy)
        if b.shown is not None:
            stale += [f"{page.relative_to(ROOT)}:{b.shown.line}: {line.strip()}"
                      for line in mismatches(b.shown.code, _done[b.code])]
    assert not stale, ("printed output differs from what the page shows (rewrite the numbers with "
                       "`python -m asicsim.docgen --update-outputs`):\n" + "\n".join(stale))


def _run(lang: str, code: str, where: str, request, cwd: Path) -> str:
    """Run one block in ``cwd``; what it printed (stdout and stderr together)."""
    import contextlib
    import io

    if lang == "bash":
        env = request.getfixturevalue("throwaway_env") if INSTALLS.search(code) else os.environ
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", code], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S,
                              env={**env, "MPLBACKEND": "Agg"}, check=False)
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stdout[-3000:]}"
        return done.stdout
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        exec(compile(code, where, "exec"), {"__name__": "__docs__"})  # noqa: S102 (our own docs)
    return buf.getvalue()


def test_a_changed_number_in_shown_output_fails_and_the_update_restores_it(checkout_copy):
    """The test of the test: a real page's shown output matches what its block prints; one digit
    changed makes it fail; --update-outputs' rewrite brings the digit back."""
    from asicsim.docgen import mismatches, page_blocks, run_block, updated

    page = ROOT / "docs" / "tutorials" / "01-decode-is-memory-bound.md"
    block = next(b for b in page_blocks(page.read_text(encoding="utf-8")) if b.shown and b.lang == "bash")
    output = run_block(block, checkout_copy)
    assert mismatches(block.shown.code, output) == []
    number = re.search(r"\d+\.\d+", block.shown.code)
    digit = number.group(0)[-1]
    changed = (block.shown.code[:number.end() - 1] + str((int(digit) + 1) % 10)
               + block.shown.code[number.end():])
    assert changed != block.shown.code
    assert len(mismatches(changed, output)) == 1
    assert updated(changed, output) == (block.shown.code, [])
