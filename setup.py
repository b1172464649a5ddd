"""Packaging hook: the wheel carries the shipped models and scenarios.

They live at the top of the repository (``models/``, ``scenarios/``) where users browse them;
``build_py`` copies them into the package being built as ``asicsim/data/models`` and
``asicsim/data/scenarios``, so an installed ``asicsim`` finds them (see ``asicsim.shipped``).
An editable install reads the top-level folders directly. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"models": "*.json", "scenarios": "*.yaml"}


class BuildPyWithShippedFiles(build_py):
    """build_py, plus a copy of each shipped folder under ``asicsim/data/`` in the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # the source tree is read in place
            return
        for folder, pattern in SHIPPED.items():
            target = Path(self.build_lib) / "asicsim" / "data" / folder
            if target.exists():  # a reused build folder: drop files removed from the source since
                shutil.rmtree(target)
            self.mkpath(str(target))
            for source in sorted((ROOT / folder).glob(pattern)):
                self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
