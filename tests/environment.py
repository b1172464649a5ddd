"""What ``pip freeze`` reports about the environment running the tests, and where ``asicsim``
is imported from, as a fresh interpreter sees them (a ``pip install -e`` elsewhere re-points
the second without changing the first's version).

Read through ``importlib.metadata`` (what pip itself reads) in one small subprocess, started
outside the checkout so the working directory does not shadow the installed package: a
fraction of a second, where ``pip freeze`` takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_SNAPSHOT = """
import importlib.metadata as md, json
dists = sorted({(d.metadata["Name"] or "?", d.version, d.read_text("direct_url.json") or "")
                for d in md.distributions()})
try:
    import asicsim
    where = asicsim.__file__
except ImportError as e:
    where = f"not importable: {e}"
print(json.dumps({"distributions": dists, "asicsim": where}))
"""


def snapshot(env: dict[str, str] | None = None) -> dict:
    """Installed distributions (name, version, editable or URL origin) and asicsim's location."""
    done = subprocess.run([sys.executable, "-c", _SNAPSHOT], cwd=tempfile.gettempdir(), capture_output=True,
                          text=True, check=True, env=env or dict(os.environ))
    doc = json.loads(done.stdout)
    doc["distributions"] = [tuple(d) for d in doc["distributions"]]
    return doc


def changes(before: dict, after: dict) -> list[str]:
    """What differs, one line each."""
    out = [f"asicsim was imported from {before['asicsim']}, now from {after['asicsim']}"] \
        if before["asicsim"] != after["asicsim"] else []
    gone, new = set(before["distributions"]) - set(after["distributions"]), \
        set(after["distributions"]) - set(before["distributions"])
    out += [f"removed or changed: {n}=={v} {u}".rstrip() for n, v, u in sorted(gone)]
    out += [f"added or changed: {n}=={v} {u}".rstrip() for n, v, u in sorted(new)]
    return out
