"""Where the shipped models and scenarios are: inside the installed package, or at the top of a
source checkout.

A wheel carries copies of the repository's top-level ``models/`` and ``scenarios/`` under
``asicsim/data/`` (setup.py copies them at build time); an editable install or a checkout on
``PYTHONPATH`` has no such copies and reads the top-level folders themselves.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(folder: str) -> Path:
    """The folder of shipped ``folder`` files (``models`` or ``scenarios``)."""
    packaged = _PACKAGE / "data" / folder
    return packaged if packaged.is_dir() else _PACKAGE.parent / folder


MODELS_DIR = shipped_dir("models")
SCENARIOS_DIR = shipped_dir("scenarios")
